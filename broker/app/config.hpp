#pragma once
// flockd's configuration: a YAML file (--config FILE) with command-line flags
// applied on top, every key settable both ways. Parsing happens once, on the
// main thread, before anything starts; errors are config_error (exit code 2).
// server.hpp first: it brings in Asio and thereby <fcntl.h>, whose global
// `struct flock` cannot be declared once namespace flock exists.
#include "broker/server/server.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "broker/core/broker_config.hpp"
#include "cluster/options.hpp"

namespace flock::app {

// One line, ready for stderr after "flockd: ", e.g.
// "config: flock.yaml:3: unknown key 'foo'".
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One listener as configured. `address` is kept as written; the protocol and
// path may come from it ("wss://0.0.0.0:8084/mqtt") or from their own keys.
struct listener_config {
  std::string address;                  // [SCHEME://]HOST:PORT[/PATH], IPv6 in brackets
  std::optional<bool> allow_anonymous;  // unset: global allow_anonymous, else loopback rule
  std::string protocol;                 // mqtt, mqtts, ws, wss; empty: the address's scheme, else mqtt
  std::string path;                     // ws/wss upgrade path; empty: the address's path, else /mqtt
  server::tls_options tls;              // mqtts, wss only
};


struct config {
  std::vector<listener_config> listeners;  // empty: one listener on 127.0.0.1:1883
  std::string data_dir = "./data";
  // sync: the WAL is fsynced before an ack (survives power loss); async: the
  // WAL is written, not synced (survives a killed process); memory: no disk.
  std::string durability = "async";
  // Below this much free space on data_dir's disk flockd stops writing and
  // refuses QoS 1/2 publishes, before RocksDB itself runs out of space.
  std::uint32_t disk_reserve_mb = 64;
  std::uint32_t workers = 0;  // 0: one per core
  std::string log_level = "info";
  std::string metrics_listen;  // HOST:PORT of /metrics, /healthz, /readyz; empty: off
  std::optional<bool> allow_anonymous;  // default for listeners that do not say
  core::broker_config broker;           // also holds node_name and password_file
  cluster::options cluster;             // cluster.listen empty: a single node
  // How often every certificate file (listeners, cluster) is checked for changes.
  std::chrono::milliseconds certificate_reload_interval{10000};
};

// Sets one listener key (YAML entry key or --listen option) from text.
// Throws config_error for an unknown key, std::invalid_argument for a bad value.
void set_listener_key(listener_config& l, const std::string& key, const std::string& value, const std::string& where);
// The listener with protocol, path and TLS settings resolved and checked
// (TLS files are not opened here). Throws config_error.
server::listener_options to_listener_options(const listener_config& l, const config& cfg);

enum class command { run, help, version };

struct command_line {
  command what = command::run;
  config cfg;
};

// Reads --config FILE first (wherever it appears), then applies every other
// flag in order. Throws config_error.
command_line parse_command_line(int argc, const char* const argv[]);

// Applies a YAML document; `source` names it in error messages.
void apply_yaml(config& cfg, const std::string& yaml_text, const std::string& source);
void apply_yaml_file(config& cfg, const std::string& path);

// Sets one key from its text form (the YAML scalar or flag value).
// `where` prefixes errors ("flock.yaml:3" or "--workers"). Throws config_error.
void apply_setting(config& cfg, const std::string& key, const std::string& value, const std::string& where);

// Checks what single keys cannot: listener addresses and protocols, TLS
// certificate files (loaded once here), password file. Throws config_error.
void validate(const config& cfg);

std::string help_text();
std::string version_text();

// The listeners with defaults applied: 127.0.0.1:1883 when none are given;
// anonymous clients allowed on loopback listeners unless configured otherwise.
std::vector<server::listener_options> resolved_listeners(const config& cfg);
server::server_options to_server_options(const config& cfg);

}  // namespace flock::app
