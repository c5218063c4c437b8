#pragma once
// A std::deque that holds no memory while empty. libstdc++'s deque allocates
// its map and a 512-byte block as soon as it is constructed, so a session's
// two empty queues (queued, in flight) cost ~1.1 KiB: a third of an idle
// connection. This one allocates on the first push and keeps its memory
// while in use (freeing it whenever the window emptied cost 10-20% of QoS 1
// throughput); its owner releases it when idle (release_if_empty).
// Owned by its session; its owner worker's thread only.
#include <deque>
#include <memory>
#include <utility>

namespace flock::core {

template <class T>
class lazy_deque {
 public:
  using iterator = typename std::deque<T>::iterator;
  using const_iterator = typename std::deque<T>::const_iterator;

  lazy_deque() = default;
  lazy_deque(lazy_deque&&) noexcept = default;
  lazy_deque& operator=(lazy_deque&&) noexcept = default;

  bool empty() const { return !d_ || d_->empty(); }
  std::size_t size() const { return d_ ? d_->size() : 0; }
  T& front() { return d_->front(); }
  void push_back(T v) { items().push_back(std::move(v)); }
  void pop_front() { d_->pop_front(); }
  iterator erase(iterator it) { return d_->erase(it); }
  void clear() { d_.reset(); }
  // Gives the memory back if nothing is in it.
  void release_if_empty() {
    if (d_ && d_->empty()) d_.reset();
  }

  iterator begin() { return d_ ? d_->begin() : none().begin(); }
  iterator end() { return d_ ? d_->end() : none().end(); }
  const_iterator begin() const { return d_ ? d_->cbegin() : none().cbegin(); }
  const_iterator end() const { return d_ ? d_->cend() : none().cend(); }

 private:
  std::deque<T>& items() {
    if (!d_) d_ = std::make_unique<std::deque<T>>();
    return *d_;
  }
  // Iterators of a null deque: one shared, always-empty instance per thread
  // (begin() == end(), never written).
  static std::deque<T>& none() {
    thread_local std::deque<T> empty;
    return empty;
  }
  std::unique_ptr<std::deque<T>> d_;
};

}  // namespace flock::core
