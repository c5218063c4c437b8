// Replication streams between nodes (docs/replication.md, 3.2): two nodes
// on a memory network, each with a real group_commit_store on a memory
// disk. The owner's store ships its partition's groups through the node to
// the follower's node, which applies them to its store and acknowledges;
// only then do the owner's acknowledgements go out. A cut stream sends
// everything unacknowledged again once healed.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <thread>

#include "broker/replication/partition.hpp"
#include "cluster/memory_transport.hpp"
#include "cluster/node.hpp"
#include "cluster/isr_requests.hpp"
#include "cluster/replication_roles.hpp"
#include "storage/group_commit_store.hpp"
#include "storage/keys.hpp"
#include "storage/memory_backend.hpp"
#include "tests/contract/store_test_support.hpp"
#include "tests/unit/cluster/fake_host.hpp"
#include "tests/unit/controller/memory_controller_log.hpp"

using namespace flock;
using namespace std::chrono_literals;

namespace {

constexpr replication::partition_id P = 9;

// One worker thread running what the store posts.
class thread_executor final : public ports::executor {
 public:
  thread_executor() : thread_([this] { run(); }) {}
  ~thread_executor() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  std::uint32_t worker_count() const override { return 1; }
  void post(ports::worker_id, std::function<void()> task) override {
    {
      std::lock_guard lk(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_all();
  }
  ports::worker_id current_worker() const override { return 0; }

 private:
  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto t = std::move(tasks_.front());
      tasks_.pop_front();
      lk.unlock();
      t();
      lk.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

struct member {
  ports::store_identity id;
  std::shared_ptr<storage::memory_disk> disk = std::make_shared<storage::memory_disk>();
  thread_executor executor;
  flock::testing::manual_clock clock;
  std::unique_ptr<storage::group_commit_store> store;
  flock::testing::fake_host host;
  flock::testing::memory_controller_log log;
  std::unique_ptr<cluster::node> node;

  std::vector<std::string> range(replication::partition_id p = P) {
    std::vector<std::string> out;
    auto b = storage::open_memory_backend(disk);
    auto [begin, end] = storage::keys::partition_range(p);
    for (auto c : {storage::column::sessions, storage::column::subscriptions, storage::column::messages,
                   storage::column::queue})
      b->scan_range(c, begin, end, [&](std::string_view k, std::string_view v) {
        out.push_back(std::string(storage::column_name(c)) + ":" + std::string(k) + "=" + std::string(v));
      });
    return out;
  }
};

struct replication_stream : ::testing::Test {
  cluster::memory_network net;
  std::map<std::string, std::unique_ptr<member>> members;

  // factor 0: no controller, the test sets the roles; 2: the controller's map does.
  static cluster::options options_for(const std::string& name, const std::vector<std::string>& all,
                                      std::uint32_t factor) {
    return flock::testing::member_options(name, all, factor, 300ms);
  }
  member& start(const std::string& name, const std::string& other, ports::store_identity id,
                std::uint32_t factor = 0) {
    return start_with(name, options_for(name, {name, other}, factor), id);
  }
  // `disk`: a data directory from before (default: a new one).
  member& start_with(const std::string& name, const cluster::options& o, ports::store_identity id,
                     std::shared_ptr<storage::memory_disk> disk = nullptr) {
    auto& m = members[name];
    m = std::make_unique<member>();
    m->id = id;
    if (disk) m->disk = std::move(disk);
    m->store = std::make_unique<storage::group_commit_store>(storage::open_memory_backend(m->disk),
                                                             storage::group_commit_options{}, m->executor, m->clock);
    m->store->load();
    m->node = std::make_unique<cluster::node>(o, m->host, net.make_transport(name));
    m->node->attach_store(&m->log, id);
    m->node->attach_replica(m->store.get());
    m->node->start();
    return *m;
  }
  void TearDown() override {
    for (auto& [name, m] : members) m->node->stop();
  }
  bool connected(const std::string& name) { return members[name]->node->status().peers_up >= 1; }
  std::size_t backlog(const std::string& name) {
    auto s = members[name]->node->status();
    return s.peers.empty() ? 0 : s.peers[0].replication_backlog;
  }
};

std::vector<ports::store_op> session_in(replication::partition_id p, std::uint64_t counter,
                                       std::uint64_t message_id, std::size_t payload = 100) {
  const auto sid = replication::make_session_id(p, counter);
  auto m = flock::testing::make_message(message_id, "t", std::string(payload, 'x'));
  m->partitions = flock::testing::partitions({p});
  return {flock::testing::make_session(sid, "c" + std::to_string(counter)), ports::subscription_put{sid, "a/#", {}},
          ports::message_put{m}, ports::queued_put{sid, message_id, {1, false, {}}}};
}

std::vector<ports::store_op> session(std::uint64_t counter, std::uint64_t message_id) {
  return session_in(P, counter, message_id);
}

std::vector<ports::partition_role> owner_of_p(const ports::store_identity& follower) {
  std::vector<ports::partition_role> roles(replication::default_partitions);
  roles[P] = {true, 1, {{follower.hi, follower.lo}}, {}};
  return roles;
}

}  // namespace

TEST_F(replication_stream, the_owner_acknowledges_once_the_follower_has_the_group_durable) {
  auto& a = start("a", "b", {0xA, 1});
  auto& b = start("b", "a", {0xB, 2});
  ASSERT_TRUE(a.host.wait_unlocked([&] { return connected("a") && connected("b"); }));
  a.store->set_roles(owner_of_p(b.id));

  std::atomic<int> acked{0};
  for (std::uint64_t i = 1; i <= 50; ++i) {
    auto ops = session(i, 1000 + i);
    auto t = a.store->append(ops);
    a.store->when_durable(t, 0, [&] { acked.fetch_add(1); });
  }
  ASSERT_TRUE(a.host.wait_unlocked([&] { return acked.load() == 50; })) << acked.load();
  EXPECT_EQ(b.range(), a.range()) << "the follower's copy is the owner's";
  EXPECT_EQ(b.store->positions(), a.store->positions());
}

// A follower without a copy (new, or one whose history differs) answers the
// owner's parts with a gap; the owner sends it a snapshot of the partition,
// with what was written before replication, and acknowledgements then flow.
TEST_F(replication_stream, a_follower_without_a_copy_gets_a_snapshot_first) {
  auto& a = start("a", "b", {0xA, 1});
  auto& b = start("b", "a", {0xB, 2});
  ASSERT_TRUE(a.host.wait_unlocked([&] { return connected("a") && connected("b"); }));
  for (std::uint64_t i = 1; i <= 200; ++i) {
    auto ops = session(i, 1000 + i);
    a.store->append(ops);
  }
  ASSERT_TRUE(a.store->flush(5s));  // before replication: on a only
  a.store->set_roles(owner_of_p(b.id));

  std::atomic<int> acked{0};
  for (std::uint64_t i = 201; i <= 220; ++i) {
    auto ops = session(i, 1000 + i);
    auto t = a.store->append(ops);
    a.store->when_durable(t, 0, [&] { acked.fetch_add(1); });
  }
  ASSERT_TRUE(a.host.wait_unlocked([&] { return acked.load() == 20; })) << acked.load();
  EXPECT_EQ(b.range().size(), a.range().size());
  EXPECT_EQ(b.range(), a.range()) << "the copy holds the sessions from before replication";
  EXPECT_EQ(b.store->positions(), a.store->positions());
  EXPECT_EQ(b.node->status().replication_refused, 0u) << "asking for a snapshot is not a refusal";
}

// A partition nobody writes to: its follower still gets the owner's copy,
// from where the hello reply says its own stands (here: sessions written
// before replication, on a disk the owner restarted with).
TEST_F(replication_stream, an_idle_partitions_follower_gets_the_copy_without_a_write) {
  auto disk = std::make_shared<storage::memory_disk>();
  {
    thread_executor executor;
    flock::testing::manual_clock clock;
    storage::group_commit_store before(storage::open_memory_backend(disk), {}, executor, clock);
    before.load();
    for (std::uint64_t i = 1; i <= 30; ++i) {
      auto ops = session(i, 1000 + i);
      before.append(ops);
    }
    ASSERT_TRUE(before.flush(5s));
  }
  auto& a = start_with("a", options_for("a", {"a", "b"}, 0), {0xA, 1}, disk);
  auto& b = start("b", "a", {0xB, 2});
  ASSERT_TRUE(a.host.wait_unlocked([&] { return connected("a") && connected("b"); }));
  a.store->set_roles(owner_of_p(b.id));
  ASSERT_TRUE(a.host.wait_unlocked([&] { return b.range() == a.range(); }));
  EXPECT_EQ(b.range().size(), 30u * 4 + 1) << "every session, and the position record";
  EXPECT_TRUE(ports::same_copy(b.store->positions().at(0).second, a.store->positions().at(0).second));
  EXPECT_TRUE(a.host.wait_unlocked([&] { return a.node->status().snapshots_sent == 1; }));
  EXPECT_EQ(b.node->status().snapshots_installed, 1u);
}

// Snapshots share a byte budget (replication_snapshot_bytes_per_s): a copy
// of about 1.25 MiB at 1 MiB/s, a burst of one 256 KiB chunk allowed,
// takes at least about a second however fast the link is.
TEST_F(replication_stream, snapshots_keep_to_their_byte_budget) {
  auto o = options_for("a", {"a", "b"}, 0);
  o.replication_snapshot_bytes_per_s = 1u << 20;
  auto& a = start_with("a", o, {0xA, 1});
  auto& b = start("b", "a", {0xB, 2});
  ASSERT_TRUE(a.host.wait_unlocked([&] { return connected("a") && connected("b"); }));
  for (std::uint64_t i = 1; i <= 300; ++i) {
    auto ops = session_in(P, i, 1000 + i, 4096);
    a.store->append(ops);
  }
  ASSERT_TRUE(a.store->flush(5s));
  a.store->set_roles(owner_of_p(b.id));
  const auto started = std::chrono::steady_clock::now();
  auto ops = session_in(P, 301, 1301);
  a.store->append(ops);  // b answers gap: the snapshot starts at once
  ASSERT_TRUE(a.host.wait_unlocked([&] { return a.node->status().snapshots_sent == 1; }, 20s));
  const auto took = std::chrono::steady_clock::now() - started;
  const auto bytes = a.node->status().snapshot_bytes_sent;
  EXPECT_GT(bytes, 1200000u);
  // The first chunk is the burst; the rest at 1 MiB/s.
  const double least = static_cast<double>(bytes - (256u << 10)) / (1u << 20);
  EXPECT_GE(std::chrono::duration<double>(took).count(), least * 0.95) << bytes << " bytes";
  EXPECT_EQ(b.range(), a.range());
}

TEST_F(replication_stream, a_cut_stream_sends_what_was_not_acknowledged_again) {
  auto& a = start("a", "b", {0xA, 1});
  auto& b = start("b", "a", {0xB, 2});
  ASSERT_TRUE(a.host.wait_unlocked([&] { return connected("a") && connected("b"); }));
  a.store->set_roles(owner_of_p(b.id));
  net.cut("a", "b");
  std::atomic<int> acked{0};
  for (std::uint64_t i = 1; i <= 20; ++i) {
    auto ops = session(i, 1000 + i);
    auto t = a.store->append(ops);
    a.store->when_durable(t, 0, [&] { acked.fetch_add(1); });
  }
  ASSERT_TRUE(a.store->flush(5s));
  EXPECT_EQ(acked.load(), 0) << "durable on the owner only";
  // Declared down and back: the new stream carries the whole backlog.
  ASSERT_TRUE(a.host.wait_unlocked([&] { return !connected("a"); }));
  net.heal("a", "b");
  ASSERT_TRUE(a.host.wait_unlocked([&] { return acked.load() == 20; })) << acked.load();
  EXPECT_EQ(b.range(), a.range());
}

TEST_F(replication_stream, a_follower_refuses_parts_of_an_older_epoch) {
  auto& a = start("a", "b", {0xA, 1});
  auto& b = start("b", "a", {0xB, 2});
  ASSERT_TRUE(a.host.wait_unlocked([&] { return connected("a") && connected("b"); }));
  // The follower already knows epoch 2 of P: a's epoch 1 is a deposed owner's.
  std::vector<ports::partition_role> follower_roles(replication::default_partitions);
  follower_roles[P] = {false, 2, {}, {}};
  b.store->set_roles(follower_roles);
  a.store->set_roles(owner_of_p(b.id));
  std::atomic<int> acked{0};
  auto ops = session(1, 1001);
  auto t = a.store->append(ops);
  a.store->when_durable(t, 0, [&] { acked.fetch_add(1); });
  ASSERT_TRUE(a.store->flush(5s));
  // The follower refused it: its disk has nothing, and the owner's
  // acknowledgement does not go out.
  ASSERT_TRUE(b.host.wait_unlocked([&] { return b.node->status().replication_refused == 1; }));
  ASSERT_TRUE(a.host.wait_unlocked([&] { return backlog("a") == 0; })) << "its answer reached the owner";
  EXPECT_EQ(acked.load(), 0);
  EXPECT_FALSE(a.store->is_durable(t));
  EXPECT_TRUE(b.range().empty());
}

// With the controller on, the roles come from its map: whichever node owns
// a partition ships it to the other; a partition it does not own stays
// local and waits for nobody. (Which sender a follower accepts: may_send,
// below.)
TEST_F(replication_stream, roles_follow_the_controllers_map) {
  auto& a = start("a", "b", {0xA, 1}, 2);
  auto& b = start("b", "a", {0xB, 2}, 2);
  auto owned = [&](member& m) { return m.node->status().controller.owned; };
  ASSERT_TRUE(a.host.wait_unlocked([&] { return owned(a).size() + owned(b).size() == replication::default_partitions; }))
      << owned(a).size() << " + " << owned(b).size();
  // Factor 2 over two nodes: each owns some partitions and follows the rest.
  ASSERT_TRUE(a.host.wait_unlocked([&] { return a.node->status().controller.following == owned(b); }));
  replication::partition_id mine = 0, theirs = 0;
  for (replication::partition_id p = 0; p < replication::default_partitions; ++p) {
    if (owned(a).contains(p)) mine = p;
    else theirs = p;
  }
  ASSERT_NE(mine, theirs);

  std::atomic<int> acked{0};
  auto ops = session_in(mine, 1, 1001);
  auto t = a.store->append(ops);
  a.store->when_durable(t, 0, [&] { acked.fetch_add(1); });
  ASSERT_TRUE(a.host.wait_unlocked([&] { return acked.load() == 1; }));
  EXPECT_EQ(b.range(mine), a.range(mine));

  // a writes a partition b owns: kept here, not shipped, nothing waits.
  auto other = session_in(theirs, 2, 1002);
  auto t2 = a.store->append(other);
  ASSERT_TRUE(a.store->flush(5s));
  EXPECT_TRUE(a.store->is_durable(t2));
  EXPECT_TRUE(b.range(theirs).empty());
}

TEST(replication_roles, an_owner_ships_to_its_isr_and_learners_and_only_the_owner_is_applied) {
  replication::controller_state s;
  replication::member a, b, c;
  a.id = {0, 1};
  a.name = "a";
  b.id = {0, 2};
  b.name = "b";
  c.id = {0, 3};
  c.name = "c";
  ASSERT_EQ(s.apply(replication::cmd::bootstrap{16, 2, {a, b, c}}), replication::outcome::applied);
  const auto roles = cluster::roles_of(s, a.id);
  ASSERT_EQ(roles.size(), 16u);
  std::size_t owned = 0;
  for (replication::partition_id p = 0; p < 16; ++p) {
    const auto& ps = s.partition(p);
    EXPECT_EQ(roles[p].epoch, ps.epoch);
    EXPECT_EQ(roles[p].owner, ps.owner == a.id) << p;
    if (roles[p].owner) {
      ++owned;
      EXPECT_EQ(roles[p].in_sync.size(), ps.isr.size() - 1) << "every ISR member but itself";
      EXPECT_EQ(std::count(roles[p].in_sync.begin(), roles[p].in_sync.end(), a.id), 0);
      EXPECT_EQ(roles[p].learners, ps.learners);
    } else {
      EXPECT_TRUE(roles[p].in_sync.empty());
    }
    const auto other = ps.owner == b.id ? c.id : b.id;
    EXPECT_TRUE(cluster::may_send(s, p, ps.epoch, ps.owner));
    EXPECT_FALSE(cluster::may_send(s, p, ps.epoch, other)) << "not the owner of that epoch";
    EXPECT_TRUE(cluster::may_send(s, p, ps.epoch + 1, other)) << "a newer epoch this node has not applied yet";
  }
  EXPECT_GT(owned, 0u);
  EXPECT_FALSE(cluster::may_send(s, 16, 1, a.id)) << "no such partition";
}

TEST(isr_requests, an_owner_shrinks_a_lagging_follower_and_takes_it_back_once_caught_up) {
  replication::controller_state s;
  replication::member a, b, c;
  a.id = {0, 1};
  b.id = {0, 2};
  c.id = {0, 3};
  ASSERT_EQ(s.apply(replication::cmd::bootstrap{16, 2, {a, b, c}}), replication::outcome::applied);
  std::vector<replication::partition_id> shared;  // a owns, b follows
  for (replication::partition_id p = 0; p < 16; ++p) {
    const auto& ps = s.partition(p);
    if (ps.owner == a.id && std::count(ps.isr.begin(), ps.isr.end(), b.id)) shared.push_back(p);
  }
  ASSERT_FALSE(shared.empty());
  std::map<replication::partition_id, ports::partition_position> mine;
  for (auto p : shared) mine[p] = {s.partition(p).epoch, 40};

  cluster::follower_view bv{b.id, true, {}, {}};
  auto requests = cluster::isr_requests(s, a.id, {bv}, mine);
  ASSERT_EQ(requests.size(), shared.size()) << "one shrink per partition b follows for a";
  for (const auto& r : requests) {
    const auto* shrink = std::get_if<replication::cmd::isr_shrink>(&r);
    ASSERT_NE(shrink, nullptr);
    EXPECT_EQ(shrink->node, b.id);
    EXPECT_TRUE(cluster::may_request(s, a.id, r));
    EXPECT_FALSE(cluster::may_request(s, b.id, r)) << "only the owner asks";
    EXPECT_EQ(s.apply(r), replication::outcome::applied);
  }
  EXPECT_TRUE(cluster::isr_requests(s, a.id, {bv}, mine).empty()) << "nothing more while it lags";

  // Back, but behind: still out. Caught up exactly: taken back in.
  bv.lagging = false;
  for (auto p : shared) bv.reported[p] = {s.partition(p).epoch, 39};
  EXPECT_TRUE(cluster::isr_requests(s, a.id, {bv}, mine).empty());
  for (auto p : shared) bv.reported[p] = mine[p];
  requests = cluster::isr_requests(s, a.id, {bv}, mine);
  ASSERT_EQ(requests.size(), shared.size());
  for (const auto& r : requests) {
    ASSERT_TRUE(std::holds_alternative<replication::cmd::isr_expand>(r));
    EXPECT_EQ(s.apply(r), replication::outcome::applied);
  }
  EXPECT_TRUE(cluster::isr_requests(s, a.id, {bv}, mine).empty());
  EXPECT_FALSE(cluster::may_request(s, a.id, replication::cmd::node_fenced{b.id})) << "only ISR changes";
}

// Three nodes, the controller on: an owner whose follower stops answering
// has it shrunk from the ISR after the lag timeout, so its clients'
// acknowledgements go out again; once the follower is back and has caught
// up, it is taken back into the ISR.
TEST_F(replication_stream, a_lagging_follower_is_shrunk_and_taken_back_once_caught_up) {
  std::map<std::string, member*> m;
  const std::vector<std::string> names{"a", "b", "c"};
  for (std::uint64_t i = 0; i < names.size(); ++i) {
    cluster::options o = options_for(names[i], names, 2);
    o.cluster_expect = 3;
    o.failure_timeout = 600ms;
    o.replication_lag_timeout = 200ms;
    m[names[i]] = &start_with(names[i], o, {0xA0 + i, i + 1});
  }
  auto status = [&](const std::string& n) { return m[n]->node->status().controller; };
  auto describe = [&](replication::partition_id p) {
    std::string out;
    for (const auto& n : names) {
      auto s = status(n);
      out += n + "(leader " + s.leader + " fenced " + std::to_string(s.fenced) + " owns " +
             std::to_string(s.owned.contains(p)) + " follows " + std::to_string(s.following.contains(p)) +
             " catching up " + std::to_string(s.catching_up.contains(p)) + ") ";
    }
    return out;
  };
  ASSERT_TRUE(m["a"]->host.wait_unlocked([&] {
    std::size_t owned = 0;
    for (const auto& n : names) owned += status(n).owned.size();
    const auto leader = status("a").leader;
    return owned == replication::default_partitions && !leader.empty() && status("b").leader == leader &&
           status("c").leader == leader;
  }));
  // A partition neither of whose copies is on the leader: the link between
  // them is cut while both still reach the leader (which would otherwise
  // fence the one it cannot hear, a different path tested elsewhere).
  const std::string leader = status("a").leader;
  std::string owner, follower;
  replication::partition_id p = 0;
  for (std::uint32_t i = 0; i < replication::default_partitions && owner.empty(); ++i)
    for (const auto& x : names)
      for (const auto& y : names)
        if (owner.empty() && x != y && x != leader && y != leader && status(x).owned.contains(static_cast<replication::partition_id>(i)) &&
            status(y).following.contains(static_cast<replication::partition_id>(i))) {
          owner = x;
          follower = y;
          p = static_cast<replication::partition_id>(i);
        }
  ASSERT_FALSE(owner.empty());
  auto& o = *m[owner];
  auto write = [&](std::uint64_t n) {
    std::atomic<int> acked{0};
    auto ops = session_in(p, n, 1000 + n);
    auto t = o.store->append(ops);
    o.store->when_durable(t, 0, [&] { acked.fetch_add(1); });
    return o.host.wait_unlocked([&] { return acked.load() == 1; });
  };
  ASSERT_TRUE(write(1));

  net.cut(owner, follower);
  ASSERT_TRUE(write(2)) << "acknowledged once the follower left the ISR";
  ASSERT_TRUE(o.host.wait_unlocked([&] { return status(follower).catching_up.contains(p); }))
      << "the follower learns it was shrunk (through the leader); owner " << owner << " follower " << follower
      << " leader " << leader << ": " << describe(p);
  // Healed once the owner gave the follower up (its stream closed, as a TCP
  // stream across a cut this long would be): writes across the cut
  // vanished, and only a new stream sends them again.
  ASSERT_TRUE(o.host.wait_unlocked([&] { return o.node->status().peers_up == 1; }));
  net.heal(owner, follower);
  auto positions = [&](const std::string& n) {
    std::string out;
    for (const auto& [q, pos] : m[n]->store->positions())
      if (q == p) out += "(" + std::to_string(pos.epoch) + ", " + std::to_string(pos.lsn) + ")";
    return out;
  };
  ASSERT_TRUE(o.host.wait_unlocked([&] { return status(follower).following.contains(p); }))
      << "caught up and taken back in; owner " << owner << " at " << positions(owner) << ", follower " << follower
      << " at " << positions(follower) << ", owner's backlog " << backlog(owner) << ": " << describe(p);
  ASSERT_TRUE(write(3));
  // Acknowledged may be before the owner applied the expansion (then the
  // follower was not waited for): the copies meet soon after.
  EXPECT_TRUE(o.host.wait_unlocked([&] { return m[follower]->range(p) == o.range(p); }));
}
