#include "broker/server/server.hpp"

#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <thread>

#include "broker/auth/acl_file.hpp"
#include "broker/auth/password_file.hpp"
#include "broker/clustering/member.hpp"
#include "broker/core/broker.hpp"
#include "broker/server/connection.hpp"
#include "broker/server/machine_handler.hpp"
#include "broker/server/metrics_text.hpp"

namespace flock::server {

server::server(server_options options)
    : options_(std::move(options)), pool_(options_.workers) {
  broker_ = std::make_unique<core::broker>(options_.broker, pool_, clock_);
  if (options_.open_cluster) {
    auto member = std::make_unique<clustering::member>(*broker_);
    cluster_ = options_.open_cluster(member->host());
    member->connect(*cluster_);
    broker_->set_cluster_side(std::move(member));
  }
  if (!options_.broker.password_file.empty()) {
    passwords_ = std::make_unique<auth::password_file>(auth::password_file::load(options_.broker.password_file));
    broker_->set_authenticator(passwords_.get());
  }
  if (!options_.broker.acl_file.empty()) {
    acl_ = std::make_unique<auth::acl_file>(auth::acl_file::load(options_.broker.acl_file));
    broker_->set_authorizer(acl_.get());
  }
  auto make_handler = options_.make_handler;
  if (!make_handler) {
    make_handler = [this](core::connection_io& io, const core::listener_settings& settings) {
      return std::make_unique<machine_handler>(*broker_, io, settings);
    };
  }
  if (options_.listeners.empty()) options_.listeners.push_back({});
  for (auto& l : options_.listeners)
    listeners_.push_back(std::make_unique<listener>(pool_, l, options_.broker.connect_timeout, make_handler));
  for (std::uint32_t w = 0; w < pool_.worker_count(); ++w)
    pool_.at(w).pause_reading_above = 2 * options_.broker.max_outbound_bytes + options_.broker.max_packet_size;
  pool_.set_tick_handler([this](worker& w) { on_tick(w); });
  if (!options_.metrics_listen.empty())
    metrics_ = std::make_unique<metrics_http>(
        options_.metrics_listen,
        metrics_http_handlers{[this] {
                                auto m = broker_->metrics();
                                m.queue_depths = broker_->queue_depths(std::chrono::seconds(2));
                                for (const auto& l : listeners_)
                                  if (auto cert = l->certificate()) m.certificates.push_back(std::move(*cert));
                                return metrics_text(m);
                              },
                              [this] { return ready(); }});
  // Last: a port in use fails fast, before a long load. The listeners are
  // bound but accept nothing until start().
  open_store();
}

void server::open_store() {
  if (!options_.open_store) return;
  auto started = std::chrono::steady_clock::now();
  store_ = options_.open_store(pool_, clock_);
  auto state = store_->load();
  char identity[33];
  std::snprintf(identity, sizeof identity, "%016llx%016llx", static_cast<unsigned long long>(state.identity.hi),
                static_cast<unsigned long long>(state.identity.lo));
  std::size_t sessions = state.sessions.size(), retained = state.retained.size(), queued = 0;
  for (const auto& s : state.sessions) queued += s.queue.size() + s.inflight.size();
  broker_->set_store(store_.get());
  if (cluster_) cluster_->attach_store(store_->controller(), state.identity);
  broker_->restore(std::move(state));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  log::info("store ", identity, ": restored ", sessions, " sessions, ", queued, " queued or in-flight messages, ", retained,
            " retained messages in ", ms, " ms");
}

void server::flush_store(const char* when) {
  if (!store_) return;
  if (!store_->flush(std::chrono::seconds(2))) log::warn("shutdown: the store could not write everything ", when);
  pool_.run_on_all_and_wait([](worker&) {});  // the answers it released
}

server::~server() {
  stop();
  // A constructed but never started server still owns bound acceptors and
  // workers without threads; their destructors clean up.
}

void server::start() {
  if (started_) return;
  started_ = true;
  // First: /healthz answers (and /readyz says 503) while the cluster joins.
  if (metrics_) metrics_->start();
  pool_.start();
  try {
    if (cluster_) cluster_->start();
    // listen() can still fail: another process with SO_REUSEADDR may have
    // bound the port since construction and listened first (or one with
    // SO_REUSEPORT joined it: listener::start checks).
    for (auto& l : listeners_) l->start();
  } catch (...) {
    abandon_start();
    throw;
  }
  ready_.store(true, std::memory_order_release);
  log::info("flockd ", FLOCK_VERSION, " started: ", pool_.worker_count(), " workers, node ",
            options_.broker.node_name);
}

void server::abandon_start() {
  for (auto& l : listeners_) l->stop();  // the workers still run: they close their acceptors
  if (cluster_) cluster_->stop();  // no-op if it did not start; else peers hear we left
  pool_.stop();
  pool_.join();
  if (metrics_) metrics_->stop();
  started_ = false;
}

void server::run() {
  // The signal set exists before any thread starts, so SIGTERM during
  // start-up cannot kill the process without a clean stop.
  asio::io_context signal_io{1};
  asio::signal_set signals(signal_io, SIGINT, SIGTERM);
  signals.async_wait([](const boost::system::error_code& ec, int signal) {
    if (!ec) log::info("received ", signal == SIGINT ? "SIGINT" : "SIGTERM", ", shutting down");
  });
  start();
  signal_io.run();
  stop();
}

void server::on_tick(worker& w) {
  broker_->on_tick(w.id);
  auto now = clock_.now();
  // Safe to walk: a connection leaves the list only in finish(), which no
  // tick and no connection_io call reaches synchronously.
  for (connection_base* c = w.connections; c != nullptr;) {
    connection_base* next = c->next_in_worker();
    c->on_tick(now);
    c = next;
  }
}

std::size_t server::live_connections() const {
  std::size_t n = 0;
  for (std::uint32_t i = 0; i < pool_.worker_count(); ++i)
    n += const_cast<worker_pool&>(pool_).at(i).live_connections.load(std::memory_order_relaxed);
  return n;
}

void server::wait_for_connections_to_close(std::chrono::steady_clock::time_point deadline) const {
  // Shutdown only: a short poll is simpler than a cross-thread notification.
  while (live_connections() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void server::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  ready_.store(false, std::memory_order_release);  // a load balancer stops sending clients here

  // 1. No new connections.
  for (auto& l : listeners_) l->stop();

  // 2. Acks waiting for the disk go out before the connections close.
  flush_store("before closing connections");

  // 3. Close every connection politely: flush, FIN, wait for the peer.
  pool_.run_on_all_and_wait([](worker& w) {
    for (connection_base* c = w.connections; c != nullptr; c = c->next_in_worker()) c->shutdown();
  });
  wait_for_connections_to_close(std::chrono::steady_clock::now() + options_.shutdown_timeout);

  // 4. Whoever is left loses unsent bytes.
  if (live_connections() > 0) {
    log::warn("shutdown: closing ", live_connections(), " connections that did not finish in time");
    pool_.run_on_all_and_wait([](worker& w) {
      while (w.connections != nullptr) w.connections->abort();
    });
  }

  // 5. Let work the core posted between workers (session detach, wills)
  // settle before the loops are allowed to run dry, and write what it changed.
  for (int round = 0; round < 3; ++round) pool_.run_on_all_and_wait([](worker&) {});
  // 6. Hand the sessions left here to the other nodes (clients that came
  // back elsewhere took theirs already), then leave the cluster: peers drop
  // our routes now, not after the failure timeout.
  if (cluster_) {
    cluster_->drain();
    for (int round = 0; round < 2; ++round) pool_.run_on_all_and_wait([](worker&) {});
    if (metrics_) metrics_->stop();  // it reads the cluster's status
    cluster_->stop();
    for (int round = 0; round < 2; ++round) pool_.run_on_all_and_wait([](worker&) {});
  }
  flush_store("at shutdown");

  pool_.stop();
  pool_.join();
  if (metrics_) metrics_->stop();
  log::info("stopped");
}

std::optional<tcp::endpoint> server::metrics_endpoint() const {
  if (!metrics_) return std::nullopt;
  return metrics_->local_endpoint();
}

std::vector<tcp::endpoint> server::local_endpoints() const {
  std::vector<tcp::endpoint> out;
  for (auto& l : listeners_) out.push_back(l->local_endpoint());
  return out;
}

}  // namespace flock::server
