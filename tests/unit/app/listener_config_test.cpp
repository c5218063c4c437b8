// Listener protocols (mqtt, mqtts, ws, wss) and their TLS/WebSocket keys, from
// YAML and from --listen. Certificate files are only opened by validate(), so
// most cases go through apply_yaml + to_listener_options without any files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "broker/app/config.hpp"

using namespace flock;
using server::listener_protocol;
using testing::HasSubstr;

namespace {

app::config from_yaml(const std::string& text) {
  app::config cfg;
  app::apply_yaml(cfg, text, "flock.yaml");
  return cfg;
}

server::listener_options resolve(const std::string& yaml_entry) {
  auto cfg = from_yaml("listeners:\n" + yaml_entry);
  EXPECT_EQ(cfg.listeners.size(), 1u);
  return app::to_listener_options(cfg.listeners.at(0), cfg);
}

std::string resolve_error(const std::string& yaml_entry) {
  try {
    resolve(yaml_entry);
  } catch (const app::config_error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string flag_error(const std::string& listen) {
  const char* argv[] = {"flockd", "--listen", listen.c_str()};
  try {
    app::parse_command_line(3, argv);
  } catch (const app::config_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(listen_url, scheme_host_port_and_path) {
  std::string error;
  auto plain = server::parse_listen_url("127.0.0.1:1883", error);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->protocol);
  EXPECT_EQ(plain->address, "127.0.0.1:1883");
  EXPECT_FALSE(plain->path);

  auto wss = server::parse_listen_url("wss://[::1]:8084/mqtt/v1", error);
  ASSERT_TRUE(wss);
  EXPECT_EQ(wss->protocol, listener_protocol::wss);
  EXPECT_EQ(wss->address, "[::1]:8084");
  EXPECT_EQ(wss->path, "/mqtt/v1");

  auto mqtts = server::parse_listen_url("mqtts://0.0.0.0:8883", error);
  ASSERT_TRUE(mqtts);
  EXPECT_EQ(mqtts->protocol, listener_protocol::mqtts);

  EXPECT_FALSE(server::parse_listen_url("http://0.0.0.0:80", error));
  EXPECT_THAT(error, HasSubstr("unknown protocol 'http'"));
  EXPECT_FALSE(server::parse_listen_url("mqtts://0.0.0.0:8883/mqtt", error));
  EXPECT_THAT(error, HasSubstr("path is only allowed for ws"));
  EXPECT_FALSE(server::parse_listen_url("ws://:8080", error));
}

TEST(listener_config, plain_listener_defaults_to_mqtt) {
  auto o = resolve("  - 127.0.0.1:1883\n");
  EXPECT_EQ(o.protocol, listener_protocol::mqtt);
  EXPECT_EQ(o.address, "127.0.0.1:1883");
  EXPECT_FALSE(o.tls.any_set());
}

TEST(listener_config, tls_keys_from_yaml) {
  auto o = resolve(
      "  - address: 0.0.0.0:8883\n"
      "    protocol: mqtts\n"
      "    certfile: /etc/flock/server.pem\n"
      "    keyfile: /etc/flock/server.key\n"
      "    cafile: /etc/flock/ca.pem\n"
      "    require_certificate: true\n"
      "    use_identity_as_username: true\n"
      "    tls_version: tlsv1.3\n"
      "    ciphers: ECDHE-ECDSA-AES256-GCM-SHA384\n"
      "    allow_anonymous: true\n");
  EXPECT_EQ(o.protocol, listener_protocol::mqtts);
  EXPECT_EQ(o.address, "0.0.0.0:8883");
  EXPECT_EQ(o.settings.name, "0.0.0.0:8883");
  EXPECT_EQ(o.tls.certfile, "/etc/flock/server.pem");
  EXPECT_EQ(o.tls.keyfile, "/etc/flock/server.key");
  EXPECT_EQ(o.tls.cafile, "/etc/flock/ca.pem");
  EXPECT_TRUE(o.tls.require_certificate);
  EXPECT_TRUE(o.tls.use_identity_as_username);
  EXPECT_EQ(o.tls.tls_version, "tlsv1.3");
  EXPECT_EQ(o.tls.ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
  EXPECT_TRUE(o.settings.allow_anonymous);
}

TEST(listener_config, websocket_path_from_url_or_key_default_mqtt) {
  auto from_url = resolve("  - ws://127.0.0.1:8080/ws/mqtt\n");
  EXPECT_EQ(from_url.protocol, listener_protocol::ws);
  EXPECT_EQ(from_url.address, "127.0.0.1:8080");
  EXPECT_EQ(from_url.ws_path, "/ws/mqtt");
  EXPECT_TRUE(from_url.settings.allow_anonymous);  // loopback rule still applies

  auto from_key = resolve("  - address: 0.0.0.0:8084\n    protocol: wss\n    path: /m\n"
                          "    certfile: s.pem\n    keyfile: s.key\n");
  EXPECT_EQ(from_key.protocol, listener_protocol::wss);
  EXPECT_EQ(from_key.ws_path, "/m");
  EXPECT_FALSE(from_key.settings.allow_anonymous);

  EXPECT_EQ(resolve("  - ws://[::1]:8080\n").ws_path, "/mqtt");
}

TEST(listener_config, flag_takes_url_and_listener_keys) {
  const char* argv[] = {"flockd", "--listen", "ws://127.0.0.1:8080/mqtt", "--listen",
                        "10.0.0.1:1883,allow_anonymous=true"};
  auto cl = app::parse_command_line(5, argv);
  auto l = app::resolved_listeners(cl.cfg);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].protocol, listener_protocol::ws);
  EXPECT_EQ(l[0].ws_path, "/mqtt");
  EXPECT_EQ(l[1].protocol, listener_protocol::mqtt);
  EXPECT_TRUE(l[1].settings.allow_anonymous);
  // TLS options reach the listener: validate() then tries to load the file.
  EXPECT_THAT(flag_error("mqtts://127.0.0.1:0,certfile=/nonexistent/s.pem,keyfile=/nonexistent/s.key"),
              HasSubstr("certfile '/nonexistent/s.pem': cannot read file"));
  EXPECT_THAT(flag_error("mqtts://127.0.0.1:0,certfile=a,keyfile=b,bogus=1"),
              HasSubstr("unknown listener option 'bogus'"));
  EXPECT_THAT(flag_error("mqtts://127.0.0.1:0,require_certificate=maybe"),
              HasSubstr("require_certificate: expected true or false"));
}

TEST(listener_config, inconsistent_listeners_are_errors) {
  EXPECT_THAT(resolve_error("  - address: 127.0.0.1:1\n    protocol: tcp\n"),
              HasSubstr("protocol: expected mqtt, mqtts, ws or wss, got 'tcp'"));
  EXPECT_THAT(resolve_error("  - address: ws://127.0.0.1:1\n    protocol: wss\n"), HasSubstr("contradicts"));
  EXPECT_THAT(resolve_error("  - address: 127.0.0.1:1\n    path: /mqtt\n"),
              HasSubstr("path: only for ws and wss"));
  EXPECT_THAT(resolve_error("  - address: 127.0.0.1:1\n    protocol: ws\n    path: mqtt\n"),
              HasSubstr("must start with '/'"));
  EXPECT_THAT(resolve_error("  - address: 127.0.0.1:1\n    certfile: s.pem\n"),
              HasSubstr("need protocol mqtts or wss"));
  EXPECT_THAT(resolve_error("  - address: mqtts://127.0.0.1:1\n    keyfile: s.key\n"),
              HasSubstr("certfile is required"));
  EXPECT_THAT(resolve_error("  - address: mqtts://127.0.0.1:1\n    certfile: s.pem\n"),
              HasSubstr("keyfile is required"));
  EXPECT_THAT(resolve_error("  - address: mqtts://127.0.0.1:1\n    certfile: s.pem\n    keyfile: s.key\n"
                            "    require_certificate: true\n"),
              HasSubstr("require_certificate needs cafile"));
  EXPECT_THAT(resolve_error("  - address: mqtts://127.0.0.1:1\n    certfile: s.pem\n    keyfile: s.key\n"
                            "    use_identity_as_username: true\n"),
              HasSubstr("use_identity_as_username needs require_certificate"));
  EXPECT_THAT(resolve_error("  - address: mqtts://127.0.0.1:1\n    certfile: s.pem\n    keyfile: s.key\n"
                            "    tls_version: tlsv1.0\n"),
              HasSubstr("tls_version: expected tlsv1.2 or tlsv1.3"));
  auto cfg = app::config{};
  EXPECT_THROW(app::apply_yaml(cfg, "listeners:\n  - address: 127.0.0.1:1\n    require_certificate: perhaps\n", "f"),
               app::config_error);
}
