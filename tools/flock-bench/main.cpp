// flock-bench: the load generator of flock (see tools/flock-bench/README.md).
//   flock-bench pubsub|connections|fill|drain|converge|move [flags]    (flock-bench --help)
// Exit status: 0 ok; 1 connection failures or protocol errors (one line on
// stderr says which, the report is still printed); 2 bad command line.
#include <csignal>
#include <iostream>

#include "tools/flock-bench/scenarios.hpp"

int main(int argc, char** argv) {
  using namespace flock::bench;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args) {
    if (a == "-h" || a == "--help") {
      std::cout << usage_text();
      return 0;
    }
    if (a == "-V" || a == "--version") {
      std::cout << "flock-bench " << FLOCK_VERSION << "\n";
      return 0;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  options o;
  try {
    o = parse_options(args);
  } catch (const usage_error& e) {
    std::cerr << "flock-bench: " << e.what() << " (see flock-bench --help)\n";
    return 2;
  }
  report r;
  error_log errors;
  try {
    if (o.scenario == "pubsub") run_pubsub(o, r, errors);
    else if (o.scenario == "connections") run_connections(o, r, errors);
    else if (o.scenario == "fill") run_fill(o, r, errors);
    else if (o.scenario == "drain") run_drain(o, r, errors);
    else if (o.scenario == "converge") run_converge(o, r, errors);
    else run_move(o, r, errors);
  } catch (const bench_error& e) {
    std::cerr << "flock-bench: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "flock-bench: " << e.what() << "\n";
    return 1;
  }
  r.flag("ok", errors.count() == 0);
  if (o.json) std::cout << r.json() << std::endl;
  else std::cout << r.text();
  if (errors.count() > 0) {
    std::cerr << "flock-bench: " << errors.count() << (errors.count() == 1 ? " error" : " errors")
              << " (connection failures or protocol errors); first: " << errors.first() << "\n";
    return 1;
  }
  return 0;
}
