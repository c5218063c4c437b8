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

// Applies parts whose results may wait (for a snapshot being installed):
// the results, once they came.
using pending_results = std::shared_ptr<std::optional<std::vector<ports::apply_result>>>;
pending_results apply_later(node& f, std::vector<ports::replicated_part_ptr> parts) {
  auto out = std::make_shared<std::optional<std::vector<ports::apply_result>>>();
  f.store->apply(std::move(parts), 0, [out](std::vector<ports::apply_result> r) { *out = std::move(r); });
  return out;
}
bool arrived(node& f, const pending_results& r) {
  EXPECT_TRUE(f.store->flush(5s));
  return testing::eventually([&] {
    f.executor.run(0);
    return r->has_value();
  }, 2s);
}

// Callbacks of the owner's writer thread, waited for on the test's.
template <class T>
struct from_writer {
  std::mutex mu;
  std::optional<T> value;
  bool done = false;
  auto setter() {
    return [this](T v) {
      std::lock_guard lk(mu);
      value = std::move(v);
      done = true;
    };
  }
  T get() {
    EXPECT_TRUE(testing::eventually([&] {
      std::lock_guard lk(mu);
      return done;
    }));
    std::lock_guard lk(mu);
    return value.value_or(T{});
  }
};

std::optional<ports::snapshot_started> start_snapshot(node& owner, const store_id& f, partition_id p) {
  from_writer<std::optional<ports::snapshot_started>> started;
  owner.store->snapshot(p, f, started.setter());
  return started.get();
}

std::optional<ports::snapshot_chunk> next_chunk(node& owner, std::uint64_t id, std::size_t max_bytes) {
  from_writer<std::optional<ports::snapshot_chunk>> chunk;
  owner.store->next_chunk(id, max_bytes, chunk.setter());
  return chunk.get();
}

ports::apply_result apply_chunk(node& f, ports::snapshot_chunk c) {
  std::optional<ports::apply_result> result;
  f.store->apply_chunk(std::move(c), 0, [&](ports::apply_result r) { result = r; });
  EXPECT_TRUE(f.store->flush(5s));
  EXPECT_TRUE(testing::eventually([&] {
    f.executor.run(0);
    return result.has_value();
  }));
  return result.value_or(ports::apply_result{});
}

// Every chunk of snapshot `s` from the owner into the follower, in order;
// the number of chunks.
int install(node& owner, node& f, const ports::snapshot_started& s, std::size_t chunk_bytes = 256 << 10) {
  for (int n = 1;; ++n) {
    auto c = next_chunk(owner, s.id, chunk_bytes);
    if (!c) {
      ADD_FAILURE() << "the owner lost the snapshot";
      return n;
    }
    const bool last = c->last;
    auto r = apply_chunk(f, std::move(*c));
    if (last) {
      EXPECT_EQ(r.status, ports::apply_status::applied);
      owner.store->end_snapshot(s.id);
      return n;
    }
    EXPECT_EQ(r.status, ports::apply_status::installing);
    if (n > 100000) return n;
  }
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

  // The follower gets its first copy of P as the cluster gives it: the
  // snapshot part in group order, then the chunks.
  void copy_to_follower() {
    auto s = start_snapshot(owner, follower_id, P);
    ASSERT_TRUE(s);
    auto sent = stream.take(follower_id);
    ASSERT_EQ(sent.size(), 1u);
    ASSERT_EQ(sent[0].parts.size(), 1u);
    EXPECT_TRUE(sent[0].parts[0]->snapshot);
    auto results = apply_later(follower, sent[0].parts);
    install(owner, follower, *s);
    ASSERT_TRUE(arrived(follower, results));
    EXPECT_EQ(results->value().at(0).status, ports::apply_status::applied);
  }
};

TEST_F(replicated_store, acknowledgements_wait_for_the_in_sync_follower) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  copy_to_follower();  // position (1, 1): the first LSN, with no data
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
  EXPECT_EQ(sent[0].parts[0]->lsn, 2u);
  EXPECT_EQ(sent[0].parts[0]->base_epoch, 1u);

  auto results = apply(follower, sent[0].parts);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, ports::apply_status::applied);
  EXPECT_EQ(results[0].position, (ports::partition_position{1, 2}));

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
            (std::vector<std::pair<partition_id, ports::partition_position>>{{P, {1, 2}}}));
}

TEST_F(replicated_store, copies_stay_equal_through_updates_deletes_and_range_deletes) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  copy_to_follower();
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
  EXPECT_EQ(owner.store->positions().at(0).second.lsn, 5u);
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
  EXPECT_EQ(apply(follower, first).at(0).status, ports::apply_status::applied)
      << "an empty copy follows the owner's first part, whose base is its empty copy";
  EXPECT_EQ(apply(follower, first).at(0).status, ports::apply_status::applied) << "a resend is harmless";
  EXPECT_EQ(apply(follower, second).at(0).position, (ports::partition_position{1, 2}));
  EXPECT_EQ(follower.range(P), owner.range(P));

  // An older epoch: a deposed owner writing on.
  auto stale = std::make_shared<ports::replicated_part>(*second[0]);
  stale->epoch = 0;
  stale->lsn = 3;
  EXPECT_EQ(apply(follower, {stale}).at(0).status, ports::apply_status::stale_epoch);
  // The next LSN onto another history (the base epoch differs).
  auto other_history = std::make_shared<ports::replicated_part>(*second[0]);
  other_history->epoch = 2;
  other_history->lsn = 3;
  other_history->base_epoch = 2;
  EXPECT_EQ(apply(follower, {other_history}).at(0).status, ports::apply_status::gap);

  // Writes outside the partition, or bytes that are not writes.
  kv_write outside{kv_write::kind::put, column::sessions, keys::id_key(make_session_id(P + 1, 1)), "x"};
  auto bad = std::make_shared<ports::replicated_part>(ports::replicated_part{P, 1, 3, 1, false, {}});
  encode_writes(outside, bad->writes);
  EXPECT_EQ(apply(follower, {bad}).at(0).status, ports::apply_status::malformed);
  auto garbage = std::make_shared<ports::replicated_part>(
      ports::replicated_part{P, 1, 3, 1, false, std::string("\x00\x09\xff", 3)});
  EXPECT_EQ(apply(follower, {garbage}).at(0).status, ports::apply_status::malformed);
  auto beyond = std::make_shared<ports::replicated_part>(ports::replicated_part{60000, 1, 1, 0, false, {}});
  EXPECT_EQ(apply(follower, {beyond}).at(0).status, ports::apply_status::malformed);
  EXPECT_EQ(follower.range(P), owner.range(P)) << "nothing refused was written";
  // The owner takes no part for a partition it owns in its own epoch: that
  // would be a second writer.
  EXPECT_EQ(apply(owner, first).at(0).status, ports::apply_status::stale_epoch);
}

TEST_F(replicated_store, a_new_copy_holds_what_was_written_before_replication) {
  owner.commit(session_with_a_message(1, 10));  // no roles yet: written here only
  owner.commit(session_with_a_message(2, 11));
  owner.store->set_roles(roles(P, owning({follower_id})));
  const auto t = owner.commit(session_with_a_message(3, 12));
  auto sent = stream.take(follower_id);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(apply(follower, sent[0].parts).at(0).status, ports::apply_status::gap);

  copy_to_follower();
  EXPECT_EQ(follower.range(P), owner.range(P)) << "the sessions from before replication are in the copy";
  EXPECT_EQ(follower.store->positions(), owner.store->positions());
  // The group the follower could not apply is in its copy now.
  owner.store->acknowledged(follower_id, sent[0].group);
  EXPECT_TRUE(owner.store->is_durable(t));
  follower.open();
  EXPECT_EQ(follower.store->load().sessions.size(), 3u);
}

TEST_F(replicated_store, parts_sent_during_a_snapshot_wait_for_it_and_then_apply) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  for (std::uint64_t i = 1; i <= 20; ++i) owner.commit(session_with_a_message(i, 100 + i));  // data to copy
  stream.take(follower_id);  // lost: the follower has no copy
  auto s = start_snapshot(owner, follower_id, P);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->position, (ports::partition_position{1, 20}));
  // Written while the snapshot is on its way: after it in the stream.
  owner.commit(session_with_a_message(21, 121));
  owner.commit({ports::session_delete{make_session_id(P, 1)}});
  auto sent = stream.take(follower_id);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_TRUE(sent[0].parts.at(0)->snapshot);
  std::vector<pending_results> answers;
  for (auto& g : sent) answers.push_back(apply_later(follower, g.parts));
  follower.store->flush(5s);
  follower.executor.run(0);
  for (auto& a : answers) EXPECT_FALSE(a->has_value()) << "answered once the copy is in";

  EXPECT_GT(install(owner, follower, *s, 100), 5) << "small chunks: many of them";
  for (auto& a : answers) {
    ASSERT_TRUE(arrived(follower, a));
    EXPECT_EQ(a->value().at(0).status, ports::apply_status::applied);
  }
  EXPECT_EQ(answers.back()->value().at(0).position, (ports::partition_position{1, 22}));
  EXPECT_EQ(follower.range(P), owner.range(P));
  EXPECT_EQ(follower.store->positions(), owner.store->positions());
}

TEST_F(replicated_store, a_copy_cut_off_mid_snapshot_has_no_position_of_its_own) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  for (std::uint64_t i = 1; i <= 10; ++i) owner.commit(session_with_a_message(i, 100 + i));
  stream.take(follower_id);
  copy_to_follower();
  owner.commit(session_with_a_message(11, 111));
  auto sent = stream.take(follower_id);
  for (auto& g : sent) apply(follower, g.parts);
  ASSERT_EQ(follower.store->positions(), owner.store->positions());

  // Another snapshot (the owner thought the copy lost): one chunk in, then
  // the follower stops.
  auto s = start_snapshot(owner, follower_id, P);
  ASSERT_TRUE(s);
  auto marker = stream.take(follower_id);
  apply_later(follower, marker.at(0).parts);
  auto first = next_chunk(owner, s->id, 256);
  ASSERT_TRUE(first && !first->last);
  EXPECT_EQ(apply_chunk(follower, *first).status, ports::apply_status::installing);
  follower.open();  // a crash
  // No position record: what it holds counts as a copy from before
  // replication (epoch 0), which matches no other.
  ASSERT_EQ(follower.store->positions().size(), 1u);
  EXPECT_EQ(follower.store->positions().at(0).second.epoch, 0u) << "a partial copy claims no position";
  owner.commit(session_with_a_message(12, 112));
  for (auto& g : stream.take(follower_id))
    EXPECT_EQ(apply(follower, g.parts).at(0).status, ports::apply_status::gap) << "so it asks for a snapshot";
}

TEST_F(replicated_store, chunks_that_do_not_belong_to_the_install_are_refused) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  for (std::uint64_t i = 1; i <= 5; ++i) owner.commit(session_with_a_message(i, 100 + i));
  auto s = start_snapshot(owner, follower_id, P);
  ASSERT_TRUE(s);
  auto chunk = next_chunk(owner, s->id, 64);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(apply_chunk(follower, *chunk).status, ports::apply_status::gap) << "no snapshot part came first";
  auto marker = stream.take(follower_id).back().parts;
  ASSERT_TRUE(marker.at(0)->snapshot);

  // A chunk that deletes: chunks only put. The install is given up, and
  // what waited for it answers gap (the owner sends another snapshot).
  auto pending = apply_later(follower, marker);
  auto deleting = *chunk;
  deleting.writes.clear();
  encode_writes({kv_write::kind::del, column::sessions, keys::id_key(make_session_id(P, 1)), ""}, deleting.writes);
  EXPECT_EQ(apply_chunk(follower, deleting).status, ports::apply_status::malformed);
  ASSERT_TRUE(arrived(follower, pending));
  EXPECT_EQ(pending->value().at(0).status, ports::apply_status::gap);

  // Out of order, or of another copy: the owner and the follower disagree
  // about the snapshot, which is given up the same way.
  for (auto wrong : {ports::snapshot_chunk{chunk->partition, chunk->position, 1, false, chunk->writes},
                     ports::snapshot_chunk{chunk->partition, {1, chunk->position.lsn + 1}, 0, false, chunk->writes}}) {
    auto again = apply_later(follower, marker);
    EXPECT_EQ(apply_chunk(follower, wrong).status, ports::apply_status::gap);
    ASSERT_TRUE(arrived(follower, again));
    EXPECT_EQ(again->value().at(0).status, ports::apply_status::gap);
  }
  EXPECT_EQ(follower.store->positions().at(0).second, group_commit_store::unnamed_copy)
      << "a half-installed copy is named by no owner's position";
  EXPECT_FALSE(next_chunk(owner, s->id + 1, 64)) << "no such snapshot";
}

TEST_F(replicated_store, an_install_given_up_answers_what_waited_with_a_gap) {
  owner.store->set_roles(roles(P, owning({follower_id})));
  owner.commit(session_with_a_message(1, 10));
  stream.take(follower_id);
  auto s = start_snapshot(owner, follower_id, P);
  ASSERT_TRUE(s);
  auto pending = apply_later(follower, stream.take(follower_id).at(0).parts);
  follower.store->expire_installs();
  follower.executor.run(0);
  EXPECT_FALSE(pending->has_value()) << "not yet: the owner may still send chunks";
  follower.clock.advance(group_commit_store::install_timeout + 1s);
  follower.store->expire_installs();
  ASSERT_TRUE(arrived(follower, pending)) << "given up: what waited is answered";
  EXPECT_EQ(pending->value().at(0).status, ports::apply_status::gap) << "so the owner sends another snapshot";
  auto late = next_chunk(owner, s->id, 1 << 20);
  ASSERT_TRUE(late);
  EXPECT_EQ(apply_chunk(follower, *late).status, ports::apply_status::gap) << "a chunk of the abandoned install";
  EXPECT_EQ(follower.store->positions().at(0).second, group_commit_store::unnamed_copy);
}

TEST_F(replicated_store, copies_written_before_replication_are_never_taken_for_each_other) {
  // Before replication, sessions of P lived wherever their clients were:
  // both stores hold some, different ones.
  owner.commit(session_with_a_message(1, 10));
  follower.commit(session_with_a_message(2, 20));
  owner.open();
  follower.open();
  owner.store->set_stream(&stream);
  EXPECT_EQ(owner.store->positions(), follower.store->positions()) << "both at epoch 0: equal numbers";
  EXPECT_FALSE(ports::same_copy(owner.store->positions().at(0).second, follower.store->positions().at(0).second));

  owner.store->set_roles(roles(P, owning({follower_id})));
  owner.commit(session_with_a_message(3, 30));
  auto sent = stream.take(follower_id);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(apply(follower, sent[0].parts).at(0).status, ports::apply_status::gap);
  copy_to_follower();
  EXPECT_EQ(follower.range(P), owner.range(P)) << "the follower's own old sessions are gone, the owner's are in";
  EXPECT_EQ(owner.store->positions().at(0).second, (ports::partition_position{1, 2}))
      << "the first write moved the copy out of epoch 0";
  EXPECT_TRUE(ports::same_copy(owner.store->positions().at(0).second, follower.store->positions().at(0).second));
}

// Writers on two threads, a follower applying and acknowledging on a third:
// every acknowledgement arrives, in ticket order per worker, and the copies
// end equal.
TEST(replicated_store_threads, every_acknowledgement_arrives_and_the_copies_match) {
  node owner, follower;
  recording_stream stream;
  owner.store->set_stream(&stream);
  owner.store->set_roles(roles(P, owning({follower_id})));
  {
    auto s = start_snapshot(owner, follower_id, P);
    ASSERT_TRUE(s);
    auto marker = stream.take(follower_id);
    auto results = apply_later(follower, marker.at(0).parts);
    install(owner, follower, *s);
    ASSERT_TRUE(arrived(follower, results));
  }
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
