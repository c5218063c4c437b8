// group_commit_store as owner and follower of partitions (ports/replication.hpp):
// two memory stores joined by a stream the test delivers by hand, so each
// step (sent, applied, acknowledged) is explicit.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "broker/replication/partition.hpp"
#include "storage/group_commit_store.hpp"
#include "storage/keys.hpp"
#include "storage/memory_backend.hpp"
#include "storage/partition_writes.hpp"
#include "tests/contract/store_test_support.hpp"

namespace flock::storage {
namespace {

using namespace std::chrono_literals;
using replication::make_session_id;
using replication::partition_id;
using replication::store_id;

constexpr partition_id P = 7;
const store_id owner_id{0, 1};
const store_id follower_id{0, 2};
const store_id learner_id{0, 3};

// What the owner sent, per follower, in order.
struct recording_stream final : ports::replication_stream {
  struct sent {
    std::uint64_t group;
    std::vector<ports::replicated_part_ptr> parts;
  };
  void send(const store_id& follower, std::uint64_t group, std::vector<ports::replicated_part_ptr> parts) override {
    std::lock_guard lk(mu);
    out[follower].push_back({group, std::move(parts)});
  }
  std::vector<sent> take(const store_id& follower) {
    std::lock_guard lk(mu);
    auto s = std::move(out[follower]);
    out[follower].clear();
    return s;
  }
  std::mutex mu;
  std::map<store_id, std::vector<sent>> out;
};

struct node {
  std::shared_ptr<memory_disk> disk = std::make_shared<memory_disk>();
  testing::queued_executor executor{1};
  testing::manual_clock clock;
  std::unique_ptr<group_commit_store> store;

  node() { open(); }
  void open() {
    store.reset();
    store = std::make_unique<group_commit_store>(open_memory_backend(disk), group_commit_options{}, executor, clock);
    store->load();
  }
  ports::store::ticket commit(std::vector<ports::store_op> ops) {
    auto t = store->append(ops);
    EXPECT_TRUE(store->flush(5s));
    return t;
  }
  // Every record of partition p, column by column: what a copy holds.
  std::vector<std::string> range(partition_id p) {
    std::vector<std::string> out;
    auto b = open_memory_backend(disk);
    auto [begin, end] = keys::partition_range(p);
    for (column c : {column::sessions, column::subscriptions, column::messages, column::queue, column::inflight,
                     column::incoming})
      b->scan_range(c, begin, end, [&](std::string_view k, std::string_view v) {
        out.push_back(std::string(column_name(c)) + ":" + std::string(k) + "=" + std::string(v));
      });
    return out;
  }
};

std::vector<ports::partition_role> roles(partition_id p, ports::partition_role r) {
  std::vector<ports::partition_role> all(replication::default_partitions);
  all[p] = std::move(r);
  return all;
}

ports::partition_role owning(std::vector<store_id> in_sync, std::vector<store_id> learners = {},
                             replication::epoch_t epoch = 1) {
  return {true, epoch, std::move(in_sync), std::move(learners)};
}

// Applies parts on the follower and returns the results once durable there.
std::vector<ports::apply_result> apply(node& f, std::vector<ports::replicated_part_ptr> parts) {
  std::optional<std::vector<ports::apply_result>> results;
  f.store->apply(std::move(parts), 0, [&](std::vector<ports::apply_result> r) { results = std::move(r); });
  EXPECT_TRUE(f.store->flush(5s));
  EXPECT_TRUE(testing::eventually([&] {
    f.executor.run(0);
    return results.has_value();
  }));
  return results.value_or(std::vector<ports::apply_result>{});
}

std::vector<ports::store_op> session_with_a_message(std::uint64_t counter, std::uint64_t message_id,
                                                    partition_id p = P) {
  const auto sid = make_session_id(p, counter);
  auto m = testing::make_message(message_id, "t");
  m->partitions = testing::partitions({p});
  return {testing::make_session(sid, "c" + std::to_string(counter)), ports::subscription_put{sid, "a/#", {}},
          ports::message_put{m}, ports::queued_put{sid, message_id, {1, false, {}}}};
}

struct replicated_store : ::testing::Test {
  node owner, follower;
  recording_stream stream;
  void SetUp() override { owner.store->set_stream(&stream); }
};

TEST_F(replicated_store, acknowledgements_wait_for_the_in_sync_follower) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  bool acked = false;
  const auto t = owner.commit(session_with_a_message(1, 10));
  owner.store->when_durable(t, 0, [&] { acked = true; });
  owner.executor.run(0);
  EXPECT_FALSE(owner.store->is_durable(t)) << "durable here, not yet on the follower";
  EXPECT_FALSE(acked);

  auto sent = stream.take(follower_id);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].group, t);
  ASSERT_EQ(sent[0].parts.size(), 1u);
  EXPECT_EQ(sent[0].parts[0]->partition, P);
  EXPECT_EQ(sent[0].parts[0]->epoch, 1u);
  EXPECT_EQ(sent[0].parts[0]->lsn, 1u);

  auto results = apply(follower, sent[0].parts);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, ports::apply_status::applied);
  EXPECT_EQ(results[0].position, (ports::partition_position{1, 1}));

  owner.store->acknowledged(follower_id, sent[0].group);
  EXPECT_TRUE(owner.store->is_durable(t));
  owner.executor.run(0);
  EXPECT_TRUE(acked);

  // The follower's copy is the owner's, record for record, and loads.
  EXPECT_EQ(follower.range(P), owner.range(P));
  follower.open();
  auto loaded = follower.store->load();
  ASSERT_EQ(loaded.sessions.size(), 1u);
  EXPECT_EQ(loaded.sessions[0].session_id, make_session_id(P, 1));
  ASSERT_EQ(loaded.sessions[0].queue.size(), 1u);
  EXPECT_EQ(follower.store->positions(),
            (std::vector<std::pair<partition_id, ports::partition_position>>{{P, {1, 1}}}));
}

TEST_F(replicated_store, copies_stay_equal_through_updates_deletes_and_range_deletes) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  const auto sid = make_session_id(P, 1);
  std::vector<std::vector<ports::store_op>> groups;
  groups.push_back(session_with_a_message(1, 10));
  groups.push_back(session_with_a_message(2, 11));
  groups.push_back({ports::queued_delete{sid, 10}, ports::inflight_put{sid, 10, 1, core::outgoing_state::awaiting_puback, {}},
                    ports::incoming_put{sid, 4}, ports::subscription_delete{sid, "a/#"}});
  groups.push_back({ports::session_delete{make_session_id(P, 2)}, ports::message_delete{11, testing::partitions({P})}});
  for (auto& g : groups) {
    owner.commit(std::move(g));
    for (auto& s : stream.take(follower_id)) {
      for (const auto& r : apply(follower, s.parts)) EXPECT_EQ(r.status, ports::apply_status::applied);
      owner.store->acknowledged(follower_id, s.group);
    }
  }
  EXPECT_EQ(follower.range(P), owner.range(P));
  EXPECT_EQ(follower.store->positions(), owner.store->positions());
  EXPECT_EQ(owner.store->positions().at(0).second.lsn, 4u);
}

TEST_F(replicated_store, other_partitions_and_retained_messages_do_not_wait) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  auto ops = session_with_a_message(1, 10, P + 1);
  ops.push_back(ports::retained_put{testing::make_message(0, "r")});
  const auto t = owner.commit(std::move(ops));
  EXPECT_TRUE(owner.store->is_durable(t));
  EXPECT_TRUE(stream.take(follower_id).empty());
}

TEST_F(replicated_store, a_follower_leaving_the_isr_releases_what_waited_for_it) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  const auto t = owner.commit(session_with_a_message(1, 10));
  EXPECT_FALSE(owner.store->is_durable(t));
  owner.store->set_roles(roles(P, owning({}, {}, 1)));  // the controller shrank the ISR
  EXPECT_TRUE(owner.store->is_durable(t));
}

TEST_F(replicated_store, learners_are_sent_to_and_not_waited_for) {
  owner.store->set_roles(roles(P, owning({}, {learner_id})));
  const auto t = owner.commit(session_with_a_message(1, 10));
  EXPECT_TRUE(owner.store->is_durable(t));
  EXPECT_EQ(stream.take(learner_id).size(), 1u);
}

TEST_F(replicated_store, later_groups_wait_behind_an_earlier_unacknowledged_one) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  const auto first = owner.commit(session_with_a_message(1, 10));
  const auto second = owner.commit(session_with_a_message(2, 11, P + 1));  // nothing to replicate
  EXPECT_FALSE(owner.store->is_durable(second)) << "when_durable(t) covers every group up to t";
  auto sent = stream.take(follower_id);
  ASSERT_EQ(sent.size(), 1u);
  owner.store->acknowledged(follower_id, sent[0].group);
  EXPECT_TRUE(owner.store->is_durable(first));
  EXPECT_TRUE(owner.store->is_durable(second));
}

TEST_F(replicated_store, a_follower_refuses_what_does_not_follow_its_copy) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  owner.commit(session_with_a_message(1, 10));
  owner.commit(session_with_a_message(2, 11));
  auto sent = stream.take(follower_id);
  ASSERT_EQ(sent.size(), 2u);
  auto first = sent[0].parts;
  auto second = sent[1].parts;

  EXPECT_EQ(apply(follower, second).at(0).status, ports::apply_status::gap);
  EXPECT_EQ(apply(follower, second).at(0).position, (ports::partition_position{0, 0}));
  EXPECT_EQ(apply(follower, first).at(0).status, ports::apply_status::applied);
  EXPECT_EQ(apply(follower, first).at(0).status, ports::apply_status::applied) << "a resend is harmless";
  EXPECT_EQ(apply(follower, second).at(0).position, (ports::partition_position{1, 2}));
  EXPECT_EQ(follower.range(P), owner.range(P));

  // An older epoch: a deposed owner writing on.
  auto stale = std::make_shared<ports::replicated_part>(*second[0]);
  stale->epoch = 0;
  stale->lsn = 3;
  EXPECT_EQ(apply(follower, {stale}).at(0).status, ports::apply_status::stale_epoch);

  // Writes outside the partition, or bytes that are not writes.
  kv_write outside{kv_write::kind::put, column::sessions, keys::id_key(make_session_id(P + 1, 1)), "x"};
  auto bad = std::make_shared<ports::replicated_part>(ports::replicated_part{P, 1, 3, {}});
  encode_writes(outside, bad->writes);
  EXPECT_EQ(apply(follower, {bad}).at(0).status, ports::apply_status::malformed);
  auto garbage = std::make_shared<ports::replicated_part>(ports::replicated_part{P, 1, 3, std::string("\x00\x09\xff", 3)});
  EXPECT_EQ(apply(follower, {garbage}).at(0).status, ports::apply_status::malformed);
  auto beyond = std::make_shared<ports::replicated_part>(ports::replicated_part{60000, 1, 1, {}});
  EXPECT_EQ(apply(follower, {beyond}).at(0).status, ports::apply_status::malformed);
  EXPECT_EQ(follower.range(P), owner.range(P)) << "nothing refused was written";
  // The owner takes no part for a partition it owns in its own epoch: that
  // would be a second writer.
  EXPECT_EQ(apply(owner, first).at(0).status, ports::apply_status::stale_epoch);
}

// Writers on two threads, a follower applying and acknowledging on a third:
// every acknowledgement arrives, in ticket order per worker, and the copies
// end equal.
TEST(replicated_store_threads, every_acknowledgement_arrives_and_the_copies_match) {
  node owner, follower;
  recording_stream stream;
  owner.store->set_stream(&stream);
  owner.store->set_roles(roles(P, owning({follower_id})));
  std::atomic<bool> writing{true};
  std::thread pump([&] {
    for (;;) {
      const bool last = !writing.load();
      for (auto& s : stream.take(follower_id)) {
        follower.store->apply(s.parts, 0, [&, group = s.group](std::vector<ports::apply_result> r) {
          for (const auto& x : r) EXPECT_EQ(x.status, ports::apply_status::applied);
          owner.store->acknowledged(follower_id, group);
        });
      }
      follower.executor.run(0);
      if (last && follower.store->flush(1s) && follower.executor.run(0) == 0 && stream.take(follower_id).empty()) return;
      std::this_thread::yield();
    }
  });
  constexpr int per_thread = 300;
  std::atomic<int> acked{0};
  std::vector<std::thread> writers;
  for (std::uint64_t w = 0; w < 2; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < per_thread; ++i) {
        const std::uint64_t n = 1 + w * per_thread + static_cast<std::uint64_t>(i);
        auto ops = session_with_a_message(n, 100000 + n, static_cast<partition_id>(P + (n % 2)));
        auto t = owner.store->append(ops);
        owner.store->when_durable(t, 0, [&] { acked.fetch_add(1); });
      }
    });
  for (auto& t : writers) t.join();
  ASSERT_TRUE(testing::eventually([&] {
    owner.executor.run(0);
    return acked.load() == 2 * per_thread;
  }, 20s)) << acked.load();
  writing = false;
  pump.join();
  EXPECT_EQ(follower.range(P), owner.range(P));
  EXPECT_TRUE(follower.range(P + 1).empty()) << "partition P + 1 has no follower";
}

TEST(partition_writes, decoding_mutated_bytes_never_leaves_the_partition) {
  std::string valid;
  encode_writes({kv_write::kind::put, column::queue, keys::pair_key(make_session_id(P, 1), 5), "value"}, valid);
  encode_writes({kv_write::kind::del_range, column::subscriptions, keys::id_key(make_session_id(P, 1)),
                 keys::id_key(make_session_id(P, 2))},
                valid);
  ASSERT_TRUE(decode_writes(valid, P));
  EXPECT_FALSE(decode_writes(valid, P + 1));
  std::mt19937 rng(7);
  const auto [begin, end] = keys::partition_range(P);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = valid;
    for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n) {
      const std::size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0: bytes[at] = static_cast<char>(rng()); break;
        case 1: bytes.erase(at, 1 + rng() % 4); break;
        default: bytes.insert(at, 1, static_cast<char>(rng())); break;
      }
      if (bytes.empty()) bytes = "x";
    }
    auto writes = decode_writes(bytes, P);
    if (!writes) continue;
    for (const auto& w : *writes) {
      EXPECT_GE(w.key, begin);
      EXPECT_LT(w.key, end);
      if (w.op == kv_write::kind::del_range) {
        EXPECT_LE(w.value, end);
      }
      EXPECT_NE(w.col, column::meta);
      EXPECT_NE(w.col, column::retained);
    }
  }
}

}  // namespace
}  // namespace flock::storage
