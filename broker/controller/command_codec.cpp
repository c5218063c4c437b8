#include "broker/controller/command_codec.hpp"

#include <tuple>
#include <type_traits>

#include "broker/core/varint_io.hpp"

namespace flock::controller {

namespace {

using core::put_bytes;
using core::put_varint;
using namespace replication;

constexpr std::uint8_t version = 1;
constexpr std::uint64_t max_list = 1u << 16;  // stores or partitions in one list

// Command tags: the variant's index would change with the variant; these never do.
enum tag : std::uint8_t {
  t_bootstrap = 1,
  t_node_up = 2,
  t_node_fenced = 3,
  t_node_forgotten = 4,
  t_isr_shrink = 5,
  t_isr_expand = 6,
  t_owner_change = 7,
  t_set_replicas = 8,
  t_partition_reset = 9,
};

struct writer {
  std::string out;
  void u(std::uint64_t v) { put_varint(out, v); }
  void id(const store_id& s) {
    u(s.hi);
    u(s.lo);
  }
  void ids(const std::vector<store_id>& v) {
    u(v.size());
    for (const auto& s : v) id(s);
  }
  void m(const member& x) {
    id(x.id);
    put_bytes(out, x.name);
    put_bytes(out, x.zone);
    u(x.incarnation);
    u((x.witness ? 1u : 0u) | (x.fenced ? 2u : 0u));
  }
};

struct reader {
  core::varint_reader r;
  std::uint64_t u() { return r.varint(); }
  std::uint64_t u_max(std::uint64_t max) {
    auto v = r.varint();
    if (v > max) r.ok = false;
    return r.ok ? v : 0;
  }
  store_id id() {
    store_id s;
    s.hi = u();
    s.lo = u();
    return s;
  }
  std::vector<store_id> ids() {
    std::vector<store_id> v;
    const auto n = u_max(max_list);
    for (std::uint64_t i = 0; i < n && r.ok; ++i) v.push_back(id());
    return v;
  }
  member m() {
    member x;
    x.id = id();
    x.name = std::string(r.bytes());
    x.zone = std::string(r.bytes());
    x.incarnation = u();
    const auto flags = u_max(3);
    x.witness = flags & 1;
    x.fenced = flags & 2;
    return x;
  }
  partition_id p() { return static_cast<partition_id>(u_max(max_partitions - 1)); }
  // In this order: the fields of isr_shrink, isr_expand, owner_change.
  std::tuple<partition_id, epoch_t, store_id> partition_epoch_store() {
    const auto partition = p();
    const auto epoch = u();
    return {partition, epoch, id()};
  }
  bool done() const { return r.ok && r.pos == r.in.size(); }
};

}  // namespace

std::string encode_command(const command& c) {
  writer w;
  w.out.push_back(static_cast<char>(version));
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, cmd::bootstrap>) {
          w.u(t_bootstrap);
          w.u(x.partitions);
          w.u(x.factor);
          w.u(x.members.size());
          for (const auto& m : x.members) w.m(m);
        } else if constexpr (std::is_same_v<T, cmd::node_up>) {
          w.u(t_node_up);
          w.m(x.m);
        } else if constexpr (std::is_same_v<T, cmd::node_fenced>) {
          w.u(t_node_fenced);
          w.id(x.id);
        } else if constexpr (std::is_same_v<T, cmd::node_forgotten>) {
          w.u(t_node_forgotten);
          w.id(x.id);
        } else if constexpr (std::is_same_v<T, cmd::isr_shrink> || std::is_same_v<T, cmd::isr_expand>) {
          w.u(std::is_same_v<T, cmd::isr_shrink> ? t_isr_shrink : t_isr_expand);
          w.u(x.partition);
          w.u(x.epoch);
          w.id(x.node);
        } else if constexpr (std::is_same_v<T, cmd::owner_change>) {
          w.u(t_owner_change);
          w.u(x.partition);
          w.u(x.epoch);
          w.id(x.owner);
        } else if constexpr (std::is_same_v<T, cmd::set_replicas>) {
          w.u(t_set_replicas);
          w.u(x.partition);
          w.ids(x.target);
        } else {
          static_assert(std::is_same_v<T, cmd::partition_reset>);
          w.u(t_partition_reset);
          w.u(x.partition);
        }
      },
      c);
  return std::move(w.out);
}

std::optional<command> decode_command(std::string_view in) {
  if (in.empty() || static_cast<std::uint8_t>(in[0]) != version) return std::nullopt;
  reader r{core::varint_reader{in.substr(1)}};
  command c;
  switch (r.u()) {
    case t_bootstrap: {
      cmd::bootstrap b;
      b.partitions = static_cast<std::uint32_t>(r.u_max(max_partitions));
      b.factor = static_cast<std::uint32_t>(r.u_max(255));
      const auto n = r.u_max(max_list);
      for (std::uint64_t i = 0; i < n && r.r.ok; ++i) b.members.push_back(r.m());
      c = std::move(b);
      break;
    }
    case t_node_up: c = cmd::node_up{r.m()}; break;
    case t_node_fenced: c = cmd::node_fenced{r.id()}; break;
    case t_node_forgotten: c = cmd::node_forgotten{r.id()}; break;
    case t_isr_shrink: {
      auto [p, e, id] = r.partition_epoch_store();
      c = cmd::isr_shrink{p, e, id};
      break;
    }
    case t_isr_expand: {
      auto [p, e, id] = r.partition_epoch_store();
      c = cmd::isr_expand{p, e, id};
      break;
    }
    case t_owner_change: {
      auto [p, e, id] = r.partition_epoch_store();
      c = cmd::owner_change{p, e, id};
      break;
    }
    case t_set_replicas: {
      cmd::set_replicas x;
      x.partition = r.p();
      x.target = r.ids();
      c = std::move(x);
      break;
    }
    case t_partition_reset: c = cmd::partition_reset{r.p()}; break;
    default: return std::nullopt;
  }
  if (!r.done()) return std::nullopt;
  return c;
}

std::string encode_state(const controller_state& s) {
  writer w;
  w.out.push_back(static_cast<char>(version));
  w.u(s.factor());
  w.u(s.members().size());
  for (const auto& m : s.members()) w.m(m);
  w.u(s.partitions().size());
  for (const auto& p : s.partitions()) {
    w.u(p.epoch);
    w.id(p.owner);
    w.ids(p.replicas);
    w.ids(p.isr);
    w.ids(p.learners);
    w.u(p.offline ? 1 : 0);
  }
  return std::move(w.out);
}

std::optional<controller_state> decode_state(std::string_view in) {
  if (in.empty() || static_cast<std::uint8_t>(in[0]) != version) return std::nullopt;
  reader r{core::varint_reader{in.substr(1)}};
  const auto factor = static_cast<std::uint32_t>(r.u_max(255));
  std::vector<member> members;
  const auto n = r.u_max(max_list);
  for (std::uint64_t i = 0; i < n && r.r.ok; ++i) members.push_back(r.m());
  std::vector<partition_state> partitions;
  const auto np = r.u_max(max_partitions);
  for (std::uint64_t i = 0; i < np && r.r.ok; ++i) {
    partition_state p;
    p.epoch = r.u();
    p.owner = r.id();
    p.replicas = r.ids();
    p.isr = r.ids();
    p.learners = r.ids();
    p.offline = r.u_max(1) == 1;
    partitions.push_back(std::move(p));
  }
  if (!r.done()) return std::nullopt;
  auto s = controller_state::restore(factor, std::move(members), std::move(partitions));
  if (s.broken_invariant()) return std::nullopt;
  return s;
}

}  // namespace flock::controller
