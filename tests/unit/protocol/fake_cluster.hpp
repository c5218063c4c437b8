#pragma once
// A ports::cluster that records what the core tells the other nodes, and
// answers claims when the test says so. Single-threaded, like the manual
// executor the tests run the core on.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "broker/ports/cluster.hpp"

namespace flock::testing {

class fake_cluster final : public ports::cluster {
 public:
  struct copy {
    ports::peer_id peer;
    core::message_ptr msg;
    std::vector<ports::shared_pick> picks;
    core::remote_ack_ptr ack;
  };
  struct claim_call {
    std::string client_id;
    core::stamp stamp;
    bool want;
    std::function<void(ports::claim_result)> done;
  };
  std::vector<std::pair<std::string, std::uint32_t>> route_changes;
  std::vector<copy> copies;
  std::vector<core::message_ptr> retained;
  std::vector<claim_call> claims;
  std::vector<std::pair<std::string, core::stamp>> announces;
  std::vector<std::pair<ports::peer_id, std::string>> installed, declined;
  std::vector<std::pair<std::string, core::delivery>> moved_deliveries;
  bool peers = true;

  void start() override {}
  void stop() override {}
  ports::cluster_status status() override { return {}; }
  void route_changed(std::string_view filter, std::uint32_t holders) override {
    route_changes.emplace_back(std::string(filter), holders);
  }
  void forward(ports::peer_id peer, const core::message_ptr& msg, std::vector<ports::shared_pick> picks,
               const core::remote_ack_ptr& ack) override {
    if (ack) ack->expect();
    copies.push_back({peer, msg, std::move(picks), ack});
  }
  void retained_changed(const core::message_ptr& msg) override { retained.push_back(msg); }
  bool has_peers() const override { return peers; }
  void claim(const std::string& client_id, core::stamp s, bool want_session,
             std::function<void(ports::claim_result)> done) override {
    claims.push_back({client_id, s, want_session, std::move(done)});
  }
  void announce(const std::string& client_id, core::stamp s) override { announces.emplace_back(client_id, s); }
  void session_installed(ports::peer_id from, const std::string& client_id, core::stamp) override {
    installed.emplace_back(from, client_id);
  }
  void session_declined(ports::peer_id from, const std::string& client_id) override {
    declined.emplace_back(from, client_id);
  }
  void deliver_to_moved(ports::peer_id, const std::string& client_id, core::delivery d) override {
    moved_deliveries.emplace_back(client_id, std::move(d));
  }
  void drain() override {}
};

}  // namespace flock::testing
