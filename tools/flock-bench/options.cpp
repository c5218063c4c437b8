#include "tools/flock-bench/options.hpp"

#include "tools/flock-bench/asio.hpp"

#include <charconv>
#include <functional>
#include <map>

namespace flock::bench {

const char* usage_text() {
  return R"(Usage: flock-bench SCENARIO [flags]      (or --scenario SCENARIO)

Load generator for MQTT brokers (flock, Mosquitto, ...). Scenarios:
  pubsub       P publishers -> S subscribers on T topics; rates, latency, loss
  pub          pubsub without subscribers: publish (and ack) rates only
  sub          pubsub without publishers: receive what others publish (e.g. a `pub`
               in another process) for --warmup + --duration; rates, latency, gaps
  connections  open N idle connections (--subscribe: one subscription each), hold
               them, report rate and broker memory (alias: conn)
  fill         publish N retained messages, or queue K messages in M offline sessions
  drain        reconnect the sessions of `fill --sessions` and count what they get
  converge     subscribe on --sub-host, probe from --host: time until the route works
  move         K messages queued for an offline session on --host, resumed on --sub-host

Connection:
  --host HOST (127.0.0.1)  --port PORT (1883)  --username U  --password P
  --sub-host HOST  --sub-port PORT   where subscribers connect (pubsub subscribers, fill and
                      drain sessions, converge subscriber, move resume); default --host/--port
  --client-prefix S (bench)   client ids <S>-pub-<n>, <S>-sub-<n>, <S>-conn-<n>, <S>-sess-<n>
  --source-addresses A,B,...  bind connections to these local addresses in turn
                      (e.g. 127.0.0.2,127.0.0.3: each gives ~28k more ports)
  --mqtt-version 4|5 (4)  --threads N (1)  --keepalive S (60)  --connect-timeout S (10)
  --json                  one JSON object on stdout instead of the summary
  --quiet                 no progress lines on stderr
pubsub:
  --publishers P (1)  --subscribers S (1)  --topics T (1)
                      publisher p sends to topic p%T, subscriber s subscribes to s%T
  --qos 0|1|2 (0)  --payload BYTES (64, at least 32)  --rate MSG/S total (0 = max)
  --inflight N (16)   QoS 1/2 window per publisher (capped by the broker's Receive Maximum)
  --duration S (10)  --warmup S (1)  --drain S (10, max wait for the tail after the run)
  --persistent        subscribers keep sessions: ids <prefix>-sub-<n>, clean session 0
                      (v5: session expiry --session-expiry S, 3600); reset at start
  --kill-subscriber-after S   drop subscriber 0's socket S s after the start (no
                      DISCONNECT), reconnect it --reconnect-delay S (0.5) later
  --run-id N          pub/pubsub: stamp payloads with run id N (default random, reported);
                      sub: count only run N's messages (others are "stale")
  --filter F          subscribers subscribe to F (e.g. bench/t/#) instead of <prefix>/t/<s%T>
connections:
  --connections N (1000)  --connect-rate N/S (0 = max)  --connect-concurrency N (256)
  --duration S (hold time, 10)  --broker-pid PID (report the broker's RSS)
  --subscribe         each connection also subscribes to <prefix>/c/<n>
fill:
  --retained N        N retained messages on <prefix>/retained/<i> (--qos, default 1)
  --sessions M --queued K   M offline sessions <prefix>-sess-<m> subscribed (QoS 1) to
                      <prefix>/q/<m>, then K QoS 1 messages published to each
drain:
  --sessions M --queued K   resume those sessions, expect K messages each
converge:
  --repeat N (200)    fresh topics: subscribe on --sub-host, publish QoS 0 probes on --host
                      every --probe-interval-ms (1) until one arrives; SUBACK -> first probe
                      (clients <prefix>-probe-pub on --host, <prefix>-probe-sub on --sub-host)
  --attempt-timeout S (5)   an attempt without a probe by then counts as failed
  --duration S (60)   limit for the whole run
move:
  --repeat N (20)  --queued K (100)   session <prefix>-move-<run>-<n> subscribes (QoS 1) on
                      --host and leaves, K QoS 1 messages are published on --host, then it
                      resumes on --sub-host: time to CONNACK and to the K-th message
  --attempt-timeout S (5)  --duration S (60)   as for converge
)";
}

namespace {

template <typename T>
T number(const std::string& flag, const std::string& v) {
  T out{};
  const char* end = v.data() + v.size();
  auto [p, ec] = std::from_chars(v.data(), end, out);
  if (ec != std::errc{} || p != end) throw usage_error(flag + ": not a number: '" + v + "'");
  return out;
}

double real(const std::string& flag, const std::string& v) {
  try {
    std::size_t n = 0;
    double d = std::stod(v, &n);
    if (n != v.size()) throw usage_error("");
    return d;
  } catch (...) {
    throw usage_error(flag + ": not a number: '" + v + "'");
  }
}

void check(bool ok, const std::string& message) {
  if (!ok) throw usage_error(message);
}

}  // namespace

options parse_options(const std::vector<std::string>& args) {
  options o;
  bool duration_given = false;
  using setter = std::function<void(const std::string&, const std::string&)>;
  std::map<std::string, setter> with_value = {
      {"--scenario", [&](auto&, auto& v) { o.scenario = v; }},
      {"--host", [&](auto&, auto& v) { o.host = v; }},
      {"--source-addresses", [&](auto&, auto& v) {
         o.source_addresses.clear();
         std::size_t start = 0;
         while (start <= v.size()) {
           auto comma = v.find(',', start);
           if (comma == std::string::npos) comma = v.size();
           if (comma > start) o.source_addresses.push_back(v.substr(start, comma - start));
           start = comma + 1;
         }
       }},
      {"--port", [&](auto& f, auto& v) { o.port = number<std::uint16_t>(f, v); }},
      {"--sub-host", [&](auto&, auto& v) { o.sub_host = v; }},
      {"--sub-port", [&](auto& f, auto& v) { o.sub_port = number<std::uint16_t>(f, v); }},
      {"--username", [&](auto&, auto& v) { o.username = v; }},
      {"--password", [&](auto&, auto& v) { o.password = v; }},
      {"--client-prefix", [&](auto&, auto& v) { o.client_prefix = v; }},
      {"--mqtt-version", [&](auto& f, auto& v) { o.mqtt_version = number<int>(f, v); }},
      {"--threads", [&](auto& f, auto& v) { o.threads = number<int>(f, v); }},
      {"--keepalive", [&](auto& f, auto& v) { o.keepalive = number<int>(f, v); }},
      {"--connect-timeout", [&](auto& f, auto& v) { o.connect_timeout = real(f, v); }},
      {"--publishers", [&](auto& f, auto& v) { o.publishers = number<int>(f, v); }},
      {"--subscribers", [&](auto& f, auto& v) { o.subscribers = number<int>(f, v); }},
      {"--topics", [&](auto& f, auto& v) { o.topics = number<int>(f, v); }},
      {"--qos", [&](auto& f, auto& v) { o.qos = number<int>(f, v); o.fill_qos = o.qos; }},
      {"--payload", [&](auto& f, auto& v) { o.payload = number<std::size_t>(f, v); }},
      {"--rate", [&](auto& f, auto& v) { o.rate = real(f, v); }},
      {"--inflight", [&](auto& f, auto& v) { o.inflight = number<int>(f, v); }},
      {"--duration", [&](auto& f, auto& v) { o.duration = real(f, v); duration_given = true; }},
      {"--warmup", [&](auto& f, auto& v) { o.warmup = real(f, v); }},
      {"--drain", [&](auto& f, auto& v) { o.drain = real(f, v); }},
      {"--session-expiry", [&](auto& f, auto& v) { o.session_expiry = number<std::uint32_t>(f, v); }},
      {"--kill-subscriber-after", [&](auto& f, auto& v) { o.kill_subscriber_after = real(f, v); }},
      {"--reconnect-delay", [&](auto& f, auto& v) { o.reconnect_delay = real(f, v); }},
      {"--connections", [&](auto& f, auto& v) { o.connections = number<int>(f, v); }},
      {"--connect-rate", [&](auto& f, auto& v) { o.connect_rate = real(f, v); }},
      {"--connect-concurrency", [&](auto& f, auto& v) { o.connect_concurrency = number<int>(f, v); }},
      {"--broker-pid", [&](auto& f, auto& v) { o.broker_pid = number<int>(f, v); }},
      {"--retained", [&](auto& f, auto& v) { o.retained = number<std::uint64_t>(f, v); }},
      {"--sessions", [&](auto& f, auto& v) { o.sessions = number<int>(f, v); }},
      {"--queued", [&](auto& f, auto& v) { o.queued = number<std::uint64_t>(f, v); }},
      {"--repeat", [&](auto& f, auto& v) { o.repeat = number<int>(f, v); }},
      {"--probe-interval-ms", [&](auto& f, auto& v) { o.probe_interval_ms = real(f, v); }},
      {"--attempt-timeout", [&](auto& f, auto& v) { o.attempt_timeout = real(f, v); }},
      {"--run-id", [&](auto& f, auto& v) { o.run_id = number<std::uint32_t>(f, v); }},
      {"--filter", [&](auto&, auto& v) { o.filter = v; }},
  };
  std::map<std::string, std::function<void()>> switches = {
      {"--json", [&] { o.json = true; }},
      {"--quiet", [&] { o.quiet = true; }},
      {"--persistent", [&] { o.persistent = true; }},
      {"--subscribe", [&] { o.subscribe = true; }},
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a.rfind("--", 0) != 0) {
      check(o.scenario.empty(), "unexpected argument '" + a + "'");
      o.scenario = a;
      continue;
    }
    std::optional<std::string> value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    if (auto s = switches.find(a); s != switches.end()) {
      check(!value, a + " takes no value");
      s->second();
      continue;
    }
    auto w = with_value.find(a);
    check(w != with_value.end(), "unknown flag " + a);
    if (!value) {
      check(i + 1 < args.size(), a + " needs a value");
      value = args[++i];
    }
    w->second(a, *value);
  }

  const std::string known = "pubsub, pub, sub, connections (conn), fill, drain, converge or move";
  check(!o.scenario.empty(), "no scenario given (" + known + ")");
  // Short names, as emqtt-bench users know them: `conn`, `pub` for a
  // publish-only pubsub (no subscribers: published and acknowledged rates),
  // `sub` for a receive-only one (no publishers here; they run elsewhere).
  if (o.scenario == "conn") o.scenario = "connections";
  if (o.scenario == "pub") {
    o.scenario = "pubsub";
    o.subscribers = 0;
  }
  if (o.scenario == "sub") {
    o.scenario = "pubsub";
    o.publishers = 0;
    o.receive_only = true;
  }
  check(o.scenario == "pubsub" || o.scenario == "connections" || o.scenario == "fill" || o.scenario == "drain" ||
            o.scenario == "converge" || o.scenario == "move",
        "unknown scenario '" + o.scenario + "' (" + known + ")");
  for (const auto& a : o.source_addresses) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(a, ec);
    check(!ec, "--source-addresses: '" + a + "' is not an IP address");
  }
  check(o.mqtt_version == 4 || o.mqtt_version == 5, "--mqtt-version must be 4 (3.1.1) or 5");
  check(o.threads >= 1 && o.threads <= 64, "--threads must be 1..64");
  check(o.keepalive >= 0 && o.keepalive <= 65535, "--keepalive must be 0..65535");
  check(o.connect_timeout > 0, "--connect-timeout must be > 0");
  check(o.qos >= 0 && o.qos <= 2, "--qos must be 0, 1 or 2");
  check(o.publishers >= 0 && o.subscribers >= 0, "--publishers and --subscribers must be >= 0");
  check(o.topics >= 1, "--topics must be >= 1");
  check(o.payload >= 32, "--payload must be at least 32 bytes (publisher, sequence and timestamp live there)");
  check(o.payload <= 256 * 1024 * 1024, "--payload must be below 256 MiB");
  check(o.rate >= 0, "--rate must be >= 0");
  check(o.inflight >= 1 && o.inflight <= 65535, "--inflight must be 1..65535");
  check(o.duration > 0 && o.duration <= 86400, "--duration must be in (0, 86400] seconds");
  check(o.warmup >= 0 && o.warmup <= 3600, "--warmup must be in [0, 3600] seconds");
  check(o.drain >= 0 && o.drain <= 3600, "--drain must be in [0, 3600] seconds");
  check(o.reconnect_delay >= 0 && o.reconnect_delay <= 60, "--reconnect-delay must be in [0, 60] seconds");
  check(o.connections >= 1, "--connections must be >= 1");
  check(o.connect_rate >= 0, "--connect-rate must be >= 0");
  check(o.connect_concurrency >= 1, "--connect-concurrency must be >= 1");
  check(o.sessions >= 0, "--sessions must be >= 0");
  if (o.scenario == "pubsub") {
    check(o.receive_only ? o.subscribers >= 1 : o.publishers >= 1,
          o.receive_only ? "sub needs --subscribers >= 1" : "pubsub needs --publishers >= 1");
    check(!o.run_id || *o.run_id != 0, "--run-id must be 1..4294967295");
    check(!o.filter || !o.filter->empty(), "--filter must not be empty");
    check(o.kill_subscriber_after < 0 || o.subscribers >= 1, "--kill-subscriber-after needs a subscriber");
  }
  if (o.scenario == "fill") {
    check((o.retained > 0) != (o.sessions > 0), "fill needs either --retained N or --sessions M --queued K");
    check(o.sessions == 0 || o.queued > 0, "fill --sessions needs --queued K >= 1");
  }
  if (o.scenario == "drain") check(o.sessions > 0 && o.queued > 0, "drain needs --sessions M --queued K");
  check(o.repeat >= 0, "--repeat must be >= 0");
  check(o.probe_interval_ms >= 0.1 && o.probe_interval_ms <= 1000, "--probe-interval-ms must be in [0.1, 1000]");
  check(o.attempt_timeout > 0 && o.attempt_timeout <= 600, "--attempt-timeout must be in (0, 600] seconds");
  if (o.scenario == "converge" || o.scenario == "move") {
    // Both repeat short attempts: the run as a whole gets a minute by default.
    if (!duration_given) o.duration = 60;
    if (o.repeat == 0) o.repeat = o.scenario == "converge" ? 200 : 20;
  }
  if (o.scenario == "move" && o.queued == 0) o.queued = 100;
  return o;
}

}  // namespace flock::bench
