#include "broker/controller/raft_codec.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

using namespace flock::controller;

namespace {

raft_message vote() {
  raft_message m{};
  m.type = RAFT_IO_REQUEST_VOTE;
  m.request_vote = {7, 2, 100, 6, true, true};
  return m;
}

}  // namespace

TEST(raft_codec, votes_and_results_round_trip) {
  auto m = vote();
  auto d = decode_raft_message(encode_raft_message(m));
  ASSERT_TRUE(d);
  const auto& v = d->get().request_vote;
  EXPECT_EQ(d->get().type, RAFT_IO_REQUEST_VOTE);
  EXPECT_EQ(v.term, 7u);
  EXPECT_EQ(v.candidate_id, 2u);
  EXPECT_EQ(v.last_log_index, 100u);
  EXPECT_EQ(v.last_log_term, 6u);
  EXPECT_TRUE(v.disrupt_leader);
  EXPECT_TRUE(v.pre_vote);

  raft_message r{};
  r.type = RAFT_IO_REQUEST_VOTE_RESULT;
  r.request_vote_result = {9, true, raft_tribool_false};
  auto dr = decode_raft_message(encode_raft_message(r));
  ASSERT_TRUE(dr);
  EXPECT_EQ(dr->get().request_vote_result.term, 9u);
  EXPECT_TRUE(dr->get().request_vote_result.vote_granted);
  EXPECT_EQ(dr->get().request_vote_result.pre_vote, raft_tribool_false);
}

TEST(raft_codec, append_entries_carry_their_entries_in_one_batch) {
  char one[] = "first", two[] = "second!";
  raft_entry entries[2] = {{3, RAFT_COMMAND, {one, 5}, nullptr}, {4, RAFT_CHANGE, {two, 7}, nullptr}};
  raft_message m{};
  m.type = RAFT_IO_APPEND_ENTRIES;
  m.append_entries = {4, 10, 3, 9, entries, 2};
  auto d = decode_raft_message(encode_raft_message(m));
  ASSERT_TRUE(d);
  const auto& a = d->get().append_entries;
  EXPECT_EQ(a.term, 4u);
  EXPECT_EQ(a.prev_log_index, 10u);
  EXPECT_EQ(a.prev_log_term, 3u);
  EXPECT_EQ(a.leader_commit, 9u);
  ASSERT_EQ(a.n_entries, 2u);
  EXPECT_EQ(std::string(static_cast<char*>(a.entries[1].buf.base), a.entries[1].buf.len), "second!");
  EXPECT_EQ(a.entries[1].type, RAFT_CHANGE);
  EXPECT_EQ(a.entries[0].batch, a.entries[1].batch);  // what libraft frees once

  raft_message heartbeat{};
  heartbeat.type = RAFT_IO_APPEND_ENTRIES;
  heartbeat.append_entries = {4, 10, 3, 9, nullptr, 0};
  auto h = decode_raft_message(encode_raft_message(heartbeat));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->get().append_entries.entries, nullptr);
}

TEST(raft_codec, snapshots_carry_their_configuration_and_data) {
  raft_message m{};
  m.type = RAFT_IO_INSTALL_SNAPSHOT;
  raft_configuration_init(&m.install_snapshot.conf);
  raft_configuration_add(&m.install_snapshot.conf, 1, "node-1", RAFT_VOTER);
  raft_configuration_add(&m.install_snapshot.conf, 2, "node-2", RAFT_STANDBY);
  char data[] = "state";
  m.install_snapshot.term = 5;
  m.install_snapshot.last_index = 1000;
  m.install_snapshot.last_term = 4;
  m.install_snapshot.conf_index = 900;
  m.install_snapshot.data = {data, 5};
  auto d = decode_raft_message(encode_raft_message(m));
  raft_configuration_close(&m.install_snapshot.conf);
  ASSERT_TRUE(d);
  const auto& s = d->get().install_snapshot;
  EXPECT_EQ(s.last_index, 1000u);
  ASSERT_EQ(s.conf.n, 2u);
  EXPECT_STREQ(s.conf.servers[1].address, "node-2");
  EXPECT_EQ(s.conf.servers[1].role, RAFT_STANDBY);
  EXPECT_EQ(s.conf_index, 900u);
  EXPECT_EQ(std::string(static_cast<char*>(s.data.base), s.data.len), "state");
}

TEST(raft_codec, malformed_messages_are_refused_whole) {
  const auto bytes = encode_raft_message(vote());
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_raft_message(bytes.substr(0, n)));
  EXPECT_FALSE(decode_raft_message(bytes + 'x'));
  EXPECT_FALSE(decode_raft_message(std::string("\x09", 1)));  // no such type
  // An AppendEntries claiming a million entries in a few bytes.
  EXPECT_FALSE(decode_raft_message(std::string("\x01\x01\x01\x01\x01\xc0\x84\x3d", 8)));
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 48, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    if (!junk.empty()) junk[0] = static_cast<char>(1 + rng() % 6);
    (void)decode_raft_message(junk);  // under ASan: no overread, no leak
  }
}
