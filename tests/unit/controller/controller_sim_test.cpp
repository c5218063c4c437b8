// The controller on a simulated network: N servers in one thread, one
// manual clock, messages delayed, lost on cut links, servers crashed with
// their storage kept. Checks what the replication design relies on: one
// leader at a time per term, every committed command applied in the same
// order everywhere, progress while a majority is connected, none without.
#include "broker/controller/controller.hpp"
#include "tests/unit/controller/memory_controller_log.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>

using namespace flock;
using namespace flock::controller;
using namespace flock::replication;

namespace {

struct network;

struct server final : environment {
  network& net;
  std::uint64_t id;
  flock::testing::memory_controller_log disk;  // what a crash keeps
  raft_storage storage;
  std::unique_ptr<flock::controller::controller> c;
  std::map<std::uint64_t, std::string> applied;  // log index -> encoded command

  server(network& n, std::uint64_t i) : net(n), id(i) {}
  std::uint64_t now_ms() override;
  int random(int min, int max) override;
  bool send(std::uint64_t to, std::string bytes) override;
};

struct network {
  std::uint64_t now = 1'000'000;
  std::mt19937_64 rng;
  struct message {
    std::uint64_t at, from, to;
    std::string bytes;
  };
  std::vector<message> in_flight;
  std::set<std::pair<std::uint64_t, std::uint64_t>> cut;  // (from, to)
  std::map<std::uint64_t, std::unique_ptr<server>> servers;
  controller_options options{.election_timeout_ms = 200, .heartbeat_timeout_ms = 20, .snapshot_threshold = 64,
                             .snapshot_trailing = 8, .install_snapshot_timeout_ms = 1000};

  explicit network(std::uint64_t seed, int n) : rng(seed) {
    std::vector<raft_server_info> voters;
    for (int i = 1; i <= n; ++i) voters.push_back({std::uint64_t(i), "node-" + std::to_string(i), RAFT_VOTER});
    for (int i = 1; i <= n; ++i) {
      auto s = std::make_unique<server>(*this, i);
      servers[i] = std::move(s);
      boot(i);
      EXPECT_TRUE(servers[i]->c->bootstrap(voters));
      EXPECT_TRUE(servers[i]->c->start()) << servers[i]->c->errmsg();
    }
  }

  void boot(std::uint64_t id) {
    auto& s = *servers[id];
    s.applied.clear();  // replayed from the log and snapshot on start
    s.storage = raft_storage::from(s.disk.load(), &s.disk);  // only what was made durable
    s.c = std::make_unique<flock::controller::controller>(id, "node-" + std::to_string(id), s, s.storage, options,
                                       [&s](std::uint64_t index, const command& c, outcome) { s.applied[index] = encode_command_for_test(c); });
  }
  static std::string encode_command_for_test(const command& c);

  void crash(std::uint64_t id) { servers[id]->c.reset(); }
  void restart(std::uint64_t id) {
    boot(id);
    ASSERT_TRUE(servers[id]->c->start()) << servers[id]->c->errmsg();
  }
  bool up(std::uint64_t id) const { return servers.at(id)->c != nullptr; }

  void isolate(std::uint64_t id) {
    for (const auto& [other, s] : servers)
      if (other != id) cut.insert({id, other}), cut.insert({other, id});
  }
  void heal() { cut.clear(); }

  // One millisecond: due messages delivered (to servers that are up), then ticks.
  void step() {
    ++now;
    std::vector<message> due;
    std::erase_if(in_flight, [&](message& m) {
      if (m.at > now) return false;
      due.push_back(std::move(m));
      return true;
    });
    std::stable_sort(due.begin(), due.end(), [](const message& a, const message& b) { return a.at < b.at; });
    for (auto& m : due)
      if (up(m.to)) servers[m.to]->c->receive(m.from, "node-" + std::to_string(m.from), m.bytes);
    for (auto& [id, s] : servers)
      if (s->c) s->c->tick();
  }
  void run(std::uint64_t ms) {
    for (std::uint64_t i = 0; i < ms; ++i) step();
  }
  // Runs until `done` or `limit` ms; true when done.
  template <typename F>
  bool run_until(F done, std::uint64_t limit) {
    for (std::uint64_t i = 0; i < limit; ++i) {
      if (done()) return true;
      step();
    }
    return done();
  }

  std::vector<std::uint64_t> leaders() const {
    std::vector<std::uint64_t> out;
    for (const auto& [id, s] : servers)
      if (s->c && s->c->leads()) out.push_back(id);
    return out;
  }
  std::uint64_t leader() const {
    auto l = leaders();
    return l.size() == 1 ? l[0] : 0;
  }
  bool propose(const command& c) {
    auto l = leader();
    return l != 0 && servers.at(l)->c->propose(c);
  }
};

std::uint64_t server::now_ms() { return net.now; }
int server::random(int min, int max) { return min + static_cast<int>(net.rng() % static_cast<std::uint64_t>(max - min + 1)); }
bool server::send(std::uint64_t to, std::string bytes) {
  if (net.cut.count({id, to})) return true;  // lost on the way
  net.in_flight.push_back({net.now + 1 + net.rng() % 5, id, to, std::move(bytes)});
  return true;
}

}  // namespace

#include "broker/controller/command_codec.hpp"

std::string network::encode_command_for_test(const command& c) { return encode_command(c); }

namespace {

member store(std::uint64_t n) {
  member m;
  m.id = {0, n};
  m.name = "node-" + std::to_string(n);
  return m;
}

// Every log index applied by two servers holds the same command on both
// (a server restored from a snapshot did not see the commands before it).
void expect_one_history(const network& net) {
  std::map<std::uint64_t, std::pair<std::uint64_t, std::string>> seen;
  for (const auto& [id, s] : net.servers)
    for (const auto& [index, c] : s->applied) {
      auto [it, fresh] = seen.try_emplace(index, id, c);
      ASSERT_EQ(it->second.second, c) << "servers " << it->second.first << " and " << id << " differ at index " << index;
    }
}

bool all_applied(const network& net, std::size_t n) {
  return std::all_of(net.servers.begin(), net.servers.end(),
                     [&](const auto& kv) { return kv.second->c && kv.second->c->state().members().size() >= n; });
}

// A leader elected and the controller bootstrapped over stores 1-3 on every
// server (proposed again if a new leader's term swallowed the proposal).
bool elect_and_bootstrap(network& net) {
  std::uint64_t waited = 0;
  return net.run_until(
      [&] {
        if (waited++ % 100 == 0) net.propose(cmd::bootstrap{16, 2, {store(1), store(2), store(3)}});
        return all_applied(net, 3);
      },
      5000);
}

}  // namespace

TEST(controller_sim, three_voters_elect_one_leader_and_apply_the_same_commands) {
  network net(1, 3);
  ASSERT_TRUE(net.run_until([&] { return net.leader() != 0; }, 5000));
  ASSERT_TRUE(net.propose(cmd::bootstrap{16, 2, {store(1), store(2), store(3)}}));
  for (std::uint64_t s = 4; s < 14; ++s) ASSERT_TRUE(net.propose(cmd::node_up{store(s)}));
  ASSERT_TRUE(net.run_until([&] { return all_applied(net, 13); }, 5000));
  expect_one_history(net);
  const auto& first = net.servers[1]->c->state();
  for (const auto& [id, s] : net.servers) EXPECT_EQ(s->c->state(), first) << "server " << id;
  EXPECT_EQ(first.partition_count(), 16u);
  EXPECT_EQ(first.broken_invariant(), std::nullopt);
}

TEST(controller_sim, a_crashed_leader_is_replaced_and_catches_up_from_its_log_when_back) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    network net(seed, 3);
    ASSERT_TRUE(elect_and_bootstrap(net)) << "seed " << seed;
    const auto old = net.leader();
    const auto old_term = net.servers[old]->c->term();
    net.crash(old);
    ASSERT_TRUE(net.run_until([&] { return net.leader() != 0; }, 5000)) << "seed " << seed;
    EXPECT_GT(net.servers[net.leader()]->c->term(), old_term);
    // Fencing the crashed store, as the leader will: the survivors take its partitions.
    ASSERT_TRUE(net.propose(cmd::node_fenced{{0, old}}));
    for (std::uint64_t s = 4; s < 8; ++s) ASSERT_TRUE(net.propose(cmd::node_up{store(s)}));
    net.run(500);
    net.restart(old);
    ASSERT_TRUE(net.run_until([&] { return all_applied(net, 7); }, 5000)) << "seed " << seed;
    net.run(200);
    expect_one_history(net);
    for (const auto& [id, s] : net.servers) EXPECT_EQ(s->c->state(), net.servers[old]->c->state()) << "seed " << seed;
    EXPECT_TRUE(net.servers[old]->c->state().find({0, old})->fenced);
  }
}

TEST(controller_sim, a_cut_off_leader_steps_down_and_the_majority_goes_on) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    network net(seed, 3);
    ASSERT_TRUE(elect_and_bootstrap(net)) << "seed " << seed;
    const auto old = net.leader();
    net.isolate(old);
    // What it appends alone never commits.
    ASSERT_TRUE(net.servers[old]->c->propose(cmd::node_up{store(99)}));
    // It steps down (no majority within an election timeout); the others elect.
    ASSERT_TRUE(net.run_until(
        [&] {
          auto l = net.leaders();
          return !net.servers[old]->c->leads() && l.size() == 1 && l[0] != old;
        },
        5000))
        << "seed " << seed;
    ASSERT_TRUE(net.propose(cmd::node_up{store(4)}));
    net.run(300);
    EXPECT_EQ(net.servers[old]->c->state().members().size(), 3u);  // cut off: nothing new
    net.heal();
    ASSERT_TRUE(net.run_until([&] { return all_applied(net, 4); }, 5000)) << "seed " << seed;
    net.run(200);
    expect_one_history(net);
    for (const auto& [id, s] : net.servers) {
      EXPECT_EQ(s->c->state().find({0, 99}), nullptr) << "an entry only the cut-off leader had was committed";
      EXPECT_EQ(s->c->state(), net.servers[1]->c->state());
    }
  }
}

TEST(controller_sim, a_server_far_behind_is_brought_up_to_date_by_a_snapshot) {
  network net(3, 3);
  ASSERT_TRUE(elect_and_bootstrap(net));
  std::uint64_t behind = net.leader() % 3 + 1;  // a follower
  net.crash(behind);
  // Far more entries than the snapshot threshold (64) while it is down.
  for (std::uint64_t s = 4; s < 304; ++s) {
    ASSERT_TRUE(net.run_until([&] { return net.propose(cmd::node_up{store(s)}); }, 2000));
    if (s % 20 == 0) net.run(30);
  }
  ASSERT_TRUE(net.run_until([&] { return net.servers[net.leader()]->c->state().members().size() >= 303; }, 5000));
  net.restart(behind);
  ASSERT_TRUE(net.run_until([&] { return all_applied(net, 303); }, 10000));
  for (const auto& [id, s] : net.servers) EXPECT_EQ(s->c->state(), net.servers[behind]->c->state());
  EXPECT_LT(net.servers[behind]->storage.entries.size(), 200u);  // the log was compacted
  EXPECT_TRUE(net.servers[behind]->storage.last_snapshot);
}

// Random schedules of cuts (symmetric and one-way), crashes and restarts
// over five voters while commands keep coming: never two leaders in one
// term, one history everywhere, and once healed everybody converges.
TEST(controller_sim, random_cuts_and_crashes_keep_one_leader_per_term_and_one_history) {
  std::uint64_t total_accepted = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    network net(seed, 5);
    ASSERT_TRUE(elect_and_bootstrap(net)) << "seed " << seed;
    std::uint64_t waited = 0;
    std::map<std::uint64_t, std::uint64_t> leader_of_term;
    std::uint64_t next_store = 4, accepted = 0;  // proposals a leader took (not all commit)
    for (int round = 0; round < 40; ++round) {
      const auto what = net.rng() % 6;
      const std::uint64_t a = 1 + net.rng() % 5, b = 1 + net.rng() % 5;
      if (what == 0) net.isolate(a);
      else if (what == 1 && a != b) net.cut.insert({a, b});  // one way only
      else if (what == 2 && net.up(a)) net.crash(a);
      else if (what == 3 && !net.up(a)) net.restart(a);
      else if (what == 4) net.heal();
      for (int ms = 0; ms < 150; ++ms) {
        // Now and then a server reboots at once, in the middle of whatever
        // it was doing (voting, appending): only its storage survives.
        if (net.rng() % 200 == 0) {
          const std::uint64_t r = 1 + net.rng() % 5;
          if (net.up(r)) {
            net.crash(r);
            net.restart(r);
          }
        }
        net.step();
        for (const auto& [id, s] : net.servers) {
          if (!s->c || !s->c->leads()) continue;
          auto [it, fresh] = leader_of_term.try_emplace(s->c->term(), id);
          ASSERT_EQ(it->second, id) << "seed " << seed << ": two leaders in term " << s->c->term();
        }
        if (ms % 50 == 0 && net.propose(cmd::node_up{store(next_store)})) ++next_store, ++accepted;
      }
      expect_one_history(net);
    }
    net.heal();
    for (const auto& [id, s] : net.servers)
      if (!s->c) net.restart(id);
    // A proposal may be lost with its leader's term: proposed again (a
    // node_up already applied is a no-op) until every server has it.
    waited = 0;
    ASSERT_TRUE(net.run_until(
        [&] {
          if (++waited % 100 == 0) net.propose(cmd::node_up{store(next_store)});
          for (const auto& [id, s] : net.servers)
            if (s->c->state() != net.servers[1]->c->state() || !s->c->state().find({0, next_store})) return false;
          return true;
        },
        20000))
        << "seed " << seed << [&] {
             std::string d;
             for (const auto& [id, s] : net.servers)
               d += "\n server " + std::to_string(id) + " leads " + std::to_string(s->c->leads()) + " term " +
                    std::to_string(s->c->term()) + " leader " + std::to_string(s->c->leader()) + " commit " +
                    std::to_string(s->c->commit_index()) + " applied " + std::to_string(s->c->applied_index()) +
                    " last " + std::to_string(s->storage.last_index()) + " members " +
                    std::to_string(s->c->state().members().size()) + " snapshot " +
                    std::to_string(s->storage.last_snapshot ? s->storage.last_snapshot->index : 0) + " err " + s->c->errmsg();
             return d;
           }();
    expect_one_history(net);
    EXPECT_GE(net.servers[1]->c->state().members().size(), 4u);
    total_accepted += accepted;
  }
  // The schedules left room for progress: most rounds got commands in.
  EXPECT_GT(total_accepted, 60u * 20);
}
