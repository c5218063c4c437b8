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

namespace {

// Distinct session pointers for the box's bookkeeping; never dereferenced.
std::shared_ptr<flock::core::session> fake_session(std::uintptr_t n) {
  return std::shared_ptr<flock::core::session>(std::shared_ptr<void>(), reinterpret_cast<flock::core::session*>(n * 64));
}

delivery_mailbox::item for_session(const std::shared_ptr<flock::core::session>& s, std::uint8_t qos) {
  delivery d;
  d.msg = std::make_shared<flock::core::message>();
  d.qos = qos;
  return {s, std::move(d)};
}

}  // namespace

// The race this closes: a publisher's earlier delivery waited in the old
// owner's box while its later one, put after the session moved, was already
// delivered by the new owner.
TEST(delivery_mailbox, a_moving_session_takes_its_waiting_items_along_in_order) {
  delivery_mailbox from, to;
  auto a = fake_session(1), b = fake_session(2);
  std::uint64_t dropped = 0;
  std::vector<delivery_mailbox::item> in{for_session(a, 1), for_session(b, 0), for_session(a, 2)};
  EXPECT_TRUE(from.put(in, dropped));
  bool changed = false;
  EXPECT_TRUE(delivery_mailbox::move_items_of(a.get(), from, to, [&] { changed = true; }));
  EXPECT_TRUE(changed);
  std::vector<delivery_mailbox::item> later{for_session(a, 0)};
  EXPECT_FALSE(to.put(later, dropped));  // a drain is already on its way to the new owner

  std::vector<delivery_mailbox::item> got;
  to.take(got);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].second.qos, 1);  // a's items in the order put, the later one last
  EXPECT_EQ(got[1].second.qos, 2);
  EXPECT_EQ(got[2].second.qos, 0);
  from.take(got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, b);  // the other session's item stays
}

TEST(delivery_mailbox, items_whose_session_moved_are_handed_back_not_kept) {
  delivery_mailbox box;
  auto here = fake_session(1), gone = fake_session(2);
  std::uint64_t dropped = 0;
  std::vector<delivery_mailbox::item> in{for_session(gone, 1), for_session(here, 1)}, elsewhere;
  EXPECT_TRUE(box.put(in, dropped, [&](const delivery_mailbox::item& i) { return i.first == here; }, elsewhere));
  ASSERT_EQ(elsewhere.size(), 1u);
  EXPECT_EQ(elsewhere[0].first, gone);
  EXPECT_EQ(box.size(), 1u);
  std::vector<delivery_mailbox::item> only_gone{for_session(gone, 1)}, none;
  std::vector<delivery_mailbox::item> taken;
  box.take(taken);
  EXPECT_FALSE(box.put(only_gone, dropped, [&](const delivery_mailbox::item& i) { return i.first == here; }, none));
  EXPECT_EQ(box.size(), 0u);  // nothing went in: no drain task for an empty box
}
