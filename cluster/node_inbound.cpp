// Frames from peers: the stream handlers (transport threads) and what the
// node's thread does with control frames.
#include "broker/server/log.hpp"
#include "cluster/handlers.hpp"
#include "cluster/node.hpp"
#include "cluster/cluster_secret.hpp"
#include "cluster/forward_codec.hpp"
#include "cluster/wire_codec.hpp"

namespace flock::cluster {

namespace log = server::log;

namespace {
ports::time_point now() { return std::chrono::steady_clock::now(); }
constexpr std::chrono::seconds resync_pause{1};
constexpr int retained_mismatch_heartbeats = 3;
constexpr std::chrono::seconds retained_push_pause{5};
}  // namespace

// --- our streams ---

void outbound_handler::on_response(wire::Batch&& batch) {
  auto self = shared_from_this();
  for (auto& f : *batch.mutable_frames()) {
    if (f.has_ack()) {
      if (peer_) peer_->on_ack(f.ack().seq());
    } else if (f.has_hello_reply()) {
      const auto& from = f.hello_reply().from();
      if (!hello_proof_ok(node_.secret_, hello_direction::reply, from.name(), from.incarnation(),
                          f.hello_reply().proof())) {
        // Whoever answers at this address does not know the secret: tell it nothing.
        node_.refusals_->refuse(ports::peer_refusal::secret, from.name(),
                                "its hello reply does not prove the cluster secret");
        asio::post(node_.io_, [this, self] {
          if (link) link->close();
        });
        return;
      }
      asio::post(node_.io_, [this, self, reply = std::move(*f.mutable_hello_reply())] {
        if (peer_) return node_.on_connected(*peer_, link, reply);
        // A probe: now we know who is at that address.
        if (reply.from().name() == node_.opts_.node_name) {
          node_.self_addresses_.insert(probe_address_);
        } else {
          node_.probed_names_[probe_address_] = reply.from().name();
          node_.learn(reply.from());
          for (const auto& m : reply.members()) node_.learn(m);
        }
        if (link) link->close();
      });
    } else if (f.has_replicate_ack() && peer_) {
      asio::post(node_.io_, [this, self, ack = std::move(*f.mutable_replicate_ack())] {
        node_.on_replicate_ack(*peer_, ack);
      });
    } else if (f.has_snapshot_chunk_ack() && peer_) {
      asio::post(node_.io_, [this, self, ack = std::move(*f.mutable_snapshot_chunk_ack())] {
        node_.on_snapshot_chunk_ack(*peer_, ack);
      });
    } else if (f.has_resync_routes() && peer_) {
      asio::post(node_.io_, [this, self] {
        if (peer_->handshaken && peer_->link == link) node_.send_route_snapshot(*peer_);
      });
    }
  }
  if (peer_) peer_->heard(now());
}

void outbound_handler::on_written() {
  if (peer_) peer_->on_written();
}

void outbound_handler::on_closed() {
  auto self = shared_from_this();
  asio::post(node_.io_, [this, self] { node_.on_outbound_closed(peer_.get(), link, probe_address_); });
}

// --- streams to us ---

std::shared_ptr<inbound_events> node::accept(std::shared_ptr<inbound_link> link) {
  return std::make_shared<inbound_handler>(*this, std::move(link));
}

void inbound_handler::on_batch(wire::Batch&& batch) {
  auto& frames = *batch.mutable_frames();
  if (!origin_) {
    // The first frame says who is calling; anything else is not a peer.
    if (frames.empty() || !frames[0].has_hello() || frames[0].hello().from().name().empty()) {
      node_.refusals_->refuse(ports::peer_refusal::malformed, "", "a stream that does not start with a hello");
      link_->close();
      return;
    }
    const auto& from = frames[0].hello().from();
    if (!hello_proof_ok(node_.secret_, hello_direction::hello, from.name(), from.incarnation(),
                        frames[0].hello().proof())) {
      node_.refusals_->refuse(ports::peer_refusal::secret, from.name(), "its hello does not prove the cluster secret");
      link_->close();
      return;
    }
    if (from.name() == node_.opts_.node_name) {
      // Ourselves, through a seed or DNS address; or a misconfigured node.
      if (from.incarnation() != node_.incarnation_)
        log::error("cluster: another node (", from.address(), ") uses this node's name ", from.name(),
                   "; node names must be unique");
      wire::Batch reply;
      auto* r = reply.add_frames()->mutable_hello_reply();
      node_.fill_self(*r->mutable_from());
      r->set_proof(hello_proof(node_.secret_, hello_direction::reply, node_.opts_.node_name, node_.incarnation_));
      link_->respond(std::move(reply));
      link_->close();
      return;
    }
    if (frames[0].hello().probe()) {
      // Someone asks who is here: answer (on the node's thread, which knows
      // the members) and forget the stream.
      asio::post(node_.io_, [self = shared_from_this(), from = from] {
        self->node_.learn(from);
        self->link_->respond(self->node_.hello_reply(0));
      });
      return;
    }
    auto* origin = node_.peer_named(from.name());
    if (!origin) {
      link_->close();
      return;
    }
    origin_ = origin->shared_from_this();
    incarnation_ = from.incarnation();
  }
  if (origin_->retired.load(std::memory_order_acquire)) {
    link_->close();  // forgotten meanwhile: it must say hello again
    return;
  }
  const auto t = now();
  origin_->heard(t);
  std::vector<ports::forwarded_publish> forwards;
  std::vector<wire::Frame> control;
  std::uint64_t last = 0;
  auto take = [&](std::uint64_t seq, ports::forwarded_publish p) {
    last = std::max(last, seq);
    if (!origin_->accept_forward(incarnation_, seq)) return;  // resent, applied already
    if (!p.msg) {
      log::warn("cluster: dropped a malformed publish from ", origin_->name);
      return;
    }
    forwards.push_back(std::move(p));
  };
  std::vector<decoded_forward> decoded;
  for (auto& f : frames) {
    if (f.has_forwards()) {
      decoded.clear();
      const auto& fw = f.forwards();
      const bool garbled = !fw.records().empty() ? !decode_forwards(fw.records(), t, decoded)
                                                 : !decode_forwards_v1(fw.packed(), t, decoded);
      if (garbled) log::warn("cluster: a garbled batch of publishes from ", origin_->name);
      const auto& published = f.forwards().published_unix_us();
      for (std::size_t i = 0; i < decoded.size(); ++i) {
        auto& d = decoded[i];
        if (d.publish.msg) {
          d.publish.msg->from_peer = true;
          d.publish.msg->peer_slot = origin_->id;
          d.publish.msg->peer_seq = d.seq;
          if (i < static_cast<std::size_t>(published.size()))
            d.publish.msg->received_us = static_cast<std::int64_t>(published[static_cast<int>(i)]);
        }
        take(d.seq, std::move(d.publish));
      }
    } else if (f.has_forward()) {
      const auto& fw = f.forward();
      ports::forwarded_publish p{decode_message(fw.message(), t), {}};
      if (p.msg) {
        p.msg->from_peer = true;
        p.msg->peer_slot = origin_->id;
        p.msg->peer_seq = fw.seq();
      }
      for (const auto& pick : fw.picks()) p.picks.push_back({pick.group(), pick.filter()});
      take(fw.seq(), std::move(p));
    } else {
      control.push_back(std::move(f));
    }
  }
  if (!forwards.empty()) {
    node_.host_.deliver_forwarded(origin_->id, std::move(forwards), [link = link_, last, origin = origin_, inc = incarnation_] {
      origin->note_routed(inc, last);
      wire::Batch ack;
      ack.add_frames()->mutable_ack()->set_seq(last);
      link->respond(std::move(ack));
    });
  } else if (last != 0) {
    wire::Batch ack;
    ack.add_frames()->mutable_ack()->set_seq(last);
    link_->respond(std::move(ack));
  }
  if (!control.empty()) {
    asio::post(node_.io_, [self = shared_from_this(), control = std::move(control)]() mutable {
      self->node_.on_control(*self->origin_, self->incarnation_, std::move(control), self->link_);
    });
  }
}

void inbound_handler::on_closed() {
  asio::post(node_.io_, [self = shared_from_this()] {
    if (self->origin_ && self->origin_->inbound == self->link_) self->origin_->inbound.reset();
  });
}

// --- control frames, on the node's thread ---

void node::on_control(peer& p, std::uint64_t incarnation, std::vector<wire::Frame> frames,
                      const std::shared_ptr<inbound_link>& link) {
  if (stopping_ || p.retired.load(std::memory_order_acquire)) return;
  for (auto& f : frames) {
    switch (f.kind_case()) {
      case wire::Frame::kHello: {
        const auto& h = f.hello();
        if (p.incarnation != 0 && p.incarnation != incarnation) {
          // Restarted: what it announced before is gone with it.
          log::info("cluster: peer ", p.name, " restarted");
          host_.clear_peer_routes(p.id);
          p.routes.clear([](std::string_view, std::uint32_t) {});
          forget_peer_in_claims(p.id);
          if (p.link) p.link->close();  // our stream went to the old process
        }
        p.incarnation = incarnation;
        p.left = false;
        learn_controller(p, h.from());
        learn(h.from());
        for (const auto& m : h.members()) learn(m);
        if (p.inbound && p.inbound != link) p.inbound->close();
        p.inbound = link;
        link->respond(hello_reply(p.applied_seq(incarnation)));
        if (!p.link) p.next_dial = {};  // dial back now
        break;
      }
      // After its Leave a node says nothing more until a new hello: a late
      // route frame (an answer to an earlier resync request) must not bring
      // its routes back.
      case wire::Frame::kHeartbeat:
        if (!p.left) on_heartbeat(p, f.heartbeat(), link);
        break;
      case wire::Frame::kRaft:
        if (!p.left) on_raft(p, f.raft());
        break;
      case wire::Frame::kReplicate:
        if (!p.left) on_replicate(p, f.replicate(), link);
        break;
      case wire::Frame::kSnapshotChunk:
        if (!p.left) on_snapshot_chunk(p, f.snapshot_chunk(), link);
        break;
      case wire::Frame::kControllerRequest:
        if (!p.left) on_controller_request(p, f.controller_request());
        break;
      case wire::Frame::kRouteSnapshot:
        if (!p.left) on_route_snapshot(p, f.route_snapshot(), link);
        break;
      case wire::Frame::kRouteDelta:
        if (!p.left) on_route_delta(p, f.route_delta(), link);
        break;
      case wire::Frame::kRetained: {
        auto msg = decode_message(f.retained().message(), now());
        if (msg) host_.merge_retained(std::move(msg));
        break;
      }
      case wire::Frame::kClaim: on_claim(p, f.claim()); break;
      case wire::Frame::kClaimAnswer: on_claim_answer(p, *f.mutable_claim_answer()); break;
      case wire::Frame::kMoveFinished: {
        const auto& m = f.move_finished();
        finish_move(p, incarnation, m);
        break;
      }
      case wire::Frame::kRouteBarrier: on_route_barrier(p, f.route_barrier()); break;
      case wire::Frame::kRouteBarrierReached: on_route_barrier_reached(p, incarnation, f.route_barrier_reached()); break;
      case wire::Frame::kHandoff: on_handoff(p, *f.mutable_handoff()); break;
      case wire::Frame::kSessionDelivery: {
        auto d = decode_delivery(f.session_delivery().delivery(), now());
        if (d && d->msg) {
          // Passed on, not routed (no sequence number): if the session
          // moved on from here, it follows it (deliver_to_moved).
          d->msg->from_peer = true;
          d->msg->peer_slot = p.id;
          d->msg->peer_seq = 0;
          host_.deliver_to_session(f.session_delivery().client_id(), std::move(*d));
        }
        break;
      }
      case wire::Frame::kSessions:
        for (const auto& e : f.sessions().entries())
          host_.end_if_older(e.client_id(), core::stamp{e.stamp_time(), e.stamp_node()});
        break;
      case wire::Frame::kLeave:
        p.left = true;
        mark_down(p, "left the cluster");
        break;
      default: break;  // a newer peer's frame we do not know: ignored
    }
  }
}

wire::Batch node::hello_reply(std::uint64_t applied_seq) {
  wire::Batch reply;
  auto* r = reply.add_frames()->mutable_hello_reply();
  fill_self(*r->mutable_from());
  r->set_proof(hello_proof(secret_, hello_direction::reply, opts_.node_name, incarnation_));
  r->set_applied_seq(applied_seq);
  if (opts_.protocol > protocol_first) r->set_protocol(opts_.protocol);  // a node from before sets none
  r->set_retained_digest(host_.retained_digest());
  fill_members(*r->mutable_members());
  if (replica_)
    for (const auto& [partition, pos] : replica_->positions()) {
      auto* x = r->add_positions();
      x->set_partition(partition);
      x->set_epoch(pos.epoch);
      x->set_lsn(pos.lsn);
    }
  return reply;
}

void node::on_route_snapshot(peer& p, const wire::RouteSnapshot& s, const std::shared_ptr<inbound_link>& link) {
  std::vector<std::pair<std::string, std::uint32_t>> routes;
  routes.reserve(s.routes_size());
  for (const auto& r : s.routes()) routes.emplace_back(r.filter(), r.holders());
  auto r = p.routes.snapshot(s.seq(), s.first(), s.last(), routes,
                             [&](std::string_view filter, std::uint32_t holders) { host_.set_peer_route(p.id, filter, holders); });
  if (r == route_replica::result::resync) ask_resync(p, link);
}

void node::on_route_delta(peer& p, const wire::RouteDelta& d, const std::shared_ptr<inbound_link>& link) {
  auto r = p.routes.delta(d.seq(), d.route().filter(), d.route().holders(),
                          [&](std::string_view filter, std::uint32_t holders) { host_.set_peer_route(p.id, filter, holders); });
  if (r == route_replica::result::resync) return ask_resync(p, link);
  if (d.changed_unix_us() != 0) {
    auto lag = core::wall_clock_us() - d.changed_unix_us();  // the peer's clock may run ahead
    p.route_lag.observe(lag > 0 ? static_cast<std::uint64_t>(lag) : 0);
  }
}

void node::on_heartbeat(peer& p, const wire::Heartbeat& h, const std::shared_ptr<inbound_link>& link) {
  for (const auto& m : h.members()) learn(m);
  p.controller = h.controller();
  if (p.routes.check(h.route_seq(), h.route_digest()) == route_replica::result::resync) ask_resync(p, link);
  // Retained messages: heartbeats in a row that disagree (not a write still
  // on its way, nor our last snapshot still being sent) make us send what
  // we hold; the peer keeps what is newer.
  if (h.retained_digest() == host_.retained_digest()) {
    p.retained_mismatches = 0;
  } else if (++p.retained_mismatches >= retained_mismatch_heartbeats && p.handshaken &&
             now() - p.last_retained_push >= retained_push_pause && !p.bulk_pending()) {
    p.retained_mismatches = 0;
    log::info("cluster: retained messages differ from ", p.name, "'s; sending ours");
    send_retained_snapshot(p);
  }
}

void node::ask_resync(peer& p, const std::shared_ptr<inbound_link>& link) {
  const auto t = now();
  if (t - p.last_resync < resync_pause) return;
  p.last_resync = t;
  log::info("cluster: routes from ", p.name, " out of step; asking for a snapshot");
  wire::Batch b;
  b.add_frames()->mutable_resync_routes();
  link->respond(std::move(b));
}

}  // namespace flock::cluster
