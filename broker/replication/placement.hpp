#pragma once
// Where a partition's copies should live: rendezvous (highest random
// weight) hashing of (partition, store) over the stores that may hold data,
// the first `factor` of them, spread over zones first. Each store's score
// for a partition does not depend on the others, so adding or removing one
// store moves only the partitions it wins or held (about 1/n of them), and
// no two copies ever land on one store. Pure; any thread.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "broker/replication/types.hpp"

namespace flock::replication {

struct placement_candidate {
  store_id id;
  std::string zone;  // empty: no zone
};

// The score of `store` for partition `p`: a 64-bit mix of both.
std::uint64_t placement_score(partition_id p, const store_id& store);

// The preferred stores of partition `p`, best first (the first is its
// preferred owner): min(factor, candidates) distinct stores. With zones,
// the best store of each zone comes first (zones in score order), then the
// rest in score order.
std::vector<store_id> place(partition_id p, std::span<const placement_candidate> candidates, std::size_t factor);

}  // namespace flock::replication
