#include "broker/core/lazy_deque.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

using flock::core::lazy_deque;

TEST(lazy_deque, empty_iterates_nothing_and_fills_in_order) {
  lazy_deque<std::string> q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.begin(), q.end());
  q.push_back("a");
  q.push_back("b");
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.front(), "a");
  EXPECT_EQ(std::string(q.begin()->c_str()), "a");
  q.pop_front();
  EXPECT_EQ(q.front(), "b");
  q.pop_front();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.begin(), q.end());
  q.release_if_empty();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.begin(), q.end());
  q.push_back("c");  // usable again after it let go of its memory
  EXPECT_EQ(q.front(), "c");
}

TEST(lazy_deque, erase_loop_ends_when_the_last_element_goes) {
  lazy_deque<int> q;
  for (int i = 0; i < 5; ++i) q.push_back(i);
  auto odd = std::find(q.begin(), q.end(), 3);
  q.erase(odd);
  EXPECT_EQ(q.size(), 4u);
  int seen = 0;
  for (auto it = q.begin(); it != q.end();) {
    ++seen;
    it = q.erase(it);
  }
  EXPECT_EQ(seen, 4);
  EXPECT_TRUE(q.empty());
  q.release_if_empty();
  q.release_if_empty();  // twice is harmless
  EXPECT_EQ(q.size(), 0u);
}

TEST(lazy_deque, moves_its_contents_and_clear_empties) {
  lazy_deque<int> a;
  a.push_back(1);
  a.push_back(2);
  lazy_deque<int> b = std::move(a);
  EXPECT_EQ(b.size(), 2u);
  const auto& cb = b;
  int sum = 0;
  for (int v : cb) sum += v;
  EXPECT_EQ(sum, 3);
  b.clear();
  EXPECT_TRUE(b.empty());
}
