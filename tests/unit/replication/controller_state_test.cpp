#include "broker/replication/controller_state.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

using namespace flock::replication;

namespace {

member store(std::uint64_t n, std::string zone = "") { return member{{0, n}, "node-" + std::to_string(n), std::move(zone)}; }
const store_id s1{0, 1}, s2{0, 2}, s3{0, 3}, s4{0, 4};

bool has(const std::vector<store_id>& v, const store_id& id) { return std::find(v.begin(), v.end(), id) != v.end(); }

controller_state three_stores(std::uint32_t factor = 2, std::uint32_t partitions = 16) {
  controller_state c;
  EXPECT_EQ(c.apply(cmd::bootstrap{partitions, factor, {store(1), store(2), store(3)}}), outcome::applied);
  return c;
}

// The first partition that `id` owns (fails the test when there is none).
partition_id owned_by(const controller_state& c, const store_id& id) {
  for (std::uint32_t p = 0; p < c.partition_count(); ++p)
    if (c.partition(static_cast<partition_id>(p)).owner == id) return static_cast<partition_id>(p);
  ADD_FAILURE() << "no partition owned by " << id.hex();
  return 0;
}

}  // namespace

TEST(controller_state, bootstrap_places_every_partition_in_sync_in_epoch_one) {
  auto c = three_stores();
  ASSERT_EQ(c.partition_count(), 16u);
  for (const auto& p : c.partitions()) {
    EXPECT_EQ(p.epoch, 1u);
    ASSERT_EQ(p.replicas.size(), 2u);
    EXPECT_EQ(p.owner, p.replicas.front());
    EXPECT_EQ(p.isr, p.replicas);
    EXPECT_TRUE(p.learners.empty());
    EXPECT_FALSE(p.offline);
  }
  EXPECT_EQ(c.broken_invariant(), std::nullopt);
  EXPECT_EQ(c.apply(cmd::bootstrap{16, 2, {store(4)}}), outcome::stale);  // once only
}

TEST(controller_state, a_bootstrap_that_cannot_hold_data_is_invalid) {
  controller_state c;
  EXPECT_EQ(c.apply(cmd::bootstrap{0, 2, {store(1)}}), outcome::invalid);
  EXPECT_EQ(c.apply(cmd::bootstrap{16, 0, {store(1)}}), outcome::invalid);
  EXPECT_EQ(c.apply(cmd::bootstrap{16, 2, {}}), outcome::invalid);
  EXPECT_EQ(c.apply(cmd::bootstrap{16, 2, {store(1), store(1)}}), outcome::invalid);
  auto w = store(1);
  w.witness = true;
  EXPECT_EQ(c.apply(cmd::bootstrap{16, 2, {w}}), outcome::invalid);
  EXPECT_FALSE(c.bootstrapped());
  EXPECT_EQ(c.apply(cmd::bootstrap{16, 2, {w, store(2)}}), outcome::applied);
  for (const auto& p : c.partitions()) EXPECT_EQ(p.isr, std::vector<store_id>{s2});  // a witness holds no copy
}

TEST(controller_state, fencing_an_owner_promotes_its_first_in_sync_follower_in_a_new_epoch) {
  auto c = three_stores();
  const auto p = owned_by(c, s1);
  const auto follower = c.partition(p).isr[1];
  ASSERT_EQ(c.apply(cmd::node_fenced{s1}), outcome::applied);
  EXPECT_EQ(c.partition(p).owner, follower);
  EXPECT_EQ(c.partition(p).epoch, 2u);
  EXPECT_EQ(c.partition(p).isr, std::vector<store_id>{follower});
  for (const auto& q : c.partitions()) {
    EXPECT_FALSE(has(q.isr, s1));
    // A partition s1 only followed keeps its owner and epoch.
    if (has(q.replicas, s1) && q.replicas.front() != s1) {
      EXPECT_EQ(q.epoch, 1u);
    }
  }
  EXPECT_EQ(c.apply(cmd::node_fenced{s1}), outcome::stale);
  EXPECT_EQ(c.broken_invariant(), std::nullopt);
}

TEST(controller_state, a_partition_with_no_copy_left_goes_offline_until_one_returns) {
  auto c = three_stores(1);
  const auto p = owned_by(c, s2);
  ASSERT_EQ(c.apply(cmd::node_fenced{s2}), outcome::applied);
  EXPECT_TRUE(c.partition(p).offline);
  EXPECT_EQ(c.partition(p).owner, s2);  // unchanged: nobody else holds it
  EXPECT_EQ(c.broken_invariant(), std::nullopt);
  // Nothing moves an offline partition but its copy's return (or a reset).
  EXPECT_EQ(c.apply(cmd::set_replicas{p, {s1}}), outcome::stale);
  EXPECT_EQ(c.apply(cmd::owner_change{p, 2, s1}), outcome::stale);
  for (const auto& proposal : c.rebalance(2)) {
    if (auto* sr = std::get_if<cmd::set_replicas>(&proposal)) {
      EXPECT_NE(sr->partition, p);
    }
  }
  auto back = store(2);
  back.incarnation = 7;
  ASSERT_EQ(c.apply(cmd::node_up{back}), outcome::applied);
  EXPECT_FALSE(c.partition(p).offline);
  EXPECT_EQ(c.partition(p).owner, s2);
  EXPECT_EQ(c.partition(p).epoch, 2u);  // a new epoch: the returning store was fenced
  EXPECT_EQ(c.find(s2)->incarnation, 7u);
  EXPECT_EQ(c.broken_invariant(), std::nullopt);
}

TEST(controller_state, a_replaced_store_is_rebuilt_on_a_new_one_and_surplus_copies_leave) {
  auto c = three_stores();
  ASSERT_EQ(c.apply(cmd::node_fenced{s3}), outcome::applied);
  ASSERT_EQ(c.apply(cmd::node_up{store(4)}), outcome::applied);
  auto proposals = c.rebalance(1000);
  ASSERT_FALSE(proposals.empty());
  for (const auto& proposal : proposals) EXPECT_EQ(c.apply(proposal), outcome::applied);
  EXPECT_EQ(c.broken_invariant(), std::nullopt);
  // Every copy s3 held now has a learner; learners catch up and join.
  for (std::uint32_t i = 0; i < c.partition_count(); ++i) {
    const auto p = static_cast<partition_id>(i);
    EXPECT_FALSE(has(c.partition(p).replicas, s3));
    EXPECT_EQ(c.partition(p).replicas.size(), 2u);
    for (auto learner : c.partition(p).learners)
      EXPECT_EQ(c.apply(cmd::isr_expand{p, c.partition(p).epoch, learner}), outcome::applied);
    EXPECT_EQ(c.partition(p).isr.size(), 2u);
    EXPECT_TRUE(c.partition(p).learners.empty());
  }
  for (const auto& proposal : c.rebalance(1000)) c.apply(proposal);  // preferred owners back
  for (std::uint32_t i = 0; i < c.partition_count(); ++i) {
    const auto& p = c.partition(static_cast<partition_id>(i));
    EXPECT_EQ(p.owner, p.replicas.front());
  }
  EXPECT_TRUE(c.rebalance(1000).empty());
  EXPECT_EQ(c.apply(cmd::node_forgotten{s3}), outcome::applied);
  EXPECT_EQ(c.find(s3), nullptr);
  EXPECT_EQ(c.broken_invariant(), std::nullopt);
}

TEST(controller_state, moves_are_throttled_per_store) {
  auto c = three_stores(2, 64);
  ASSERT_EQ(c.apply(cmd::node_up{store(4)}), outcome::applied);
  auto proposals = c.rebalance(2);
  EXPECT_EQ(proposals.size(), 2u);  // store 4 joins two partitions at a time
  for (const auto& p : proposals) c.apply(p);
  EXPECT_TRUE(c.rebalance(2).empty());  // until those have caught up
}

TEST(controller_state, isr_changes_for_an_older_epoch_are_stale) {
  auto c = three_stores();
  const auto p = owned_by(c, s1);
  const auto follower = c.partition(p).isr[1];
  EXPECT_EQ(c.apply(cmd::isr_shrink{p, 1, s1}), outcome::stale);  // never the owner
  EXPECT_EQ(c.apply(cmd::isr_shrink{p, 9, follower}), outcome::stale);
  ASSERT_EQ(c.apply(cmd::isr_shrink{p, 1, follower}), outcome::applied);
  EXPECT_EQ(c.partition(p).isr, std::vector<store_id>{s1});
  EXPECT_EQ(c.apply(cmd::isr_shrink{p, 1, follower}), outcome::stale);  // applied twice: once
  // A follower out of sync cannot become owner.
  EXPECT_EQ(c.apply(cmd::owner_change{p, 2, follower}), outcome::stale);
  ASSERT_EQ(c.apply(cmd::isr_expand{p, 1, follower}), outcome::applied);
  ASSERT_EQ(c.apply(cmd::owner_change{p, 2, follower}), outcome::applied);
  EXPECT_EQ(c.partition(p).isr.front(), follower);
  // The old owner's expand for epoch 1, arriving late, changes nothing.
  EXPECT_EQ(c.apply(cmd::isr_shrink{p, 1, s1}), outcome::stale);
  EXPECT_EQ(c.apply(cmd::owner_change{p, 2, s1}), outcome::stale);
  EXPECT_EQ(c.broken_invariant(), std::nullopt);
}

TEST(controller_state, a_running_store_is_fenced_before_its_new_incarnation_is_admitted) {
  auto c = three_stores();
  auto again = store(1);
  again.incarnation = 2;
  EXPECT_EQ(c.apply(cmd::node_up{again}), outcome::stale);
  EXPECT_EQ(c.find(s1)->incarnation, 0u);
  ASSERT_EQ(c.apply(cmd::node_fenced{s1}), outcome::applied);
  ASSERT_EQ(c.apply(cmd::node_up{again}), outcome::applied);
  EXPECT_FALSE(c.find(s1)->fenced);
  // Back, but in no ISR until it catches up again.
  for (const auto& p : c.partitions()) EXPECT_FALSE(has(p.isr, s1));
  EXPECT_EQ(c.apply(cmd::node_forgotten{s2}), outcome::stale);  // not fenced
  c.apply(cmd::node_fenced{s2});
  auto as_witness = store(2);
  as_witness.witness = true;
  EXPECT_EQ(c.apply(cmd::node_up{as_witness}), outcome::invalid);  // its copies stay copies
  EXPECT_EQ(c.broken_invariant(), std::nullopt);
  EXPECT_EQ(c.apply(cmd::node_fenced{store_id{9, 9}}), outcome::invalid);
}

TEST(controller_state, a_reset_restarts_an_offline_partition_empty) {
  auto c = three_stores(1);
  const auto p = owned_by(c, s3);
  c.apply(cmd::node_fenced{s3});
  ASSERT_TRUE(c.partition(p).offline);
  ASSERT_EQ(c.apply(cmd::partition_reset{p}), outcome::applied);
  EXPECT_FALSE(c.partition(p).offline);
  EXPECT_NE(c.partition(p).owner, s3);
  EXPECT_EQ(c.partition(p).epoch, 2u);
  EXPECT_EQ(c.apply(cmd::partition_reset{static_cast<partition_id>(c.partition_count())}), outcome::invalid);
  EXPECT_EQ(c.broken_invariant(), std::nullopt);
}

// Random committed histories (what the leader proposes, stale proposals
// replayed, stores fenced and returning, new stores): after every step the
// invariants hold, epochs never go back, and every new owner was in the
// ISR before (so it holds every acknowledged write).
TEST(controller_state, random_histories_keep_the_invariants_and_succession_through_the_isr) {
  int owner_changes = 0, went_offline = 0, isr_expanded = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    const std::uint32_t factor = 1 + rng() % 3;
    controller_state c;
    std::vector<member> stores{store(1), store(2), store(3), store(4), store(5)};
    ASSERT_EQ(c.apply(cmd::bootstrap{32, factor, {stores[0], stores[1], stores[2]}}), outcome::applied);
    std::vector<command> history;
    for (int step = 0; step < 400; ++step) {
      const auto before = c.partitions();
      command next;
      const auto pick = rng() % 10;
      const auto& s = stores[rng() % stores.size()].id;
      const auto p = static_cast<partition_id>(rng() % c.partition_count());
      const auto& ps = c.partition(p);
      if (pick == 0) next = cmd::node_fenced{s};
      else if (pick == 1) next = cmd::node_up{stores[rng() % stores.size()]};
      else if (pick == 2) next = cmd::isr_shrink{p, ps.epoch, s};
      else if (pick == 3 && !ps.learners.empty()) next = cmd::isr_expand{p, ps.epoch, ps.learners[rng() % ps.learners.size()]};
      else if (pick == 4) next = cmd::isr_expand{p, ps.epoch, s};  // the follower catching up again
      else if (pick == 5) next = cmd::owner_change{p, ps.epoch + 1, s};
      else if (pick == 6 && !history.empty()) next = history[rng() % history.size()];  // a stale replay
      else {
        auto proposals = c.rebalance(2);
        if (proposals.empty()) continue;
        next = proposals[rng() % proposals.size()];
      }
      c.apply(next);
      history.push_back(next);
      auto broken = c.broken_invariant();
      ASSERT_EQ(broken, std::nullopt) << "seed " << seed << " step " << step << ": " << *broken;
      for (std::uint32_t i = 0; i < c.partition_count(); ++i) {
        const auto& was = before[i];
        const auto& now = c.partition(static_cast<partition_id>(i));
        ASSERT_GE(now.epoch, was.epoch) << "seed " << seed << " step " << step;
        if (now.owner != was.owner) {
          EXPECT_GT(now.epoch, was.epoch);
          ASSERT_TRUE(has(was.isr, now.owner)) << "seed " << seed << " step " << step << ": partition " << i
                                               << " got an owner that was not in sync";
        }
        if (now.offline && !was.offline) {
          EXPECT_EQ(now.owner, was.owner);  // nobody else holds it
          EXPECT_EQ(now.epoch, was.epoch);
          ++went_offline;
        }
        if (now.owner != was.owner) ++owner_changes;
        if (now.isr.size() > was.isr.size()) ++isr_expanded;
      }
    }
  }
  // The histories did go through failovers, offline partitions and catch-ups.
  EXPECT_GT(owner_changes, 300);
  EXPECT_GT(went_offline, 1000);
  EXPECT_GT(isr_expanded, 100);
}
