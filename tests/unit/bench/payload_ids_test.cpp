// flock-bench's payload header and packet identifier pool
// (tools/flock-bench/payload.hpp, packet_ids.hpp).
#include <gtest/gtest.h>

#include <string>

#include "tools/flock-bench/packet_ids.hpp"
#include "tools/flock-bench/payload.hpp"

namespace flock::bench {
namespace {

TEST(bench_payload, header_round_trips) {
  auto p = make_payload(64);
  ASSERT_EQ(p.size(), 64u);
  payload_header h{0xDEADBEEF, 7, 3, 0x0123456789ABCDEFull, -42};
  write_payload_header(p, h);
  auto back = read_payload_header(p);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, h);
  EXPECT_EQ(p.substr(0, 4), "FLB1");
  EXPECT_EQ(p[32], 'a' + 32 % 26);  // filler after the header is untouched
}

TEST(bench_payload, is_little_endian_on_the_wire) {
  auto p = make_payload(32);
  write_payload_header(p, payload_header{1, 2, 3, 4, 5});
  EXPECT_EQ(p[4], 1);
  EXPECT_EQ(p[8], 2);
  EXPECT_EQ(p[12], 3);
  EXPECT_EQ(p[16], 4);
  EXPECT_EQ(p[24], 5);
}

TEST(bench_payload, foreign_payloads_are_refused) {
  EXPECT_FALSE(read_payload_header("hello"));
  EXPECT_FALSE(read_payload_header(std::string(32, 'x')));
  auto p = make_payload(40);
  write_payload_header(p, payload_header{});
  EXPECT_FALSE(read_payload_header(std::string_view(p).substr(0, 31)));
  EXPECT_EQ(make_payload(5).size(), payload_header_size);  // never shorter than the header
}

TEST(bench_packet_ids, hands_out_increasing_ids_and_skips_those_in_use) {
  packet_id_pool ids;
  EXPECT_EQ(ids.acquire(), 1);
  EXPECT_EQ(ids.acquire(), 2);
  EXPECT_EQ(ids.acquire(), 3);
  EXPECT_TRUE(ids.release(2));
  EXPECT_FALSE(ids.release(2));  // already free: an ack for an id we do not have
  EXPECT_FALSE(ids.release(0));
  EXPECT_EQ(ids.acquire(), 4);  // not 2: recently freed ids are reused last
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_TRUE(ids.in_use(1));
  EXPECT_FALSE(ids.in_use(2));
}

TEST(bench_packet_ids, wraps_after_65535_and_never_uses_zero) {
  packet_id_pool ids;
  for (int i = 1; i <= 65535; ++i) ASSERT_EQ(ids.acquire(), i);
  EXPECT_EQ(ids.acquire(), std::nullopt);  // all in use
  EXPECT_TRUE(ids.release(10));
  EXPECT_TRUE(ids.release(65535));
  EXPECT_EQ(ids.acquire(), 10);  // wraps past 65535 -> 1.., first free is 10
  EXPECT_EQ(ids.acquire(), 65535);
  EXPECT_EQ(ids.acquire(), std::nullopt);
  ids.clear();
  EXPECT_EQ(ids.size(), 0u);
  EXPECT_FALSE(ids.in_use(10));
}

}  // namespace
}  // namespace flock::bench
