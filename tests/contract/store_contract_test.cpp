// ports::store contract, part 1: what goes in comes back out of load()
// after a restart, and load() repairs what a crash leaves. Runs against the
// RocksDB store and the memory store (store_contract_fixture.hpp).
#include <gtest/gtest.h>

#include "storage/keys.hpp"
#include "storage/record_codec.hpp"
#include "tests/contract/store_contract_fixture.hpp"

namespace flock::testing {
namespace {

using namespace std::chrono_literals;
using storage::column;

INSTANTIATE_TEST_SUITE_P(all, store_contract, ::testing::Values(store_kind::memory, store_kind::rocksdb), kind_name);

void expect_same_message(const core::message& got, const core::message& want) {
  EXPECT_EQ(got.topic, want.topic);
  EXPECT_EQ(got.payload, want.payload);
  EXPECT_EQ(got.qos, want.qos);
  EXPECT_EQ(got.retain, want.retain);
  EXPECT_EQ(got.publisher, want.publisher);
  EXPECT_EQ(got.props, want.props);
  EXPECT_TRUE(near(got.expires_at, want.expires_at));
}

std::shared_ptr<core::message> full_message(std::uint64_t id, ports::time_point expires) {
  auto m = make_message(id, "a/b", std::string("\0\xff binary", 9));
  m->qos = 2;
  m->retain = true;
  m->expires_at = expires;
  m->props.payload_format_indicator = 1;
  m->props.content_type = "text/plain";
  m->props.response_topic = "r/t";
  m->props.correlation_data = std::string("\x00\x01", 2);
  m->props.user_properties = {{"z", "1"}, {"a", "2"}, {"z", "3"}};  // order and duplicates kept
  return m;
}

TEST_P(store_contract, new_directory_loads_empty_and_ids_start_at_one) {
  auto s = reopen();
  EXPECT_TRUE(s.sessions.empty());
  EXPECT_TRUE(s.retained.empty());
  EXPECT_EQ(s.next_id, 1u);
  EXPECT_EQ(keys(column::meta).size(), 1u);  // the format record
}

TEST_P(store_contract, every_put_round_trips_with_all_fields) {
  reopen();
  const auto now = clock.now();
  auto msg = full_message(7, now + 90s);
  auto will = make_message(0, "will/topic", "bye");
  will->props.message_expiry_interval = 30;
  will->props.user_properties = {{"k", "v"}};
  auto sp = make_session(5, "client-a", 600);
  sp.expires_at = now + 600s;
  sp.will = will;
  sp.will_due = now + 20s;
  core::subscription_options opts{2, true, true, 2, 42};
  auto retained = full_message(0, now + 50s);
  retained->topic = "r/1";
  commit({sp, ports::subscription_put{5, "$share/g/x/+", opts}, ports::subscription_put{5, "a/#", {}},
          ports::message_put{msg}, ports::message_put{make_message(8, "t")},
          ports::queued_put{5, 8, {1, true, {3, 4}}},
          ports::inflight_put{5, 7, 11, core::outgoing_state::awaiting_pubrec, {2, false, {9}}},
          ports::inflight_put{5, 6, 12, core::outgoing_state::awaiting_pubcomp, {2, false, {}}},
          ports::incoming_put{5, 300}, ports::incoming_put{5, 2}, ports::retained_put{retained}});

  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 1u);
  const auto& r = s.sessions[0];
  EXPECT_EQ(r.session_id, 5u);
  EXPECT_EQ(r.client_id, "client-a");
  EXPECT_EQ(r.expiry_interval, 600u);
  EXPECT_TRUE(near(r.expires_at, now + 600s));
  ASSERT_TRUE(r.will);
  expect_same_message(*r.will, *will);
  EXPECT_EQ(r.will->id, 0u);
  EXPECT_TRUE(near(r.will_due, now + 20s));
  using sub = std::pair<std::string, core::subscription_options>;
  EXPECT_EQ(r.subscriptions, (std::vector<sub>{{"$share/g/x/+", opts}, {"a/#", {}}}));
  ASSERT_EQ(r.queue.size(), 1u);
  EXPECT_EQ(r.queue[0].message_id, 8u);
  EXPECT_EQ(r.queue[0].meta.qos, 1);
  EXPECT_TRUE(r.queue[0].meta.retain);
  EXPECT_EQ(r.queue[0].meta.subscription_ids, (std::vector<std::uint32_t>{3, 4}));
  ASSERT_TRUE(r.queue[0].msg);
  EXPECT_EQ(r.queue[0].msg->id, 8u);
  EXPECT_EQ(r.queue[0].msg->refs.value.load(), 0u);  // the core counts them
  ASSERT_EQ(r.inflight.size(), 2u);  // message id order: 6, 7
  EXPECT_EQ(r.inflight[0].d.message_id, 6u);
  EXPECT_EQ(r.inflight[0].state, core::outgoing_state::awaiting_pubcomp);
  EXPECT_EQ(r.inflight[0].packet_id, 12);
  EXPECT_FALSE(r.inflight[0].d.msg);
  EXPECT_EQ(r.inflight[1].d.message_id, 7u);
  EXPECT_EQ(r.inflight[1].state, core::outgoing_state::awaiting_pubrec);
  EXPECT_EQ(r.inflight[1].packet_id, 11);
  EXPECT_EQ(r.inflight[1].d.meta.qos, 2);
  EXPECT_EQ(r.inflight[1].d.meta.subscription_ids, (std::vector<std::uint32_t>{9}));
  ASSERT_TRUE(r.inflight[1].d.msg);
  EXPECT_EQ(r.inflight[1].d.msg->id, 7u);
  expect_same_message(*r.inflight[1].d.msg, *msg);
  EXPECT_EQ(r.incoming_qos2, (std::vector<std::uint16_t>{2, 300}));
  ASSERT_EQ(s.retained.size(), 1u);
  expect_same_message(*s.retained[0], *retained);
  EXPECT_EQ(s.next_id, 9u);
}

TEST_P(store_contract, one_message_is_shared_by_every_session_that_references_it) {
  reopen();
  commit({make_session(1, "a"), make_session(2, "b"), ports::message_put{make_message(3, "t")},
          ports::queued_put{1, 3, {}}, ports::queued_put{2, 3, {}}});
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 2u);
  ASSERT_EQ(s.sessions[0].queue.size(), 1u);
  ASSERT_EQ(s.sessions[1].queue.size(), 1u);
  EXPECT_EQ(s.sessions[0].queue[0].msg, s.sessions[1].queue[0].msg);
}

TEST_P(store_contract, queue_comes_back_in_message_id_order) {
  reopen();
  std::vector<ports::store_op> ops{make_session(1, "a")};
  for (std::uint64_t id : {300, 2, 70000, 5}) {
    ops.push_back(ports::message_put{make_message(id, "t")});
    ops.push_back(ports::queued_put{1, id, {}});
  }
  commit(ops);
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 1u);
  std::vector<std::uint64_t> ids;
  for (const auto& d : s.sessions[0].queue) ids.push_back(d.message_id);
  EXPECT_EQ(ids, (std::vector<std::uint64_t>{2, 5, 300, 70000}));
}

TEST_P(store_contract, online_session_expiry_starts_at_load) {
  reopen();
  auto forever = make_session(1, "forever", 0xFFFFFFFF);
  forever.online = true;
  auto hour = make_session(2, "hour", 3600);
  hour.online = true;
  auto offline = make_session(3, "offline", 0xFFFFFFFF);
  commit({forever, hour, offline});
  clock.advance(100s);  // the broker is down; it starts again later
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 3u);
  EXPECT_FALSE(s.sessions[0].expires_at);
  EXPECT_EQ(s.sessions[1].expires_at, clock.now() + 3600s);
  EXPECT_FALSE(s.sessions[2].expires_at);
}

TEST_P(store_contract, deletes_remove_exactly_their_record) {
  reopen();
  auto r1 = make_message(0, "r/1");
  auto r2 = make_message(0, "r/2");
  commit({make_session(1, "a"), ports::subscription_put{1, "x", {}}, ports::subscription_put{1, "y", {}},
          ports::message_put{make_message(10, "t")}, ports::message_put{make_message(11, "t")},
          ports::queued_put{1, 10, {}}, ports::queued_put{1, 11, {}},
          ports::inflight_put{1, 10, 1, core::outgoing_state::awaiting_pubcomp, {}},
          ports::inflight_put{1, 11, 2, core::outgoing_state::awaiting_pubcomp, {}}, ports::incoming_put{1, 5},
          ports::incoming_put{1, 6}, ports::retained_put{r1}, ports::retained_put{r2}});
  commit({ports::subscription_delete{1, "x"}, ports::queued_delete{1, 10}, ports::inflight_delete{1, 11},
          ports::incoming_delete{1, 5}, ports::retained_delete{"r/1"}});
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 1u);
  const auto& r = s.sessions[0];
  ASSERT_EQ(r.subscriptions.size(), 1u);
  EXPECT_EQ(r.subscriptions[0].first, "y");
  ASSERT_EQ(r.queue.size(), 1u);
  EXPECT_EQ(r.queue[0].message_id, 11u);
  ASSERT_EQ(r.inflight.size(), 1u);
  EXPECT_EQ(r.inflight[0].d.message_id, 10u);
  EXPECT_EQ(r.incoming_qos2, (std::vector<std::uint16_t>{6}));
  ASSERT_EQ(s.retained.size(), 1u);
  EXPECT_EQ(s.retained[0]->topic, "r/2");
  // message_delete: message 10 is referenced by nobody that needs it now.
  EXPECT_EQ(keys(column::messages), (std::vector<std::string>{storage::keys::message_key(0, 11)}));
}

TEST_P(store_contract, session_delete_removes_everything_under_that_id_only) {
  reopen();
  std::vector<ports::store_op> ops{ports::message_put{make_message(100, "t")}};
  for (std::uint64_t sid : {1, 2, 3}) {
    ops.push_back(make_session(sid, "c" + std::to_string(sid)));
    ops.push_back(ports::subscription_put{sid, "f", {}});
    ops.push_back(ports::queued_put{sid, 100, {}});
    ops.push_back(ports::inflight_put{sid, 100, 1, core::outgoing_state::awaiting_pubcomp, {}});
    ops.push_back(ports::incoming_put{sid, 0xFFFF});
  }
  commit(ops);
  commit({ports::session_delete{2}});
  for (column c : {column::sessions, column::subscriptions, column::queue, column::inflight, column::incoming}) {
    auto k = keys(c);
    ASSERT_EQ(k.size(), 2u) << storage::column_name(c);
    EXPECT_EQ(storage::keys::get_be64(k[0]), 1u);
    EXPECT_EQ(storage::keys::get_be64(k[1]), 3u);
  }
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 2u);
  for (const auto& r : s.sessions) {
    EXPECT_EQ(r.subscriptions.size(), 1u);
    EXPECT_EQ(r.queue.size(), 1u);
    EXPECT_EQ(r.inflight.size(), 1u);
    EXPECT_EQ(r.incoming_qos2.size(), 1u);
  }
}

TEST_P(store_contract, only_the_newest_incarnation_of_a_client_is_loaded) {
  reopen();
  commit({make_session(4, "same"), ports::subscription_put{4, "old", {}}, ports::message_put{make_message(5, "t")},
          ports::queued_put{4, 5, {}}, ports::incoming_put{4, 1}, make_session(9, "same"),
          ports::subscription_put{9, "new", {}}, make_session(6, "other")});
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 2u);
  const auto& r = s.sessions[0].client_id == "same" ? s.sessions[0] : s.sessions[1];
  EXPECT_EQ(r.session_id, 9u);
  ASSERT_EQ(r.subscriptions.size(), 1u);
  EXPECT_EQ(r.subscriptions[0].first, "new");
  EXPECT_TRUE(r.queue.empty());
  EXPECT_EQ(s.next_id, 10u);
  // The older incarnation is gone from disk, with its message.
  EXPECT_EQ(keys(column::sessions), (std::vector<std::string>{storage::keys::id_key(6), storage::keys::id_key(9)}));
  EXPECT_EQ(keys(column::subscriptions).size(), 1u);
  EXPECT_TRUE(keys(column::queue).empty());
  EXPECT_TRUE(keys(column::incoming).empty());
  EXPECT_TRUE(keys(column::messages).empty());
}

TEST_P(store_contract, records_of_missing_sessions_and_messages_are_repaired) {
  reopen();
  commit({make_session(1, "a"),
          // session 2 has no session record (its delete landed, these did not)
          ports::subscription_put{2, "f", {}}, ports::message_put{make_message(20, "t")}, ports::queued_put{2, 20, {}},
          ports::inflight_put{2, 20, 1, core::outgoing_state::awaiting_puback, {}}, ports::incoming_put{2, 3},
          // session 1 references message 30, which does not exist
          ports::queued_put{1, 30, {}}, ports::inflight_put{1, 31, 1, core::outgoing_state::awaiting_puback, {}},
          // ...except awaiting_pubcomp, which does not need it
          ports::inflight_put{1, 32, 2, core::outgoing_state::awaiting_pubcomp, {}},
          // message 40 is referenced by nobody
          ports::message_put{make_message(40, "t")}});
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 1u);
  EXPECT_TRUE(s.sessions[0].queue.empty());
  ASSERT_EQ(s.sessions[0].inflight.size(), 1u);
  EXPECT_EQ(s.sessions[0].inflight[0].d.message_id, 32u);
  EXPECT_EQ(s.next_id, 41u);  // every id seen counts, repaired or not
  bool reported = false;
  for (const auto& line : log_lines()) reported = reported || line.find("repaired") != std::string::npos;
  EXPECT_TRUE(reported);

  EXPECT_EQ(keys(column::subscriptions).size(), 0u);
  EXPECT_EQ(keys(column::queue).size(), 0u);
  EXPECT_EQ(keys(column::inflight).size(), 1u);
  EXPECT_EQ(keys(column::incoming).size(), 0u);
  EXPECT_EQ(keys(column::messages).size(), 0u);
  // Repaired once and for all: the next load has nothing to repair.
  auto again = reopen();
  EXPECT_EQ(again.sessions.size(), 1u);
  EXPECT_EQ(again.next_id, 33u);
}

TEST_P(store_contract, newer_format_is_refused_with_a_clear_error) {
  raw_put(column::meta, "format", storage::encode_meta(storage::record_format_version + 1, "flock 99", {}));
  store = open();
  try {
    store->load();
    FAIL() << "load() accepted a newer format";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("was written by a newer flock (record format " +
                                         std::to_string(storage::record_format_version + 1) +
                                         "; this build reads up to " +
                                         std::to_string(storage::record_format_version) + ")"),
              std::string::npos)
        << e.what();
  }
}

TEST_P(store_contract, records_of_format_1_still_load_and_the_directory_is_marked_with_the_new_format) {
  raw_put(column::meta, "format", storage::encode_meta(1, "flock 0.1.0", {}));
  // A format 1 retained message: a protobuf MessageRecord (topic, payload, qos, retain).
  raw_put(column::retained, "r/1", std::string("\x0a\x03r/1\x12\x03old\x18\x01\x20\x01", 14));
  auto state = reopen();
  ASSERT_EQ(state.retained.size(), 1u);
  EXPECT_EQ(state.retained[0]->topic, "r/1");
  EXPECT_EQ(state.retained[0]->payload, "old");
  EXPECT_EQ(state.retained[0]->qos, 1);
  EXPECT_TRUE(state.retained[0]->retain);
  // What this build writes is its own format, and the directory says so:
  // an older build refuses it instead of misreading it.
  auto m = std::make_shared<core::message>();
  m->topic = "r/2";
  m->payload = "new";
  m->retain = true;
  commit({ports::retained_put{m}});
  close();
  auto b = raw();
  auto meta = storage::decode_meta(*b->get(column::meta, "format"));
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->format_version, storage::record_format_version);
  EXPECT_TRUE(core::is_encoded_message(*b->get(column::retained, "r/2")));
  b.reset();
  EXPECT_EQ(reopen().retained.size(), 2u);
}

TEST_P(store_contract, a_record_that_does_not_decode_is_reported_not_skipped) {
  reopen();
  commit({make_session(1, "a")});
  raw_put(column::queue, storage::keys::pair_key(1, 2), "\xff\xff\xff garbage");
  store = open();
  try {
    store->load();
    FAIL() << "load() accepted a bad record";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("is corrupt"), std::string::npos) << what;
    EXPECT_NE(what.find("column family queue"), std::string::npos) << what;
    EXPECT_NE(what.find("0x00000000000000010000000000000002"), std::string::npos) << what;
  }
  EXPECT_EQ(keys(column::queue).size(), 1u);  // still there
}

}  // namespace
}  // namespace flock::testing
