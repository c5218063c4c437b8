// The replication controller inside nodes (docs/replication.md, slice 4):
// nodes on a memory network, each with a controller log in memory, elect
// one controller, bootstrap its state, fence a node that stops, take in a
// new one, and admit a restarted one again.
#include "cluster/node.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "cluster/memory_transport.hpp"
#include "tests/unit/cluster/fake_host.hpp"
#include "tests/unit/controller/memory_controller_log.hpp"

using namespace flock;
using namespace std::chrono_literals;

namespace {

template <class F>
bool eventually(F&& cond, std::chrono::milliseconds timeout = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

struct replicated : ::testing::Test {
  cluster::memory_network net;
  std::vector<std::string> names{"a", "b", "c"};
  struct member {
    std::unique_ptr<flock::testing::fake_host> host;
    std::unique_ptr<flock::testing::memory_controller_log> log;
    ports::store_identity store;
    std::unique_ptr<cluster::node> node;
  };
  std::map<std::string, member> members;

  cluster::options options_for(const std::string& name) {
    auto o = flock::testing::member_options(name, names, 2, 600ms);
    o.cluster_expect = 3;  // the first three create the controller; a later node joins it
    return o;
  }
  // Starts `name` on its data (kept from before, when it ran already).
  void start(const std::string& name) {
    auto& m = members[name];
    if (!m.host) {
      m.host = std::make_unique<flock::testing::fake_host>();
      m.log = std::make_unique<flock::testing::memory_controller_log>();
      m.store = {0x1000 + members.size(), 0x2000 + members.size()};
    }
    m.node = std::make_unique<cluster::node>(options_for(name), *m.host, net.make_transport(name));
    m.node->attach_store(m.log.get(), m.store);
    m.node->start();
  }
  void stop(const std::string& name) { members[name].node->stop(); }
  void TearDown() override {
    for (auto& [name, m] : members)
      if (m.node) m.node->stop();
  }
  ports::cluster_status::controller_status view(const std::string& name) {
    return members[name].node->status().controller;
  }
  std::string describe() {
    std::string out;
    for (const auto& [name, m] : members) {
      if (!m.node) continue;
      auto v = view(name);
      out += "\n" + name + ": running " + std::to_string(v.running) + " leads " + std::to_string(v.leads) +
             " lease " + std::to_string(v.lease) + " leader '" +
             v.leader + "' term " + std::to_string(v.term) + " commit " + std::to_string(v.commit_index) + " voters " +
             std::to_string(v.voters) + " stores " + std::to_string(v.members) + " fenced " + std::to_string(v.fenced) +
             " log " + std::to_string(m.log->kept.entries.size()) + " term " + std::to_string(m.log->kept.term);
    }
    return out;
  }
  // Every running node named agrees on one leader among them, which leads,
  // and reports `stores` stores of which `fenced` fenced.
  bool settled(const std::vector<std::string>& running, std::size_t stores, std::size_t fenced) {
    std::string leader;
    std::size_t leading = 0;
    for (const auto& n : running) {
      auto v = view(n);
      if (!v.running || v.leader.empty() || v.members != stores || v.fenced != fenced) return false;
      if (leader.empty()) leader = v.leader;
      if (v.leader != leader) return false;
      leading += v.leads;
    }
    return leading == 1 && std::find(running.begin(), running.end(), leader) != running.end();
  }
};

}  // namespace

TEST_F(replicated, three_nodes_elect_one_controller_and_bootstrap_its_state) {
  for (const auto& n : names) start(n);
  // Bootstrapped by one, the others added and made voters one at a time.
  auto three_voters = [&] {
    return std::all_of(names.begin(), names.end(), [&](const auto& n) { return view(n).voters == 3; });
  };
  ASSERT_TRUE(eventually([&] { return settled(names, 3, 0) && three_voters(); })) << describe();
  for (const auto& n : names) {
    EXPECT_FALSE(members[n].log->kept.entries.empty() && !members[n].log->kept.snapshot) << n << " kept no log";
  }
}

TEST_F(replicated, a_node_that_stops_is_fenced_and_a_new_one_is_taken_in) {
  for (const auto& n : names) start(n);
  ASSERT_TRUE(eventually([&] { return settled(names, 3, 0); }));
  const auto gone = view("a").leader;  // the hardest case: the leader itself
  stop(gone);
  std::vector<std::string> rest;
  for (const auto& n : names)
    if (n != gone) rest.push_back(n);
  ASSERT_TRUE(eventually([&] { return settled(rest, 3, 1); })) << "the survivors did not fence " << gone << describe();
  names.push_back("d");
  start("d");
  rest.push_back("d");
  // Four servers, three reachable: three vote.
  ASSERT_TRUE(eventually([&] { return settled(rest, 4, 1) && view("d").voters == 3; }))
      << "d was not taken in" << describe();
}

TEST_F(replicated, a_restarted_node_keeps_its_log_and_is_admitted_again_in_its_new_incarnation) {
  for (const auto& n : names) start(n);
  ASSERT_TRUE(eventually([&] { return settled(names, 3, 0); }));
  std::string follower, leader;
  for (const auto& n : names) (view(n).leads ? leader : follower) = n;
  ASSERT_FALSE(members[follower].log->kept.entries.empty());
  const auto commit_before = view(leader).commit_index;
  stop(follower);
  start(follower);  // same data, new incarnation
  // It has a log: it takes part at once, without a bootstrap of its own.
  EXPECT_TRUE(eventually([&] { return view(follower).running; }, 2s));
  // The leader fences its old incarnation and admits the new one (two
  // more entries at least); in the end nothing stays fenced.
  ASSERT_TRUE(eventually([&] { return settled(names, 3, 0) && view(leader).commit_index >= commit_before + 2; }))
      << describe();
}

TEST_F(replicated, a_leader_cut_off_loses_its_lease_the_others_keep_one_and_healing_gives_it_back) {
  for (const auto& n : names) start(n);
  ASSERT_TRUE(eventually([&] { return settled(names, 3, 0); }));
  const auto cut = view("a").leader;
  std::vector<std::string> rest;
  for (const auto& n : names)
    if (n != cut) rest.push_back(n);
  for (const auto& n : rest) net.cut(cut, n);
  // The cut-off leader steps down (no majority within an election timeout)
  // and so no longer holds the lease; the other two elect a leader among them.
  ASSERT_TRUE(eventually([&] {
    if (view(cut).lease || view(cut).leads) return false;
    for (const auto& n : rest) {
      auto v = view(n);
      if (!v.lease || v.leader.empty() || v.leader == cut) return false;
    }
    return true;
  })) << describe();
  for (const auto& n : rest) net.heal(cut, n);
  ASSERT_TRUE(eventually([&] { return view(cut).lease && settled(names, 3, 0); })) << describe();
}
