#include "broker/app/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include <unistd.h>

#include "broker/app/config_keys.hpp"

using namespace flock;
using testing::HasSubstr;

namespace {

app::command_line parse(std::vector<std::string> args) {
  std::vector<const char*> argv{"flockd"};
  for (auto& a : args) argv.push_back(a.c_str());
  return app::parse_command_line(static_cast<int>(argv.size()), argv.data());
}

std::string error_of(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const app::config_error& e) {
    return e.what();
  }
  return "(no error)";
}

// A file in the test's temporary directory, removed at the end of the test.
struct temp_file {
  explicit temp_file(const std::string& text) {
    // The pid: ctest runs each test in its own process, several at a time.
    path = testing::TempDir() + "flock_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) +
           ".yaml";
    std::ofstream(path) << text;
  }
  ~temp_file() { std::remove(path.c_str()); }
  std::string path;
  static inline int counter = 0;
};

// One non-default, valid value per key, as text.
const std::map<std::string, std::string> sample_values = {
    {"data_dir", "/tmp/flock-x"},      {"workers", "3"},
    {"durability", "sync"},            {"disk_reserve_mb", "16"},
    {"node_name", "n1@host"},          {"log_level", "debug"},
    {"allow_anonymous", "true"},       {"password_file", ""},
    {"acl_file", ""},
    {"max_packet_size", "4096"},       {"receive_maximum", "7"},
    {"max_inflight_messages", "9"},    {"max_queued_messages", "11"},
    {"queue_overflow", "drop_newest"}, {"queue_qos0_messages", "true"},
    {"max_outbound_bytes", "65536"},   {"max_keepalive", "120"},
    {"connect_timeout", "5"},          {"topic_alias_maximum", "3"},
    {"max_outgoing_topic_aliases", "4"}, {"max_session_expiry", "3600"},
    {"max_client_id_length", "64"},    {"allow_zero_length_client_id", "false"},
    {"maximum_qos", "1"},              {"retain_available", "false"},
    {"sys_interval", "0"},              {"metrics_listen", "127.0.0.1:9464"},
    // cluster_listen alone needs the TLS files: cluster_keys_* below.
    {"cluster_listen", ""},            {"cluster_advertise", "10.0.0.1:7001"},
    {"cluster_tls", "false"},          {"cluster_certfile", "/etc/flock/cluster/tls.crt"},
    {"cluster_keyfile", "/etc/flock/cluster/tls.key"}, {"cluster_cafile", "/etc/flock/cluster/ca.crt"},
    {"cluster_secret_file", "/etc/flock/cluster/secret"}, {"certificate_reload_interval_ms", "500"},
    {"cluster_forget_after_ms", "60000"},
    // seeds and cluster_dns need cluster_listen: cluster_keys_* below.
    {"seeds", ""},                     {"cluster_dns", ""},
    {"cluster_heartbeat_ms", "200"},   {"cluster_failure_timeout_ms", "900"},
    {"cluster_claim_timeout_ms", "700"}, {"cluster_ack_timeout_ms", "300"},
    {"cluster_join_timeout_ms", "100"}, {"cluster_drain_timeout_ms", "0"}, {"cluster_outbox_messages", "5000"},
    // replication_factor needs a cluster: cluster_mistakes_* below.
    {"replication_factor", ""},        {"cluster_expect", "3"},
};

}  // namespace

TEST(config, defaults_listen_on_loopback_1883_with_anonymous_allowed) {
  auto cl = parse({});
  EXPECT_EQ(cl.what, app::command::run);
  EXPECT_EQ(cl.cfg.data_dir, "./data");
  EXPECT_EQ(cl.cfg.workers, 0u);
  auto listeners = app::resolved_listeners(cl.cfg);
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_EQ(listeners[0].address, "127.0.0.1:1883");
  EXPECT_TRUE(listeners[0].settings.allow_anonymous);
  core::broker_config defaults;
  EXPECT_EQ(cl.cfg.broker.max_packet_size, defaults.max_packet_size);
  EXPECT_EQ(cl.cfg.broker.sys_interval, defaults.sys_interval);
}

TEST(config, every_key_settable_from_file_and_from_flag) {
  app::config defaults;
  for (const auto& key : app::config_keys()) {
    SCOPED_TRACE(std::string(key.key));
    auto sample = sample_values.find(std::string(key.key));
    ASSERT_NE(sample, sample_values.end()) << "add a sample value for this key";
    if (sample->second.empty()) continue;  // password_file, acl_file: must name a readable file
    ASSERT_NE(key.get(defaults), sample->second) << "sample must differ from the default";

    temp_file file(std::string(key.key) + ": " + sample->second + "\n");
    auto from_file = parse({"--config", file.path});
    EXPECT_EQ(key.get(from_file.cfg), sample->second);

    auto from_flag = parse({app::flag_name(key.key), sample->second});
    EXPECT_EQ(key.get(from_flag.cfg), sample->second);

    auto from_set = parse({"--set", std::string(key.key) + "=" + sample->second});
    EXPECT_EQ(key.get(from_set.cfg), sample->second);
  }
}

TEST(config, flags_override_the_file_whatever_their_position) {
  temp_file file(
      "workers: 2\n"
      "max_packet_size: 2048\n"
      "listeners:\n"
      "  - address: 0.0.0.0:1884\n"
      "    allow_anonymous: true\n"
      "  - \"[::1]:1885\"\n");
  auto cl = parse({"--workers=5", "--config", file.path});
  EXPECT_EQ(cl.cfg.workers, 5u);
  EXPECT_EQ(cl.cfg.broker.max_packet_size, 2048u);
  ASSERT_EQ(cl.cfg.listeners.size(), 2u);
  EXPECT_EQ(cl.cfg.listeners[1].address, "[::1]:1885");

  auto replaced = parse({"--config", file.path, "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:1"});
  ASSERT_EQ(replaced.cfg.listeners.size(), 2u);
  EXPECT_EQ(replaced.cfg.listeners[0].address, "127.0.0.1:0");
}

TEST(config, non_loopback_listener_refuses_anonymous_unless_allowed) {
  auto cl = parse({"--listen", "0.0.0.0:1883", "--listen", "[::1]:1883", "--listen",
                   "10.1.2.3:1883,allow_anonymous=true", "--listen", "localhost:1"});
  auto l = app::resolved_listeners(cl.cfg);
  ASSERT_EQ(l.size(), 4u);
  EXPECT_FALSE(l[0].settings.allow_anonymous);
  EXPECT_TRUE(l[1].settings.allow_anonymous);
  EXPECT_TRUE(l[2].settings.allow_anonymous);
  EXPECT_TRUE(l[3].settings.allow_anonymous);

  // The global key is the default for listeners that do not say.
  auto global = parse({"--allow-anonymous", "--listen", "0.0.0.0:1883", "--listen",
                       "0.0.0.0:1884,allow_anonymous=false"});
  auto g = app::resolved_listeners(global.cfg);
  EXPECT_TRUE(g[0].settings.allow_anonymous);
  EXPECT_FALSE(g[1].settings.allow_anonymous);

  auto closed_loopback = parse({"--allow-anonymous", "false"});
  EXPECT_FALSE(app::resolved_listeners(closed_loopback.cfg)[0].settings.allow_anonymous);
}

TEST(config, unknown_key_names_file_and_line) {
  temp_file file("workers: 1\n\nfoo: 3\n");
  EXPECT_EQ(error_of({"--config", file.path}), "config: " + file.path + ":3: unknown key 'foo'");
}

TEST(config, wrong_type_is_an_error) {
  temp_file list("workers: [1, 2]\n");
  EXPECT_THAT(error_of({"--config", list.path}), HasSubstr(":1: workers: expected a single value"));
  temp_file text("max_packet_size: big\n");
  EXPECT_THAT(error_of({"--config", text.path}), HasSubstr(":1: max_packet_size: expected an integer"));
  temp_file flag("retain_available: maybe\n");
  EXPECT_THAT(error_of({"--config", flag.path}), HasSubstr("retain_available: expected true or false"));
  temp_file listeners("listeners: 0.0.0.0:1883\n");
  EXPECT_THAT(error_of({"--config", listeners.path}), HasSubstr("listeners: expected a list"));
  temp_file not_map("- a\n- b\n");
  EXPECT_THAT(error_of({"--config", not_map.path}), HasSubstr("expected a map"));
}

TEST(config, out_of_range_values_are_errors) {
  EXPECT_THAT(error_of({"--maximum-qos", "3"}), HasSubstr("value 3 out of range (0..2)"));
  EXPECT_THAT(error_of({"--receive-maximum", "0"}), HasSubstr("out of range"));
  EXPECT_THAT(error_of({"--max-session-expiry", "4294967296"}), HasSubstr("out of range"));
  EXPECT_THAT(error_of({"--workers", "99999999999999999999999"}), HasSubstr("out of range"));
  EXPECT_THAT(error_of({"--workers", "-1"}), HasSubstr("expected an integer"));
  EXPECT_THAT(error_of({"--queue-overflow", "drop_all"}), HasSubstr("expected drop_oldest or drop_newest"));
  EXPECT_THAT(error_of({"--log-level", "loud"}), HasSubstr("expected trace, debug"));
}

TEST(config, unreadable_file_and_syntax_errors) {
  EXPECT_EQ(error_of({"--config", "/nonexistent/flock.yaml"}), "config: /nonexistent/flock.yaml: cannot read file");
  temp_file bad("workers: [1\n");
  EXPECT_THAT(error_of({"--config", bad.path}), HasSubstr("config: " + bad.path + ":"));
  EXPECT_THAT(error_of({"--password-file", "/nonexistent/passwd"}), HasSubstr("password_file: cannot read"));
}

TEST(config, acl_file_is_parsed_at_start_up_and_a_bad_line_is_a_config_error) {
  EXPECT_EQ(error_of({"--acl-file", "/nonexistent/acl"}), "config: acl_file: /nonexistent/acl: cannot read ACL file");
  temp_file bad("user alice\ntopic readonly alice/#\n");
  EXPECT_EQ(error_of({"--acl-file", bad.path}),
            "config: acl_file: " + bad.path + ":2: unknown access 'readonly' (expected read, write, readwrite or deny)");
  temp_file good("user alice\ntopic alice/#\n");
  EXPECT_EQ(parse({"--acl-file", good.path}).cfg.broker.acl_file, good.path);
}

TEST(config, cluster_keys_from_a_nested_map_a_dotted_key_and_flags) {
  temp_file nested(
      "node_name: a\n"
      "cluster:\n"
      "  listen: 0.0.0.0:7000\n"
      "  advertise: flock-0.flock:7000\n"
      "  seeds: [flock-1.flock:7000, 'flock-2.flock:7000']\n"
      "  failure_timeout_ms: 3000\n"
      "  tls: false\n");
  auto cl = parse({"--config", nested.path});
  EXPECT_EQ(cl.cfg.cluster.listen, "0.0.0.0:7000");
  EXPECT_EQ(cl.cfg.cluster.advertise, "flock-0.flock:7000");
  EXPECT_EQ(cl.cfg.cluster.seeds, (std::vector<std::string>{"flock-1.flock:7000", "flock-2.flock:7000"}));
  EXPECT_EQ(cl.cfg.cluster.failure_timeout, std::chrono::milliseconds(3000));
  EXPECT_FALSE(cl.cfg.cluster.tls);
  temp_file dotted("cluster_listen: 127.0.0.1:7000\ncluster.dns: flock-headless.ns.svc:7000\ncluster.tls: off\n");
  EXPECT_EQ(parse({"--config", dotted.path}).cfg.cluster.dns, "flock-headless.ns.svc:7000");
  auto flags = parse({"--cluster-listen", "127.0.0.1:7000", "--seeds", "127.0.0.1:7001, 127.0.0.1:7002",
                      "--cluster-tls", "false"});
  EXPECT_EQ(flags.cfg.cluster.seeds, (std::vector<std::string>{"127.0.0.1:7001", "127.0.0.1:7002"}));
  EXPECT_TRUE(app::to_server_options(flags.cfg).open_cluster);
  EXPECT_FALSE(app::to_server_options(parse({}).cfg).open_cluster);
}

TEST(config, cluster_mistakes_are_config_errors) {
  EXPECT_THAT(error_of({"--seeds", "127.0.0.1:7001"}), HasSubstr("need cluster_listen"));
  EXPECT_THAT(error_of({"--cluster-listen", "127.0.0.1:7000", "--seeds", "nohost"}), HasSubstr("expected HOST:PORT"));
  EXPECT_THAT(error_of({"--cluster-listen", "7000"}), HasSubstr("cluster_listen"));
  EXPECT_THAT(error_of({"--cluster-listen", "127.0.0.1:7000", "--cluster-heartbeat-ms", "1000",
                        "--cluster-failure-timeout-ms", "1500"}),
              HasSubstr("at least twice"));
  // The cluster port is authenticated unless plaintext is asked for.
  EXPECT_THAT(error_of({"--cluster-listen", "127.0.0.1:7000"}),
              HasSubstr("cluster_tls: a cluster node needs cluster_certfile, cluster_keyfile and cluster_cafile"));
  EXPECT_THAT(error_of({"--cluster-listen", "127.0.0.1:7000", "--cluster-tls", "false", "--cluster-cafile", "/x"}),
              HasSubstr("cluster_tls: is false, but"));
  EXPECT_THAT(error_of({"--cluster-listen", "127.0.0.1:7000", "--cluster-certfile", "/nonexistent/tls.crt",
                        "--cluster-keyfile", "/nonexistent/tls.key", "--cluster-cafile", "/nonexistent/ca.crt"}),
              HasSubstr("certfile '/nonexistent/tls.crt': cannot read file"));
  EXPECT_THAT(error_of({"--cluster-listen", "127.0.0.1:7000", "--cluster-tls", "false", "--cluster-secret-file",
                        "/nonexistent/secret"}),
              HasSubstr("cluster_secret_file: cannot read '/nonexistent/secret'"));
  temp_file short_secret("abc\n");
  EXPECT_THAT(error_of({"--cluster-listen", "127.0.0.1:7000", "--cluster-tls", "false", "--cluster-secret-file",
                        short_secret.path}),
              HasSubstr("at least 16 characters"));
  EXPECT_THAT(error_of({"--replication-factor", "2"}), HasSubstr("replication_factor: needs a cluster"));
  EXPECT_THAT(error_of({"--cluster-listen", "127.0.0.1:7000", "--cluster-tls", "false", "--replication-factor", "2",
                        "--durability", "memory"}),
              HasSubstr("replication_factor: needs a data directory"));
  EXPECT_THAT(error_of({"--replication-factor", "6"}), HasSubstr("replication_factor"));
  temp_file unknown("cluster:\n  lissen: 127.0.0.1:7000\n");
  EXPECT_THAT(error_of({"--config", unknown.path}), HasSubstr(":2: cluster: unknown key 'lissen'"));
}

TEST(config, bad_flags_and_listeners) {
  EXPECT_EQ(error_of({"--frobnicate", "1"}), "config: --frobnicate: unknown flag (see --help)");
  EXPECT_EQ(error_of({"--workers"}), "config: --workers: needs a value");
  EXPECT_THAT(error_of({"stray"}), HasSubstr("unexpected argument"));
  EXPECT_THAT(error_of({"--set", "foo=1"}), HasSubstr("unknown key 'foo'"));
  EXPECT_THAT(error_of({"--set", "novalue"}), HasSubstr("expected KEY=VALUE"));
  EXPECT_THAT(error_of({"--listen", "1883"}), HasSubstr("expected HOST:PORT"));
  EXPECT_THAT(error_of({"--listen", "::1:1883"}), HasSubstr("need brackets"));
  EXPECT_THAT(error_of({"--listen", "127.0.0.1:70000"}), HasSubstr("out of range"));
  EXPECT_THAT(error_of({"--listen", "127.0.0.1:1,tls=true"}), HasSubstr("unknown listener option"));
  temp_file unknown_listener_key("listeners:\n  - address: 127.0.0.1:1\n    tls: true\n");
  EXPECT_EQ(error_of({"--config", unknown_listener_key.path}),
            "config: " + unknown_listener_key.path + ":3: unknown listener key 'tls'");
}

TEST(config, help_documents_every_flag) {
  EXPECT_EQ(parse({"--workers", "2", "--help"}).what, app::command::help);
  EXPECT_EQ(parse({"--version"}).what, app::command::version);
  auto help = app::help_text();
  for (const auto& key : app::config_keys()) EXPECT_THAT(help, HasSubstr(app::flag_name(key.key) + " "));
  EXPECT_THAT(help, HasSubstr("--listen"));
  EXPECT_THAT(help, HasSubstr("--config"));
  EXPECT_THAT(help, HasSubstr("--set"));
}
