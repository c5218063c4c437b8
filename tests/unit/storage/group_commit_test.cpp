// group_commit_store beyond the contract: coalescing on and off load the
// same state, and shutdown does not hang on a failing disk.
#include "storage/group_commit_store.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "storage/memory_backend.hpp"
#include "tests/contract/store_test_support.hpp"

namespace flock::storage {
namespace {

using namespace std::chrono_literals;
using testing::manual_clock;
using testing::queued_executor;

std::shared_ptr<core::message> msg(std::uint64_t id) {
  auto m = std::make_shared<core::message>();
  m->id = id;
  m->partitions = testing::partitions();
  m->topic = "t/" + std::to_string(id);
  m->payload = std::string(256, 'p');
  m->qos = 1;
  return m;
}

// Everything load() returns, as text, to compare two loads.
std::string describe(const ports::restored_state& s) {
  std::ostringstream out;
  out << "next " << s.next_id << "\n";
  for (const auto& r : s.sessions) {
    out << "session " << r.session_id << " " << r.client_id << " " << r.expiry_interval << "\n";
    for (const auto& [f, o] : r.subscriptions) out << " sub " << f << " " << o.identifier << "\n";
    for (const auto& q : r.queue) out << " queued " << q.message_id << " " << q.msg->payload.size() << "\n";
    for (const auto& f : r.inflight) out << " inflight " << f.d.message_id << " " << f.packet_id << "\n";
    for (auto p : r.incoming_qos2) out << " incoming " << p << "\n";
  }
  for (const auto& m : s.retained) out << "retained " << m->topic << "\n";
  return out.str();
}

// A QoS 1 workload: sessions subscribe, messages are queued, sent, acked,
// sometimes left queued or in flight, sometimes a session ends.
void run_workload(ports::store& store) {
  std::uint64_t next = 100;
  for (int round = 0; round < 200; ++round) {
    const std::uint64_t sid = 1 + round % 4;
    const std::uint64_t id = ++next;
    std::vector<ports::store_op> ops{testing::make_session(sid, "c" + std::to_string(sid), 60),
                                     ports::subscription_put{sid, "t/#", {1, false, false, 0, static_cast<std::uint32_t>(round)}},
                                     ports::message_put{msg(id)}, ports::queued_put{sid, id, {1, false, {}}}};
    store.append(ops);
    if (round % 5 == 0) continue;  // stays queued
    std::vector<ports::store_op> send{ports::queued_delete{sid, id},
                                      ports::inflight_put{sid, id, static_cast<std::uint16_t>(round + 1),
                                                          core::outgoing_state::awaiting_puback, {1, false, {}}}};
    store.append(send);
    if (round % 7 == 0) continue;  // stays in flight
    std::vector<ports::store_op> ack{ports::inflight_delete{sid, id}, ports::message_delete{id, testing::partitions()}};
    store.append(ack);
    if (round % 50 == 49) {
      std::vector<ports::store_op> end{ports::session_delete{sid}};
      store.append(end);
    }
  }
}

TEST(group_commit_store, coalescing_on_and_off_load_the_same_state) {
  queued_executor executor(1);
  manual_clock clock;
  std::string loaded[2];
  std::shared_ptr<memory_disk> disks[2];
  std::uint64_t coalesced[2] = {0, 0};
  for (int with = 0; with < 2; ++with) {
    disks[with] = std::make_shared<memory_disk>();
    group_commit_options o;
    o.coalesce = with == 1;
    o.log = [](const std::string&) {};
    group_commit_store store(open_memory_backend(disks[with]), o, executor, clock);
    store.load();
    // Hold the writer on a first group so that the workload forms a few
    // large groups whatever the timing: there must be something to coalesce.
    disks[with]->failing = true;
    std::vector<ports::store_op> first{testing::make_session(9, "first", 60)};
    store.append(first);
    ASSERT_TRUE(testing::eventually([&] { return disks[with]->failed_writes.load() > 0; }));
    run_workload(store);
    disks[with]->failing = false;
    ASSERT_TRUE(store.flush(5s));
    coalesced[with] = store.stats().coalesced;
    loaded[with] = describe(store.load());
  }
  EXPECT_EQ(coalesced[0], 0u);
  EXPECT_GT(coalesced[1], 500u);
  EXPECT_EQ(loaded[0], loaded[1]);
  // Every record alike; the meta column differs only by each directory's identity.
  for (std::size_t c = 1; c < column_count; ++c) EXPECT_EQ(disks[0]->columns[c], disks[1]->columns[c]) << "column " << c;
  EXPECT_EQ(static_cast<std::size_t>(column::meta), 0u);
  EXPECT_NE(loaded[0].find("queued"), std::string::npos);  // the workload left something to compare
  EXPECT_NE(loaded[0].find("inflight"), std::string::npos);
}

TEST(group_commit_store, shutdown_gives_up_on_a_failing_disk_after_its_timeout) {
  queued_executor executor(1);
  manual_clock clock;
  auto disk = std::make_shared<memory_disk>();
  group_commit_options o;
  o.log = [](const std::string&) {};
  o.shutdown_flush_timeout = 100ms;
  auto store = std::make_unique<group_commit_store>(open_memory_backend(disk), o, executor, clock);
  store->load();
  disk->failing = true;
  std::vector<ports::store_op> ops{testing::make_session(1, "c", 60)};
  auto t = store->append(ops);
  bool ran = false;
  store->when_durable(t, 0, [&] { ran = true; });
  ASSERT_TRUE(testing::eventually([&] { return !store->healthy(); }));
  const auto start = std::chrono::steady_clock::now();
  store.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  executor.run(0);
  EXPECT_FALSE(ran);  // never durable, never acknowledged
}

TEST(group_commit_store, writes_one_batch_per_group) {
  queued_executor executor(1);
  manual_clock clock;
  auto disk = std::make_shared<memory_disk>();
  group_commit_store store(open_memory_backend(disk), {}, executor, clock);
  store.load();
  disk->failing = true;  // hold the writer on the first group
  std::vector<ports::store_op> first{testing::make_session(1, "c", 60)};
  store.append(first);
  ASSERT_TRUE(testing::eventually([&] { return disk->failed_writes.load() > 0; }));
  for (std::uint32_t i = 0; i < 50; ++i) {  // all of these form the second group
    std::vector<ports::store_op> ops{ports::subscription_put{1, "f" + std::to_string(i), {}}};
    store.append(ops);
  }
  const auto before = disk->writes.load();
  disk->failing = false;
  ASSERT_TRUE(store.flush(5s));
  EXPECT_EQ(disk->writes.load() - before, 2u);
  EXPECT_EQ(store.stats().ops, 51u);
}

}  // namespace
}  // namespace flock::storage
