#include "broker/replication/placement.hpp"

#include <algorithm>
#include <unordered_set>

namespace flock::replication {

namespace {

// splitmix64's finaliser: every input bit moves every output bit.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t placement_score(partition_id p, const store_id& store) {
  return mix(store.hi ^ mix(store.lo ^ mix(p)));
}

std::vector<store_id> place(partition_id p, std::span<const placement_candidate> candidates, std::size_t factor) {
  struct scored {
    std::uint64_t score;
    const placement_candidate* c;
  };
  std::vector<scored> order;
  order.reserve(candidates.size());
  for (const auto& c : candidates) order.push_back({placement_score(p, c.id), &c});
  // Ties (never seen with 64-bit scores, but possible) break by id, so
  // every node computes the same order.
  std::sort(order.begin(), order.end(), [](const scored& a, const scored& b) {
    return a.score != b.score ? a.score > b.score : a.c->id < b.c->id;
  });
  order.erase(std::unique(order.begin(), order.end(), [](const scored& a, const scored& b) { return a.c->id == b.c->id; }),
              order.end());
  std::vector<store_id> out;
  std::vector<bool> taken(order.size(), false);
  std::unordered_set<std::string> zones;
  for (std::size_t i = 0; i < order.size() && out.size() < factor; ++i) {
    if (!zones.insert(order[i].c->zone).second) continue;
    out.push_back(order[i].c->id);
    taken[i] = true;
  }
  for (std::size_t i = 0; i < order.size() && out.size() < factor; ++i) {
    if (taken[i]) continue;
    out.push_back(order[i].c->id);
  }
  return out;
}

}  // namespace flock::replication
