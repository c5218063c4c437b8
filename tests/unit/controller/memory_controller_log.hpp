#pragma once
// ports::controller_log in memory: what a data directory would keep of a
// controller's Raft log. Outlives the controller, so a test can "restart"
// a node on what it kept; checks that appends never leave a gap.
#include <gtest/gtest.h>

#include "broker/ports/controller_log.hpp"

namespace flock::testing {

struct memory_controller_log final : ports::controller_log {
  ports::controller_log_state kept;
  ports::controller_log_state load() override { return kept; }
  bool save_term_vote(std::uint64_t term, std::uint64_t vote) override {
    kept.term = term;
    kept.vote = vote;
    return true;
  }
  bool append(std::uint64_t first, std::span<const ports::controller_entry> entries) override {
    if (kept.entries.empty()) kept.first_index = first;
    EXPECT_EQ(first, kept.first_index + kept.entries.size()) << "an append that leaves a gap";
    kept.entries.insert(kept.entries.end(), entries.begin(), entries.end());
    return true;
  }
  bool truncate(std::uint64_t index) override {
    while (!kept.entries.empty() && kept.first_index + kept.entries.size() > index) kept.entries.pop_back();
    return true;
  }
  bool save_snapshot(const ports::controller_snapshot& snap, std::uint64_t keep_from) override {
    kept.snapshot = snap;
    while (!kept.entries.empty() && kept.first_index < keep_from) {
      kept.entries.erase(kept.entries.begin());
      ++kept.first_index;
    }
    if (kept.entries.empty()) kept.first_index = keep_from;
    return true;
  }
};

}  // namespace flock::testing
