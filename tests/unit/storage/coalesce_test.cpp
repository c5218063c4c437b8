// Coalescing must never change what a group leaves on disk: random groups
// (that keep the store's id rules) are written coalesced to one memory disk
// and as they are to another, and the two disks must stay byte-identical.
#include "storage/coalesce.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "storage/memory_backend.hpp"
#include "storage/record_codec.hpp"
#include "tests/contract/store_test_support.hpp"

namespace flock::storage {
namespace {

using testing::manual_clock;

std::shared_ptr<core::message> msg(std::uint64_t id, std::string topic = "t") {
  auto m = std::make_shared<core::message>();
  m->id = id;
  m->partitions = testing::partitions();
  m->topic = std::move(topic);
  m->payload = std::string(64, 'x');
  return m;
}

template <class Op>
bool is(const ports::store_op& op) {
  return std::holds_alternative<Op>(op);
}

TEST(coalesce, a_qos1_delivery_acknowledged_within_the_group_writes_nothing) {
  std::vector<ports::store_op> ops{ports::message_put{msg(7)}, ports::queued_put{1, 7, {}},
                                   ports::queued_delete{1, 7},
                                   ports::inflight_put{1, 7, 1, core::outgoing_state::awaiting_puback, {}},
                                   ports::inflight_delete{1, 7}, ports::message_delete{7, testing::partitions()}};
  EXPECT_EQ(coalesce(ops), 5u);
  // The in-flight key may have been written in an earlier group (a state
  // change rewrites it), so its delete stays.
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_TRUE(is<ports::inflight_delete>(ops[0]));
}

TEST(coalesce, later_op_on_a_key_replaces_earlier_ones_and_order_is_kept) {
  std::vector<ports::store_op> ops{ports::subscription_put{1, "a", {}}, ports::retained_put{msg(0, "r")},
                                   ports::subscription_put{1, "b", {}}, ports::subscription_delete{1, "a"},
                                   ports::retained_delete{"r"}, ports::incoming_put{1, 5}};
  EXPECT_EQ(coalesce(ops), 2u);
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_TRUE(is<ports::subscription_put>(ops[0]));
  EXPECT_TRUE(is<ports::subscription_delete>(ops[1]));
  EXPECT_TRUE(is<ports::retained_delete>(ops[2]));
  EXPECT_TRUE(is<ports::incoming_put>(ops[3]));
}

TEST(coalesce, session_delete_is_kept_because_it_also_deletes_ranges) {
  std::vector<ports::store_op> ops{testing::make_session(1, "c"), ports::session_delete{1}, testing::make_session(1, "c")};
  EXPECT_EQ(coalesce(ops), 1u);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_TRUE(is<ports::session_delete>(ops[0]));
  EXPECT_TRUE(is<ports::session_put>(ops[1]));
}

// Random groups that keep the rules of ports/store.hpp: a message id and a
// (session, message) queue key are put once and deleted at most once, after
// the put; every other key is rewritten freely.
class op_generator {
 public:
  explicit op_generator(unsigned seed) : rng_(seed) {}

  std::vector<ports::store_op> group() {
    std::vector<ports::store_op> ops;
    const int n = pick(1, 40);
    for (int i = 0; i < n; ++i) ops.push_back(op());
    return ops;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::uint64_t sid() { return static_cast<std::uint64_t>(pick(1, 3)); }

  ports::store_op op() {
    switch (pick(0, 13)) {
      case 0: return testing::make_session(sid(), "c", static_cast<std::uint32_t>(pick(0, 9)));
      case 1: return ports::session_delete{sid()};
      case 2: return ports::subscription_put{sid(), pick(0, 1) ? "a" : "b", {1, false, false, 0, static_cast<std::uint32_t>(pick(0, 9))}};
      case 3: return ports::subscription_delete{sid(), pick(0, 1) ? "a" : "b"};
      case 4: case 5: {
        live_messages_.push_back(++next_message_);
        return ports::message_put{msg(next_message_)};
      }
      case 6: {
        if (live_messages_.empty()) return ports::incoming_put{sid(), 1};
        auto i = static_cast<std::size_t>(pick(0, static_cast<int>(live_messages_.size()) - 1));
        auto id = live_messages_[i];
        live_messages_.erase(live_messages_.begin() + static_cast<std::ptrdiff_t>(i));
        return ports::message_delete{id, testing::partitions()};
      }
      case 7: case 8: {
        if (next_message_ == 0) return ports::incoming_put{sid(), 2};
        std::pair<std::uint64_t, std::uint64_t> key{sid(), static_cast<std::uint64_t>(pick(1, static_cast<int>(next_message_)))};
        if (!used_queue_keys_.insert(key).second) return ports::incoming_delete{sid(), 1};
        live_queue_.push_back(key);
        return ports::queued_put{key.first, key.second, {1, false, {static_cast<std::uint32_t>(pick(1, 5))}}};
      }
      case 9: {
        if (live_queue_.empty()) return ports::incoming_delete{sid(), 2};
        auto i = static_cast<std::size_t>(pick(0, static_cast<int>(live_queue_.size()) - 1));
        auto key = live_queue_[i];
        live_queue_.erase(live_queue_.begin() + static_cast<std::ptrdiff_t>(i));
        return ports::queued_delete{key.first, key.second};
      }
      case 10: return ports::inflight_put{sid(), static_cast<std::uint64_t>(pick(1, 4)), static_cast<std::uint16_t>(pick(1, 9)),
                                          pick(0, 1) ? core::outgoing_state::awaiting_pubrec : core::outgoing_state::awaiting_pubcomp, {}};
      case 11: return ports::inflight_delete{sid(), static_cast<std::uint64_t>(pick(1, 4))};
      case 12: return pick(0, 1) ? ports::store_op{ports::incoming_put{sid(), static_cast<std::uint16_t>(pick(1, 3))}}
                                 : ports::store_op{ports::incoming_delete{sid(), static_cast<std::uint16_t>(pick(1, 3))}};
      default: return pick(0, 1) ? ports::store_op{ports::retained_put{msg(0, pick(0, 1) ? "x" : "y")}}
                                 : ports::store_op{ports::retained_delete{pick(0, 1) ? "x" : "y"}};
    }
  }

  std::mt19937 rng_;
  std::uint64_t next_message_ = 0;
  std::vector<std::uint64_t> live_messages_;
  std::set<std::pair<std::uint64_t, std::uint64_t>> used_queue_keys_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live_queue_;
};

TEST(coalesce, random_groups_leave_the_same_bytes_on_disk) {
  manual_clock clock;
  const wall_clock_mapping time(clock);  // one mapping for both: same time bytes
  std::size_t dropped = 0, total = 0;
  for (unsigned seed = 1; seed <= 20; ++seed) {
    auto plain_disk = std::make_shared<memory_disk>();
    auto coalesced_disk = std::make_shared<memory_disk>();
    auto plain = open_memory_backend(plain_disk);
    auto coalesced = open_memory_backend(coalesced_disk);
    op_generator gen(seed);
    for (int g = 0; g < 100; ++g) {
      auto ops = gen.group();
      auto shrunk = ops;
      dropped += coalesce(shrunk);
      total += ops.size();
      kv_batch a, b;
      for (const auto& op : ops) encode_op(op, time, a);
      for (const auto& op : shrunk) encode_op(op, time, b);
      ASSERT_TRUE(plain->write(a, false).ok());
      ASSERT_TRUE(coalesced->write(b, false).ok());
      ASSERT_EQ(plain_disk->columns, coalesced_disk->columns) << "seed " << seed << ", group " << g;
    }
  }
  // The groups did give it something to remove.
  EXPECT_GT(dropped, total / 20);
}

}  // namespace
}  // namespace flock::storage
