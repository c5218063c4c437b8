// flock-bench's latency histogram (tools/flock-bench/histogram.hpp).
#include "tools/flock-bench/histogram.hpp"

#include <gtest/gtest.h>

#include <random>

namespace flock::bench {
namespace {

TEST(bench_histogram, empty_reports_zero) {
  histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(0.5), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(bench_histogram, small_values_are_exact) {
  histogram h;
  for (std::uint64_t v = 0; v < 256; ++v) h.record(v);
  EXPECT_EQ(h.percentile(0.0), 0u);
  EXPECT_EQ(h.percentile(0.5), 127u);
  EXPECT_EQ(h.percentile(1.0), 255u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 255u);
}

TEST(bench_histogram, buckets_are_contiguous_and_cover_uint64) {
  for (std::uint64_t v : {0ull, 1ull, 255ull, 256ull, 257ull, 511ull, 512ull, 1000ull, 123456789ull, ~0ull}) {
    auto i = histogram::index_of(v);
    ASSERT_LT(i, histogram::bucket_count) << v;
    EXPECT_GE(histogram::highest_in(i), v) << v;
    if (i > 0) {
      EXPECT_LT(histogram::highest_in(i - 1), v) << v;
    }
  }
  for (std::size_t i = 1; i < histogram::bucket_count; ++i)
    ASSERT_EQ(histogram::index_of(histogram::highest_in(i - 1) + 1), i) << i;
}

TEST(bench_histogram, relative_error_is_below_one_percent) {
  std::mt19937_64 rng(42);
  for (int n = 0; n < 100000; ++n) {
    std::uint64_t v = rng() >> (rng() % 64);
    std::uint64_t reported = histogram::highest_in(histogram::index_of(v));
    ASSERT_GE(reported, v);
    ASSERT_LE(static_cast<double>(reported - v), static_cast<double>(v) * 0.008 + 1) << v;
  }
}

TEST(bench_histogram, percentiles_of_a_uniform_range) {
  histogram h;
  for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v * 1000);  // 1 us .. 100 ms in ns
  EXPECT_EQ(h.count(), 100000u);
  auto near = [](std::uint64_t got, double want) { return std::abs(static_cast<double>(got) - want) <= want * 0.01; };
  EXPECT_TRUE(near(h.percentile(0.5), 50e6)) << h.percentile(0.5);
  EXPECT_TRUE(near(h.percentile(0.99), 99e6)) << h.percentile(0.99);
  EXPECT_TRUE(near(h.percentile(0.999), 99.9e6)) << h.percentile(0.999);
  EXPECT_EQ(h.percentile(1.0), 100000000u);  // clamped to the exact max
  EXPECT_NEAR(h.mean(), 50.0005e6, 1);
}

TEST(bench_histogram, merge_adds_counts_and_extremes) {
  histogram a, b;
  a.record(10);
  a.record(20);
  b.record(5);
  b.record(1000000);
  a.merge(b);
  EXPECT_EQ(a.count(), 4u);
  EXPECT_EQ(a.min(), 5u);
  EXPECT_EQ(a.max(), 1000000u);
  EXPECT_EQ(a.percentile(0.5), 10u);
}

}  // namespace
}  // namespace flock::bench
