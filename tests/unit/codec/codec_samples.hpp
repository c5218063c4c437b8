#pragma once
// Valid packets of every type for one protocol version, holding only fields
// that version can carry, so decode(encode(p)) must give p back exactly.
// Shared by the round-trip and the mutation tests.
#include <string>
#include <vector>

#include "broker/codec/packet.hpp"

namespace flock::codec::test {

inline properties every_publish_property() {
  properties p;
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 3600;
  p.content_type = "application/json";
  p.response_topic = "replies/1";
  p.correlation_data = std::string("\x00\x01\xFE", 3);
  p.subscription_identifiers = {1, 127, 128, 16384, 268'435'455};
  p.topic_alias = 12;
  p.user_properties = {{"z", "1"}, {"a", ""}, {"z", "2"}};
  return p;
}

inline properties every_connack_property() {
  properties p;
  p.session_expiry_interval = 0xFFFFFFFF;
  p.assigned_client_identifier = "auto-7f";
  p.server_keep_alive = 120;
  p.authentication_method = "SCRAM-SHA-1";
  p.authentication_data = std::string("\x01\x00", 2);
  p.response_information = "resp/";
  p.server_reference = "other:1883";
  p.reason_string = "ok";
  p.receive_maximum = 65535;
  p.topic_alias_maximum = 10;
  p.maximum_qos = 1;
  p.retain_available = 0;
  p.user_properties = {{"region", "eu"}};
  p.maximum_packet_size = 1 << 20;
  p.wildcard_subscription_available = 1;
  p.subscription_identifier_available = 0;
  p.shared_subscription_available = 1;
  return p;
}

inline std::vector<packet> sample_packets(protocol_version v) {
  const bool v5 = v == protocol_version::v5;
  std::vector<packet> out;

  connect c;
  c.version = v;
  c.clean_start = false;
  c.keep_alive = 30;
  c.client_id = "sensor-\xC3\xA9";  // "é": multi-byte UTF-8
  c.will = will_message{"status/sensor", std::string("off\0line", 8), 2, true, {}};
  c.username = "user";
  c.password = std::string("\xFF\x00pw", 4);
  if (v5) {
    c.props.session_expiry_interval = 600;
    c.props.receive_maximum = 20;
    c.props.maximum_packet_size = 65536;
    c.props.topic_alias_maximum = 5;
    c.props.request_response_information = 1;
    c.props.request_problem_information = 0;
    c.props.authentication_method = "token";
    c.props.authentication_data = "abc";
    c.props.user_properties = {{"app", "x"}};
    c.will->props.will_delay_interval = 10;
    c.will->props.payload_format_indicator = 0;
    c.will->props.message_expiry_interval = 99;
    c.will->props.content_type = "text/plain";
    c.will->props.response_topic = "r";
    c.will->props.correlation_data = "id";
    c.will->props.user_properties = {{"w", "1"}};
  }
  out.push_back(c);

  connect minimal;
  minimal.version = v;
  out.push_back(minimal);

  connect with_user_only;
  with_user_only.version = v;
  with_user_only.client_id = "u";
  with_user_only.username = "";
  out.push_back(with_user_only);

  connack ca;
  ca.session_present = v != protocol_version::v31;
  if (v5) ca.props = every_connack_property();
  out.push_back(ca);
  connack refused;
  refused.reason_code = v5 ? 0x87 : 0x05;
  out.push_back(refused);

  publish q0;
  q0.topic = "a/b";
  q0.payload = "hello";
  out.push_back(q0);

  publish q1;
  q1.qos = 1;
  q1.retain = true;
  q1.packet_id = 1;
  q1.topic = "sensors/+temp";  // '+' inside a level: a decoder does not judge topic names
  q1.payload = std::string(300, 'x');  // two-byte remaining length
  out.push_back(q1);

  publish q2;
  q2.qos = 2;
  q2.dup = true;
  q2.packet_id = 65535;
  q2.topic = v5 ? "" : "t";
  q2.payload = std::string("\0\xFF", 2);
  if (v5) q2.props = every_publish_property();
  out.push_back(q2);

  for (auto type : {packet_type::puback, packet_type::pubrec, packet_type::pubrel, packet_type::pubcomp}) {
    out.push_back(pub_response{type, 7, 0, {}});
    if (v5) {
      bool pub = type == packet_type::puback || type == packet_type::pubrec;
      out.push_back(pub_response{type, 8, std::uint8_t(pub ? 0x10 : 0x92), {}});
      properties rp;
      rp.reason_string = "why";
      rp.user_properties = {{"k", "v"}};
      out.push_back(pub_response{type, 9, std::uint8_t(pub ? 0x97 : 0x00), rp});
    }
  }

  subscribe s;
  s.packet_id = 10;
  s.topics.push_back({"a/+/c", 0});
  s.topics.push_back({"#", 2});
  s.topics.push_back({"$share/g/x", 1});
  if (v5) {
    s.topics[0].no_local = true;
    s.topics[0].retain_as_published = true;
    s.topics[1].retain_handling = 2;
    s.topics[2].retain_handling = 1;
    s.props.subscription_identifiers = {42};
    s.props.user_properties = {{"u", "p"}};
  }
  out.push_back(s);

  suback sa;
  sa.packet_id = 10;
  sa.reason_codes = v5 ? std::vector<std::uint8_t>{0x00, 0x01, 0x02, 0x80, 0x8F, 0xA2}
                       : std::vector<std::uint8_t>{0x00, 0x01, 0x02, 0x80};
  if (v5) sa.props.reason_string = "partly";
  out.push_back(sa);

  unsubscribe us;
  us.packet_id = 11;
  us.filters = {"a/+/c", "#"};
  if (v5) us.props.user_properties = {{"x", "y"}};
  out.push_back(us);

  unsuback ua;
  ua.packet_id = 11;
  if (v5) {
    ua.reason_codes = {0x00, 0x11};
    ua.props.reason_string = "r";
  }
  out.push_back(ua);

  out.push_back(pingreq{});
  out.push_back(pingresp{});
  out.push_back(disconnect{});
  if (v5) {
    out.push_back(disconnect{0x04, {}});
    disconnect d;
    d.reason_code = 0x9C;
    d.props.session_expiry_interval = 0;
    d.props.reason_string = "move";
    d.props.server_reference = "b:1883";
    out.push_back(d);
    out.push_back(auth{});
    auth a;
    a.reason_code = 0x18;
    a.props.authentication_method = "SCRAM";
    a.props.authentication_data = std::string("\x00\x01", 2);
    out.push_back(a);
    out.push_back(auth{0x19, {}});
  }
  return out;
}

}  // namespace flock::codec::test
