#include "broker/replication/partition.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace flock::replication;

TEST(partition, the_hash_is_fnv1a_64_so_every_node_and_release_agrees) {
  // The published FNV-1a 64 test vectors: a change here moves every
  // session of every existing cluster to another partition.
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
  EXPECT_EQ(partition_of("a", 256), 0x8c);
  EXPECT_EQ(partition_of("foobar", 256), 0xe8);
  EXPECT_EQ(partition_of("a", 1), 0);
}

TEST(partition, client_ids_spread_evenly_over_the_partitions) {
  std::vector<int> count(default_partitions, 0);
  const int ids = 256 * 400;
  for (int i = 0; i < ids; ++i) ++count[partition_of("sensor-" + std::to_string(i), default_partitions)];
  for (std::size_t p = 0; p < count.size(); ++p) {
    EXPECT_GT(count[p], 400 * 0.8) << "partition " << p;
    EXPECT_LT(count[p], 400 * 1.2) << "partition " << p;
  }
}

TEST(store_id, prints_as_32_hex_digits) {
  EXPECT_EQ((store_id{0x0123456789abcdefull, 0xfedcba9876543210ull}).hex(), "0123456789abcdeffedcba9876543210");
  EXPECT_EQ(store_id{}.hex(), std::string(32, '0'));
  EXPECT_TRUE(store_id{}.empty());
  EXPECT_FALSE((store_id{0, 1}).empty());
}
