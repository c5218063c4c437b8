// flock-bench's route-convergence bounds (tools/flock-bench/probes.hpp):
// what one `converge` attempt proves about when the route started working.
#include "tools/flock-bench/probes.hpp"

#include <gtest/gtest.h>

namespace flock::bench {
namespace {

TEST(bench_probes, route_found_by_a_probe_after_the_suback) {
  probe_attempt a(1'000);          // SUBSCRIBE sent at t = 1000 ns
  EXPECT_EQ(a.sent(1'000), 0u);    // probe 0 with the SUBSCRIBE: not delivered
  a.suback(1'300);
  EXPECT_EQ(a.sent(2'000), 1u);    // probe 1: delivered
  EXPECT_TRUE(a.arrived(1, 2'150));
  ASSERT_TRUE(a.complete());
  auto b = a.result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->upper_ns, 2'150 - 1'300);   // SUBACK -> arrival
  EXPECT_EQ(b->lower_ns, 1'000 - 1'300);   // probe 0 was handled without the route
  EXPECT_EQ(b->delivery_ns, 150);          // probe 1's own trip
  EXPECT_EQ(b->probes_sent, 2u);
}

TEST(bench_probes, first_probe_delivered_bounds_from_the_subscribe) {
  probe_attempt a(500);
  a.sent(600);
  a.suback(700);
  a.arrived(0, 800);
  auto b = a.result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->lower_ns, 500 - 700);  // nothing is known before the SUBSCRIBE left
  EXPECT_EQ(b->upper_ns, 100);
  EXPECT_EQ(b->probes_sent, 1u);
}

TEST(bench_probes, a_probe_before_the_suback_waits_for_it_and_gives_a_negative_bound) {
  probe_attempt a(0);
  a.sent(10);
  a.sent(20);
  EXPECT_TRUE(a.arrived(1, 30));
  EXPECT_FALSE(a.complete());  // the SUBACK is still on its way
  EXPECT_FALSE(a.result());
  a.suback(50);
  ASSERT_TRUE(a.complete());
  auto b = a.result();
  EXPECT_EQ(b->upper_ns, -20);  // the route worked before the client saw its SUBACK
  EXPECT_EQ(b->lower_ns, 10 - 50);
}

TEST(bench_probes, only_the_first_arrival_counts) {
  probe_attempt a(0);
  a.sent(100);
  a.sent(200);
  a.sent(300);
  a.suback(150);
  EXPECT_FALSE(a.arrived(7, 250));  // never sent: ignored
  EXPECT_FALSE(a.has_arrival());
  EXPECT_TRUE(a.arrived(2, 350));
  EXPECT_FALSE(a.arrived(1, 360));  // a later arrival of an earlier probe changes nothing
  auto b = a.result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->upper_ns, 200);
  EXPECT_EQ(b->lower_ns, 200 - 150);
  EXPECT_EQ(b->delivery_ns, 50);
  EXPECT_EQ(b->probes_sent, 3u);
}

TEST(bench_probes, only_the_first_suback_counts) {
  probe_attempt a(0);
  a.sent(0);
  a.suback(100);
  a.suback(900);
  a.arrived(0, 400);
  EXPECT_EQ(a.result()->upper_ns, 300);
}

TEST(bench_probes, incomplete_attempts_have_no_result) {
  probe_attempt a(0);
  EXPECT_FALSE(a.result());
  a.sent(5);
  a.suback(6);
  EXPECT_FALSE(a.complete());
  EXPECT_FALSE(a.result());
  EXPECT_EQ(a.probes(), 1u);
}

}  // namespace
}  // namespace flock::bench
