#pragma once
// Would-be peers refused before they could join (a certificate that does
// not verify, a wrong cluster secret, a full peer table, a stream that does
// not start with a hello): counted by reason for /metrics and logged at most
// once per interval per reason, so a hostile process cannot flood the log.
// Any thread (gRPC's handshake threads, stream threads, the node's thread).
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string_view>

#include "broker/ports/cluster.hpp"
#include "broker/server/log.hpp"

namespace flock::cluster {

class peer_refusals {
 public:
  void refuse(ports::peer_refusal why, std::string_view who, std::string_view detail) {
    const auto i = static_cast<std::size_t>(why);
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    std::uint64_t suppressed = 0;
    {
      std::lock_guard lock(mutex_);
      if (!logs_[i].allow(suppressed)) return;
    }
    server::log::warn("cluster: refused ", who.empty() ? "a peer" : who, " (", ports::peer_refusal_names[i], "): ",
                      detail, suppressed ? " (" : "", suppressed ? std::to_string(suppressed) : "",
                      suppressed ? " more since the last line)" : "");
  }
  std::array<std::uint64_t, 4> counts() const {
    std::array<std::uint64_t, 4> out{};
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
    return out;
  }

 private:
  std::array<std::atomic<std::uint64_t>, 4> counts_{};
  std::mutex mutex_;
  std::array<server::log::rate_limiter, 4> logs_;
};

}  // namespace flock::cluster
