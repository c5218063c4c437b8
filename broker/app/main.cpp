// flockd: parse the configuration, build the server, run until SIGINT/SIGTERM.
// Exceptions are expected only here, at start-up: one line on stderr, then
// exit 2 for configuration errors and 1 for anything else (bind failures).
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "broker/app/config.hpp"
#include "broker/server/log.hpp"
#include "broker/server/server.hpp"

int main(int argc, char** argv) {
  using namespace flock;
  app::command_line cl;
  try {
    cl = app::parse_command_line(argc, argv);
  } catch (const app::config_error& e) {
    std::fprintf(stderr, "flockd: %s\n", e.what());
    return 2;
  }
  if (cl.what == app::command::help) {
    std::cout << app::help_text();
    return 0;
  }
  if (cl.what == app::command::version) {
    std::cout << app::version_text();
    return 0;
  }
  server::log::set_level(*server::log::parse_level(cl.cfg.log_level));

  try {
    std::error_code ec;
    std::filesystem::create_directories(cl.cfg.data_dir, ec);
    if (ec || !std::filesystem::is_directory(cl.cfg.data_dir))
      throw std::runtime_error("data_dir " + cl.cfg.data_dir + ": " +
                               (ec ? ec.message() : std::string("not a directory")));
    server::server s(app::to_server_options(cl.cfg));
    s.run();
  } catch (const server::tls_error& e) {
    // validate() loaded the certificates already; this is a file changed since.
    std::fprintf(stderr, "flockd: config: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flockd: %s\n", e.what());
    return 1;
  }
  return 0;
}
