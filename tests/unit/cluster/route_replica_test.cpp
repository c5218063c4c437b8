#include "cluster/route_replica.hpp"

#include <gtest/gtest.h>

#include <map>

using flock::cluster::route_replica;
using flock::cluster::route_set;
using result = route_replica::result;

namespace {

struct recorder {
  std::map<std::string, std::uint32_t> index;  // what the core's peer-route index would hold
  int calls = 0;
  route_replica::change_fn fn() {
    return [this](std::string_view f, std::uint32_t h) {
      ++calls;
      if (h == 0) index.erase(std::string(f));
      else index[std::string(f)] = h;
    };
  }
};

using routes = std::vector<std::pair<std::string, std::uint32_t>>;

}  // namespace

TEST(route_replica, a_snapshot_in_chunks_applies_when_the_last_arrives) {
  route_replica r;
  recorder rec;
  routes first{{"a/#", 1}}, second{{"$share/g/b", 3}};
  EXPECT_EQ(r.snapshot(5, true, false, first, rec.fn()), result::applied);
  EXPECT_TRUE(rec.index.empty());
  EXPECT_EQ(r.snapshot(5, false, true, second, rec.fn()), result::applied);
  EXPECT_EQ(rec.index, (std::map<std::string, std::uint32_t>{{"a/#", 1}, {"$share/g/b", 3}}));
  EXPECT_EQ(r.seq(), 5u);
  EXPECT_TRUE(r.synced());
}

TEST(route_replica, deltas_in_order_apply_and_a_gap_asks_for_a_snapshot) {
  route_replica r;
  recorder rec;
  routes none;
  r.snapshot(1, true, true, none, rec.fn());
  EXPECT_EQ(r.delta(2, "x", 1, rec.fn()), result::applied);
  EXPECT_EQ(r.delta(2, "x", 0, rec.fn()), result::ignored);  // seen already
  EXPECT_EQ(rec.index.count("x"), 1u);
  EXPECT_EQ(r.delta(4, "y", 1, rec.fn()), result::resync);  // 3 went missing
  EXPECT_FALSE(r.synced());
  EXPECT_EQ(rec.index.count("y"), 0u);
  EXPECT_EQ(r.delta(5, "z", 1, rec.fn()), result::resync);  // nothing applies until a snapshot
}

TEST(route_replica, a_new_snapshot_reports_only_what_changed) {
  route_replica r;
  recorder rec;
  routes before{{"a", 1}, {"b", 1}, {"$share/g/c", 2}};
  r.snapshot(1, true, true, before, rec.fn());
  rec.calls = 0;
  routes after{{"a", 1}, {"$share/g/c", 5}, {"d", 1}};
  r.snapshot(9, true, true, after, rec.fn());
  EXPECT_EQ(rec.calls, 3);  // b removed, c resized, d added; a untouched
  EXPECT_EQ(rec.index, (std::map<std::string, std::uint32_t>{{"a", 1}, {"$share/g/c", 5}, {"d", 1}}));
}

TEST(route_replica, a_heartbeat_digest_that_disagrees_asks_for_a_snapshot) {
  route_replica r;
  recorder rec;
  routes one{{"a", 1}};
  r.snapshot(3, true, true, one, rec.fn());
  route_set truth;
  truth.set("a", 1);
  EXPECT_EQ(r.check(3, truth.digest()), result::applied);
  truth.set("b", 1);
  EXPECT_EQ(r.check(3, truth.digest()), result::resync);
  EXPECT_FALSE(r.synced());
}

TEST(route_replica, a_heartbeat_ahead_of_what_arrived_is_a_gap) {
  route_replica r;
  recorder rec;
  routes none;
  r.snapshot(3, true, true, none, rec.fn());
  EXPECT_EQ(r.check(2, 0), result::ignored);  // older: a delta overtook nothing, just stale
  EXPECT_EQ(r.check(4, 0), result::resync);   // seq 4 never arrived
}

TEST(route_replica, a_chunk_of_a_snapshot_never_begun_asks_again) {
  route_replica r;
  recorder rec;
  routes some{{"a", 1}};
  EXPECT_EQ(r.snapshot(7, false, true, some, rec.fn()), result::resync);
  EXPECT_TRUE(rec.index.empty());
}

TEST(route_replica, clear_reports_every_route_gone) {
  route_replica r;
  recorder rec;
  routes two{{"a", 1}, {"b", 1}};
  r.snapshot(1, true, true, two, rec.fn());
  r.clear(rec.fn());
  EXPECT_TRUE(rec.index.empty());
  EXPECT_FALSE(r.synced());
}

TEST(route_set, digest_depends_on_content_not_on_order) {
  route_set a, b;
  a.set("x", 1);
  a.set("y", 2);
  b.set("y", 2);
  b.set("x", 1);
  EXPECT_EQ(a.digest(), b.digest());
  b.set("y", 3);
  EXPECT_NE(a.digest(), b.digest());
  b.set("y", 2);
  EXPECT_EQ(a.digest(), b.digest());
  EXPECT_FALSE(b.set("y", 2));  // no change
  a.set("x", 0);
  a.set("y", 0);
  EXPECT_EQ(a.digest(), 0u);
}
