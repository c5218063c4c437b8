// flock-bench's per-publisher sequence accounting (tools/flock-bench/sequence.hpp).
#include "tools/flock-bench/sequence.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace flock::bench {
namespace {

using outcome = sequence_tracker::outcome;

TEST(bench_sequence, in_order_stream_is_one_range) {
  sequence_tracker t;
  for (std::uint64_t s = 0; s < 1000; ++s) ASSERT_EQ(t.add(s), outcome::in_order);
  EXPECT_EQ(t.unique(), 1000u);
  EXPECT_EQ(t.ranges(), 1u);
  EXPECT_EQ(t.missing_below_highest(), 0u);
  EXPECT_TRUE(t.contains(0));
  EXPECT_TRUE(t.contains(999));
  EXPECT_FALSE(t.contains(1000));
}

TEST(bench_sequence, duplicates_are_not_counted_twice) {
  sequence_tracker t;
  t.add(0);
  t.add(1);
  t.add(2);
  EXPECT_EQ(t.add(1), outcome::duplicate);
  EXPECT_EQ(t.add(2), outcome::duplicate);
  EXPECT_EQ(t.add(0), outcome::duplicate);
  EXPECT_EQ(t.unique(), 3u);
}

TEST(bench_sequence, a_gap_is_missing_until_filled_out_of_order) {
  sequence_tracker t;
  t.add(0);
  t.add(1);
  EXPECT_EQ(t.add(5), outcome::in_order);  // a jump, not a reordering
  EXPECT_EQ(t.missing_below_highest(), 3u);
  EXPECT_EQ(t.ranges(), 2u);
  EXPECT_FALSE(t.contains(3));
  EXPECT_EQ(t.add(3), outcome::out_of_order);
  EXPECT_EQ(t.add(2), outcome::out_of_order);  // joins [0,2) and [3,4)
  EXPECT_EQ(t.add(4), outcome::out_of_order);  // joins everything
  EXPECT_EQ(t.ranges(), 1u);
  EXPECT_EQ(t.unique(), 6u);
  EXPECT_EQ(t.missing_below_highest(), 0u);
  EXPECT_EQ(t.add(3), outcome::duplicate);
}

TEST(bench_sequence, starting_after_zero_counts_the_missing_head) {
  sequence_tracker t;
  t.add(10);
  EXPECT_EQ(t.missing_below_highest(), 10u);
  EXPECT_FALSE(t.contains(0));
  EXPECT_EQ(t.add(0), outcome::out_of_order);
  EXPECT_EQ(t.unique(), 2u);
}

TEST(bench_sequence, shuffled_stream_with_repeats_is_counted_exactly) {
  std::vector<std::uint64_t> seqs(5000);
  std::iota(seqs.begin(), seqs.end(), 0);
  std::vector<std::uint64_t> sent = seqs;
  sent.insert(sent.end(), seqs.begin(), seqs.begin() + 700);  // 700 duplicates
  std::mt19937 rng(7);
  std::shuffle(sent.begin(), sent.end(), rng);
  sent.erase(std::remove_if(sent.begin(), sent.end(), [](std::uint64_t s) { return s % 97 == 3; }), sent.end());
  sequence_tracker t;
  std::uint64_t dups = 0;
  for (auto s : sent) dups += t.add(s) == outcome::duplicate;
  std::uint64_t dropped = 0;
  for (auto s : seqs) dropped += (s % 97 == 3);
  EXPECT_EQ(t.unique(), 5000u - dropped);
  std::uint64_t dup_expected = 0;
  for (std::uint64_t s = 0; s < 700; ++s) dup_expected += (s % 97 != 3);
  EXPECT_EQ(dups, dup_expected);
  for (auto s : seqs) ASSERT_EQ(t.contains(s), s % 97 != 3) << s;
}

// sub joins a stream that is already running: numbers before its first one
// are not gaps, holes after it are.
TEST(sequence_tracker, gaps_count_from_the_first_number_seen) {
  sequence_tracker t;
  EXPECT_EQ(t.missing_between_first_and_highest(), 0u);
  for (std::uint64_t s : {1000u, 1001u, 1003u, 1006u}) t.add(s);
  EXPECT_EQ(t.missing_between_first_and_highest(), 3u);  // 1002, 1004, 1005
  EXPECT_EQ(t.missing_below_highest(), 1003u);            // and 0..999 for pubsub
  t.add(1002);
  t.add(999);  // an earlier one late: the first moves back, no new gap
  EXPECT_EQ(t.missing_between_first_and_highest(), 2u);
}

}  // namespace
}  // namespace flock::bench
