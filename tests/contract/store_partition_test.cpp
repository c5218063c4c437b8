// The store keyed by partition (record format 3, storage/keys.hpp): a
// message has a copy in each partition whose sessions reference it, one
// partition is one key range in every column (loaded alone, dropped with
// one range delete per column), and format 2 directories are rewritten into
// that layout at start-up. Runs against RocksDB and memory.
#include <gtest/gtest.h>

#include <mutex>
#include <optional>
#include <set>

#include "broker/replication/partition.hpp"
#include "storage/keys.hpp"
#include "storage/loader.hpp"
#include "storage/partition_writes.hpp"
#include "storage/record_codec.hpp"
#include "tests/contract/store_contract_fixture.hpp"

namespace flock::testing {
namespace {

using storage::column;
using replication::make_session_id;

constexpr column session_columns[] = {column::sessions, column::subscriptions, column::messages,
                                      column::queue,    column::inflight,      column::incoming};

// A persistent session of partition p with one of everything under it, and
// message `id` queued and in flight (the message's copy is the caller's).
void add_session(std::vector<ports::store_op>& ops, replication::partition_id p, std::uint64_t counter,
                 std::uint64_t message_id) {
  const auto sid = make_session_id(p, counter);
  ops.push_back(make_session(sid, "client-" + std::to_string(p)));
  ops.push_back(ports::subscription_put{sid, "f/" + std::to_string(p), {}});
  ops.push_back(ports::queued_put{sid, message_id, {1, false, {}}});
  ops.push_back(ports::inflight_put{sid, message_id, 7, core::outgoing_state::awaiting_puback, {1, false, {}}});
  ops.push_back(ports::incoming_put{sid, 9});
}

TEST_P(store_contract, a_message_has_a_copy_in_each_partition_that_references_it) {
  reopen();
  auto m = make_message(10, "t");
  m->partitions = partitions({1, 2});
  std::vector<ports::store_op> ops{ports::message_put{m}};
  add_session(ops, 1, 5, 10);
  add_session(ops, 2, 6, 10);
  commit(ops);
  EXPECT_EQ(keys(column::messages),
            (std::vector<std::string>{storage::keys::message_key(1, 10), storage::keys::message_key(2, 10)}));

  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 2u);
  ASSERT_EQ(s.sessions[0].queue.size(), 1u);
  ASSERT_EQ(s.sessions[1].queue.size(), 1u);
  EXPECT_EQ(s.sessions[0].queue[0].msg, s.sessions[1].queue[0].msg) << "the copies are one message in memory";
  EXPECT_EQ(s.sessions[0].queue[0].msg->partitions, partitions({1, 2}));
  EXPECT_EQ(s.next_id, 11u) << "above the counters of session ids, not their partition bits";

  std::vector<ports::store_op> acks;
  for (const auto& r : s.sessions) {
    acks.push_back(ports::queued_delete{r.session_id, 10});
    acks.push_back(ports::inflight_delete{r.session_id, 10});
  }
  acks.push_back(ports::message_delete{10, partitions({1, 2})});
  commit(acks);
  EXPECT_TRUE(keys(column::messages).empty());
}

TEST_P(store_contract, a_partition_is_one_key_range_in_every_column) {
  reopen();
  std::vector<ports::store_op> ops;
  for (replication::partition_id p : {1, 2, 3}) {
    auto m = make_message(100 + p, "t");
    m->partitions = partitions({p});
    ops.push_back(ports::message_put{m});
    add_session(ops, p, 10 + p, 100 + p);
  }
  commit(ops);
  close();

  // Loaded alone: partition 2's session and nothing of its neighbours.
  auto backend = raw();
  auto two = storage::load_partition(*backend, clock, 2, {});
  ASSERT_EQ(two.sessions.size(), 1u);
  const auto& r = two.sessions[0];
  EXPECT_EQ(r.session_id, make_session_id(2, 12));
  ASSERT_EQ(r.subscriptions.size(), 1u);
  EXPECT_EQ(r.subscriptions[0].first, "f/2");
  ASSERT_EQ(r.queue.size(), 1u);
  EXPECT_EQ(r.queue[0].msg->id, 102u);
  ASSERT_EQ(r.inflight.size(), 1u);
  EXPECT_EQ(r.incoming_qos2, (std::vector<std::uint16_t>{9}));
  EXPECT_EQ(two.next_id, 103u);
  backend.reset();

  // Dropped: every column loses partition 2's range and only that.
  reopen();
  commit({ports::partition_drop{2}});
  for (column c : session_columns) {
    auto k = keys(c);
    ASSERT_EQ(k.size(), 2u) << storage::column_name(c);
    EXPECT_EQ(storage::keys::get_be16(k[0]), 1u) << storage::column_name(c);
    EXPECT_EQ(storage::keys::get_be16(k[1]), 3u) << storage::column_name(c);
  }
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 2u);
  for (const auto& left : s.sessions) {
    EXPECT_EQ(left.queue.size(), 1u);
    EXPECT_EQ(left.inflight.size(), 1u);
  }
}

TEST_P(store_contract, a_reference_to_a_copy_in_another_partition_is_repaired) {
  reopen();
  auto m = make_message(10, "t");
  m->partitions = partitions({1});  // a copy for partition 1 only
  std::vector<ports::store_op> ops{ports::message_put{m}};
  add_session(ops, 1, 5, 10);
  add_session(ops, 2, 6, 10);  // partition 2's records point at a copy it does not have
  commit(ops);
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 2u);
  for (const auto& r : s.sessions) {
    const bool has_copy = replication::partition_of_session(r.session_id) == 1;
    EXPECT_EQ(r.queue.size(), has_copy ? 1u : 0u);
    EXPECT_EQ(r.inflight.size(), has_copy ? 1u : 0u);
  }
  auto lines = log_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("2 queued/in-flight record(s) of missing messages"), std::string::npos) << lines.back();
  EXPECT_EQ(keys(column::queue).size(), 1u) << "the dangling record is gone from disk";
}

// A format 2 directory written by hand: session ids from the counter alone,
// messages under be64(id).
TEST_P(store_contract, a_format_2_directory_is_rewritten_by_partition) {
  const std::string in_zero = "c147";  // partition_of("c147") == 0: keeps its id
  ASSERT_EQ(replication::partition_of(in_zero), 0u);
  ASSERT_NE(replication::partition_of("a"), replication::partition_of("b"));
  storage::wall_clock_mapping time(clock);
  storage::kv_batch old;
  old.push_back({storage::kv_write::kind::put, column::meta, std::string(storage::keys::meta_format),
                 storage::encode_meta(2, "flock 0.9", {})});
  auto encode = [&](const ports::store_op& op) { storage::encode_op(op, time, old); };
  encode(make_session(1, "a"));
  encode(make_session(2, "b"));
  encode(make_session(3, in_zero));
  auto shared = make_message(4, "t", "shared");
  auto lonely = make_message(8, "t", "nobody's");
  for (auto& msg : {shared, lonely}) {
    const std::size_t at = old.size();
    encode(ports::message_put{msg});
    old[at].key = storage::keys::id_key(msg->id);  // format 2's message key
    old.resize(at + 1);
  }
  for (std::uint64_t sid : {1, 2, 3}) {
    encode(ports::subscription_put{sid, "f", {}});
    encode(ports::queued_put{sid, 4, {1, false, {}}});
  }
  encode(ports::inflight_put{1, 4, 3, core::outgoing_state::awaiting_pubrec, {2, false, {}}});
  encode(ports::incoming_put{2, 11});
  encode(ports::queued_put{9, 4, {}});  // a session that does not exist
  close();
  ASSERT_TRUE(raw()->write(old, true).ok());

  auto s = reopen();
  const auto lines = log_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("keyed by partition (record format 3): renamed 2 session(s), moved 6 of their "
                               "record(s), wrote 3 message cop(ies)"),
            std::string::npos)
      << lines.front();
  ASSERT_EQ(s.sessions.size(), 3u);
  std::map<std::string, const ports::restored_session*> by_client;
  for (const auto& r : s.sessions) by_client[r.client_id] = &r;
  for (auto [client, counter] : {std::pair{"a", 1u}, {"b", 2u}, {in_zero.c_str(), 3u}}) {
    const auto& r = *by_client.at(client);
    EXPECT_EQ(r.session_id, make_session_id(replication::partition_of(client), counter)) << client;
    ASSERT_EQ(r.subscriptions.size(), 1u) << client;
    ASSERT_EQ(r.queue.size(), 1u) << client;
    EXPECT_EQ(r.queue[0].msg->payload, "shared");
  }
  ASSERT_EQ(by_client.at("a")->inflight.size(), 1u);
  EXPECT_EQ(by_client.at("a")->inflight[0].packet_id, 3);
  EXPECT_EQ(by_client.at("b")->incoming_qos2, (std::vector<std::uint16_t>{11}));
  EXPECT_EQ(s.next_id, 10u) << "above the old counters (the orphan's 9 included)";
  EXPECT_FALSE(s.identity.empty());

  // On disk: the new keys only, one copy per partition, the new format.
  std::vector<std::string> expected;
  for (const char* client : {"a", "b", in_zero.c_str()})
    expected.push_back(storage::keys::message_key(replication::partition_of(client), 4));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(keys(column::messages), expected);
  for (const auto& k : keys(column::queue))
    EXPECT_NE(storage::keys::get_be64(k), 9u) << "the orphan's record is repaired away";
  auto meta = storage::decode_meta(*raw()->get(column::meta, "format"));
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->format_version, 3u);

  // Once is enough: the next start finds format 3 and the same state.
  const std::size_t logged = log_lines().size();
  auto again = reopen();
  EXPECT_EQ(again.sessions.size(), 3u);
  EXPECT_EQ(log_lines().size(), logged) << "no migration or repair the second time";
}

// What the owner sends a new replica (docs/replication.md, 6): a snapshot
// reads the partition as it was when taken, whatever is written after it,
// in chunks, without its position record.
TEST_P(store_contract, a_partition_snapshot_reads_the_copy_as_it_was_while_writes_go_on) {
  struct no_stream final : ports::replication_stream {
    void send(const replication::store_id&, std::uint64_t, std::vector<ports::replicated_part_ptr>) override {}
  } stream;
  constexpr replication::partition_id p = 9;
  reopen();
  auto* replica = store->replica();
  ASSERT_NE(replica, nullptr);
  replica->set_stream(&stream);
  std::vector<ports::partition_role> roles(replication::default_partitions);
  roles[p] = {true, 1, {}, {}};
  replica->set_roles(roles);
  std::vector<ports::store_op> ops;
  for (std::uint64_t i = 1; i <= 30; ++i) {
    auto m = make_message(100 + i, "t");
    m->partitions = partitions({p});
    ops.push_back(ports::message_put{m});
    add_session(ops, p, i, 100 + i);
  }
  commit(std::move(ops));

  std::mutex mu;
  std::optional<ports::snapshot_started> started;
  bool answered = false;
  replica->snapshot(p, {0, 2}, [&](std::optional<ports::snapshot_started> s) {
    std::lock_guard lk(mu);
    started = s;
    answered = true;
  });
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lk(mu);
    return answered;
  }));
  ASSERT_TRUE(started);
  // Written after the snapshot: not in it.
  commit({ports::session_delete{make_session_id(p, 1)}});
  std::vector<ports::store_op> later;
  add_session(later, p, 31, 131);
  commit(std::move(later));

  std::set<std::string> sessions;
  std::size_t chunks = 0;
  for (bool last = false; !last;) {
    std::optional<ports::snapshot_chunk> chunk;
    bool got = false;
    replica->next_chunk(started->id, 300, [&](std::optional<ports::snapshot_chunk> c) {
      std::lock_guard lk(mu);
      chunk = std::move(c);
      got = true;
    });
    ASSERT_TRUE(eventually([&] {
      std::lock_guard lk(mu);
      return got;
    }));
    ASSERT_TRUE(chunk);
    EXPECT_EQ(chunk->seq, chunks++);
    last = chunk->last;
    auto writes = storage::decode_writes(chunk->writes, p);
    ASSERT_TRUE(writes);
    for (const auto& w : *writes) {
      EXPECT_EQ(w.op, storage::kv_write::kind::put);
      if (w.col != column::sessions) continue;
      EXPECT_FALSE(storage::is_position_key(w.key)) << "the follower writes the position itself, last";
      sessions.insert(w.key);
    }
  }
  replica->end_snapshot(started->id);
  EXPECT_GT(chunks, 10u);
  EXPECT_EQ(sessions.size(), 30u);
  EXPECT_TRUE(sessions.contains(storage::keys::id_key(make_session_id(p, 1)))) << "deleted after the snapshot";
  EXPECT_FALSE(sessions.contains(storage::keys::id_key(make_session_id(p, 31)))) << "written after the snapshot";
}

}  // namespace
}  // namespace flock::testing
