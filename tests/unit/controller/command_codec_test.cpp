#include "broker/controller/command_codec.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace flock;
using namespace flock::replication;

namespace {

const store_id a{1, 2}, b{3, 4}, c{5, 6};

std::vector<command> every_command() {
  member m{a, "node-a", "zone-1", 7, false, false};
  member w{c, "witness", "", 1, true, false};
  return {cmd::bootstrap{256, 2, {m, w}},
          cmd::node_up{m},
          cmd::node_fenced{b},
          cmd::node_forgotten{c},
          cmd::isr_shrink{3, 9, b},
          cmd::isr_expand{65535, 1, a},
          cmd::owner_change{200, 12, b},
          cmd::set_replicas{17, {a, b}},
          cmd::partition_reset{255}};
}

member named(store_id id, std::string name) {
  member m;
  m.id = id;
  m.name = std::move(name);
  return m;
}

controller_state some_state() {
  controller_state s;
  s.apply(cmd::bootstrap{32, 2, {named(a, "a"), named(b, "b"), named(c, "c")}});
  s.apply(cmd::node_fenced{b});
  return s;
}

}  // namespace

TEST(command_codec, every_command_round_trips) {
  for (const auto& cmd : every_command()) {
    const auto bytes = controller::encode_command(cmd);
    auto back = controller::decode_command(bytes);
    ASSERT_TRUE(back) << "variant " << cmd.index();
    EXPECT_EQ(back->index(), cmd.index());
    EXPECT_EQ(controller::encode_command(*back), bytes);
  }
}

TEST(command_codec, a_cut_or_padded_command_is_refused) {
  for (const auto& cmd : every_command()) {
    const auto bytes = controller::encode_command(cmd);
    for (std::size_t n = 0; n < bytes.size(); ++n)
      EXPECT_FALSE(controller::decode_command(bytes.substr(0, n))) << "variant " << cmd.index() << " cut at " << n;
    EXPECT_FALSE(controller::decode_command(bytes + '\0'));
  }
  EXPECT_FALSE(controller::decode_command(std::string("\x02\x03\x01\x01", 4)));  // a newer version
  EXPECT_FALSE(controller::decode_command(std::string("\x01\x63", 2)));         // an unknown command
}

TEST(command_codec, random_bytes_never_crash_the_decoder) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 40, '\0');
    for (auto& ch : bytes) ch = static_cast<char>(rng());
    if (!bytes.empty() && rng() % 2) bytes[0] = 1;
    (void)controller::decode_command(bytes);
    (void)controller::decode_state(bytes);
  }
}

TEST(command_codec, the_state_round_trips_and_a_broken_one_is_refused) {
  const auto s = some_state();
  const auto bytes = controller::encode_state(s);
  auto back = controller::decode_state(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, s);
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(controller::decode_state(bytes.substr(0, n)));
  // Well-formed bytes whose state breaks an invariant: a partition owned by
  // a store nobody knows.
  auto members = s.members();
  members.pop_back();
  auto broken = controller_state::restore(s.factor(), members, s.partitions());
  ASSERT_TRUE(broken.broken_invariant());
  EXPECT_FALSE(controller::decode_state(controller::encode_state(broken)));
}
