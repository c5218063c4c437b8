#include "broker/core/subscription_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker/codec/topic.hpp"

namespace flock::core {
namespace {

struct fake_target {
  int id = 0;
};
using index = basic_subscription_index<fake_target>;
using target_ptr = std::shared_ptr<fake_target>;

target_ptr make(int id) { return std::make_shared<fake_target>(fake_target{id}); }

subscription_options with_id(std::uint32_t id, std::uint8_t qos = 0) {
  subscription_options o;
  o.qos = qos;
  o.identifier = id;
  return o;
}

// Plain matches as sorted target ids, shared groups as "name|filter".
struct result {
  std::vector<int> direct;
  std::vector<std::string> groups;
};

result match(const index& idx, std::string_view topic) {
  result r;
  idx.match(
      topic, [&](const target_ptr& t, const subscription_options&) { r.direct.push_back(t->id); },
      [&](const shared_group<fake_target>& g) { r.groups.push_back(g.name() + "|" + g.filter()); });
  std::sort(r.direct.begin(), r.direct.end());
  std::sort(r.groups.begin(), r.groups.end());
  return r;
}

std::vector<int> direct_ids(const index& idx, std::string_view topic) { return match(idx, topic).direct; }

using ids = std::vector<int>;

TEST(subscription_index, exact_filter_matches_only_the_identical_topic) {
  index idx;
  auto a = make(1);
  idx.add("a/b", a, {});
  EXPECT_EQ(direct_ids(idx, "a/b"), ids{1});
  EXPECT_EQ(direct_ids(idx, "a/b/c"), ids{});
  EXPECT_EQ(direct_ids(idx, "a"), ids{});
  EXPECT_EQ(direct_ids(idx, "a/b/"), ids{});
  EXPECT_EQ(direct_ids(idx, "A/b"), ids{});
}

TEST(subscription_index, plus_matches_exactly_one_level) {
  index idx;
  idx.add("a/+/c", make(1), {});
  EXPECT_EQ(direct_ids(idx, "a/b/c"), ids{1});
  EXPECT_EQ(direct_ids(idx, "a/xyz/c"), ids{1});
  EXPECT_EQ(direct_ids(idx, "a/c"), ids{});
  EXPECT_EQ(direct_ids(idx, "a/b/d/c"), ids{});
  EXPECT_EQ(direct_ids(idx, "a/b/c/d"), ids{});
}

TEST(subscription_index, plus_matches_an_empty_level) {
  index idx;
  idx.add("a/+/c", make(1), {});
  idx.add("+/+", make(2), {});
  idx.add("a/+", make(3), {});
  EXPECT_EQ(direct_ids(idx, "a//c"), ids{1});
  EXPECT_EQ(direct_ids(idx, "/"), ids{2});
  EXPECT_EQ(direct_ids(idx, "a/"), (ids{2, 3}));
  EXPECT_EQ(direct_ids(idx, "a"), ids{});
}

TEST(subscription_index, hash_matches_the_parent_level_and_everything_below) {
  index idx;
  idx.add("a/#", make(1), {});
  EXPECT_EQ(direct_ids(idx, "a"), ids{1});
  EXPECT_EQ(direct_ids(idx, "a/b"), ids{1});
  EXPECT_EQ(direct_ids(idx, "a/b/c/d"), ids{1});
  EXPECT_EQ(direct_ids(idx, "a/"), ids{1});
  EXPECT_EQ(direct_ids(idx, "ab"), ids{});
  EXPECT_EQ(direct_ids(idx, "b/a"), ids{});
}

TEST(subscription_index, lone_hash_matches_every_topic_not_starting_with_dollar) {
  index idx;
  idx.add("#", make(1), {});
  EXPECT_EQ(direct_ids(idx, "a"), ids{1});
  EXPECT_EQ(direct_ids(idx, "/"), ids{1});
  EXPECT_EQ(direct_ids(idx, "a/b/c"), ids{1});
  EXPECT_EQ(direct_ids(idx, "$SYS/broker"), ids{});
}

TEST(subscription_index, leading_wildcards_do_not_match_dollar_topics) {
  index idx;
  idx.add("+/monitor/clients", make(1), {});
  idx.add("#", make(2), {});
  idx.add("+/#", make(3), {});
  idx.add("$SYS/#", make(4), {});
  idx.add("$SYS/monitor/+", make(5), {});
  idx.add("$SYS/monitor/clients", make(6), {});
  EXPECT_EQ(direct_ids(idx, "$SYS/monitor/clients"), (ids{4, 5, 6}));
  EXPECT_EQ(direct_ids(idx, "x/monitor/clients"), (ids{1, 2, 3}));
  // Only the first character counts: '$' further in is an ordinary character.
  EXPECT_EQ(direct_ids(idx, "a/$x"), (ids{2, 3}));
}

TEST(subscription_index, adding_the_same_filter_again_replaces_options) {
  index idx;
  auto t = make(1);
  EXPECT_TRUE(idx.add("a/+", t, with_id(1, 0)));
  EXPECT_FALSE(idx.add("a/+", t, with_id(2, 1)));
  EXPECT_EQ(idx.size(), 1u);
  EXPECT_EQ(idx.filter_count(), 1u);
  std::vector<subscription_options> seen;
  idx.match("a/b", [&](const target_ptr&, const subscription_options& o) { seen.push_back(o); }, [](const auto&) {});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].identifier, 2u);
  EXPECT_EQ(seen[0].qos, 1);
  ASSERT_NE(idx.find("a/+", t.get()), nullptr);
  EXPECT_EQ(idx.find("a/+", t.get())->identifier, 2u);
}

TEST(subscription_index, a_target_with_two_overlapping_filters_is_reported_twice) {
  index idx;
  auto t = make(7);
  idx.add("a/b", t, with_id(1));
  idx.add("a/+", t, with_id(2));
  idx.add("a/#", t, with_id(3));
  std::set<std::uint32_t> identifiers;
  int calls = 0;
  idx.match(
      "a/b",
      [&](const target_ptr& p, const subscription_options& o) {
        EXPECT_EQ(p.get(), t.get());
        identifiers.insert(o.identifier);
        ++calls;
      },
      [](const auto&) {});
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(identifiers, (std::set<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(idx.size(), 3u);
  EXPECT_EQ(idx.filter_count(), 3u);
}

TEST(subscription_index, remove_reports_whether_the_subscription_existed) {
  index idx;
  auto a = make(1);
  auto b = make(2);
  idx.add("a/+", a, {});
  EXPECT_FALSE(idx.remove("a/+", b.get()));
  EXPECT_FALSE(idx.remove("a/#", a.get()));
  EXPECT_FALSE(idx.remove("a/b", a.get()));
  EXPECT_FALSE(idx.remove("$share/g/a/+", a.get()));
  EXPECT_TRUE(idx.remove("a/+", a.get()));
  EXPECT_FALSE(idx.remove("a/+", a.get()));
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_EQ(idx.filter_count(), 0u);
  EXPECT_EQ(direct_ids(idx, "a/b"), ids{});
}

TEST(subscription_index, removing_one_target_keeps_the_others_on_the_same_filter) {
  index idx;
  auto a = make(1), b = make(2), c = make(3);
  for (auto& t : {a, b, c}) idx.add("x/+/z", t, {});
  idx.add("x/y/z", a, {});
  EXPECT_TRUE(idx.remove("x/+/z", b.get()));
  EXPECT_EQ(direct_ids(idx, "x/y/z"), (ids{1, 1, 3}));
  EXPECT_EQ(idx.filter_count(), 2u);
  EXPECT_TRUE(idx.remove("x/y/z", a.get()));
  EXPECT_EQ(direct_ids(idx, "x/y/z"), (ids{1, 3}));
  EXPECT_EQ(idx.filter_count(), 1u);
}

TEST(subscription_index, removing_a_deep_filter_keeps_its_prefix_filters) {
  index idx;
  auto t = make(1);
  idx.add("a/+", t, with_id(1));
  idx.add("a/+/c/#", t, with_id(2));
  idx.add("a/+/c/+", t, with_id(3));
  EXPECT_TRUE(idx.remove("a/+/c/#", t.get()));
  EXPECT_EQ(direct_ids(idx, "a/b"), ids{1});
  EXPECT_EQ(direct_ids(idx, "a/b/c/d"), ids{1});
  EXPECT_EQ(direct_ids(idx, "a/b/c"), ids{});
  EXPECT_TRUE(idx.remove("a/+/c/+", t.get()));
  EXPECT_EQ(direct_ids(idx, "a/b/c/d"), ids{});
  // Re-adding after pruning rebuilds the path.
  idx.add("a/+/c/#", t, with_id(2));
  EXPECT_EQ(direct_ids(idx, "a/b/c"), ids{1});
}

TEST(subscription_index, shared_group_members_are_kept_in_insertion_order) {
  index idx;
  auto a = make(1), b = make(2), c = make(3);
  EXPECT_TRUE(idx.add("$share/workers/jobs/+", b, {}));
  EXPECT_TRUE(idx.add("$share/workers/jobs/+", a, {}));
  EXPECT_TRUE(idx.add("$share/workers/jobs/+", c, {}));
  EXPECT_FALSE(idx.add("$share/workers/jobs/+", a, with_id(9)));
  EXPECT_EQ(idx.size(), 3u);
  EXPECT_EQ(idx.filter_count(), 1u);
  int groups = 0;
  idx.match(
      "jobs/1", [](const auto&, const auto&) { ADD_FAILURE() << "shared members are not plain subscribers"; },
      [&](const shared_group<fake_target>& g) {
        ++groups;
        EXPECT_EQ(g.name(), "workers");
        EXPECT_EQ(g.filter(), "jobs/+");
        ASSERT_EQ(g.members().size(), 3u);
        EXPECT_EQ(g.members()[0].target->id, 2);
        EXPECT_EQ(g.members()[1].target->id, 1);
        EXPECT_EQ(g.members()[1].options.identifier, 9u);
        EXPECT_EQ(g.members()[2].target->id, 3);
      });
  EXPECT_EQ(groups, 1);
}

TEST(subscription_index, groups_are_identified_by_name_and_inner_filter) {
  index idx;
  auto a = make(1);
  idx.add("$share/g1/a/b", a, {});
  idx.add("$share/g2/a/b", a, {});
  idx.add("$share/g1/a/+", a, {});
  idx.add("a/b", a, {});
  EXPECT_EQ(idx.filter_count(), 4u);
  EXPECT_EQ(idx.size(), 4u);
  auto r = match(idx, "a/b");
  EXPECT_EQ(r.direct, ids{1});
  EXPECT_EQ(r.groups, (std::vector<std::string>{"g1|a/+", "g1|a/b", "g2|a/b"}));
  EXPECT_TRUE(idx.remove("$share/g1/a/b", a.get()));
  r = match(idx, "a/b");
  EXPECT_EQ(r.groups, (std::vector<std::string>{"g1|a/+", "g2|a/b"}));
  EXPECT_EQ(r.direct, ids{1});
}

TEST(subscription_index, queue_prefix_is_the_group_named_dollar_queue) {
  index idx;
  auto a = make(1), b = make(2);
  idx.add("$queue/orders/#", a, {});
  EXPECT_FALSE(idx.add("$share/$queue/orders/#", a, {}));  // same group, same filter
  idx.add("$share/$queue/orders/#", b, {});
  auto r = match(idx, "orders/eu/1");
  EXPECT_EQ(r.groups, std::vector<std::string>{"$queue|orders/#"});
  EXPECT_EQ(idx.size(), 2u);
  EXPECT_TRUE(idx.remove("$queue/orders/#", b.get()));
}

TEST(subscription_index, removing_the_last_member_removes_the_group) {
  index idx;
  auto a = make(1), b = make(2);
  idx.add("$share/g/t", a, {});
  idx.add("$share/g/t", b, {});
  EXPECT_TRUE(idx.remove("$share/g/t", a.get()));
  EXPECT_EQ(match(idx, "t").groups.size(), 1u);
  EXPECT_TRUE(idx.remove("$share/g/t", b.get()));
  EXPECT_TRUE(match(idx, "t").groups.empty());
  EXPECT_EQ(idx.filter_count(), 0u);
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_EQ(idx.find("$share/g/t", a.get()), nullptr);
}

TEST(subscription_index, shared_wildcard_groups_follow_the_dollar_rule) {
  index idx;
  idx.add("$share/g/#", make(1), {});
  EXPECT_TRUE(match(idx, "$SYS/x").groups.empty());
  EXPECT_EQ(match(idx, "x").groups.size(), 1u);
}

TEST(subscription_index, next_index_walks_the_members_round_robin) {
  index idx;
  std::vector<target_ptr> targets{make(1), make(2), make(3)};
  for (auto& t : targets) idx.add("$share/g/t", t, {});
  std::vector<int> picked;
  for (int i = 0; i < 6; ++i) {
    idx.match("t", [](const auto&, const auto&) {},
              [&](const shared_group<fake_target>& g) { picked.push_back(g.next_member().target->id); });
  }
  EXPECT_EQ(picked, (std::vector<int>{1, 2, 3, 1, 2, 3}));
}

TEST(subscription_index, concurrent_matches_share_the_round_robin_cursor) {
  index idx;
  std::vector<target_ptr> targets{make(0), make(1), make(2), make(3)};
  for (auto& t : targets) idx.add("$share/g/t/+", t, {});
  constexpr int per_thread = 10000;
  std::vector<std::array<int, 4>> counts(4, std::array<int, 4>{});
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < per_thread; ++i)
        idx.match("t/x", [](const auto&, const auto&) {},
                  [&](const shared_group<fake_target>& g) { ++counts[th][g.next_member().target->id]; });
    });
  }
  for (auto& t : threads) t.join();
  // Every cursor value is handed out once, so each member got exactly a quarter.
  for (int member = 0; member < 4; ++member) {
    int sum = 0;
    for (int th = 0; th < 4; ++th) sum += counts[th][member];
    EXPECT_EQ(sum, per_thread) << "member " << member;
  }
}

TEST(subscription_index, many_targets_on_one_filter_can_be_removed_in_any_order) {
  index idx;
  std::vector<target_ptr> targets;
  for (int i = 0; i < 500; ++i) targets.push_back(make(i));
  for (int i = 0; i < 500; ++i) idx.add("broadcast", targets[i], with_id(i + 1));
  EXPECT_FALSE(idx.add("broadcast", targets[250], with_id(1000)));
  EXPECT_EQ(idx.find("broadcast", targets[250].get())->identifier, 1000u);
  std::mt19937 rng(7);
  std::vector<int> order(500);
  for (int i = 0; i < 500; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::set<int> remaining(order.begin(), order.end());
  for (int k = 0; k < 500; ++k) {
    int victim = order[k];
    ASSERT_TRUE(idx.remove("broadcast", targets[victim].get()));
    ASSERT_FALSE(idx.remove("broadcast", targets[victim].get()));
    remaining.erase(victim);
    if (k % 37 == 0 || remaining.size() < 40) {
      auto got = direct_ids(idx, "broadcast");
      ASSERT_EQ(got, std::vector<int>(remaining.begin(), remaining.end())) << "after " << k + 1 << " removals";
      for (int r : remaining) {
        const auto* o = idx.find("broadcast", targets[r].get());
        ASSERT_NE(o, nullptr);
        EXPECT_EQ(o->identifier, r == 250 ? 1000u : static_cast<std::uint32_t>(r + 1));
      }
    }
  }
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_EQ(idx.filter_count(), 0u);
}

TEST(subscription_index, for_each_lists_every_subscription_with_its_filter) {
  index idx;
  auto a = make(1), b = make(2);
  idx.add("a/b", a, with_id(1));
  idx.add("a/+/c", a, with_id(2));
  idx.add("+", b, with_id(3));
  idx.add("#", b, with_id(4));
  idx.add("a/#", b, with_id(5));
  idx.add("$share/g/x/+", a, with_id(6));
  idx.add("$queue/q", b, with_id(7));
  idx.add("/+//", a, with_id(8));
  std::set<std::string> seen;
  idx.for_each([&](std::string_view filter, const target_ptr& t, const subscription_options& o) {
    seen.insert(std::string(filter) + "@" + std::to_string(t->id) + "#" + std::to_string(o.identifier));
  });
  EXPECT_EQ(seen, (std::set<std::string>{"a/b@1#1", "a/+/c@1#2", "+@2#3", "#@2#4", "a/#@2#5", "$share/g/x/+@1#6",
                                         "$queue/q@2#7", "/+//@1#8"}));
}

TEST(subscription_index, very_deep_filters_and_topics_do_not_exhaust_the_stack) {
  constexpr int depth = 100000;
  std::string filter, topic;
  for (int i = 0; i < depth; ++i) {
    filter += i == 0 ? "a" : "/a";
    topic += i == 0 ? "a" : "/a";
  }
  filter += "/+";
  topic += "/z";
  {
    index idx;
    auto t = make(1);
    idx.add(filter, t, {});
    idx.add("+/#", t, {});
    EXPECT_EQ(direct_ids(idx, topic), (ids{1, 1}));
    EXPECT_TRUE(idx.remove(filter, t.get()));
    idx.add(filter, t, {});
  }  // destruction of a 100,000-level trie
}

// Random filters and topics over a tiny alphabet, so that overlaps, empty
// levels and '$' topics are frequent; the index must agree with topic_matches.
TEST(subscription_index, random_filters_agree_with_brute_force_matching) {
  std::mt19937 rng(20240611);
  const std::vector<std::string> words{"a", "b", "", "$s"};
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  auto random_topic = [&] {
    std::string t;
    std::size_t levels = 1 + pick(4);
    for (std::size_t i = 0; i < levels; ++i) {
      if (i) t += '/';
      t += words[pick(words.size())];
    }
    return t.empty() ? std::string("/") : t;
  };
  auto random_filter = [&] {
    std::string f;
    std::size_t levels = 1 + pick(4);
    for (std::size_t i = 0; i < levels; ++i) {
      if (i) f += '/';
      std::size_t r = pick(10);
      if (r < 2) {
        f += '+';
      } else if (r == 2 && i + 1 == levels) {
        f += '#';
      } else {
        f += words[pick(words.size())];
      }
    }
    if (pick(5) == 0) f = (pick(2) ? "$share/g" + std::to_string(pick(2)) + "/" : std::string("$queue/")) + f;
    return f;
  };

  index idx;
  std::vector<target_ptr> targets;
  for (int i = 0; i < 12; ++i) targets.push_back(make(i));
  std::map<std::pair<std::string, int>, std::uint32_t> model;  // (filter, target) -> identifier
  std::uint32_t next_id = 1;

  for (int round = 0; round < 3000; ++round) {
    std::string f = random_filter();
    if (!codec::valid_topic_filter(f)) continue;  // "" or "$share/g0/"
    int t = static_cast<int>(pick(targets.size()));
    auto key = std::make_pair(f, t);
    if (pick(3) == 0) {
      EXPECT_EQ(idx.remove(f, targets[t].get()), model.erase(key) == 1) << f;
    } else {
      std::uint32_t id = next_id++;
      EXPECT_EQ(idx.add(f, targets[t], with_id(id)), !model.count(key)) << f;
      model[key] = id;
    }
    ASSERT_EQ(idx.size(), model.size());

    if (round % 10 != 0) continue;
    for (int probe = 0; probe < 5; ++probe) {
      std::string topic = random_topic();
      std::multiset<std::uint32_t> want_direct, got_direct;
      std::map<std::string, std::set<std::pair<int, std::uint32_t>>> want_groups, got_groups;
      std::map<std::uint32_t, int> owner;  // identifier -> target id
      for (const auto& [k, id] : model) {
        owner[id] = k.second;
        auto shared = codec::parse_shared_filter(k.first);
        std::string_view inner = shared ? shared->filter : std::string_view(k.first);
        if (!codec::topic_matches(inner, topic)) continue;
        if (shared) {
          want_groups[std::string(shared->group) + "|" + std::string(inner)].insert({k.second, id});
        } else {
          want_direct.insert(id);
        }
      }
      idx.match(
          topic,
          [&](const target_ptr& p, const subscription_options& o) {
            got_direct.insert(o.identifier);
            EXPECT_EQ(owner.at(o.identifier), p->id) << "options reported with the wrong target";
          },
          [&](const shared_group<fake_target>& g) {
            auto& members = got_groups[g.name() + "|" + g.filter()];
            EXPECT_TRUE(members.empty()) << "group reported twice: " << g.name() << "|" << g.filter();
            for (const auto& m : g.members()) members.insert({m.target->id, m.options.identifier});
          });
      ASSERT_EQ(got_direct, want_direct) << "topic " << topic;
      ASSERT_EQ(got_groups, want_groups) << "topic " << topic;
    }
  }
  EXPECT_GT(idx.filter_count(), 20u);
}

}  // namespace
}  // namespace flock::core
