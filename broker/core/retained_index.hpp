#pragma once
// Retained messages by topic (MQTT 5 section 3.3.1.3). Topics sit in a trie of
// levels so a wildcard filter ("a/+/c", "a/#") visits only the branches it
// can match, even with millions of retained topics; a hash map from the full
// topic to its trie node makes a filter without wildcards one lookup.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "broker/core/message.hpp"
#include "broker/ports/clock.hpp"

namespace flock::core {

// Owns the retained messages of the process (shared, immutable). Not
// thread-safe: the broker wraps it in a lock; lives as long as the broker.
class retained_index {
 public:
  retained_index();
  ~retained_index();
  retained_index(const retained_index&) = delete;
  retained_index& operator=(const retained_index&) = delete;

  // Stores msg under msg->topic, replacing what was there; an empty payload
  // removes the topic instead (3.3.1.3). Returns +1 added, -1 removed,
  // 0 replaced or nothing to remove.
  int set(message_ptr msg);

  // Removes the topic; true if it was retained.
  bool erase(std::string_view topic);

  // The message retained under exactly `topic`, or null.
  message_ptr find(std::string_view topic) const;

  // fn(const message_ptr&) for each retained message whose topic matches
  // `filter` (a valid, non-shared filter), in no particular order. Messages
  // past their expiry but not yet erased are included: callers that care
  // check expires_at (or call erase_expired first).
  template <class F>
  void match(std::string_view filter, F&& fn) const {
    match_impl(filter, &invoke<std::remove_reference_t<F>>, erase_const(std::addressof(fn)));
  }

  // fn(const message_ptr&) for every retained message (snapshots, $SYS).
  template <class F>
  void for_each(F&& fn) const {
    for_each_impl(&invoke<std::remove_reference_t<F>>, erase_const(std::addressof(fn)));
  }

  std::size_t size() const { return by_topic_.size(); }

  // Removes every message whose expires_at <= now; returns how many.
  // `erased` (if set) sees each one first.
  std::size_t erase_expired(ports::time_point now, const std::function<void(const message_ptr&)>& erased = {});

  // The earliest expires_at among retained messages, to schedule the next sweep.
  std::optional<ports::time_point> next_expiry() const;

 private:
  struct node;
  using callback = void (*)(void* ctx, const message_ptr& msg);

  template <class F>
  static void invoke(void* ctx, const message_ptr& msg) {
    (*static_cast<F*>(ctx))(msg);
  }
  template <class T>
  static void* erase_const(T* p) {
    return const_cast<void*>(static_cast<const void*>(p));
  }

  void match_impl(std::string_view filter, callback cb, void* ctx) const;
  void for_each_impl(callback cb, void* ctx) const;
  void forget_expiry(const node* n);
  void note_expiry(const node* n);

  std::unique_ptr<node> root_;
  // Keys view the topic of the message held by the node they point at, so
  // the key is re-pointed whenever that message is replaced.
  std::unordered_map<std::string_view, node*> by_topic_;
  std::set<std::pair<ports::time_point, const node*>> expiries_;
};

}  // namespace flock::core
