#pragma once
// The broker process minus configuration: worker pool, broker core,
// listeners (each worker accepts its own connections).
// Owned by main (or a test); constructed, run, and destroyed on one thread.
// Lifetime: start() -> stop(); stop() closes every connection and joins all
// threads before the core is destroyed.
#include "broker/server/asio.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/core/broker_config.hpp"
#include "broker/ports/clock.hpp"
#include "broker/ports/cluster.hpp"
#include "broker/ports/store.hpp"
#include "broker/server/listener.hpp"
#include "broker/server/metrics_http.hpp"
#include "broker/server/worker_pool.hpp"

namespace flock::core {
class broker;
}
namespace flock::auth {
class acl_file;
class password_file;
}

namespace flock::server {

struct server_options {
  std::vector<listener_options> listeners;
  std::uint32_t workers = 0;  // 0: one per hardware thread
  core::broker_config broker;
  // How long stop() lets connections flush before closing them hard.
  std::chrono::milliseconds shutdown_timeout{3000};
  // Opens the durable store (RocksDB under data_dir), loaded into the core
  // before the listeners start. Empty: durability "memory", no store.
  std::function<std::unique_ptr<ports::store>(ports::executor&, ports::clock&)> open_store;
  // Joins a cluster (cluster/): made right after the core, so that routes
  // restored from the store are announced; started before the listeners.
  // Empty: a single node.
  std::function<std::unique_ptr<ports::cluster>(ports::cluster_host&)> open_cluster;
  // Builds the handler of each connection. Empty: the MQTT protocol machine.
  std::function<std::unique_ptr<connection_handler>(core::connection_io&, const core::listener_settings&)>
      make_handler;
  // HOST:PORT for /metrics, /healthz and /readyz (metrics_http.hpp); empty: none.
  std::string metrics_listen;
};

class server {
 public:
  // Creates the core and binds every listener; throws bind_error.
  explicit server(server_options options);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Starts the workers and accepting.
  void start();
  // start(), then blocks until SIGINT or SIGTERM, then stop().
  void run();
  // Stops accepting, closes connections (flushing with a deadline), joins
  // every thread. Idempotent; not callable from a worker.
  void stop();

  std::vector<tcp::endpoint> local_endpoints() const;
  // The metrics endpoint's address, if there is one.
  std::optional<tcp::endpoint> metrics_endpoint() const;
  // Accepting MQTT clients, joined the cluster, not shutting down (/readyz).
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  std::size_t live_connections() const;
  core::broker& broker() { return *broker_; }
  worker_pool& workers() { return pool_; }

 private:
  void on_tick(worker& w);
  void wait_for_connections_to_close(std::chrono::steady_clock::time_point deadline) const;
  void open_store();
  // start() failed half-way: undo what it started (stop() expects a full start).
  void abandon_start();
  // Writes what the store holds, then runs the answers it released (shutdown).
  void flush_store(const char* when);

  server_options options_;
  ports::system_clock clock_;
  worker_pool pool_;
  std::unique_ptr<auth::password_file> passwords_;  // outlives broker_, which reads it
  std::unique_ptr<auth::acl_file> acl_;             // likewise
  // The store's writer thread posts to the workers: destroyed before pool_,
  // after broker_ (which writes to it).
  std::unique_ptr<ports::store> store_;
  // Calls into the core from its own threads: destroyed after broker_ is
  // done with it (stopped in stop(), before the workers).
  std::unique_ptr<ports::cluster> cluster_;
  std::unique_ptr<core::broker> broker_;  // destroyed before pool_: it posts to workers
  std::vector<std::unique_ptr<listener>> listeners_;
  // Reads broker_ on its own thread: declared after it, so destroyed first.
  std::unique_ptr<metrics_http> metrics_;
  std::atomic<bool> ready_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace flock::server
