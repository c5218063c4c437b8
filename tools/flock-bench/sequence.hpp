#pragma once
// Exact accounting of one publisher's sequence numbers as seen by one
// subscriber: which numbers arrived (as disjoint ranges, so an in-order stream
// is one range and memory grows only with the number of gaps), duplicates, and
// numbers that arrived after a higher one (out of order). Pure std.
#include <cstdint>
#include <iterator>
#include <map>

namespace flock::bench {

class sequence_tracker {
 public:
  enum class outcome { in_order, out_of_order, duplicate };

  outcome add(std::uint64_t seq) {
    if (ranges_.empty()) {
      ranges_.emplace(seq, seq + 1);
      unique_ = 1;
      end_ = seq + 1;
      return outcome::in_order;
    }
    // Fast path: extends the highest range.
    auto last = std::prev(ranges_.end());
    if (seq == last->second) {
      last->second = seq + 1;
      ++unique_;
      end_ = seq + 1;
      return outcome::in_order;
    }
    auto next = ranges_.upper_bound(seq);  // first range starting after seq
    if (next != ranges_.begin()) {
      auto prev = std::prev(next);
      if (seq < prev->second) return outcome::duplicate;
      if (prev->second == seq) {  // extend prev, maybe join next
        prev->second = seq + 1;
        if (next != ranges_.end() && next->first == seq + 1) {
          prev->second = next->second;
          ranges_.erase(next);
        }
        return finish(seq);
      }
    }
    if (next != ranges_.end() && next->first == seq + 1) {  // extend next downwards
      std::uint64_t end = next->second;
      ranges_.erase(next);
      ranges_.emplace(seq, end);
    } else {
      ranges_.emplace(seq, seq + 1);
    }
    return finish(seq);
  }

  bool contains(std::uint64_t seq) const {
    auto next = ranges_.upper_bound(seq);
    if (next == ranges_.begin()) return false;
    return seq < std::prev(next)->second;
  }

  std::uint64_t unique() const { return unique_; }
  // Numbers from 0 up to the highest one seen that have not arrived (yet).
  std::uint64_t missing_below_highest() const { return end_ - unique_; }
  // Numbers between the lowest and the highest seen that have not arrived: a
  // receiver that joined late (sub) does not count what came before it.
  std::uint64_t missing_between_first_and_highest() const {
    return ranges_.empty() ? 0 : end_ - ranges_.begin()->first - unique_;
  }
  std::size_t ranges() const { return ranges_.size(); }

 private:
  outcome finish(std::uint64_t seq) {
    ++unique_;
    if (seq < end_) return outcome::out_of_order;
    end_ = seq + 1;
    return outcome::in_order;
  }

  std::map<std::uint64_t, std::uint64_t> ranges_;  // start -> end (exclusive); disjoint, never adjacent
  std::uint64_t unique_ = 0;
  std::uint64_t end_ = 0;  // highest seen + 1
};

}  // namespace flock::bench
