#include "broker/app/config.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "broker/app/config_keys.hpp"
#include "broker/auth/acl_file.hpp"
#include "broker/server/listener.hpp"
#include "broker/server/log.hpp"
#include "broker/tls/certificate_files.hpp"
#include "cluster/grpc_node.hpp"
#include "storage/store_factory.hpp"

namespace flock::app {
namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw config_error("config: " + where + ": " + what);
}

std::string at(const std::string& source, const YAML::Node& node) {
  return source + ":" + std::to_string(node.Mark().line + 1);
}

// "URL[,KEY=VALUE...]" from --listen, e.g.
// "mqtts://0.0.0.0:8883,certfile=server.pem,keyfile=server.key".
listener_config parse_listen_flag(const std::string& value) {
  listener_config l;
  auto comma = value.find(',');
  l.address = value.substr(0, comma);
  while (comma != std::string::npos) {
    auto next = value.find(',', comma + 1);
    auto option = value.substr(comma + 1, next == std::string::npos ? std::string::npos : next - comma - 1);
    comma = next;
    auto eq = option.find('=');
    auto key = option.substr(0, eq);
    if (key == "address") fail("--listen", "unknown listener option 'address' (the address comes first)");
    // A boolean option alone means true: ",require_certificate".
    auto text = eq == std::string::npos ? std::string("true") : option.substr(eq + 1);
    try {
      set_listener_key(l, key, text, "--listen");
    } catch (const std::invalid_argument& e) {
      fail("--listen", key + ": " + e.what());
    }
  }
  return l;
}

listener_config parse_yaml_listener(const YAML::Node& item, const std::string& source) {
  listener_config l;
  if (item.IsScalar()) {
    l.address = item.Scalar();
    return l;
  }
  if (!item.IsMap()) fail(at(source, item), "listeners: each entry must be a map with 'address' or \"HOST:PORT\"");
  for (auto it = item.begin(); it != item.end(); ++it) {
    auto name = it->first.as<std::string>();
    if (!it->second.IsScalar()) fail(at(source, it->second), "listeners: '" + name + "' must be a single value");
    try {
      if (name == "address") l.address = it->second.Scalar();
      else set_listener_key(l, name, it->second.Scalar(), at(source, it->first));
    } catch (const std::invalid_argument& e) {
      fail(at(source, it->second), "listeners: " + name + ": " + e.what());
    }
  }
  if (l.address.empty()) fail(at(source, item), "listeners: entry without 'address'");
  return l;
}

}  // namespace

void set_listener_key(listener_config& l, const std::string& key, const std::string& value, const std::string& where) {
  if (key == "allow_anonymous") l.allow_anonymous = parse_bool(value);
  else if (key == "protocol") l.protocol = value;
  else if (key == "path") l.path = value;
  else if (key == "certfile") l.tls.certfile = value;
  else if (key == "keyfile") l.tls.keyfile = value;
  else if (key == "cafile") l.tls.cafile = value;
  else if (key == "ciphers") l.tls.ciphers = value;
  else if (key == "tls_version") l.tls.tls_version = value;
  else if (key == "require_certificate") l.tls.require_certificate = parse_bool(value);
  else if (key == "use_identity_as_username") l.tls.use_identity_as_username = parse_bool(value);
  else if (where == "--listen") fail(where, "unknown listener option '" + key + "'");
  else fail(where, "unknown listener key '" + key + "'");
}

server::listener_options to_listener_options(const listener_config& l, const config& cfg) {
  auto where = "listeners: '" + l.address + "'";
  std::string error;
  auto url = server::parse_listen_url(l.address, error);
  if (!url) fail(where, error);
  server::listener_options o;
  o.address = url->address;
  o.settings.name = l.address;
  o.protocol = url->protocol.value_or(server::listener_protocol::mqtt);
  if (!l.protocol.empty()) {
    auto p = server::parse_listener_protocol(l.protocol);
    if (!p) fail(where, "protocol: expected mqtt, mqtts, ws or wss, got '" + l.protocol + "'");
    if (url->protocol && *url->protocol != *p)
      fail(where, "protocol: " + l.protocol + " contradicts the address's " +
                      std::string(server::to_string(*url->protocol)) + "://");
    o.protocol = *p;
  }
  if (!l.path.empty() && url->path && *url->path != l.path)
    fail(where, "path: " + l.path + " contradicts the address's path " + *url->path);
  if (!l.path.empty() || url->path) {
    if (!server::uses_websocket(o.protocol)) fail(where, "path: only for ws and wss listeners");
    o.ws_path = l.path.empty() ? *url->path : l.path;
    if (o.ws_path.empty() || o.ws_path.front() != '/') fail(where, "path: must start with '/', got '" + o.ws_path + "'");
  }
  if (server::uses_tls(o.protocol)) {
    try {
      server::check_tls_options(l.tls);
    } catch (const server::tls_error& e) {
      fail(where, e.what());
    }
    o.tls = l.tls;
    o.tls_reload_interval = cfg.certificate_reload_interval;
  } else if (l.tls.any_set()) {
    fail(where, "TLS keys (certfile, keyfile, cafile, ...) need protocol mqtts or wss");
  }
  auto hp = server::parse_host_port(o.address, error);
  bool loopback = hp && server::is_loopback_host(hp->host);
  // Like Mosquitto 2.0: a socket others can reach refuses anonymous
  // clients unless someone decided otherwise.
  o.settings.allow_anonymous = l.allow_anonymous.value_or(cfg.allow_anonymous.value_or(loopback));
  return o;
}

void apply_setting(config& cfg, const std::string& key, const std::string& value, const std::string& where) {
  const key_spec* spec = find_key(key);
  if (!spec) {
    if (key == "listeners") fail(where, "listeners cannot be set this way; use --listen [PROTO://]HOST:PORT");
    fail(where, "unknown key '" + key + "'");
  }
  try {
    spec->set(cfg, value);
  } catch (const std::invalid_argument& e) {
    fail(where, key + ": " + e.what());
  }
}

void apply_yaml(config& cfg, const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail(source + ":" + std::to_string(e.mark.line + 1), e.msg);
  }
  if (root.IsNull()) return;  // an empty file changes nothing
  if (!root.IsMap()) fail(at(source, root), "expected a map of key: value");
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (!it->first.IsScalar()) fail(at(source, it->first), "keys must be plain names");
    auto key = it->first.Scalar();
    // Copies: it-> yields a temporary pair, references into it would dangle.
    YAML::Node value = it->second;
    if (key == "listeners") {
      if (value.IsNull()) {
        cfg.listeners.clear();
        continue;
      }
      if (!value.IsSequence()) fail(at(source, value), "listeners: expected a list");
      cfg.listeners.clear();
      for (const auto& item : value) cfg.listeners.push_back(parse_yaml_listener(item, source));
      continue;
    }
    if (key == "cluster") {
      // cluster: {listen: ..., seeds: [...], dns: ..., heartbeat_ms: ...}
      if (!value.IsMap()) fail(at(source, value), "cluster: expected a map of key: value");
      for (auto c = value.begin(); c != value.end(); ++c) {
        auto sub = c->first.as<std::string>();
        auto flat = find_key("cluster_" + sub) ? "cluster_" + sub : sub;
        if (flat != "seeds" && !flat.starts_with("cluster_")) fail(at(source, c->first), "cluster: unknown key '" + sub + "'");
        YAML::Node v = c->second;
        std::string text;
        if (v.IsSequence()) {
          for (const auto& item : v) text += (text.empty() ? "" : ",") + item.as<std::string>();
        } else if (v.IsScalar()) {
          text = v.Scalar();
        } else {
          fail(at(source, v), "cluster: " + sub + ": expected a value or a list");
        }
        apply_setting(cfg, flat, text, at(source, v));
      }
      continue;
    }
    if (key.starts_with("cluster.")) key = "cluster_" + key.substr(8);  // cluster.dns: NAME:PORT
    if (!find_key(key)) fail(at(source, it->first), "unknown key '" + key + "'");
    if (value.IsNull()) fail(at(source, it->first), key + ": missing value");
    if (!value.IsScalar()) fail(at(source, value), key + ": expected a single value, not a list or map");
    apply_setting(cfg, key, value.Scalar(), at(source, value));
  }
}

void apply_yaml_file(config& cfg, const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot read file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail(path, "cannot read file");
  apply_yaml(cfg, text.str(), path);
}

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The secret of cluster_secret_file, without a trailing newline.
std::string cluster_secret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cluster_secret_file", "cannot read '" + path + "'");
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' ')) secret.pop_back();
  if (secret.size() < 16)
    fail("cluster_secret_file", "'" + path + "' must hold at least 16 characters (e.g. openssl rand -base64 32)");
  return secret;
}

// The cluster port is authenticated unless the operator says otherwise.
void validate_cluster_security(const cluster::options& cl) {
  if (cl.tls) {
    if (cl.certfile.empty() || cl.keyfile.empty() || cl.cafile.empty())
      fail("cluster_tls", "a cluster node needs cluster_certfile, cluster_keyfile and cluster_cafile "
                          "(or cluster_tls: false for plaintext, which any process that reaches the port can join)");
    try {
      tls::check_key_pair(cl.certfile, cl.keyfile);
      tls::ca_set cas(cl.cafile);
      if (auto error = cas.verify(read_file(cl.certfile)); !error.empty())
        fail("cluster_certfile", "'" + cl.certfile + "' is not signed by cluster_cafile '" + cl.cafile + "': " + error);
    } catch (const tls::file_error& e) {
      fail("cluster", e.what());
    }
  } else if (!cl.certfile.empty() || !cl.keyfile.empty() || !cl.cafile.empty()) {
    fail("cluster_tls", "is false, but cluster_certfile, cluster_keyfile or cluster_cafile is set");
  }
  if (!cl.secret_file.empty()) cluster_secret(cl.secret_file);  // fails when unusable
}

}  // namespace

void validate(const config& cfg) {
  if (!cfg.metrics_listen.empty()) {
    std::string error;
    if (!server::parse_host_port(cfg.metrics_listen, error)) fail("metrics_listen", error);
  }
  const auto& cl = cfg.cluster;
  if (cl.listen.empty() && (!cl.seeds.empty() || !cl.dns.empty()))
    fail("cluster", "seeds and cluster_dns need cluster_listen (the address this node accepts peers on)");
  if (!cl.listen.empty()) {
    std::string error;
    if (!server::parse_host_port(cl.listen, error)) fail("cluster_listen", error);
    if (!cl.advertise.empty() && !server::parse_host_port(cl.advertise, error)) fail("cluster_advertise", error);
    if (cl.failure_timeout < 2 * cl.heartbeat)
      fail("cluster_failure_timeout_ms", "must be at least twice cluster_heartbeat_ms");
    validate_cluster_security(cl);
  }
  if (cl.replication_factor > 0 && cl.listen.empty())
    fail("replication_factor", "needs a cluster (cluster_listen)");
  if (cl.replication_factor > 0 && cfg.durability == "memory")
    fail("replication_factor", "needs a data directory (durability sync or async, not memory)");
  for (const auto& l : cfg.listeners) {
    auto o = to_listener_options(l, cfg);
    // Load the certificates now: a bad file is a configuration error (exit 2).
    if (server::uses_tls(o.protocol)) {
      try {
        server::make_tls_context(o.tls);
      } catch (const server::tls_error& e) {
        fail("listeners: '" + l.address + "'", e.what());
      }
    }
  }
  if (!cfg.broker.password_file.empty()) {
    std::ifstream in(cfg.broker.password_file);
    if (!in) fail("password_file", "cannot read '" + cfg.broker.password_file + "'");
  }
  if (!cfg.broker.acl_file.empty()) {
    // Parsed here, not only in the server, so a bad line is a configuration
    // error (exit 2) that names the file and line.
    try {
      auth::acl_file::load(cfg.broker.acl_file);
    } catch (const std::runtime_error& e) {
      fail("acl_file", e.what());
    }
  }
}

command_line parse_command_line(int argc, const char* const argv[]) {
  command_line out;
  std::vector<std::string> args(argv + 1, argv + argc);

  // Pass 1: --help/--version win; --config is loaded before any flag applies.
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--help" || a == "-h") return {command::help, {}};
    if (a == "--version" || a == "-V") return {command::version, {}};
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" || args[i] == "-c") {
      if (i + 1 >= args.size()) fail(args[i], "needs a file name");
      apply_yaml_file(out.cfg, args[i + 1]);
      ++i;
    } else if (args[i].rfind("--config=", 0) == 0) {
      apply_yaml_file(out.cfg, args[i].substr(9));
    }
  }

  // Pass 2: flags in order; a later flag overrides an earlier one.
  bool listen_seen = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    auto take_value = [&]() -> std::string {
      if (value) return *value;
      if (i + 1 >= args.size()) fail(flag, "needs a value");
      return args[++i];
    };
    if (flag == "--config" || flag == "-c") {
      take_value();
      continue;
    }
    if (flag == "--listen") {
      // The first --listen replaces the file's listeners; more add to it.
      if (!listen_seen) out.cfg.listeners.clear();
      listen_seen = true;
      out.cfg.listeners.push_back(parse_listen_flag(take_value()));
      continue;
    }
    if (flag == "--set") {
      auto kv = take_value();
      auto eq = kv.find('=');
      if (eq == std::string::npos) fail("--set", "expected KEY=VALUE, got '" + kv + "'");
      apply_setting(out.cfg, kv.substr(0, eq), kv.substr(eq + 1), "--set " + kv.substr(0, eq));
      continue;
    }
    const key_spec* spec = nullptr;
    for (const auto& k : config_keys())
      if (flag_name(k.key) == flag) spec = &k;
    if (!spec) fail(flag, flag.rfind("-", 0) == 0 ? "unknown flag (see --help)" : "unexpected argument");
    // A boolean flag alone means true: "--allow-anonymous".
    if (spec->hint == "BOOL" && !value && (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)) value = "true";
    apply_setting(out.cfg, std::string(spec->key), take_value(), flag);
  }
  validate(out.cfg);
  return out;
}

std::vector<server::listener_options> resolved_listeners(const config& cfg) {
  std::vector<listener_config> listeners = cfg.listeners;
  if (listeners.empty()) listeners.push_back({"127.0.0.1:1883", std::nullopt, {}, {}, {}});
  std::vector<server::listener_options> out;
  for (const auto& l : listeners) out.push_back(to_listener_options(l, cfg));
  return out;
}

server::server_options to_server_options(const config& cfg) {
  server::server_options o;
  o.listeners = resolved_listeners(cfg);
  o.workers = cfg.workers;
  o.broker = cfg.broker;
  o.metrics_listen = cfg.metrics_listen;
  if (!cfg.cluster.listen.empty()) {
    auto opts = cfg.cluster;
    opts.node_name = cfg.broker.node_name;
    opts.tls_reload_interval = cfg.certificate_reload_interval;
    if (!opts.secret_file.empty()) opts.secret = cluster_secret(opts.secret_file);
    o.open_cluster = [opts](ports::cluster_host& host) -> std::unique_ptr<ports::cluster> {
      return cluster::make_grpc_node(opts, host);
    };
  }
  if (cfg.durability != "memory") {
    storage::store_options so;
    so.dir = cfg.data_dir;
    so.mode = cfg.durability == "sync" ? storage::durability::sync : storage::durability::async;
    so.reserve_bytes = static_cast<std::uint64_t>(cfg.disk_reserve_mb) << 20;
    so.log = [](const std::string& line) { server::log::warn("store: ", line); };
    o.open_store = [so](ports::executor& ex, ports::clock& clock) { return storage::open_rocksdb_store(so, ex, clock); };
  }
  return o;
}

std::string version_text() { return std::string("flockd ") + FLOCK_VERSION + "\n"; }

std::string help_text() {
  std::ostringstream out;
  config defaults;
  out << "Usage: flockd [--config FILE] [flags]\n\n"
         "flock MQTT broker (MQTT 3.1, 3.1.1 and 5.0). Flags override the file.\n"
         "Every key of the file is also a flag: key_name -> --key-name VALUE.\n\n"
         "  -c, --config FILE          YAML configuration file\n"
         "      --listen [PROTO://]HOST:PORT[/PATH][,KEY=VALUE...]\n"
         "                             listen for MQTT; PROTO is mqtt (default), mqtts,\n"
         "                             ws or wss; KEYs are the listener keys of the file\n"
         "                             (allow_anonymous, certfile, keyfile, cafile, ...);\n"
         "                             repeatable; replaces the file's listeners\n"
         "                             (default 127.0.0.1:1883)\n"
         "      --set KEY=VALUE        set any key by its file name\n"
         "  -h, --help                 this text\n"
         "  -V, --version              print the version\n\n";
  for (const auto& k : config_keys()) {
    std::string left = "      " + flag_name(k.key) + " " + std::string(k.hint);
    out << left;
    if (left.size() < 35) out << std::string(35 - left.size(), ' ');
    else out << "\n" << std::string(35, ' ');
    out << k.help << " [" << k.get(defaults) << "]\n";
  }
  out << "\nExit codes: 0 clean shutdown, 1 start-up failure (e.g. port in use), 2 bad configuration.\n"
         "See docs/configuration.md.\n";
  return out.str();
}

}  // namespace flock::app
