#pragma once
// The broker core: session directory, subscription and retained indexes,
// routing of publishes to sessions across workers, wills, $SYS. Knows nothing
// of Asio, gRPC or RocksDB: it reaches threads through ports::executor.
// One instance per process, shared by every worker; lives until shutdown.
#include <chrono>
#include <memory>
#include <optional>

#include "broker/core/broker_config.hpp"
#include "broker/core/broker_metrics.hpp"
#include "broker/ports/authenticator.hpp"
#include "broker/ports/authorizer.hpp"
#include "broker/ports/clock.hpp"
#include "broker/ports/executor.hpp"
#include "broker/ports/store.hpp"

namespace flock::core {

class cluster_side;
class front_door;

class broker {
 public:
  broker(broker_config config, ports::executor& executor, ports::clock& clock);
  ~broker();

  // Once a second on every worker: will delays, session expiry, $SYS (worker 0).
  void on_tick(ports::worker_id worker);

  const broker_config& config() const;

  // Everything the broker counts, read now; callable from any thread.
  broker_metrics metrics();
  // Sessions by how many messages they have queued. Asks every worker (the
  // owners of the sessions) and waits at most `timeout`; not from a worker.
  std::optional<queue_reading> queue_depths(std::chrono::milliseconds timeout);

  // Users from a password file; without one, only anonymous rules apply.
  // Set before any connection arrives; must outlive the broker.
  void set_authenticator(const ports::authenticator* auth);
  // Topic access rules (an ACL file); without one, every client may publish
  // and subscribe to every topic. Set before any connection arrives; must
  // outlive the broker.
  void set_authorizer(const ports::authorizer* authz);

  // Durable state (null: durability "memory"). Set before any connection
  // arrives; must outlive the broker. Then restore() what the store loaded.
  void set_store(ports::store* store);
  void restore(ports::restored_state state);

  // Makes this broker one node of a cluster (broker/clustering: member);
  // without, it has no peers. Before any connection arrives and before
  // restore().
  void set_cluster_side(std::unique_ptr<cluster_side> side);

  // What a connection may ask (broker/protocol's door into the core).
  front_door& front() { return *front_; }

  // The core's insides, for its cluster half (broker/clustering) only.
  struct impl;
  impl& internals() { return *impl_; }

 private:
  std::unique_ptr<impl> impl_;
  std::unique_ptr<front_door> front_;
};

}  // namespace flock::core
