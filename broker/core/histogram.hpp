#pragma once
// A fixed-bucket histogram for one writer thread (a worker, the store's
// writer): relaxed atomic adds on the writer's own cache lines, read from any
// thread by a scrape. The bucket bounds are shared by every histogram of a
// kind, so a reading is just counts (docs/metrics.md).
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace flock::core {

// Wall-clock microseconds since the epoch: publish-to-deliver latency is
// measured across nodes, so a steady clock (per machine) would not do.
inline std::int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What a scrape reads: per-bucket counts (not cumulative), the last one
// above every bound; the sum of observed values.
template <std::size_t Bounds>
struct histogram_reading {
  std::array<std::uint64_t, Bounds + 1> counts{};
  std::uint64_t sum = 0;
  std::uint64_t count() const {
    std::uint64_t n = 0;
    for (auto c : counts) n += c;
    return n;
  }
  histogram_reading& operator+=(const histogram_reading& o) {
    for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
    sum += o.sum;
    return *this;
  }
};

template <std::size_t Bounds>
class histogram {
 public:
  explicit constexpr histogram(const std::array<std::uint64_t, Bounds>& bounds) : bounds_(&bounds) {}

  void observe(std::uint64_t v) {
    std::size_t i = 0;
    while (i < Bounds && v > (*bounds_)[i]) ++i;
    bump(counts_[i], 1);
    bump(sum_, v);
  }
  histogram_reading<Bounds> read() const {
    histogram_reading<Bounds> r;
    for (std::size_t i = 0; i <= Bounds; ++i) r.counts[i] = counts_[i].load(std::memory_order_relaxed);
    r.sum = sum_.load(std::memory_order_relaxed);
    return r;
  }

 private:
  // One writer: a load and a store, not a locked read-modify-write.
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  const std::array<std::uint64_t, Bounds>* bounds_;
  std::array<std::atomic<std::uint64_t>, Bounds + 1> counts_{};
  std::atomic<std::uint64_t> sum_{0};
};

// Publish-to-deliver latency, microseconds: 50 µs .. 10 s.
inline constexpr std::array<std::uint64_t, 16> latency_bounds_us{
    50, 100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000,
    2'500'000, 10'000'000};
using latency_histogram = histogram<latency_bounds_us.size()>;
using latency_reading = histogram_reading<latency_bounds_us.size()>;

// Sizes (operations per store write): 1 .. 16384.
inline constexpr std::array<std::uint64_t, 14> size_bounds{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 16384};
using size_histogram = histogram<size_bounds.size()>;
using size_reading = histogram_reading<size_bounds.size()>;

// Messages queued per session: 0 .. 100000 (an offline fleet's backlog).
inline constexpr std::array<std::uint64_t, 7> queue_bounds{0, 1, 10, 100, 1'000, 10'000, 100'000};
using queue_reading = histogram_reading<queue_bounds.size()>;

}  // namespace flock::core
