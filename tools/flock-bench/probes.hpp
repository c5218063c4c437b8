#pragma once
// One route-convergence attempt of the `converge` scenario, as numbers: the
// subscriber sends SUBSCRIBE at `subscribed`, gets SUBACK at `suback`; from
// `subscribed` on, probe k is published (QoS 0, on another node) at sent(k),
// every ~1 ms; the first probe to arrive is probe k at `arrival`.
//
// What that says about the moment C at which the publishing node started
// routing the topic to the subscriber's node (everything is on one steady
// clock; the probes travel one TCP connection, in order, and QoS 0 on
// loopback is not dropped when there is a route):
//   - probe k-1 was not delivered, and the broker handled it after sent(k-1):
//     C > sent(k-1)                         (lower bound; subscribed if k = 0)
//   - probe k was delivered, the broker handled it before it arrived:
//     C <= arrival                          (upper bound)
// so C is known to within arrival - sent(k-1): the probe interval plus one
// delivery. Values are relative to the SUBACK (the issue's "from SUBACK on
// node B"); negative means the route worked before the client saw its SUBACK.
// Pure std: unit-tested in tests/unit/bench.
#include <cstdint>
#include <optional>
#include <vector>

namespace flock::bench {

class probe_attempt {
 public:
  struct bounds {
    std::int64_t upper_ns = 0;     // arrival - suback
    std::int64_t lower_ns = 0;     // sent(k-1) (or subscribed) - suback
    std::int64_t delivery_ns = 0;  // arrival - sent(k): one hop for the probe that made it
    std::uint64_t probes_sent = 0; // up to and including the first arrival
  };

  explicit probe_attempt(std::int64_t subscribed_ns) : subscribed_(subscribed_ns) {}

  // Records a probe's send time; returns its number (0, 1, ...).
  std::uint64_t sent(std::int64_t ns) {
    sent_.push_back(ns);
    return sent_.size() - 1;
  }
  void suback(std::int64_t ns) {
    if (!suback_) suback_ = ns;
  }
  // A probe arrived. Only the first counts; an unknown probe number is ignored.
  // Returns true when this arrival was the first.
  bool arrived(std::uint64_t probe, std::int64_t ns) {
    if (arrival_ || probe >= sent_.size()) return false;
    arrival_ = ns;
    first_ = probe;
    return true;
  }

  std::uint64_t probes() const { return sent_.size(); }
  bool has_suback() const { return suback_.has_value(); }
  bool has_arrival() const { return arrival_.has_value(); }
  // Both the SUBACK and a probe are in: the attempt is measured.
  bool complete() const { return suback_ && arrival_; }

  std::optional<bounds> result() const {
    if (!complete()) return std::nullopt;
    bounds b;
    b.upper_ns = *arrival_ - *suback_;
    std::int64_t before = first_ == 0 ? subscribed_ : sent_[first_ - 1];
    b.lower_ns = before - *suback_;
    b.delivery_ns = *arrival_ - sent_[first_];
    b.probes_sent = first_ + 1;
    return b;
  }

 private:
  std::int64_t subscribed_;
  std::vector<std::int64_t> sent_;
  std::optional<std::int64_t> suback_, arrival_;
  std::uint64_t first_ = 0;
};

}  // namespace flock::bench
