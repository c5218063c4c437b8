// A node without peers: every shared group's turn is local, nothing is
// stamped, announced or asked of anyone (cluster_side.hpp).
#include "broker/core/broker_impl.hpp"

namespace flock::core {

namespace {

class single_node final : public cluster_side {
 public:
  explicit single_node(broker::impl& b) : b_(b) {}

  void plan_peers(const message&, const std::vector<ports::shared_pick>*, std::vector<group_turn>& groups,
                  peer_plan&) override {
    for (auto& g : groups)
      g.member = g.group->next_index() % static_cast<std::uint32_t>(g.group->members().size());
  }
  remote_ack_ptr send_to_peers(const message_ptr&, peer_plan&) override { return nullptr; }
  void local_route_changed(std::string_view, std::size_t, std::size_t) override {}

  void retain(const message_ptr& msg, std::vector<ports::store_op>& ops) override {
    b_.retained.set(msg);
    if (!b_.persistence.enabled()) return;
    if (msg->payload.empty()) ops.push_back(ports::retained_delete{msg->topic});
    else ops.push_back(ports::retained_put{msg});
  }
  void retained(const message_ptr&) override {}
  void retained_restored(const message_ptr&) override {}
  void retained_expired(const message_ptr&) override {}
  void tick(ports::time_point) override {}

  stamp new_claim() override { return {}; }
  bool may_hold_elsewhere() override { return false; }
  // Never called: may_hold_elsewhere() is false.
  void fetch_session(const std::shared_ptr<session>&, stamp) override {}
  void claimed_here(const std::string&, stamp) override {}
  void restored(stamp) override {}

  void add_metrics(broker_metrics&) override {}

 private:
  broker::impl& b_;
};

}  // namespace

std::unique_ptr<cluster_side> make_single_node(broker::impl& b) { return std::make_unique<single_node>(b); }

}  // namespace flock::core
