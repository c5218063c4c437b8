// Membership: peers, streams, heartbeats, failure detection, and the state a
// peer gets when its stream comes up.
#include "cluster/node.hpp"

#include "cluster/cluster_secret.hpp"
#include "cluster/cluster_tls.hpp"
#include "cluster/controller_host.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <future>

#include "broker/server/log.hpp"
#include "cluster/handlers.hpp"
#include "cluster/wire_codec.hpp"

namespace flock::cluster {

namespace log = server::log;

namespace {
constexpr std::chrono::milliseconds tick_period{100};
constexpr std::size_t routes_per_frame = 1000;
constexpr std::size_t sessions_per_frame = 1000;
constexpr std::chrono::milliseconds max_backoff{2000};

ports::time_point now() { return std::chrono::steady_clock::now(); }

std::uint64_t new_incarnation() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}
}  // namespace

node::node(options opts, ports::cluster_host& host, std::unique_ptr<transport> t,
           std::shared_ptr<peer_refusals> refusals, std::shared_ptr<cluster_tls> tls)
    : opts_(std::move(opts)),
      host_(host),
      transport_(std::move(t)),
      refusals_(std::move(refusals)),
      tls_(std::move(tls)),
      secret_(opts_.secret),
      incarnation_(new_incarnation()),
      guard_(io_.get_executor()),
      tick_timer_(io_) {
  advertise_ = opts_.advertise.empty() ? opts_.listen : opts_.advertise;
}

node::~node() { stop(); }

void node::start() {
  if (started_) return;
  start_controller();  // throws before anything listens when it cannot run
  transport_->serve(opts_.listen, [this](std::shared_ptr<inbound_link> link) { return accept(std::move(link)); });
  if (advertise_.ends_with(":0") && transport_->bound_port() != 0)
    advertise_ = advertise_.substr(0, advertise_.size() - 1) + std::to_string(transport_->bound_port());
  started_ = true;
  {
    std::lock_guard lock(joined_mutex_);
    for (const auto& s : opts_.seeds) seeds_pending_.insert(s);
  }
  for (const auto& s : opts_.seeds) probes_[s] = {};
  thread_ = std::thread([this] { io_.run(); });
  asio::post(io_, [this] {
    tick();
  });
  log::info("cluster: node ", opts_.node_name, " listening on ", opts_.listen, " (advertised as ", advertise_, ")");
  wait_joined(opts_.join_timeout);
}

void node::wait_joined(std::chrono::milliseconds timeout) {
  std::unique_lock lock(joined_mutex_);
  joined_cv_.wait_for(lock, timeout, [&] { return seeds_pending_.empty(); });
}

void node::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  // Peers drop our routes at once instead of after the failure timeout.
  std::promise<void> said;
  asio::post(io_, [&] {
    stopping_ = true;
    for_each_peer([](peer& p) {
      wire::Frame f;
      f.mutable_leave();
      p.send(std::move(f));
    });
    said.set_value();
  });
  said.get_future().wait();
  // A short grace for the Leave frames to go out.
  const auto deadline = now() + std::chrono::milliseconds(500);
  bool pending = true;
  while (pending && now() < deadline) {
    pending = false;
    for_each_peer([&](peer& p) { pending = pending || !p.control_idle(); });
    if (pending) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  transport_->shutdown();
  asio::post(io_, [this] { tick_timer_.cancel(); });
  guard_.reset();
  thread_.join();
  {
    std::lock_guard lock(replica_gate_->mutex);
    replica_gate_->n = nullptr;
  }
  controller_.reset();  // its last writes are synced; peers elect without it
}

// --- peers ---

peer* node::find_peer(const std::string& name) {
  std::lock_guard lock(peers_mutex_);
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

peer* node::peer_named(const std::string& name) {
  std::lock_guard lock(peers_mutex_);
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second;
  auto id = peer_count_.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < id; ++i)
    if (!owned_[i]) {
      id = i;  // a forgotten node's slot
      break;
    }
  if (id >= max_peers) {
    refusals_->refuse(ports::peer_refusal::peer_limit, name,
                      "the cluster already has " + std::to_string(max_peers) + " other nodes");
    return nullptr;
  }
  owned_[id] = std::make_shared<peer>(id, name, opts_);
  peer* p = owned_[id].get();
  p->known_since = now();
  peers_[id].store(p, std::memory_order_release);
  by_name_[name] = p;
  if (id >= peer_count_.load(std::memory_order_relaxed)) peer_count_.store(id + 1, std::memory_order_release);
  return p;
}

void node::forget_departed(ports::time_point t) {
  // Objects forgotten a while ago: no worker still runs a call on them.
  std::erase_if(retired_, [&](const auto& r) { return t - r.second > 10 * opts_.failure_timeout + std::chrono::seconds(10); });
  std::vector<peer*> gone;
  for_each_peer([&](peer& p) {
    if (p.up || p.handshaken) return;
    // Quick for a node that never answered, or that left (scale-down, or a
    // restart: it says hello again) with nothing waiting for it here; an
    // hour by default for one that vanished with copies queued for it.
    const bool nothing_waits = !p.ever_up || (p.left && p.outbox_size() == 0);
    const auto window = nothing_waits ? 10 * opts_.failure_timeout : opts_.forget_after;
    const auto last = std::max(p.known_since, p.last_heard());
    if (t - last > window) gone.push_back(&p);
  });
  std::size_t never_reached = 0;
  for (peer* p : gone) {
    // Names that never answered (a flood of hellos, stale addresses) are
    // summed up in one line; a node that was part of the cluster is named.
    if (p->ever_up) log::info("cluster: forgetting ", p->name, ": unreachable for ", std::chrono::duration_cast<std::chrono::seconds>(t - std::max(p->known_since, p->last_heard())).count(), " s");
    else ++never_reached;
    mark_down(*p, "forgotten");
    p->retired.store(true, std::memory_order_release);
    p->link.reset();
    p->inbound.reset();
    p->disconnected();
    if (!p->store.empty()) forget_follower({p->store.hi, p->store.lo});
    std::lock_guard lock(peers_mutex_);
    by_name_.erase(p->name);
    for (auto it = probed_names_.begin(); it != probed_names_.end();)
      it = it->second == p->name ? probed_names_.erase(it) : std::next(it);
    peers_[p->id].store(nullptr, std::memory_order_release);
    retired_.emplace_back(std::move(owned_[p->id]), t);
  }
  if (never_reached) log::info("cluster: forgot ", never_reached, " peer name(s) that never answered");
}

void node::fill_self(wire::Member& m) const {
  m.set_name(opts_.node_name);
  m.set_address(advertise_);
  m.set_incarnation(incarnation_);
  // The data directory: what replication knows a peer by.
  m.set_store_hi(store_identity_.hi);
  m.set_store_lo(store_identity_.lo);
  if (controller_) m.set_controller(controller_state());
}

void node::fill_members(google::protobuf::RepeatedPtrField<wire::Member>& out) {
  for_each_peer([&](peer& p) {
    if (p.address.empty() || !p.up) return;
    auto* m = out.Add();
    m->set_name(p.name);
    m->set_address(p.address);
    m->set_incarnation(p.incarnation);
  });
}

void node::learn(const wire::Member& m) {
  if (m.name().empty() || m.name() == opts_.node_name || m.address().empty()) return;
  peer* p = peer_named(m.name());
  if (!p) return;
  // A node we cannot reach at the address we had may be reachable at this one.
  if (p->address.empty() || (!p->handshaken && p->address != m.address())) p->address = m.address();
}

// --- the tick: dialing, heartbeats, failure detection ---

void node::arm_tick() {
  if (stopping_) return;
  tick_timer_.expires_after(tick_period);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void node::tick() {
  if (stopping_) return;
  const auto t = now();
  for_each_peer([&](peer& p) {
    if (!p.link && !p.left && !p.address.empty() && t >= p.next_dial) dial(p);
    else if (p.link && !p.handshaken && t - p.dial_started > opts_.failure_timeout) p.link->close();
    if (p.handshaken && t - p.last_heartbeat >= opts_.heartbeat) heartbeat(p);
    const bool fresh = t - p.last_heard() <= opts_.failure_timeout;
    if (p.up && !fresh) mark_down(p, "silent for the failure timeout");
    else if (!p.up && p.handshaken && fresh && !p.left) mark_up(p);
    p.expire_acks(t);
  });
  for (auto& [address, next] : probes_) {
    if (self_addresses_.count(address) || probing_.count(address) || t < next) continue;
    // An address whose node we are connected to needs no asking.
    if (auto it = probed_names_.find(address); it != probed_names_.end())
      if (auto* p = find_peer(it->second); p && p->handshaken) continue;
    next = t + opts_.dns_interval;
    probe(address);
  }
  for (auto& [address, probe] : probing_)
    if (t - probe.second > opts_.failure_timeout) probe.first->close();
  if (tls_ && t >= next_tls_check_) {
    next_tls_check_ = t + opts_.tls_reload_interval;
    tls_->reload_if_changed();
  }
  if (!opts_.dns.empty() && t >= next_dns_) {
    next_dns_ = t + opts_.dns_interval;
    resolve_dns();
  }
  expire_claims(t);
  check_handovers(t);
  check_barriers(t);
  forget_departed(t);
  expire_transfers(t);
  catch_up_followers(t);
  if (replica_) replica_->expire_installs();
  tick_controller(t);
  for (auto it = moves_.begin(); it != moves_.end();) {
    if (t < it->second.second) {
      ++it;
      continue;
    }
    log::warn("cluster: session ", it->first, " handed over but never confirmed; keeping it here");
    host_.on_move_finished(it->second.first, it->first, false);
    it = moves_.erase(it);
  }
  arm_tick();
}

std::shared_ptr<outbound_link> node::open_stream(const std::string& address, peer* p) {
  auto handler = std::make_shared<outbound_handler>(*this, p ? p->shared_from_this() : nullptr,
                                                    p ? std::string() : address);
  auto link = transport_->dial(address, handler);
  handler->link = link;
  // The first frame says who we are; a probe only asks who is there.
  wire::Batch hello;
  auto* h = hello.add_frames()->mutable_hello();
  h->set_protocol(opts_.protocol);
  h->set_probe(p == nullptr);
  fill_self(*h->mutable_from());
  h->set_proof(hello_proof(secret_, hello_direction::hello, opts_.node_name, incarnation_));
  if (p) {
    fill_members(*h->mutable_members());
    h->set_retained_digest(host_.retained_digest());
  }
  link->write(std::move(hello));
  return link;
}

void node::dial(peer& p) {
  p.link = open_stream(p.address, &p);
  p.handshaken = false;
  p.dial_started = now();
}

void node::probe(const std::string& address) { probing_[address] = {open_stream(address, nullptr), now()}; }

void node::resolve_dns() {
  auto colon = opts_.dns.rfind(':');
  if (colon == std::string::npos) return;
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(io_);
  resolver->async_resolve(opts_.dns.substr(0, colon), opts_.dns.substr(colon + 1),
                          [this, resolver](const boost::system::error_code& ec, asio::ip::tcp::resolver::results_type r) {
                            if (ec) {
                              log::debug("cluster: resolving ", opts_.dns, ": ", ec.message());
                              return;
                            }
                            for (const auto& e : r) {
                              auto ep = e.endpoint();
                              std::string a = ep.address().is_v6() ? "[" + ep.address().to_string() + "]"
                                                                   : ep.address().to_string();
                              a += ":" + std::to_string(ep.port());
                              probes_.try_emplace(a, ports::time_point{});
                            }
                          });
}

void node::heartbeat(peer& p) {
  p.last_heartbeat = now();
  wire::Frame f;
  auto* h = f.mutable_heartbeat();
  // Asked before taking the routes lock: never call the host under our own
  // lock (a host that asks for status() under its lock deadlocked with this).
  h->set_retained_digest(host_.retained_digest());
  h->set_controller(controller_state());
  {
    std::lock_guard lock(routes_mutex_);
    if (!p.routes_live) return;
    h->set_route_seq(route_seq_);
    h->set_route_digest(routes_.digest());
    fill_members(*h->mutable_members());
    // Under the routes lock: a delta enqueued after this one carries a later seq.
    p.send(std::move(f));
  }
}

void node::mark_up(peer& p) {
  if (p.up) return;
  p.up = true;
  p.ever_up = true;
  peers_up_.fetch_add(1, std::memory_order_acq_rel);
  log::info("cluster: peer ", p.name, " up (", p.address, ")");
}

void node::mark_down(peer& p, const char* why) {
  if (p.up) {
    p.up = false;
    peers_up_.fetch_sub(1, std::memory_order_acq_rel);
    log::warn("cluster: peer ", p.name, " down: ", why);
  }
  host_.peer_down(p.id);
  p.routes.clear([](std::string_view, std::uint32_t) {});  // the core dropped them all at once
  forget_peer_in_claims(p.id);
  forget_peer_in_handovers(p.id);
  for (auto it = moves_.begin(); it != moves_.end();) it = it->second.first == p.id ? moves_.erase(it) : std::next(it);
  {
    // A drain does not wait for a node that is gone: those sessions stay here.
    std::lock_guard lock(drain_mutex_);
    if (std::erase_if(drain_waiting_, [&](const auto& e) { return e.second == p.id; }) > 0) drained_cv_.notify_all();
  }
  // Streams to a silent peer may hang: start over once it answers again.
  if (p.link) p.link->close();
  if (p.inbound) p.inbound->close();
}

std::uint32_t node::protocol_of(ports::peer_id id) const {
  const peer* p = slot(id);
  return p ? p->protocol() : protocol_first;
}

void node::on_connected(peer& p, const std::shared_ptr<outbound_link>& link, const wire::HelloReply& reply) {
  if (p.link != link) return;
  if (reply.from().name() != p.name) {
    log::warn("cluster: ", p.address, " answered as ", reply.from().name(), ", not ", p.name);
    p.address.clear();
    link->close();
    learn(reply.from());
    return;
  }
  p.handshaken = true;
  learn_controller(p, reply.from());
  streams_opened_.fetch_add(1, std::memory_order_relaxed);
  p.backoff = std::chrono::milliseconds(100);
  p.heard(now());
  for (const auto& m : reply.members()) learn(m);
  p.connected(link, reply.applied_seq(), reply.protocol());
  follower_connected(p, reply);
  send_state(p, reply.retained_digest() != host_.retained_digest());
  include_in_handovers(p);
  mark_up(p);
}

void node::on_outbound_closed(peer* p, const std::shared_ptr<outbound_link>& link, const std::string& probe_address) {
  if (!p) {
    // A probe ended: it answered (and we learned who is there) or failed.
    if (auto it = probing_.find(probe_address); it != probing_.end() && it->second.first == link) probing_.erase(it);
    std::lock_guard lock(joined_mutex_);
    if (seeds_pending_.erase(probe_address)) joined_cv_.notify_all();
    return;
  }
  if (p->link != link) return;
  p->link.reset();
  if (p->handshaken) log::info("cluster: stream to ", p->name, " closed");
  if (auto queued = p->outbox_size()) log::debug("cluster: ", queued, " publishes for ", p->name, " wait for its next stream");
  p->handshaken = false;
  {
    std::lock_guard lock(routes_mutex_);
    p->routes_live = false;
  }
  p->disconnected();
  forget_peer_in_claims(p->id);  // it cannot answer a claim now: nobody waits for it
  p->next_dial = now() + p->backoff;
  p->backoff = std::min(p->backoff * 2, max_backoff);
}

void node::send_state(peer& p, bool retained) {
  send_route_snapshot(p);
  if (retained) send_retained_snapshot(p);
  send_sessions(p);
  heartbeat(p);
}

void node::send_route_snapshot(peer& p) {
  if (stopping_) return;  // after our Leave, nothing more
  std::lock_guard lock(routes_mutex_);
  std::vector<wire::Frame> frames;
  wire::RouteSnapshot* chunk = nullptr;
  auto next_chunk = [&] {
    frames.emplace_back();
    chunk = frames.back().mutable_route_snapshot();
    chunk->set_seq(route_seq_);
    chunk->set_first(frames.size() == 1);
  };
  next_chunk();
  for (const auto& [filter, holders] : routes_.entries()) {
    if (static_cast<std::size_t>(chunk->routes_size()) >= routes_per_frame) next_chunk();
    auto* r = chunk->add_routes();
    r->set_filter(filter);
    r->set_holders(holders);
  }
  chunk->set_last(true);
  p.send(std::move(frames));
  p.routes_live = true;  // deltas from here on follow the snapshot
}

void node::send_retained_snapshot(peer& p) {
  p.last_retained_push = now();
  std::vector<core::message_ptr> messages;
  host_.retained_snapshot([&](const core::message_ptr& m) { messages.push_back(m); });
  // Bulk: heartbeats, routes and forwards go past a large snapshot.
  p.send_retained(std::move(messages));
}

void node::send_sessions(peer& p) {
  std::vector<wire::Frame> frames;
  host_.local_sessions([&](const std::string& id, core::stamp s) {
    if (frames.empty() || static_cast<std::size_t>(frames.back().sessions().entries_size()) >= sessions_per_frame)
      frames.emplace_back();
    auto* e = frames.back().mutable_sessions()->add_entries();
    e->set_client_id(id);
    e->set_stamp_time(s.time);
    e->set_stamp_node(s.node);
  });
  p.send(std::move(frames));
}

ports::cluster_status node::status() {
  ports::cluster_status s;
  for_each_peer([&](peer& p) {
    ++s.peers_known;
    ports::peer_status one{p.name, p.stats.forwarded.load(std::memory_order_relaxed),
                           p.stats.dropped_qos0.load(std::memory_order_relaxed) +
                               p.stats.dropped_full.load(std::memory_order_relaxed),
                           p.outbox_size(), p.route_lag.read(), p.protocol(), p.replication_backlog()};
    s.forwarded += one.forwarded;
    s.dropped += one.dropped;
    s.outbox += one.outbox;
    s.unconfirmed += p.stats.unconfirmed_acks.load(std::memory_order_relaxed);
    s.peers.push_back(std::move(one));
  });
  s.peers_up = static_cast<std::size_t>(peers_up_.load(std::memory_order_acquire));
  s.streams_opened = streams_opened_.load(std::memory_order_relaxed);
  s.replication_refused = replication_refused_->load(std::memory_order_relaxed);
  s.snapshots_sending = snapshot_counters_->sending.load(std::memory_order_relaxed);
  s.snapshots_sent = snapshot_counters_->sent.load(std::memory_order_relaxed);
  s.snapshots_failed = snapshot_counters_->failed.load(std::memory_order_relaxed);
  s.snapshot_bytes_sent = snapshot_counters_->bytes.load(std::memory_order_relaxed);
  s.snapshots_installed = snapshot_counters_->installed.load(std::memory_order_relaxed);
  s.refused = refusals_->counts();
  if (tls_) s.certificate = tls_->status();
  {
    std::lock_guard lock(controller_view_mutex_);
    s.controller = controller_view_;
  }
  std::lock_guard lock(routes_mutex_);
  s.local_routes = routes_.size();
  return s;
}

// --- ports::cluster ---

void node::route_changed(std::string_view filter, std::uint32_t holders) {
  std::lock_guard lock(routes_mutex_);
  if (!routes_.set(filter, holders)) return;
  ++route_seq_;
  wire::Frame f;
  auto* d = f.mutable_route_delta();
  d->set_seq(route_seq_);
  d->set_changed_unix_us(core::wall_clock_us());
  d->mutable_route()->set_filter(std::string(filter));
  d->mutable_route()->set_holders(holders);
  for_each_peer([&](peer& p) {
    if (p.routes_live) p.send(f);
  });
}

void node::forward(ports::peer_id peer_id, const core::message_ptr& msg, std::vector<ports::shared_pick> picks,
                   const core::remote_ack_ptr& ack) {
  if (peer* p = slot(peer_id)) p->forward(msg, std::move(picks), ack);
}

void node::retained_changed(const core::message_ptr& msg) {
  // Encoded once per protocol the peers read (two only in a rolling upgrade).
  std::optional<wire::Frame> current, first;
  const auto t = now();
  for_each_peer([&](peer& p) {
    const auto protocol = std::min(p.protocol(), protocol_current);
    auto& f = protocol < protocol_message_codec ? first : current;
    if (!f) encode_message(*msg, t, protocol, *f.emplace().mutable_retained()->mutable_message());
    p.send(*f);
  });
}

}  // namespace flock::cluster
