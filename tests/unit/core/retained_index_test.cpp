#include "broker/core/retained_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "broker/codec/topic.hpp"

namespace flock::core {
namespace {

using namespace std::chrono_literals;

message_ptr retained(std::string topic, std::string payload = "x",
                     std::optional<ports::time_point> expires_at = std::nullopt) {
  auto m = std::make_shared<message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  m->expires_at = expires_at;
  return m;
}

std::vector<std::string> topics(const retained_index& idx, std::string_view filter) {
  std::vector<std::string> out;
  idx.match(filter, [&](const message_ptr& m) { out.push_back(m->topic); });
  std::sort(out.begin(), out.end());
  return out;
}

using strings = std::vector<std::string>;

TEST(retained_index, set_reports_added_replaced_and_removed) {
  retained_index idx;
  EXPECT_EQ(idx.set(retained("a/b", "1")), 1);
  EXPECT_EQ(idx.size(), 1u);
  EXPECT_EQ(idx.set(retained("a/b", "2")), 0);
  EXPECT_EQ(idx.size(), 1u);
  EXPECT_EQ(idx.find("a/b")->payload, "2");
  EXPECT_EQ(idx.set(retained("a/b", "")), -1);
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_EQ(idx.find("a/b"), nullptr);
}

TEST(retained_index, empty_payload_for_an_unknown_topic_changes_nothing) {
  retained_index idx;
  idx.set(retained("a/b"));
  EXPECT_EQ(idx.set(retained("a/c", "")), 0);
  EXPECT_EQ(idx.set(retained("a", "")), 0);  // an inner trie node, not a retained topic
  EXPECT_EQ(idx.size(), 1u);
  EXPECT_EQ(topics(idx, "#"), strings{"a/b"});
}

TEST(retained_index, exact_filter_returns_only_that_topic) {
  retained_index idx;
  for (auto t : {"a", "a/b", "a/b/c", "a/bc", "a//b"}) idx.set(retained(t));
  EXPECT_EQ(topics(idx, "a/b"), strings{"a/b"});
  EXPECT_EQ(topics(idx, "a//b"), strings{"a//b"});
  EXPECT_EQ(topics(idx, "a/x"), strings{});
}

TEST(retained_index, plus_matches_one_level_including_empty_ones) {
  retained_index idx;
  for (auto t : {"a/b/c", "a/x/c", "a//c", "a/b/c/d", "a/c", "b/b/c"}) idx.set(retained(t));
  EXPECT_EQ(topics(idx, "a/+/c"), (strings{"a//c", "a/b/c", "a/x/c"}));
  EXPECT_EQ(topics(idx, "+/b/+"), (strings{"a/b/c", "b/b/c"}));
  EXPECT_EQ(topics(idx, "+"), strings{});
}

TEST(retained_index, hash_matches_the_parent_level_and_all_descendants) {
  retained_index idx;
  for (auto t : {"a", "a/b", "a/b/c", "ab", "b/a"}) idx.set(retained(t));
  EXPECT_EQ(topics(idx, "a/#"), (strings{"a", "a/b", "a/b/c"}));
  EXPECT_EQ(topics(idx, "a/b/#"), (strings{"a/b", "a/b/c"}));
  EXPECT_EQ(topics(idx, "#"), (strings{"a", "a/b", "a/b/c", "ab", "b/a"}));
  EXPECT_EQ(topics(idx, "+/#"), (strings{"a", "a/b", "a/b/c", "ab", "b/a"}));
  EXPECT_EQ(topics(idx, "a/+/#"), (strings{"a/b", "a/b/c"}));
}

TEST(retained_index, leading_wildcards_skip_dollar_topics) {
  retained_index idx;
  for (auto t : {"$SYS/uptime", "$SYS/load/1", "x/$y", "x"}) idx.set(retained(t));
  EXPECT_EQ(topics(idx, "#"), (strings{"x", "x/$y"}));
  EXPECT_EQ(topics(idx, "+/uptime"), strings{});
  EXPECT_EQ(topics(idx, "+/+"), strings{"x/$y"});
  EXPECT_EQ(topics(idx, "$SYS/#"), (strings{"$SYS/load/1", "$SYS/uptime"}));
  EXPECT_EQ(topics(idx, "$SYS/+"), strings{"$SYS/uptime"});
  EXPECT_EQ(topics(idx, "x/+"), strings{"x/$y"});
}

TEST(retained_index, replacing_returns_the_new_message_from_every_lookup) {
  retained_index idx;
  idx.set(retained("a/b", "old"));
  {
    auto fresh = retained("a/b", "new");
    idx.set(fresh);
  }
  // The old message (whose topic the map key used to view) is gone now.
  EXPECT_EQ(idx.find("a/b")->payload, "new");
  std::vector<std::string> payloads;
  for (auto f : {"a/b", "a/+", "#"}) idx.match(f, [&](const message_ptr& m) { payloads.push_back(m->payload); });
  EXPECT_EQ(payloads, (strings{"new", "new", "new"}));
}

TEST(retained_index, removing_a_topic_keeps_its_neighbours) {
  retained_index idx;
  for (auto t : {"a", "a/b", "a/b/c", "a/d"}) idx.set(retained(t));
  EXPECT_TRUE(idx.erase("a/b"));
  EXPECT_FALSE(idx.erase("a/b"));
  EXPECT_EQ(topics(idx, "#"), (strings{"a", "a/b/c", "a/d"}));
  EXPECT_TRUE(idx.erase("a/b/c"));
  EXPECT_EQ(topics(idx, "a/+/+"), strings{});
  EXPECT_EQ(topics(idx, "#"), (strings{"a", "a/d"}));
  EXPECT_TRUE(idx.erase("a"));
  EXPECT_EQ(topics(idx, "a/#"), strings{"a/d"});
  EXPECT_EQ(idx.set(retained("a/b/c")), 1);
  EXPECT_EQ(topics(idx, "a/+/c"), strings{"a/b/c"});
}

TEST(retained_index, erase_expired_removes_only_messages_past_their_deadline) {
  retained_index idx;
  ports::time_point t0{};
  idx.set(retained("keep/forever"));
  idx.set(retained("soon", "x", t0 + 1s));
  idx.set(retained("later", "x", t0 + 10s));
  EXPECT_EQ(idx.next_expiry(), t0 + 1s);
  EXPECT_EQ(idx.erase_expired(t0), 0u);
  EXPECT_EQ(idx.erase_expired(t0 + 1s), 1u);  // a deadline equal to now has passed
  EXPECT_EQ(topics(idx, "#"), (strings{"keep/forever", "later"}));
  EXPECT_EQ(idx.next_expiry(), t0 + 10s);
  EXPECT_EQ(idx.erase_expired(t0 + 1h), 1u);
  EXPECT_EQ(topics(idx, "#"), strings{"keep/forever"});
  EXPECT_EQ(idx.next_expiry(), std::nullopt);
}

TEST(retained_index, replacing_a_message_replaces_its_deadline) {
  retained_index idx;
  ports::time_point t0{};
  idx.set(retained("t", "1", t0 + 1s));
  idx.set(retained("t", "2", t0 + 5s));
  EXPECT_EQ(idx.erase_expired(t0 + 2s), 0u);
  EXPECT_EQ(idx.find("t")->payload, "2");
  idx.set(retained("t", "3"));  // no expiry at all now
  EXPECT_EQ(idx.erase_expired(t0 + 1h), 0u);
  EXPECT_EQ(idx.size(), 1u);
  idx.set(retained("u", "1", t0 + 1s));
  idx.set(retained("u", ""));  // removed before it expires
  EXPECT_EQ(idx.next_expiry(), std::nullopt);
  EXPECT_EQ(idx.erase_expired(t0 + 1h), 0u);
}

TEST(retained_index, for_each_visits_every_message_once) {
  retained_index idx;
  for (auto t : {"a", "a/b", "$SYS/x", "/"}) idx.set(retained(t));
  strings seen;
  idx.for_each([&](const message_ptr& m) { seen.push_back(m->topic); });
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (strings{"$SYS/x", "/", "a", "a/b"}));
}

TEST(retained_index, wildcard_match_in_a_large_index_returns_exactly_the_matching_topics) {
  retained_index idx;
  for (int i = 0; i < 20000; ++i) idx.set(retained("dev/" + std::to_string(i) + "/state"));
  for (int i = 0; i < 100; ++i) idx.set(retained("site/" + std::to_string(i) + "/temp"));
  idx.set(retained("site/7/temp/raw"));
  EXPECT_EQ(idx.size(), 20101u);
  EXPECT_EQ(topics(idx, "site/+/temp").size(), 100u);
  EXPECT_EQ(topics(idx, "site/7/#"), (strings{"site/7/temp", "site/7/temp/raw"}));
  EXPECT_EQ(topics(idx, "dev/+/state").size(), 20000u);
  EXPECT_EQ(topics(idx, "dev/19999/state"), strings{"dev/19999/state"});
}

TEST(retained_index, very_deep_topics_do_not_exhaust_the_stack) {
  std::string topic = "a";
  for (int i = 0; i < 100000; ++i) topic += "/a";
  retained_index idx;
  idx.set(retained(topic));
  EXPECT_EQ(topics(idx, "#").size(), 1u);
  EXPECT_EQ(topics(idx, topic).size(), 1u);
  idx.set(retained(topic + "/b"));
  EXPECT_TRUE(idx.erase(topic));
  EXPECT_EQ(topics(idx, "a/#").size(), 1u);
}  // destruction of a 100,000-level trie

// Random topics over a tiny alphabet, checked against topic_matches.
TEST(retained_index, random_topics_agree_with_brute_force_matching) {
  std::mt19937 rng(1337);
  const std::vector<std::string> words{"a", "b", "", "$s"};
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  auto random_levels = [&](bool wild) {
    std::string s;
    std::size_t levels = 1 + pick(4);
    for (std::size_t i = 0; i < levels; ++i) {
      if (i) s += '/';
      std::size_t r = wild ? pick(10) : 9;
      if (r < 2) {
        s += '+';
      } else if (r == 2 && i + 1 == levels) {
        s += '#';
      } else {
        s += words[pick(words.size())];
      }
    }
    return s.empty() ? std::string("/") : s;
  };

  retained_index idx;
  std::map<std::string, std::string> model;  // topic -> payload
  for (int round = 0; round < 4000; ++round) {
    std::string topic = random_levels(false);
    std::string payload = pick(4) == 0 ? "" : std::to_string(round);
    int want = payload.empty() ? (model.erase(topic) ? -1 : 0) : (model.count(topic) ? 0 : 1);
    if (!payload.empty()) model[topic] = payload;
    ASSERT_EQ(idx.set(retained(topic, payload)), want) << topic;
    ASSERT_EQ(idx.size(), model.size());
    if (round % 10 != 0) continue;
    for (int probe = 0; probe < 5; ++probe) {
      std::string filter = random_levels(true);
      std::map<std::string, std::string> expected, got;
      for (const auto& [t, p] : model)
        if (codec::topic_matches(filter, t)) expected[t] = p;
      idx.match(filter, [&](const message_ptr& m) {
        EXPECT_TRUE(got.emplace(m->topic, m->payload).second) << "reported twice: " << m->topic;
      });
      ASSERT_EQ(got, expected) << "filter " << filter;
    }
  }
  EXPECT_GT(idx.size(), 10u);
}

}  // namespace
}  // namespace flock::core
