#include "cluster/controller_host.hpp"

#include <algorithm>
#include <chrono>

#include "broker/server/log.hpp"

namespace flock::cluster {

namespace log = server::log;

namespace {

replication::store_id to_store(const ports::store_identity& s) { return {s.hi, s.lo}; }

// Voters: the largest odd count up to five (a majority of two is two, so a
// second voter adds a way to stall and no tolerance).
std::size_t voter_target(std::size_t servers) {
  const std::size_t n = std::min<std::size_t>(servers, 5);
  return n % 2 == 1 ? n : n - 1;
}

}  // namespace

controller_host::controller_host(controller_host_options options, ports::controller_log& log, send_fn send)
    : opts_(std::move(options)), log_(log), send_(std::move(send)), rng_(std::random_device{}()) {
  storage_ = controller::raft_storage::from(log_.load(), &log_);
  names_[raft_id(opts_.store)] = opts_.name;
  engine_ = std::make_unique<controller::controller>(raft_id(opts_.store), opts_.name, *this, storage_, opts_.raft,
                                                     nullptr);
  if (storage_.term != 0) start_engine();  // a log from before: take part again at once
}

controller_host::~controller_host() = default;

std::uint64_t controller_host::now_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

int controller_host::random(int min, int max) {
  return std::uniform_int_distribution<int>(min, max)(rng_);
}

bool controller_host::send(std::uint64_t to, std::string bytes) {
  auto it = names_.find(to);
  return it != names_.end() && send_(it->second, std::move(bytes));
}

void controller_host::start_engine() {
  if (started_) return;
  if (!engine_->start()) {
    log::error("controller: cannot start: ", engine_->errmsg());
    return;
  }
  started_ = true;
}

std::string controller_host::leader_name() const {
  if (!started_) return {};
  auto it = names_.find(engine_->leader());
  return it == names_.end() ? std::string() : it->second;
}

void controller_host::receive(const std::string& from, const ports::store_identity& store, std::string_view bytes) {
  if (store.empty()) return;
  names_[raft_id(store)] = from;
  // A controller exists and reached us (a leader adding us, or a candidate):
  // take part, with whatever log we have.
  if (!started_) start_engine();
  engine_->receive(raft_id(store), from, bytes);
}

void controller_host::maybe_bootstrap(const std::vector<controller_peer>& peers) {
  std::vector<const controller_peer*> fresh;
  for (const auto& p : peers) {
    if (!p.up || p.store.empty()) continue;
    if (p.has_log) return;  // a controller exists: wait until its leader adds us
    fresh.push_back(&p);
  }
  if (fresh.size() + 1 < opts_.expect) return;
  // The lowest name bootstraps, alone: a Raft configuration must be the
  // same on every server that starts with one, so the others join through
  // it (lead() adds them and makes voters) instead of each making its own.
  for (const auto* p : fresh)
    if (p->name < opts_.name) return;
  if (!engine_->bootstrap({{raft_id(opts_.store), opts_.name, RAFT_VOTER}})) {
    log::error("controller: cannot bootstrap: ", engine_->errmsg());
    return;
  }
  log::info("controller: bootstrapped; ", fresh.size(), " more nodes join it");
  start_engine();
}

replication::member controller_host::member_of(const controller_peer& p) const {
  replication::member m;
  m.id = to_store(p.store);
  m.name = p.name;
  m.incarnation = p.incarnation;
  return m;
}

void controller_host::tick(const std::vector<controller_peer>& peers) {
  for (const auto& p : peers)
    if (!p.store.empty()) names_[raft_id(p.store)] = p.name;
  if (!started_) maybe_bootstrap(peers);
  if (!started_) return;
  engine_->tick();
  if (engine_->leads()) lead(peers);
}

// Raft membership, one change per tick (libraft takes one at a time): new
// nodes are added and replicate the log (standby); voters are the largest
// odd count up to five of the reachable servers, a reachable standby
// replacing a voter that is gone.
void controller_host::manage_voters(const std::vector<controller_peer>& peers) {
  auto& c = *engine_;
  const auto conf = c.configuration();
  const auto self = raft_id(opts_.store);
  auto reachable = [&](std::uint64_t id) {
    return id == self ||
           std::any_of(peers.begin(), peers.end(), [&](const auto& p) { return p.up && raft_id(p.store) == id; });
  };
  for (const auto& p : peers) {
    if (!p.up || p.store.empty()) continue;
    const auto id = raft_id(p.store);
    if (std::any_of(conf.begin(), conf.end(), [&](const auto& s) { return s.id == id; })) continue;
    // The same node with another data directory (wiped, replaced): the old
    // server is gone for good and holds the name libraft needs unique.
    for (const auto& s : conf)
      if (s.address == p.name) {
        if (c.remove_server(s.id)) log::info("controller: ", p.name, " came back with a new data directory");
        return;
      }
    if (c.add_server(id, p.name)) log::info("controller: adding ", p.name);
    return;
  }
  std::size_t live = 0, live_voters = 0, voters = 0;
  for (const auto& s : conf) {
    const bool r = reachable(s.id);
    live += r;
    voters += s.role == RAFT_VOTER;
    live_voters += r && s.role == RAFT_VOTER;
  }
  const auto target = voter_target(live);
  for (const auto& s : conf) {
    if (!reachable(s.id)) continue;
    if (s.role == RAFT_SPARE) {
      c.assign_role(s.id, RAFT_STANDBY);
      return;
    }
    if (s.role == RAFT_STANDBY && live_voters < target) {
      if (c.assign_role(s.id, RAFT_VOTER)) log::info("controller: ", s.address, " votes now");
      return;
    }
  }
  if (voters > target && live_voters >= target) {
    for (const auto& s : conf)
      if (s.role == RAFT_VOTER && !reachable(s.id) && c.assign_role(s.id, RAFT_STANDBY)) {
        log::info("controller: ", s.address, " (unreachable) no longer votes");
        return;
      }
  }
}

bool controller_host::propose(const replication::command& c) {
  if (!started_ || !engine_ || !engine_->leads()) return false;
  return engine_->propose(c);
}

void controller_host::lead(const std::vector<controller_peer>& peers) {
  auto& c = *engine_;
  const auto conf = c.configuration();
  auto in_conf = [&](std::uint64_t id) {
    return std::any_of(conf.begin(), conf.end(), [&](const auto& s) { return s.id == id; });
  };
  manage_voters(peers);

  // The controller state: proposals are checked against the state they
  // meet, so one repeated before the first is applied is only stale.
  const auto t = now_ms();
  if (t < next_proposals_ms_) return;
  next_proposals_ms_ = t + 300;  // one round committed (or lost with the term) before the next
  const auto& state = c.state();
  controller_peer self{opts_.name, opts_.store, opts_.incarnation, true, false, true};
  if (!state.bootstrapped()) {
    // Once the nodes expected at creation are in, so the first placement
    // spreads partitions over all of them.
    if (conf.size() < opts_.expect) return;
    replication::cmd::bootstrap b{opts_.partitions, opts_.replication_factor, {member_of(self)}};
    for (const auto& p : peers)
      if (p.up && !p.store.empty() && in_conf(raft_id(p.store))) b.members.push_back(member_of(p));
    c.propose(b);
    return;
  }
  std::vector<const controller_peer*> everyone{&self};
  for (const auto& p : peers)
    if (!p.store.empty()) everyone.push_back(&p);
  for (const auto* p : everyone) {
    const auto* m = state.find(to_store(p->store));
    if (p->up && (!m || m->fenced)) {
      c.propose(replication::cmd::node_up{member_of(*p)});
    } else if (m && !m->fenced && (p->down_long || (p->up && m->incarnation != p->incarnation))) {
      // Silent too long, or restarted (its disk may hold writes its
      // followers never saw): fenced, and back by node_up if it is up.
      c.propose(replication::cmd::node_fenced{m->id});
    }
  }
}

}  // namespace flock::cluster
