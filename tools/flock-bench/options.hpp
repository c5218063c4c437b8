#pragma once
// flock-bench's command line: `flock-bench SCENARIO [--flag VALUE]...` or
// `--scenario SCENARIO`. Every flag also accepts --flag=VALUE.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flock::bench {

struct options {
  std::string scenario;  // pubsub (pub, sub), connections, fill, drain, converge, move

  // connection
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  // Where subscribers (pubsub, fill/drain sessions, converge, move) connect;
  // unset = host/port. A cluster is measured by pointing them at another node.
  std::optional<std::string> sub_host;
  std::optional<std::uint16_t> sub_port;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::string client_prefix = "bench";
  int mqtt_version = 4;  // 4 = 3.1.1, 5 = 5.0
  // Local addresses connections are bound to, round robin (empty: the
  // kernel's choice). Each source address has its own ~28k ephemeral ports
  // towards one broker address, so several give more connections.
  std::vector<std::string> source_addresses;
  int threads = 1;
  int keepalive = 60;
  double connect_timeout = 10;
  bool json = false;
  bool quiet = false;

  // pubsub
  int publishers = 1;
  int subscribers = 1;
  int topics = 1;
  int qos = 0;
  std::size_t payload = 64;
  double rate = 0;  // total messages/s; 0 = as fast as possible
  int inflight = 16;
  double duration = 10;  // converge and move: the whole run's time limit, 60 unless given
  double warmup = 1;
  double drain = 10;
  bool persistent = false;
  std::uint32_t session_expiry = 3600;
  // `sub`: subscribers only, counting what publishers elsewhere (another
  // flock-bench `pub`) send; with run_id, only that run's messages.
  bool receive_only = false;
  std::optional<std::uint32_t> run_id;  // pub/pubsub: use this id; sub: accept only it
  std::optional<std::string> filter;    // subscribers subscribe to this instead of their topic
  double kill_subscriber_after = -1;  // seconds after the start; < 0 = never
  double reconnect_delay = 0.5;

  // connections
  int connections = 1000;
  double connect_rate = 0;  // connections/s; 0 = as fast as possible
  int connect_concurrency = 256;
  int broker_pid = 0;
  bool subscribe = false;

  // fill / drain
  std::uint64_t retained = 0;
  int sessions = 0;
  std::uint64_t queued = 0;
  std::optional<int> fill_qos;  // fill --retained: --qos, default 1

  // converge / move (move also uses --queued, default 100)
  int repeat = 0;  // attempts; 0 = the scenario's default (converge 200, move 20)
  double probe_interval_ms = 1;  // converge: one probe publish every this many ms
  double attempt_timeout = 5;    // seconds one attempt may take before it counts as failed

  const std::string& subscriber_host() const { return sub_host ? *sub_host : host; }
  std::uint16_t subscriber_port() const { return sub_port ? *sub_port : port; }
  bool subscribers_elsewhere() const { return subscriber_host() != host || subscriber_port() != port; }
};

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws usage_error with one line saying what is wrong.
options parse_options(const std::vector<std::string>& args);
const char* usage_text();

}  // namespace flock::bench
