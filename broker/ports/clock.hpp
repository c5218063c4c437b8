#pragma once
// Time for the core: monotonic for timers, wall clock for durable expiry.
#include <chrono>

namespace flock::ports {

using time_point = std::chrono::steady_clock::time_point;
using duration = std::chrono::steady_clock::duration;

class clock {
 public:
  virtual ~clock() = default;
  virtual time_point now() const = 0;
};

class system_clock final : public clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace flock::ports
