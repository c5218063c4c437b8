#pragma once
// A ports::cluster_host that records what the cluster asks of the core, for
// tests of the cluster logic without a broker. Thread-safe (the cluster calls
// it from its own and the transport's threads); wait() polls a condition with
// a deadline.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/ports/cluster.hpp"
#include "cluster/options.hpp"

namespace flock::testing {

// Node `name` of an in-process cluster of `all` on a memory network (an
// address is a name): the others are its seeds, timers are short, and
// every node expects all of them to bootstrap the replication controller.
inline cluster::options member_options(const std::string& name, const std::vector<std::string>& all,
                                       std::uint32_t replication_factor, std::chrono::milliseconds failure_timeout) {
  cluster::options o;
  o.node_name = name;
  o.listen = name;
  for (const auto& other : all)
    if (other != name) o.seeds.push_back(other);
  o.heartbeat = std::chrono::milliseconds(20);
  o.failure_timeout = failure_timeout;
  o.join_timeout = std::chrono::milliseconds(0);
  o.replication_factor = replication_factor;
  o.cluster_expect = all.size();
  return o;
}

class fake_host final : public ports::cluster_host {
 public:
  // --- what the tests look at ---
  struct forwarded {
    ports::peer_id from;
    core::message_ptr msg;
    std::vector<ports::shared_pick> picks;
  };
  std::map<std::pair<ports::peer_id, std::string>, std::uint32_t> routes;  // (peer, filter) -> holders
  std::vector<forwarded> delivered;
  std::map<std::string, core::message_ptr> retained;  // topic -> newest (empty payload: cleared)
  std::vector<std::string> ended;                     // client ids ended by end_if_older
  std::vector<std::pair<std::string, bool>> moves_finished;
  std::vector<std::string> handovers_done;
  std::vector<ports::peer_id> downs;
  std::vector<std::pair<std::string, ports::moved_delivery>> session_deliveries;

  // What on_claim answers, by client id (default: none).
  std::map<std::string, ports::claim_answer> answers;
  // Sessions reported by local_sessions.
  std::map<std::string, core::stamp> sessions;
  // Hold back deliver_forwarded's durable callback (to test unacknowledged copies).
  bool hold_durable = false;
  std::vector<std::function<void()>> held;

  template <class F>
  bool wait(F&& cond, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      {
        std::lock_guard lock(mutex);
        if (cond()) return true;
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  // As wait(), without the host's lock: for conditions that wait on the
  // node's thread (node::handover_waits), which may itself be waiting for
  // this host's lock (a heartbeat asks for the retained digest).
  template <class F>
  bool wait_unlocked(F&& cond, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }
  std::mutex mutex;

  // --- ports::cluster_host ---
  void set_peer_route(ports::peer_id peer, std::string_view filter, std::uint32_t holders) override {
    std::lock_guard lock(mutex);
    if (holders == 0) routes.erase({peer, std::string(filter)});
    else routes[{peer, std::string(filter)}] = holders;
  }
  void clear_peer_routes(ports::peer_id peer) override {
    std::lock_guard lock(mutex);
    std::erase_if(routes, [&](const auto& e) { return e.first.first == peer; });
  }
  std::uint64_t local_publishes() override { return publishes; }
  void settle_routing() override {}
  std::uint64_t publishes = 0;  // what local_publishes() answers
  void deliver_forwarded(ports::peer_id from, std::vector<ports::forwarded_publish> batch,
                         std::function<void()> durable) override {
    std::lock_guard lock(mutex);
    for (auto& f : batch) delivered.push_back({from, f.msg, f.picks});
    if (hold_durable) held.push_back(std::move(durable));
    else durable();
  }
  void deliver_to_session(const std::string& client_id, ports::moved_delivery d) override {
    std::lock_guard lock(mutex);
    arrivals.push_back("delivery " + client_id);
    session_deliveries.emplace_back(client_id, std::move(d));
  }
  void merge_retained(core::message_ptr msg) override {
    std::lock_guard lock(mutex);
    auto& have = retained[msg->topic];
    if (!have || have->written < msg->written) have = msg;
  }
  void retained_snapshot(const std::function<void(const core::message_ptr&)>& fn) override {
    std::vector<core::message_ptr> all;
    {
      std::lock_guard lock(mutex);
      for (auto& [t, m] : retained) all.push_back(m);
    }
    for (auto& m : all) fn(m);
  }
  std::uint64_t retained_digest() override {
    std::lock_guard lock(mutex);
    std::uint64_t d = 0;
    for (auto& [t, m] : retained)
      if (!m->payload.empty()) d ^= core::node_hash(t) ^ m->written.time;
    return d;
  }
  void on_claim(ports::peer_id, const std::string& client_id, core::stamp, bool,
                std::function<void(ports::claim_answer)> reply) override {
    ports::claim_answer a;
    {
      std::lock_guard lock(mutex);
      if (auto it = answers.find(client_id); it != answers.end()) a = it->second;
    }
    reply(std::move(a));
  }
  void on_move_finished(ports::peer_id, const std::string& client_id, bool installed) override {
    std::lock_guard lock(mutex);
    moves_finished.emplace_back(client_id, installed);
  }
  void handover_done(const std::string& client_id) override {
    std::lock_guard lock(mutex);
    handovers_done.push_back(client_id);
  }
  void end_if_older(const std::string& client_id, core::stamp s) override {
    std::lock_guard lock(mutex);
    auto it = sessions.find(client_id);
    if (it != sessions.end() && it->second < s) {
      ended.push_back(client_id);
      sessions.erase(it);
    }
  }
  void local_sessions(const std::function<void(const std::string&, core::stamp)>& fn) override {
    std::map<std::string, core::stamp> copy;
    {
      std::lock_guard lock(mutex);
      copy = sessions;
    }
    for (auto& [id, s] : copy) fn(id, s);
  }
  void peer_down(ports::peer_id peer) override {
    std::lock_guard lock(mutex);
    downs.push_back(peer);
    std::erase_if(routes, [&](const auto& e) { return e.first.first == peer; });
  }
  core::hybrid_clock& clock() override { return clock_; }
  void hand_off(ports::peer_id to, const std::string& client_id,
                std::function<void(std::optional<ports::moved_session>)> reply) override {
    ports::moved_session m;
    {
      std::lock_guard lock(mutex);
      auto it = sessions.find(client_id);
      if (it == sessions.end()) return reply(std::nullopt);
      m.claimed = it->second;
      m.expiry_interval = 60;
      handed_off.push_back(client_id);
    }
    reply(std::move(m));
    // As the session's worker goes on: what reaches the session next follows it.
    if (after_hand_off) after_hand_off(to, client_id);
  }
  std::function<void(ports::peer_id, const std::string&)> after_hand_off;
  void adopt_session(ports::peer_id, const std::string& client_id, ports::moved_session m,
                     std::function<void(bool)> done) override {
    {
      std::lock_guard lock(mutex);
      adopted.push_back(client_id);
      arrivals.push_back("session " + client_id);
      sessions[client_id] = m.claimed;
    }
    done(!refuse_adoption);
  }
  std::vector<std::string> handed_off, adopted;
  std::vector<std::string> arrivals;  // sessions adopted and deliveries to sessions, in order
  bool refuse_adoption = false;

 private:
  core::hybrid_clock clock_{1};
};

}  // namespace flock::testing
