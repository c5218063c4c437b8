#pragma once
#include "tools/flock-bench/options.hpp"
#include "tools/flock-bench/report.hpp"
#include "tools/flock-bench/runtime.hpp"

namespace flock::bench {

// Each scenario fills `out` and records failures in `errors`; it throws
// bench_error when it cannot go on (the report is then not printed).
void run_pubsub(const options& o, report& out, error_log& errors);
void run_connections(const options& o, report& out, error_log& errors);
void run_fill(const options& o, report& out, error_log& errors);
void run_drain(const options& o, report& out, error_log& errors);
void run_converge(const options& o, report& out, error_log& errors);
void run_move(const options& o, report& out, error_log& errors);

// Shared by the reports.
void add_latency(report& r, const std::string& key, const class histogram& h);
// "broker" HOST:PORT, and "subscriber_broker" when subscribers connect elsewhere.
void add_brokers(report& r, const options& o);

}  // namespace flock::bench
