#pragma once
// A ports::store for unit tests: records every op, and makes groups durable
// only when the test says so (commit()), so tests can check what waits for
// the disk. Single-threaded, like the manual executor it posts to.
#include <map>
#include <vector>

#include "broker/ports/store.hpp"

namespace flock::testing {

class fake_store final : public ports::store {
 public:
  explicit fake_store(ports::executor& ex) : ex_(ex) {}

  ports::restored_state load() override { return {}; }
  ticket append(std::span<ports::store_op> ops) override {
    for (auto& op : ops) log.push_back({open_, std::move(op)});
    return one_group_per_append ? open_++ : open_;
  }
  bool is_durable(ticket t) const override { return t <= durable_; }
  void when_durable(ticket t, ports::worker_id w, std::function<void()> fn) override {
    if (is_durable(t)) ex_.post(w, std::move(fn));
    else waiters_.emplace(t, std::make_pair(w, std::move(fn)));
  }
  bool healthy() const override { return healthy_; }
  bool flush(ports::duration) override {
    commit();
    return true;
  }

  // Makes everything appended so far durable and posts the callbacks.
  void commit() { commit_through(one_group_per_append ? open_ - 1 : open_++); }
  // Makes groups up to t durable.
  void commit_through(ticket t) {
    if (!healthy_) return;
    durable_ = std::max(durable_, t);
    for (auto it = waiters_.begin(); it != waiters_.end() && it->first <= durable_;) {
      ex_.post(it->second.first, std::move(it->second.second));
      it = waiters_.erase(it);
    }
  }
  void set_healthy(bool h) { healthy_ = h; }

  // The ops of one kind, in log order.
  template <class T>
  std::vector<T> ops() const {
    std::vector<T> out;
    for (const auto& e : log)
      if (auto* op = std::get_if<T>(&e.op)) out.push_back(*op);
    return out;
  }

  struct entry {
    ticket group;
    ports::store_op op;
  };
  std::vector<entry> log;
  // Each append is a group of its own (default: one group until commit()).
  bool one_group_per_append = false;

 private:
  ports::executor& ex_;
  ticket open_ = 1;
  ticket durable_ = 0;
  bool healthy_ = true;
  std::multimap<ticket, std::pair<ports::worker_id, std::function<void()>>> waiters_;
};

}  // namespace flock::testing
