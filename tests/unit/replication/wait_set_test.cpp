#include "broker/replication/wait_set.hpp"

#include <gtest/gtest.h>

using namespace flock::replication;
using tickets = std::vector<wait_set::ticket>;

namespace {
const store_id b{0, 2}, c{0, 3};
}

TEST(wait_set, a_group_waits_for_local_durability_and_every_follower) {
  wait_set w;
  w.add(1, {b, c});
  EXPECT_EQ(w.acknowledged(b, 1), tickets{});
  EXPECT_EQ(w.durable(1), tickets{});
  EXPECT_TRUE(w.waits_for(c));
  EXPECT_EQ(w.acknowledged(c, 1), tickets{1});
  EXPECT_EQ(w.pending(), 0u);
  EXPECT_FALSE(w.waits_for(c));
}

TEST(wait_set, acknowledgements_are_cumulative_and_groups_complete_out_of_order) {
  wait_set w;
  w.add(1, {b});     // a partition b follows
  w.add(2, {c});     // one only c follows
  w.add(3, {b, c});
  EXPECT_EQ(w.durable(3), tickets{});
  EXPECT_EQ(w.acknowledged(c, 3), tickets{2});  // b's slowness does not hold group 2
  EXPECT_EQ(w.acknowledged(b, 3), (tickets{1, 3}));
  EXPECT_EQ(w.acknowledged(b, 2), tickets{});  // older acknowledgements change nothing
}

TEST(wait_set, a_follower_dropped_from_the_isr_is_waited_for_no_more) {
  wait_set w;
  w.add(1, {b, c});
  w.add(2, {b});
  w.acknowledged(c, 1);
  EXPECT_EQ(w.durable(2), tickets{});
  EXPECT_EQ(w.dropped(b), (tickets{1, 2}));
}

TEST(wait_set, a_group_with_no_followers_completes_when_durable) {
  wait_set w;
  EXPECT_FALSE(w.add(1, {}));
  EXPECT_EQ(w.pending(), 1u);
  EXPECT_EQ(w.durable(1), tickets{1});
  EXPECT_FALSE(w.add(2, {}));
  EXPECT_EQ(w.durable(5), tickets{2});
  EXPECT_TRUE(w.add(4, {}));  // durable before it was added: nothing to wait for
  EXPECT_FALSE(w.add(5, {b}));
  EXPECT_EQ(w.acknowledged(b, 5), tickets{5});
  EXPECT_EQ(w.pending(), 0u);
}
