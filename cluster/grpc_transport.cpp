#include "cluster/grpc_transport.hpp"

#include <absl/synchronization/mutex.h>
#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include "broker/server/log.hpp"
#include "cluster/cluster_tls.hpp"
#include "proto/cluster.grpc.pb.h"

namespace flock::cluster {

namespace {

// How long a stopping node waits for its peers to read what it wrote last.
constexpr std::chrono::seconds graceful_close_timeout{1};

// Streams end on our side when the peer is gone; reconnecting must not wait
// for gRPC's default backoff (up to two minutes) once the peer is back.
grpc::ChannelArguments channel_arguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A channel is kept per peer address; when that address is a name (a
  // StatefulSet pod's DNS name), a recreated pod comes back under a new IP.
  // gRPC re-resolves a name at most every 30 s by default, so peers kept
  // dialling the old IP and the pod stayed cut off for up to 30 s (found by
  // tests/deploy/k8s: a rolling upgrade then moved on to the next pod before
  // anyone could take its sessions).
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 1000);
  args.SetMaxReceiveMessageSize(-1);  // a batch holds whole MQTT messages, up to max_packet_size each
  args.SetMaxSendMessageSize(-1);
  return args;
}

class grpc_transport_impl;
class client_stream;

// Counts live streams so shutdown can wait for the last OnDone.
struct stream_registry {
  std::mutex mutex;
  std::condition_variable idle;  // live or clients went down
  std::set<client_stream*> clients;  // to close at shutdown (erased in OnDone, before the delete)
  int live = 0;
  bool stopping = false;
  void add() {
    std::lock_guard lock(mutex);
    ++live;
  }
  void remove() {
    std::lock_guard lock(mutex);
    --live;
    idle.notify_all();
  }
};

// What the cluster holds of a stream: stays valid after the stream is gone
// (the reactor detaches it in OnDone, before deleting itself).
template <class Stream, class Link>
class stream_handle : public Link {
 public:
  void attach(Stream* s) { stream_ = s; }
  void detach() {
    std::lock_guard lock(mutex_);
    stream_ = nullptr;
  }

 protected:
  template <class F>
  void with_stream(F&& fn) {
    std::lock_guard lock(mutex_);
    if (stream_) fn(*stream_);
  }

 private:
  std::recursive_mutex mutex_;  // gRPC may run a reaction inline; the cluster may write from it
  Stream* stream_ = nullptr;
};

// gRPC allows one write in flight per stream: batches written meanwhile
// wait here, merged into one. Guarded by its stream's mutex.
struct write_queue {
  wire::Batch out;  // in flight; gRPC reads it until OnWriteDone
  wire::Batch pending;
  bool writing = false;

  void add(wire::Batch& batch) {
    for (auto& f : *batch.mutable_frames()) *pending.add_frames() = std::move(f);
  }
  // The batch to start writing now, or null (one is in flight, or none waits).
  wire::Batch* next() {
    if (writing || pending.frames_size() == 0) return nullptr;
    writing = true;
    out = std::move(pending);
    pending.Clear();
    return &out;
  }
  void written() { writing = false; }
};

// --- client side ---

class client_stream;

class client_handle final : public stream_handle<client_stream, outbound_link> {
 public:
  void write(wire::Batch batch) override;
  void close() override;
};

class client_stream final : public grpc::ClientBidiReactor<wire::Batch, wire::Batch> {
 public:
  client_stream(stream_registry& reg, wire::Cluster::Stub& stub, std::shared_ptr<outbound_events> events,
                std::shared_ptr<client_handle> handle)
      : registry_(reg), events_(std::move(events)), handle_(std::move(handle)) {
    registry_.add();
    {
      std::lock_guard lock(registry_.mutex);
      registry_.clients.insert(this);
      if (registry_.stopping) ctx_.TryCancel();
    }
    handle_->attach(this);
    stub.async()->Link(&ctx_, this);
    // Writes are started from other threads (workers, the node's thread),
    // not only from reactions: the hold keeps the call alive until we know
    // no write can start any more (gRPC destroys the call before OnDone).
    AddHold();
    StartRead(&in_);
    StartCall();
  }

  void write(wire::Batch batch) {
    std::lock_guard lock(mutex_);
    if (ended_ || closing_) return;
    writes_.add(batch);
    if (auto* b = writes_.next()) StartWrite(b);
  }
  void cancel() { ctx_.TryCancel(); }
  // Shutdown: what is written or waiting goes out, then our side ends; the
  // peer ends its side once it has read everything (a cancel could drop
  // frames still in gRPC's buffers: a session's last deliveries, say).
  // Under the registry's lock.
  void close_gracefully() {
    std::lock_guard lock(mutex_);
    if (ended_ || closing_) return;
    closing_ = true;
    if (!writes_.writing) write_next_or_end();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The stream is over (the peer closed it, it broke, or we cancelled):
      // no write starts from now on, and the call may finish.
      {
        std::lock_guard lock(mutex_);
        ended_ = true;
      }
      RemoveHold();
      return;
    }
    events_->on_response(std::move(in_));
    in_.Clear();
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mutex_);
      writes_.written();
      if (!ok) return;  // the read fails too, and OnDone follows
      if (!ended_) write_next_or_end();
    }
    events_->on_written();
  }
  void OnDone(const grpc::Status&) override {
    handle_->detach();
    {
      std::lock_guard lock(registry_.mutex);
      registry_.clients.erase(this);
    }
    events_->on_closed();
    auto& reg = registry_;
    delete this;
    reg.remove();
  }

 private:
  stream_registry& registry_;
  grpc::ClientContext ctx_;
  std::shared_ptr<outbound_events> events_;
  std::shared_ptr<client_handle> handle_;
  // Under mutex_, no write in flight.
  void write_next_or_end() {
    if (auto* b = writes_.next()) return StartWrite(b);
    if (closing_ && !writes_done_) {
      writes_done_ = true;
      StartWritesDone();
    }
  }

  std::mutex mutex_;
  wire::Batch in_;
  write_queue writes_;
  bool ended_ = false;
  bool closing_ = false;      // shutting down: no new writes
  bool writes_done_ = false;  // our side ended
};

void client_handle::write(wire::Batch batch) {
  with_stream([&](client_stream& s) { s.write(std::move(batch)); });
}

void client_handle::close() {
  with_stream([](client_stream& s) { s.cancel(); });
}

// --- server side ---

class server_stream;

class server_handle final : public stream_handle<server_stream, inbound_link> {
 public:
  void respond(wire::Batch batch) override;
  void close() override;
};

class server_stream final : public grpc::ServerBidiReactor<wire::Batch, wire::Batch> {
 public:
  server_stream(stream_registry& reg, const transport::acceptor& accept) : registry_(reg) {
    registry_.add();
    handle_ = std::make_shared<server_handle>();
    handle_->attach(this);
    events_ = accept(handle_);
    StartRead(&in_);
  }

  // Under the handle's lock.
  void respond(wire::Batch batch) {
    std::lock_guard lock(mutex_);
    if (finished_ || closing_) return;
    writes_.add(batch);
    if (auto* b = writes_.next()) StartWrite(b);
  }
  void close() {
    std::lock_guard lock(mutex_);
    closing_ = true;
    if (!writes_.writing) finish();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the peer ended its side, or the stream broke
      close();
      return;
    }
    events_->on_batch(std::move(in_));
    in_.Clear();
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    writes_.written();
    if (!ok || closing_) return finish();
    if (auto* b = writes_.next()) StartWrite(b);
  }
  void OnCancel() override { close(); }
  void OnDone() override {
    handle_->detach();
    events_->on_closed();
    auto& reg = registry_;
    delete this;
    reg.remove();
  }

 private:
  void finish() {
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  stream_registry& registry_;
  std::shared_ptr<server_handle> handle_;
  std::shared_ptr<inbound_events> events_;
  std::mutex mutex_;
  wire::Batch in_;
  write_queue writes_;
  bool closing_ = false;
  bool finished_ = false;
};

void server_handle::respond(wire::Batch batch) {
  with_stream([&](server_stream& s) { s.respond(std::move(batch)); });
}

void server_handle::close() {
  with_stream([](server_stream& s) { s.close(); });
}

class service final : public wire::Cluster::CallbackService {
 public:
  service(stream_registry& reg, transport::acceptor accept) : registry_(reg), accept_(std::move(accept)) {}
  grpc::ServerBidiReactor<wire::Batch, wire::Batch>* Link(grpc::CallbackServerContext*) override {
    return new server_stream(registry_, accept_);
  }

 private:
  stream_registry& registry_;
  transport::acceptor accept_;
};

class grpc_transport_impl final : public transport {
 public:
  explicit grpc_transport_impl(std::shared_ptr<cluster_tls> tls)
      : server_credentials_(tls ? tls->server_credentials() : grpc::InsecureServerCredentials()),
        channel_credentials_(tls ? tls->channel_credentials() : grpc::InsecureChannelCredentials()),
        tls_(std::move(tls)) {}
  ~grpc_transport_impl() override { shutdown(); }

  void serve(const std::string& address, acceptor accept) override {
    service_ = std::make_unique<service>(registry_, std::move(accept));
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, server_credentials_, &port_);
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(-1);
    builder.SetMaxSendMessageSize(-1);
    // gRPC binds with SO_REUSEPORT by default: a second node on the same
    // port would start and share the traffic. A port in use must fail.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) throw std::runtime_error("cannot listen for the cluster on " + address);
  }

  int bound_port() const override { return port_; }

  std::shared_ptr<outbound_link> dial(const std::string& address, std::shared_ptr<outbound_events> events) override {
    auto handle = std::make_shared<client_handle>();
    wire::Cluster::Stub* stub;
    {
      std::lock_guard lock(channels_mutex_);
      auto& entry = stubs_[address];
      if (!entry) {
        auto channel = grpc::CreateCustomChannel(address, channel_credentials_, channel_arguments());
        entry = wire::Cluster::NewStub(channel);
      }
      stub = entry.get();
    }
    new client_stream(registry_, *stub, std::move(events), handle);  // deletes itself in OnDone
    return handle;
  }

  void shutdown() override {
    {
      std::unique_lock lock(registry_.mutex);
      if (registry_.stopping) return;
      registry_.stopping = true;
      // Our streams to the peers end politely, so the frames written last
      // arrive; a peer that does not answer in time is cut off.
      for (auto* c : registry_.clients) c->close_gracefully();
      registry_.idle.wait_for(lock, graceful_close_timeout, [&] { return registry_.clients.empty(); });
      for (auto* c : registry_.clients) c->cancel();
    }
    if (server_) server_->Shutdown(std::chrono::system_clock::now());  // cancels the streams still open
    std::unique_lock lock(registry_.mutex);
    registry_.idle.wait(lock, [&] { return registry_.live == 0; });
  }

 private:
  std::shared_ptr<grpc::ServerCredentials> server_credentials_;
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials_;
  std::shared_ptr<cluster_tls> tls_;
  stream_registry registry_;
  std::unique_ptr<service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex channels_mutex_;
  std::map<std::string, std::unique_ptr<wire::Cluster::Stub>> stubs_;
};

}  // namespace

std::unique_ptr<transport> make_grpc_transport(std::shared_ptr<cluster_tls> tls) {
  // Debian builds Abseil with mutex deadlock detection on: gRPC's internal
  // mutexes then keep a lock graph, a measurable share of the CPU a
  // forwarded publish costs. Our lock order is documented and tested.
  static const bool quiet = [] {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    // gRPC's own lines go through our logger, at debug: what matters to an
    // operator (a refused peer, a stream lost) the node logs itself, once
    // per interval, while gRPC would print e.g. a host name mismatch that
    // cluster_tls deliberately ignores on every connection.
    gpr_set_log_function([](gpr_log_func_args* a) { server::log::debug("grpc: ", a->message); });
    return true;
  }();
  (void)quiet;
  return std::make_unique<grpc_transport_impl>(std::move(tls));
}

}  // namespace flock::cluster

#include "cluster/grpc_node.hpp"
#include "cluster/node.hpp"

namespace flock::cluster {

std::unique_ptr<ports::cluster> make_grpc_node(const options& opts, ports::cluster_host& host) {
  auto refusals = std::make_shared<peer_refusals>();
  std::shared_ptr<cluster_tls> tls;
  if (opts.tls) tls = std::make_shared<cluster_tls>(opts, refusals);
  auto t = make_grpc_transport(tls);
  return std::make_unique<node>(opts, host, std::move(t), std::move(refusals), std::move(tls));
}

}  // namespace flock::cluster
