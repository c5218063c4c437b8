#pragma once
// Converts the core's monotonic time points to wall-clock milliseconds for
// the records and back on load: a deadline stored as wall time keeps
// counting while the broker is down (a steady_clock value means nothing
// after a reboot). Captured once per group or load, so every time in one
// batch is converted with the same offset.
#include <chrono>
#include <cstdint>

#include "broker/core/message_codec.hpp"
#include "broker/ports/clock.hpp"

namespace flock::storage {

class wall_clock_mapping {
 public:
  explicit wall_clock_mapping(const ports::clock& clock)
      : wall_now_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count()),
        steady_now_(clock.now()) {}

  // system_clock::now() + (tp - clock.now())
  std::int64_t to_unix_ms(ports::time_point tp) const {
    return wall_now_ms_ + std::chrono::duration_cast<std::chrono::milliseconds>(tp - steady_now_).count();
  }

  // clock.now() + (ms - system_clock::now()). The difference is clamped to
  // +-100 years so a strange stored value cannot overflow the nanosecond
  // arithmetic of time_point.
  // The same instant on both clocks, for core::encode_message / decode_message.
  core::wall_instant instant() const { return {steady_now_, wall_now_ms_}; }

  ports::time_point from_unix_ms(std::int64_t ms) const {
    constexpr std::int64_t limit = 100LL * 366 * 24 * 3600 * 1000;
    std::int64_t diff = ms - wall_now_ms_;
    if (diff > limit) diff = limit;
    if (diff < -limit) diff = -limit;
    return steady_now_ + std::chrono::milliseconds(diff);
  }

 private:
  std::int64_t wall_now_ms_;
  ports::time_point steady_now_;
};

}  // namespace flock::storage
