#include "broker/replication/placement.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

using namespace flock::replication;

namespace {

std::vector<placement_candidate> stores(std::size_t n, std::uint64_t seed, std::vector<std::string> zones = {}) {
  std::mt19937_64 rng(seed);
  std::vector<placement_candidate> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back({{rng(), rng()}, zones.empty() ? "" : zones[i % zones.size()]});
  return out;
}

std::set<store_id> as_set(const std::vector<store_id>& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST(placement, distinct_copies_capped_by_the_stores_and_independent_of_their_order) {
  auto s = stores(3, 1);
  for (partition_id p = 0; p < 256; ++p) {
    auto r = place(p, s, 2);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_NE(r[0], r[1]);
    EXPECT_EQ(place(p, s, 5).size(), 3u);  // factor capped by the stores there are
    auto reversed = s;
    std::reverse(reversed.begin(), reversed.end());
    EXPECT_EQ(place(p, reversed, 2), r);
    EXPECT_EQ(place(p, reversed, 3)[0], r[0]);  // the preferred owner does not depend on the factor
  }
  EXPECT_TRUE(place(0, {}, 2).empty());
  auto twice = s;
  twice.push_back(s[0]);
  EXPECT_EQ(place(7, twice, 3).size(), 3u);  // a store listed twice still holds one copy
}

TEST(placement, owners_and_copies_are_balanced_within_fifteen_percent) {
  // Over many partitions, so the bound checks the hash, not the luck of 256.
  const std::uint32_t partitions = 4096;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    for (std::size_t n : {3u, 5u}) {
      auto s = stores(n, seed);
      std::map<store_id, int> owned, copies;
      for (std::uint32_t p = 0; p < partitions; ++p) {
        auto r = place(static_cast<partition_id>(p), s, 2);
        ++owned[r[0]];
        for (const auto& id : r) ++copies[id];
      }
      const double owners_each = double(partitions) / n, copies_each = 2.0 * partitions / n;
      for (const auto& c : s) {
        EXPECT_NEAR(owned[c.id], owners_each, owners_each * 0.15) << "seed " << seed << " n " << n;
        EXPECT_NEAR(copies[c.id], copies_each, copies_each * 0.15) << "seed " << seed << " n " << n;
      }
    }
  }
}

TEST(placement, a_store_joining_or_leaving_moves_only_the_partitions_it_wins_or_held) {
  auto three = stores(4, 9);
  const placement_candidate joining = three.back();
  three.pop_back();
  auto four = three;
  four.push_back(joining);
  int moved = 0;
  for (partition_id p = 0; p < 256; ++p) {
    auto before = place(p, three, 2), after = place(p, four, 2);
    if (as_set(before) == as_set(after)) continue;
    ++moved;
    EXPECT_EQ(std::count(after.begin(), after.end(), joining.id), 1) << "partition " << p << " moved without the new store";
    // Exactly one copy changed hands, to the new store.
    std::set<store_id> common;
    for (const auto& id : before)
      if (as_set(after).count(id)) common.insert(id);
    EXPECT_EQ(common.size(), 1u);
    // And leaving again undoes it: the placement of three is restored.
    EXPECT_EQ(place(p, three, 2), before);
  }
  // About factor / n of the partitions: 2/4 of 256 = 128.
  EXPECT_GT(moved, 96);
  EXPECT_LT(moved, 160);
}

TEST(placement, copies_spread_over_zones_first) {
  auto s = stores(6, 3, {"zone-a", "zone-b", "zone-c"});
  std::map<store_id, std::string> zone;
  for (const auto& c : s) zone[c.id] = c.zone;
  for (partition_id p = 0; p < 256; ++p) {
    std::set<std::string> zones;
    for (const auto& id : place(p, s, 3)) zones.insert(zone[id]);
    EXPECT_EQ(zones.size(), 3u) << "partition " << p;
  }
  // Two zones, factor 3: both zones, then the best remaining store.
  auto two = stores(4, 4, {"a", "b"});
  for (partition_id p = 0; p < 64; ++p) {
    auto r = place(p, two, 3);
    ASSERT_EQ(r.size(), 3u);
    std::set<std::string> zones;
    for (const auto& id : r)
      for (const auto& c : two)
        if (c.id == id) zones.insert(c.zone);
    EXPECT_EQ(zones.size(), 2u);
  }
}
