// decode(encode(p)) == p and encoded_size(p) == encode(p).size() for every
// packet type in every protocol version.
#include <gtest/gtest.h>

#include <set>

#include "broker/codec/codec.hpp"
#include "tests/unit/codec/codec_samples.hpp"
#include "tests/unit/codec/codec_test_util.hpp"

namespace flock::codec::test {
namespace {

class roundtrip : public ::testing::TestWithParam<protocol_version> {};

TEST_P(roundtrip, every_sample_packet_survives_encode_then_decode) {
  const protocol_version v = GetParam();
  for (const packet& p : sample_packets(v)) {
    SCOPED_TRACE(::testing::Message() << "variant index " << p.index());
    bytes b = encode_bytes(p, v);
    EXPECT_EQ(encoded_size(p, v), b.size());
    auto f = peek_frame(b, 1u << 30);
    ASSERT_EQ(f.state, frame::status::complete);
    EXPECT_EQ(f.size, b.size());
    auto r = decode(b, v);
    ASSERT_TRUE(std::holds_alternative<packet>(r)) << "reason 0x" << std::hex << int(std::get<codec_error>(r).reason)
                                                   << " " << std::get<codec_error>(r).message;
    EXPECT_EQ(std::get<packet>(r), p);
  }
}

TEST_P(roundtrip, samples_cover_every_packet_type) {
  std::set<std::uint8_t> types;
  for (const packet& p : sample_packets(GetParam())) types.insert(encode_bytes(p, GetParam())[0] >> 4);
  EXPECT_EQ(types.size(), GetParam() == protocol_version::v5 ? 15u : 14u);
}

INSTANTIATE_TEST_SUITE_P(all_versions, roundtrip,
                         ::testing::Values(protocol_version::v31, protocol_version::v311, protocol_version::v5),
                         [](const auto& info) {
                           switch (info.param) {
                             case protocol_version::v31: return std::string("v31");
                             case protocol_version::v311: return std::string("v311");
                             default: return std::string("v5");
                           }
                         });

TEST(roundtrip, connect_decodes_in_its_own_version_whatever_the_caller_expects) {
  for (auto own : {v31, v311, v5}) {
    connect c;
    c.version = own;
    c.client_id = "x";
    bytes b = encode_bytes(c, v311);  // CONNECT is encoded in its own version
    for (auto expected : {v31, v311, v5}) EXPECT_EQ(decode_as<connect>(b, expected), c);
  }
}

TEST(roundtrip, encode_publish_matches_encode_and_appends) {
  publish p;
  p.qos = 1;
  p.packet_id = 3;
  p.topic = "t/1";
  p.payload = std::string(1000, 'q');
  p.props.message_expiry_interval = 5;
  for (auto v : {v31, v311, v5}) {
    std::string out = "prefix";
    encode_publish(p, v, out);
    ASSERT_GT(out.size(), 6u);
    EXPECT_EQ(out.substr(0, 6), "prefix");
    EXPECT_EQ(to_bytes(out.substr(6)), encode_bytes(p, v));
    EXPECT_EQ(out.size() - 6, encoded_size(p, v));
  }
}

}  // namespace
}  // namespace flock::codec::test
