#pragma once
// The Prometheus text exposition of one broker_metrics reading (flock_*
// names, docs/metrics.md), serialized by prometheus-cpp.
#include <string>

#include "broker/core/broker_metrics.hpp"

namespace flock::server {

std::string metrics_text(const core::broker_metrics& m);

}  // namespace flock::server
