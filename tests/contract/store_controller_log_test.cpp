// ports::store contract, part 3: the data directory's identity and the
// replication controller's Raft log kept beside the sessions. Runs against
// the RocksDB store and the memory store.
#include "tests/contract/store_contract_fixture.hpp"

#include "broker/controller/controller.hpp"
#include "storage/record_codec.hpp"

namespace flock::testing {
namespace {

using storage::column;

class store_identity_and_log : public store_contract {};
INSTANTIATE_TEST_SUITE_P(all, store_identity_and_log, ::testing::Values(store_kind::memory, store_kind::rocksdb),
                         kind_name);

ports::controller_entry entry(std::uint64_t term, std::string data) { return {term, 1, std::move(data)}; }

TEST_P(store_identity_and_log, a_directory_keeps_the_identity_of_its_first_start) {
  const auto first = reopen().identity;
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(reopen().identity, first);
  // Another directory is another store.
  auto other = storage::open_memory_store(storage::make_memory_disk(), options(), executor, clock);
  EXPECT_NE(other->load().identity, first);
}

TEST_P(store_identity_and_log, a_directory_from_before_identities_gets_one_once) {
  raw_put(column::meta, "format", storage::encode_meta(storage::record_format_version, "flock 0.1.0", {}));
  const auto given = reopen().identity;
  EXPECT_FALSE(given.empty());
  close();
  auto meta = storage::decode_meta(*raw()->get(column::meta, "format"));
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->id, given);  // written, not made up at each start
  EXPECT_EQ(reopen().identity, given);
}

TEST_P(store_identity_and_log, the_controller_log_survives_a_restart_beside_the_sessions) {
  reopen();
  auto* log = store->controller();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->load(), ports::controller_log_state{});
  ASSERT_TRUE(log->save_term_vote(3, 2));
  std::vector<ports::controller_entry> five{entry(1, "a"), entry(1, "b"), entry(2, "c"), entry(2, "d"), entry(3, "e")};
  ASSERT_TRUE(log->append(1, five));
  ASSERT_TRUE(log->truncate(4));  // a new leader overwrote 4 and 5
  std::vector<ports::controller_entry> again{entry(4, "D"), entry(4, "E"), entry(4, "F")};
  ASSERT_TRUE(log->append(4, again));
  ports::controller_snapshot snap{5, 4, "conf", 1, "state"};
  ASSERT_TRUE(log->save_snapshot(snap, 4));  // entries 4.. stay behind the snapshot
  commit({make_session(9, "client", 600)});

  auto state = reopen();
  ASSERT_EQ(state.sessions.size(), 1u);  // the sessions do not see the log
  const auto loaded = store->controller()->load();
  EXPECT_EQ(loaded.term, 3u);
  EXPECT_EQ(loaded.vote, 2u);
  EXPECT_EQ(loaded.first_index, 4u);
  EXPECT_EQ(loaded.entries, again);
  ASSERT_TRUE(loaded.snapshot);
  EXPECT_EQ(*loaded.snapshot, snap);

  // A snapshot that replaces every entry: the log starts after it.
  ASSERT_TRUE(store->controller()->save_snapshot({9, 4, "conf", 1, "later"}, 10));
  reopen();
  const auto compacted = store->controller()->load();
  EXPECT_TRUE(compacted.entries.empty());
  EXPECT_EQ(compacted.first_index, 10u);
  EXPECT_EQ(compacted.snapshot->data, "later");
}

TEST_P(store_identity_and_log, a_failed_write_says_so_and_changes_nothing) {
  reopen();
  auto* log = store->controller();
  ASSERT_TRUE(log->save_term_vote(1, 0));
  set_failing(true);
  EXPECT_FALSE(log->save_term_vote(2, 1));
  std::vector<ports::controller_entry> one{entry(2, "x")};
  EXPECT_FALSE(log->append(1, one));
  set_failing(false);
  reopen();
  const auto loaded = store->controller()->load();
  EXPECT_EQ(loaded.term, 1u);
  EXPECT_TRUE(loaded.entries.empty());
}

TEST_P(store_identity_and_log, a_damaged_log_is_refused_with_the_directory_named) {
  reopen();
  std::vector<ports::controller_entry> two{entry(1, "a"), entry(1, "b")};
  ASSERT_TRUE(store->controller()->append(1, two));
  close();
  // Entries 3 and 4 missing before 5: a gap, which Raft must never paper over.
  raw_put(column::meta, "controller/entry/" + std::string(7, '\0') + "\x05", "\x01\x01\x01x");
  store = open();
  store->load();
  try {
    store->controller()->load();
    FAIL() << "a log with a gap loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is corrupt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("controller"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace flock::testing

namespace flock::testing {
namespace {

// A one-voter controller on the store's log: it elects itself, and after a
// restart on the same directory it has its term, its log and its snapshot
// back, so it applies the same commands again and reaches the same state.
struct lone_environment final : controller::environment {
  std::uint64_t now = 1000;
  std::uint64_t now_ms() override { return now; }
  int random(int min, int) override { return min; }
  bool send(std::uint64_t, std::string) override { return false; }
};

replication::member named(std::uint64_t n) {
  replication::member m;
  m.id = {0, n};
  m.name = "node-" + std::to_string(n);
  return m;
}

TEST_P(store_identity_and_log, a_controller_restarted_on_its_directory_resumes_its_log) {
  lone_environment env;
  controller::controller_options opts;
  opts.snapshot_threshold = 8;  // some of it in a snapshot, some in entries
  opts.snapshot_trailing = 2;
  replication::controller_state before;
  std::uint64_t term_before = 0;
  {
    reopen();
    auto storage = controller::raft_storage::from(store->controller()->load(), store->controller());
    controller::controller c(1, "node-1", env, storage, opts, nullptr);
    ASSERT_TRUE(c.bootstrap({{1, "node-1", RAFT_VOTER}}));
    ASSERT_TRUE(c.start()) << c.errmsg();
    ASSERT_TRUE(c.leads());  // the only voter elects itself at once
    ASSERT_TRUE(c.propose(replication::cmd::bootstrap{16, 1, {named(1)}}));
    for (std::uint64_t s = 2; s < 20; ++s) ASSERT_TRUE(c.propose(replication::cmd::node_up{named(s)}));
    ASSERT_EQ(c.state().members().size(), 19u);
    before = c.state();
    term_before = c.term();
  }
  reopen();
  const auto kept = store->controller()->load();
  EXPECT_TRUE(kept.snapshot);
  EXPECT_GT(kept.first_index, 1u);
  auto storage = controller::raft_storage::from(kept, store->controller());
  controller::controller c(1, "node-1", env, storage, opts, nullptr);
  EXPECT_FALSE(c.bootstrap({{1, "node-1", RAFT_VOTER}}));  // it has a log already
  ASSERT_TRUE(c.start()) << c.errmsg();
  ASSERT_TRUE(c.leads());
  EXPECT_GE(c.term(), term_before);  // a lone voter elects itself without a new term
  ASSERT_TRUE(c.propose(replication::cmd::node_up{named(20)}));  // a barrier: everything before is applied
  auto expected = before;
  expected.apply(replication::cmd::node_up{named(20)});
  EXPECT_EQ(c.state(), expected);
}

}  // namespace
}  // namespace flock::testing
