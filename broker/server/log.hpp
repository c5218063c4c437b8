#pragma once
// A tiny leveled logger for the server and the app: one line per call,
// "2026-01-02T03:04:05.678Z INFO message", written to stderr with a single
// write so lines from different workers do not interleave.
// Process-wide state (the level); callable from any thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace flock::server::log {

enum class level : std::uint8_t { trace, debug, info, warn, error };

void set_level(level l);
level current_level();
inline bool enabled(level l) { return l >= current_level(); }

std::optional<level> parse_level(std::string_view name);
std::string_view level_name(level l);

// Writes one already formatted line (adds timestamp, level and newline).
void write(level l, std::string_view message);

template <class... Args>
void print(level l, const Args&... args) {
  if (!enabled(l)) return;
  std::ostringstream out;
  (out << ... << args);
  write(l, out.str());
}

template <class... Args> void trace(const Args&... a) { print(level::trace, a...); }
template <class... Args> void debug(const Args&... a) { print(level::debug, a...); }
template <class... Args> void info(const Args&... a) { print(level::info, a...); }
template <class... Args> void warn(const Args&... a) { print(level::warn, a...); }
template <class... Args> void error(const Args&... a) { print(level::error, a...); }

// Degraded states (accept failing, peer down) are logged once per interval,
// not once per event: allow() says whether to log now and how many events
// were swallowed since the last line. Owned by one thread (not synchronised).
class rate_limiter {
 public:
  explicit rate_limiter(std::chrono::steady_clock::duration interval = std::chrono::seconds(10))
      : interval_(interval) {}

  // True when a line may be written now; `suppressed` gets the count of
  // events that were not logged since the previous line.
  bool allow(std::uint64_t& suppressed) {
    auto now = std::chrono::steady_clock::now();
    if (logged_once_ && now - last_ < interval_) {
      ++suppressed_;
      return false;
    }
    logged_once_ = true;
    last_ = now;
    suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  bool logged_once_ = false;
  std::uint64_t suppressed_ = 0;
};

}  // namespace flock::server::log
