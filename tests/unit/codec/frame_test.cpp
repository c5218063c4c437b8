#include <gtest/gtest.h>

#include "broker/codec/codec.hpp"
#include "tests/unit/codec/codec_test_util.hpp"

namespace flock::codec::test {
namespace {

constexpr std::uint32_t no_limit = 268'435'460;

TEST(peek_frame, empty_buffer_is_incomplete) {
  EXPECT_EQ(peek_frame({}, no_limit).state, frame::status::incomplete);
}

TEST(peek_frame, header_byte_alone_is_incomplete) {
  bytes b{0x30};
  EXPECT_EQ(peek_frame(b, no_limit).state, frame::status::incomplete);
}

TEST(peek_frame, pingreq_is_complete_with_size_two) {
  bytes b{0xC0, 0x00, 0xAA /* start of the next packet */};
  auto f = peek_frame(b, no_limit);
  EXPECT_EQ(f.state, frame::status::complete);
  EXPECT_EQ(f.size, 2u);
}

TEST(peek_frame, incomplete_until_remaining_length_varint_ends) {
  // Remaining length 200 = 0xC8 0x01: the first byte has the continuation bit.
  bytes b{0x30, 0xC8};
  EXPECT_EQ(peek_frame(b, no_limit).state, frame::status::incomplete);
  b.push_back(0x01);
  EXPECT_EQ(peek_frame(b, no_limit).state, frame::status::incomplete);  // body missing
  b.resize(3 + 200);
  auto f = peek_frame(b, no_limit);
  EXPECT_EQ(f.state, frame::status::complete);
  EXPECT_EQ(f.size, 203u);
}

TEST(peek_frame, body_one_byte_short_is_incomplete) {
  bytes b{0x30, 0x05, 0x00, 0x01, 'a', 'x'};  // needs 7 bytes
  EXPECT_EQ(peek_frame(b, no_limit).state, frame::status::incomplete);
}

TEST(peek_frame, four_byte_remaining_length_is_accepted) {
  // 268,435,455 = FF FF FF 7F, the largest encodable length.
  bytes b{0x30, 0xFF, 0xFF, 0xFF, 0x7F};
  auto f = peek_frame(b, no_limit);
  EXPECT_EQ(f.state, frame::status::incomplete);
}

TEST(peek_frame, five_byte_remaining_length_is_malformed) {
  bytes b{0x30, 0xFF, 0xFF, 0xFF, 0xFF};
  auto f = peek_frame(b, no_limit);
  EXPECT_EQ(f.state, frame::status::error);
  EXPECT_EQ(f.error.reason, 0x81);
}

TEST(peek_frame, oversized_packet_rejected_before_body_arrives) {
  bytes b{0x30, 0x80, 0x08};  // remaining length 1024, no body yet
  auto f = peek_frame(b, 1000);
  EXPECT_EQ(f.state, frame::status::error);
  EXPECT_EQ(f.error.reason, 0x95);
}

TEST(peek_frame, packet_exactly_at_maximum_size_is_complete) {
  bytes b{0x30, 0x03, 0x00, 0x01, 'a'};
  EXPECT_EQ(peek_frame(b, 5).state, frame::status::complete);
  EXPECT_EQ(peek_frame(b, 4).state, frame::status::error);
}

TEST(peek_frame, non_minimal_remaining_length_is_tolerated) {
  bytes b{0xC0, 0x80, 0x00};  // 0 encoded in two bytes
  auto f = peek_frame(b, no_limit);
  EXPECT_EQ(f.state, frame::status::complete);
  EXPECT_EQ(f.size, 3u);
}

}  // namespace
}  // namespace flock::codec::test
