#pragma once
// A log-linear latency histogram (HdrHistogram's layout, fixed precision):
// values below 256 are exact, above that every power of two is split into 128
// buckets, so a reported value is at most 0.8% above the true one. Fixed
// 7424 buckets (58 KiB) cover the whole uint64 range; record() is O(1) and
// never allocates. Pure std: unit-tested in tests/unit/bench.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace flock::bench {

class histogram {
 public:
  static constexpr int sub_bits = 7;
  static constexpr std::uint64_t sub_count = std::uint64_t{1} << sub_bits;  // 128
  static constexpr std::size_t bucket_count = (64 - sub_bits + 1) * sub_count;  // 7424

  static std::size_t index_of(std::uint64_t v) {
    int bits = std::bit_width(v);
    if (bits <= sub_bits + 1) return static_cast<std::size_t>(v);  // 0..255 exact
    int shift = bits - (sub_bits + 1);
    return static_cast<std::size_t>(shift) * sub_count + static_cast<std::size_t>(v >> shift);
  }
  // Largest value that lands in bucket i.
  static std::uint64_t highest_in(std::size_t i) {
    if (i < 2 * sub_count) return i;
    std::size_t shift = i / sub_count - 1;
    std::uint64_t mantissa = i - shift * sub_count;  // 128..255
    return ((mantissa + 1) << shift) - 1;
  }

  void record(std::uint64_t v) {
    ++buckets_[index_of(v)];
    ++count_;
    sum_ += static_cast<double>(v);
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  void merge(const histogram& o) {
    for (std::size_t i = 0; i < bucket_count; ++i) buckets_[i] += o.buckets_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
  }

  // The smallest recorded bucket bound such that at least q (0..1) of the
  // values are <= it; never above max(). 0 when empty.
  std::uint64_t percentile(double q) const {
    if (count_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::clamp(highest_in(i), min_, max_);
    }
    return max_;
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }

 private:
  std::array<std::uint64_t, bucket_count> buckets_{};
  std::uint64_t count_ = 0;
  double sum_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
};

}  // namespace flock::bench
