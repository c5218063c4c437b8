#include "broker/replication/controller_state.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "broker/replication/placement.hpp"

namespace flock::replication {

namespace {

bool contains(const std::vector<store_id>& v, const store_id& id) { return std::find(v.begin(), v.end(), id) != v.end(); }

void erase(std::vector<store_id>& v, const store_id& id) { std::erase(v, id); }

bool distinct(std::vector<store_id> v) {
  std::sort(v.begin(), v.end());
  return std::adjacent_find(v.begin(), v.end()) == v.end();
}

// The owner leads the ISR, so "the owner and its followers" reads off it.
void put_first(std::vector<store_id>& v, const store_id& id) {
  erase(v, id);
  v.insert(v.begin(), id);
}

}  // namespace

controller_state controller_state::restore(std::uint32_t factor, std::vector<member> members,
                                           std::vector<partition_state> partitions) {
  controller_state s;
  s.factor_ = factor;
  s.members_ = std::move(members);
  s.partitions_ = std::move(partitions);
  return s;
}

outcome controller_state::apply(const command& c) {
  return std::visit([this](const auto& one) { return apply_one(one); }, c);
}

const member* controller_state::find(const store_id& id) const {
  for (const auto& m : members_)
    if (m.id == id) return &m;
  return nullptr;
}

member* controller_state::find_mutable(const store_id& id) {
  return const_cast<member*>(std::as_const(*this).find(id));
}

bool controller_state::may_hold_data(const store_id& id) const {
  const member* m = find(id);
  return m && !m->fenced && !m->witness;
}

std::vector<store_id> controller_state::target(partition_id p) const {
  std::vector<placement_candidate> candidates;
  for (const auto& m : members_)
    if (!m.fenced && !m.witness) candidates.push_back({m.id, m.zone});
  return place(p, candidates, factor_);
}

outcome controller_state::apply_one(const cmd::bootstrap& c) {
  if (bootstrapped()) return outcome::stale;
  if (c.partitions == 0 || c.partitions > max_partitions || c.factor == 0 || c.members.empty()) return outcome::invalid;
  std::vector<store_id> ids;
  for (const auto& m : c.members) {
    if (m.id.empty()) return outcome::invalid;
    ids.push_back(m.id);
  }
  if (!distinct(ids)) return outcome::invalid;
  members_ = c.members;
  for (auto& m : members_) m.fenced = false;
  factor_ = c.factor;
  std::vector<partition_state> parts(c.partitions);
  for (std::uint32_t p = 0; p < c.partitions; ++p) {
    auto& s = parts[p];
    s.replicas = target(static_cast<partition_id>(p));
    if (s.replicas.empty()) {  // only witnesses: nobody can hold data
      members_.clear();
      factor_ = 0;
      return outcome::invalid;
    }
    s.epoch = 1;
    s.owner = s.replicas.front();
    s.isr = s.replicas;  // all empty, so all in sync
  }
  partitions_ = std::move(parts);
  return outcome::applied;
}

outcome controller_state::apply_one(const cmd::node_up& c) {
  if (!bootstrapped()) return outcome::stale;
  if (c.m.id.empty()) return outcome::invalid;
  member* known = find_mutable(c.m.id);
  if (!known) {
    members_.push_back(c.m);
    members_.back().fenced = false;
    return outcome::applied;
  }
  if (known->witness != c.m.witness) return outcome::invalid;  // a store keeps its role for life
  if (!known->fenced) return outcome::stale;
  *known = c.m;
  known->fenced = false;
  if (known->witness) return outcome::applied;
  for (auto& p : partitions_) {
    if (!p.offline || !contains(p.isr, c.m.id)) continue;
    // It was in sync when the partition went offline, and nothing was
    // acknowledged since: it holds everything.
    p.offline = false;
    p.owner = c.m.id;
    ++p.epoch;
    p.isr = {c.m.id};
    erase(p.learners, c.m.id);
  }
  return outcome::applied;
}

void controller_state::fence(const store_id& id) {
  find_mutable(id)->fenced = true;
  for (auto& p : partitions_) {
    erase(p.learners, id);
    if (p.offline) continue;  // keeps its last ISR until one of it returns
    if (p.owner != id) {
      erase(p.isr, id);
      continue;
    }
    const store_id* next = nullptr;
    for (const auto& r : p.replicas)
      if (r != id && contains(p.isr, r) && may_hold_data(r)) {
        next = &r;
        break;
      }
    if (!next)
      for (const auto& r : p.isr)
        if (r != id && may_hold_data(r)) {
          next = &r;
          break;
        }
    if (!next) {
      p.offline = true;
      continue;
    }
    const store_id owner = *next;
    erase(p.isr, id);
    put_first(p.isr, owner);
    p.owner = owner;
    ++p.epoch;
  }
}

outcome controller_state::apply_one(const cmd::node_fenced& c) {
  const member* m = find(c.id);
  if (!m) return outcome::invalid;
  if (m->fenced) return outcome::stale;
  fence(c.id);
  return outcome::applied;
}

outcome controller_state::apply_one(const cmd::node_forgotten& c) {
  const member* m = find(c.id);
  if (!m) return outcome::invalid;
  if (!m->fenced) return outcome::stale;
  for (const auto& p : partitions_)
    if (p.owner == c.id || contains(p.replicas, c.id) || contains(p.isr, c.id) || contains(p.learners, c.id))
      return outcome::stale;
  std::erase_if(members_, [&](const member& x) { return x.id == c.id; });
  return outcome::applied;
}

void controller_state::drop_surplus(partition_state& p) {
  for (const auto& r : p.replicas)
    if (!contains(p.isr, r)) return;  // not every target copy in sync yet
  std::erase_if(p.isr, [&](const store_id& s) { return s != p.owner && !contains(p.replicas, s); });
}

outcome controller_state::apply_one(const cmd::isr_shrink& c) {
  if (c.partition >= partitions_.size()) return outcome::invalid;
  auto& p = partitions_[c.partition];
  if (p.offline || c.epoch != p.epoch || c.node == p.owner || !contains(p.isr, c.node)) return outcome::stale;
  erase(p.isr, c.node);
  return outcome::applied;
}

outcome controller_state::apply_one(const cmd::isr_expand& c) {
  if (c.partition >= partitions_.size() || !find(c.node)) return outcome::invalid;
  auto& p = partitions_[c.partition];
  if (p.offline || c.epoch != p.epoch || !may_hold_data(c.node) || contains(p.isr, c.node) ||
      !contains(p.replicas, c.node))
    return outcome::stale;
  p.isr.push_back(c.node);
  erase(p.learners, c.node);
  drop_surplus(p);
  return outcome::applied;
}

outcome controller_state::apply_one(const cmd::owner_change& c) {
  if (c.partition >= partitions_.size() || !find(c.owner)) return outcome::invalid;
  auto& p = partitions_[c.partition];
  if (p.offline || c.epoch != p.epoch + 1 || c.owner == p.owner || !contains(p.isr, c.owner) ||
      !may_hold_data(c.owner))
    return outcome::stale;
  p.owner = c.owner;
  p.epoch = c.epoch;
  put_first(p.isr, c.owner);
  drop_surplus(p);
  return outcome::applied;
}

outcome controller_state::apply_one(const cmd::set_replicas& c) {
  if (c.partition >= partitions_.size() || c.target.empty() || !distinct(c.target)) return outcome::invalid;
  for (const auto& t : c.target)
    if (!find(t)) return outcome::invalid;
  auto& p = partitions_[c.partition];
  if (p.offline) return outcome::stale;
  for (const auto& t : c.target)
    if (!may_hold_data(t)) return outcome::stale;
  p.replicas = c.target;
  p.learners.clear();
  for (const auto& t : c.target)
    if (!contains(p.isr, t)) p.learners.push_back(t);
  drop_surplus(p);
  return outcome::applied;
}

outcome controller_state::apply_one(const cmd::partition_reset& c) {
  if (c.partition >= partitions_.size()) return outcome::invalid;
  auto t = target(c.partition);
  if (t.empty()) return outcome::stale;
  auto& p = partitions_[c.partition];
  p.offline = false;
  ++p.epoch;
  p.owner = t.front();
  p.isr = {t.front()};
  p.learners.assign(t.begin() + 1, t.end());
  p.replicas = std::move(t);
  return outcome::applied;
}

std::vector<command> controller_state::rebalance(std::size_t moves_per_store) const {
  std::vector<command> out;
  std::map<store_id, std::size_t> moving;
  for (const auto& p : partitions_)
    for (const auto& l : p.learners) ++moving[l];
  for (std::uint32_t i = 0; i < partitions_.size(); ++i) {
    const auto& p = partitions_[i];
    if (p.offline) continue;
    auto t = target(static_cast<partition_id>(i));
    if (t.empty() || std::set(t.begin(), t.end()) == std::set(p.replicas.begin(), p.replicas.end())) continue;
    std::vector<store_id> joining;
    for (const auto& s : t)
      if (!contains(p.isr, s) && !contains(p.learners, s)) joining.push_back(s);
    if (std::any_of(joining.begin(), joining.end(), [&](const store_id& s) { return moving[s] >= moves_per_store; }))
      continue;
    for (const auto& s : joining) ++moving[s];
    out.push_back(cmd::set_replicas{static_cast<partition_id>(i), std::move(t)});
  }
  for (std::uint32_t i = 0; i < partitions_.size(); ++i) {
    const auto& p = partitions_[i];
    if (p.offline || !p.learners.empty() || p.replicas.empty()) continue;
    const auto& preferred = p.replicas.front();
    if (preferred != p.owner && contains(p.isr, preferred) && may_hold_data(preferred))
      out.push_back(cmd::owner_change{static_cast<partition_id>(i), p.epoch + 1, preferred});
  }
  return out;
}

std::optional<std::string> controller_state::broken_invariant() const {
  std::vector<store_id> ids;
  for (const auto& m : members_) {
    if (m.id.empty()) return "a member without a store id";
    ids.push_back(m.id);
  }
  if (!distinct(ids)) return "a store listed twice among the members";
  if (bootstrapped() && factor_ == 0) return "factor 0";
  for (std::size_t i = 0; i < partitions_.size(); ++i) {
    const auto& p = partitions_[i];
    const std::string where = "partition " + std::to_string(i) + ": ";
    if (p.epoch == 0) return where + "epoch 0";
    if (p.replicas.empty()) return where + "no replicas";
    if (!distinct(p.replicas) || !distinct(p.isr) || !distinct(p.learners)) return where + "a store twice in one set";
    if (p.isr.empty() || p.isr.front() != p.owner) return where + "the owner does not lead the ISR";
    for (const auto& set : {&p.replicas, &p.isr, &p.learners})
      for (const auto& s : *set) {
        const member* m = find(s);
        if (!m) return where + "refers to unknown store " + s.hex();
        if (m->witness) return where + "a copy on witness " + s.hex();
      }
    for (const auto& l : p.learners) {
      if (contains(p.isr, l)) return where + "learner " + l.hex() + " also in the ISR";
      if (!contains(p.replicas, l)) return where + "learner " + l.hex() + " not a replica";
      if (find(l)->fenced) return where + "fenced learner " + l.hex();
    }
    for (const auto& s : p.isr) {
      const bool fenced = find(s)->fenced;
      if (!p.offline && fenced) return where + "fenced store " + s.hex() + " in the ISR of an online partition";
      if (p.offline && !fenced) return where + "offline with unfenced ISR member " + s.hex();
    }
  }
  return std::nullopt;
}

}  // namespace flock::replication
