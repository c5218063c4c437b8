// ports::store contract, part 2: tickets, when_durable callbacks, flush,
// and what happens while writes fail. Same suite and fixture as
// store_contract_test.cpp (instantiated there).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/contract/store_contract_fixture.hpp"

namespace flock::testing {
namespace {

using namespace std::chrono_literals;

// Callbacks record their name and the worker they ran on.
struct call_log {
  std::mutex mu;
  std::vector<std::string> calls;
  std::function<void()> add(queued_executor& ex, std::string name) {
    return [this, &ex, name] {
      std::lock_guard lk(mu);
      calls.push_back(name + "@" + std::to_string(ex.current_worker()));
    };
  }
  std::vector<std::string> get() {
    std::lock_guard lk(mu);
    return calls;
  }
};

TEST_P(store_contract, flush_with_nothing_appended_returns_at_once) {
  reopen();
  EXPECT_TRUE(store->flush(5s));
}

TEST_P(store_contract, callbacks_run_on_their_worker_in_order_once_durable) {
  reopen();
  call_log log;
  std::vector<ports::store_op> ops{make_session(1, "a")};
  auto t = store->append(ops);
  std::atomic<bool> durable_in_callback{false};
  store->when_durable(t, 1, [&, t] { durable_in_callback = store->is_durable(t); });
  store->when_durable(t, 1, log.add(executor, "first"));
  store->when_durable(t, 0, log.add(executor, "other worker"));
  store->when_durable(t, 1, log.add(executor, "second"));
  ASSERT_TRUE(executor.wait_posts(1, 1));
  ASSERT_TRUE(executor.wait_posts(0, 1));
  executor.run(1);
  executor.run(0);
  EXPECT_TRUE(durable_in_callback);
  EXPECT_EQ(log.get(), (std::vector<std::string>{"first@1", "second@1", "other worker@0"}));
  EXPECT_EQ(keys(storage::column::sessions).size(), 1u);  // on disk indeed
}

TEST_P(store_contract, when_durable_on_a_durable_ticket_posts_at_once) {
  reopen();
  auto t = commit({make_session(1, "a")});
  ASSERT_TRUE(store->is_durable(t));
  const auto before = executor.posts(0);
  call_log log;
  store->when_durable(t, 0, log.add(executor, "now"));
  EXPECT_EQ(executor.posts(0), before + 1);  // posted before when_durable returned
  executor.run(0);
  EXPECT_EQ(log.get(), (std::vector<std::string>{"now@0"}));
}

TEST_P(store_contract, an_empty_append_names_a_group_with_everything_before_it) {
  reopen();
  EXPECT_TRUE(store->is_durable(store->append({})));  // nothing before it
  std::vector<ports::store_op> ops{make_session(1, "a")};
  auto t1 = store->append(ops);
  auto t0 = store->append({});
  EXPECT_GE(t0 + 1, t1);
  ASSERT_TRUE(store->flush(5s));
  EXPECT_TRUE(store->is_durable(t0));
  EXPECT_TRUE(store->is_durable(t1));
}

TEST_P(store_contract, appends_keep_their_order_across_groups_and_threads) {
  reopen();
  constexpr std::uint32_t rounds = 300;
  auto writer = [&](std::uint64_t sid, bool& tickets_ordered) {
    tickets_ordered = true;
    ports::store::ticket last = 0;
    for (std::uint32_t i = 1; i <= rounds; ++i) {
      // The same key rewritten: only the append order decides what is left.
      std::vector<ports::store_op> ops{make_session(sid, "c" + std::to_string(sid), i),
                                       ports::subscription_put{sid, "f", {0, false, false, 0, i}}};
      if (i % 2 == 0) ops.push_back(ports::subscription_delete{sid, "f"});
      auto t = store->append(ops);
      tickets_ordered = tickets_ordered && t >= last;
      last = t;
    }
  };
  bool ordered1 = false, ordered2 = false;
  std::thread a(writer, 1, std::ref(ordered1));
  std::thread b(writer, 2, std::ref(ordered2));
  a.join();
  b.join();
  EXPECT_TRUE(ordered1);
  EXPECT_TRUE(ordered2);
  ASSERT_TRUE(store->flush(5s));
  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 2u);
  for (const auto& r : s.sessions) {
    EXPECT_EQ(r.expiry_interval, rounds);
    EXPECT_TRUE(r.subscriptions.empty());  // rounds is even: deleted last
  }
}

// --- a failing disk ---

TEST_P(store_contract, failing_writes_hold_callbacks_and_lose_nothing) {
  reopen();
  set_failing(true);
  call_log log;
  std::vector<ports::store_op> first{make_session(1, "a"), ports::message_put{make_message(10, "t")},
                                     ports::queued_put{1, 10, {}}};
  auto t1 = store->append(first);
  store->when_durable(t1, 1, log.add(executor, "a"));
  store->when_durable(t1, 1, log.add(executor, "b"));
  store->when_durable(t1, 0, log.add(executor, "c"));
  ASSERT_TRUE(eventually([&] { return !store->healthy(); }));
  // Appends go on meanwhile, into the next group.
  std::vector<ports::store_op> second{ports::subscription_put{1, "f", {}}};
  auto t2 = store->append(second);
  EXPECT_GT(t2, t1);
  store->when_durable(t2, 1, log.add(executor, "d"));

  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(store->flush(200ms));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 1s);
  EXPECT_FALSE(store->is_durable(t1));
  EXPECT_EQ(executor.posts(0) + executor.posts(1), 0u);
  EXPECT_FALSE(store->healthy());

  set_failing(false);
  ASSERT_TRUE(store->flush(5s));
  EXPECT_TRUE(store->healthy());
  EXPECT_TRUE(store->is_durable(t2));
  ASSERT_TRUE(executor.wait_posts(1, 2));
  ASSERT_TRUE(executor.wait_posts(0, 1));
  EXPECT_EQ(executor.posts(1), 2u);  // one post per group: a and b together
  executor.run(1);
  executor.run(0);
  EXPECT_EQ(log.get(), (std::vector<std::string>{"a@1", "b@1", "d@1", "c@0"}));

  std::size_t failed = 0, recovered = 0;
  for (const auto& line : log_lines()) {
    failed += line.find("failed") != std::string::npos && line.find("works again") == std::string::npos;
    recovered += line.find("works again") != std::string::npos;
  }
  EXPECT_EQ(failed, 1u);  // rate-limited: several attempts failed
  EXPECT_EQ(recovered, 1u);

  auto s = reopen();
  ASSERT_EQ(s.sessions.size(), 1u);
  EXPECT_EQ(s.sessions[0].queue.size(), 1u);
  EXPECT_EQ(s.sessions[0].subscriptions.size(), 1u);
}

}  // namespace
}  // namespace flock::testing
