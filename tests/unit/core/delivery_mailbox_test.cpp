#include "broker/core/delivery_mailbox.hpp"

#include <gtest/gtest.h>

#include "broker/core/message.hpp"

using flock::core::delivery;
using flock::core::delivery_mailbox;

namespace {

std::vector<delivery_mailbox::item> batch(std::size_t n, std::uint8_t qos) {
  auto msg = std::make_shared<flock::core::message>();
  std::vector<delivery_mailbox::item> out;
  for (std::size_t i = 0; i < n; ++i) {
    delivery d;
    d.msg = msg;
    d.qos = qos;
    out.emplace_back(nullptr, std::move(d));
  }
  return out;
}

}  // namespace

TEST(delivery_mailbox, only_the_put_that_finds_it_idle_asks_for_a_drain) {
  delivery_mailbox box;
  std::uint64_t dropped = 0;
  auto a = batch(3, 0), b = batch(2, 1);
  EXPECT_TRUE(box.put(a, dropped));
  EXPECT_FALSE(box.put(b, dropped));  // a drain is already on its way
  EXPECT_EQ(box.size(), 5u);

  std::vector<delivery_mailbox::item> taken;
  box.take(taken);
  EXPECT_EQ(taken.size(), 5u);
  EXPECT_EQ(taken[3].second.qos, 1);  // in the order put
  EXPECT_EQ(box.size(), 0u);
  auto c = batch(1, 0);
  EXPECT_TRUE(box.put(c, dropped));  // idle again: the next put posts
  EXPECT_EQ(dropped, 0u);
}

TEST(delivery_mailbox, past_the_limit_qos0_is_dropped_and_counted_qos1_kept) {
  delivery_mailbox box;
  std::uint64_t dropped = 0;
  auto full = batch(delivery_mailbox::limit, 0);
  box.put(full, dropped);
  auto more0 = batch(10, 0), more1 = batch(4, 1);
  box.put(more0, dropped);
  box.put(more1, dropped);
  EXPECT_EQ(dropped, 10u);
  EXPECT_EQ(box.size(), delivery_mailbox::limit + 4);
  std::vector<delivery_mailbox::item> taken;
  box.take(taken);
  EXPECT_EQ(taken.back().second.qos, 1);
}
