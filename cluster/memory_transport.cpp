#include "cluster/memory_transport.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace flock::cluster {

// The network: a registry of listeners and one thread that runs every
// delivery, so events of one stream stay in order.
struct memory_network::impl : std::enable_shared_from_this<impl> {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> tasks;
  std::map<std::string, transport::acceptor> listeners;
  std::set<std::pair<std::string, std::string>> cuts;
  // Every stream, to end those of a node that shuts down (either end).
  std::vector<std::function<bool(const std::string&)>> enders;
  bool stopping = false;
  std::thread thread;

  void run() {
    std::unique_lock lock(mutex);
    while (true) {
      wake.wait(lock, [&] { return stopping || !tasks.empty(); });
      if (tasks.empty()) return;
      auto task = std::move(tasks.front());
      tasks.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  void post(std::function<void()> fn) {
    std::lock_guard lock(mutex);
    tasks.push_back(std::move(fn));
    wake.notify_one();
  }
  bool is_cut(const std::string& a, const std::string& b) {
    std::lock_guard lock(mutex);
    return cuts.count({a, b}) > 0;
  }
};

namespace {

// Both ends of one stream. Ended once, by either side.
struct stream_state : std::enable_shared_from_this<stream_state> {
  std::shared_ptr<memory_network::impl> net;
  std::string client_address, server_address;
  std::shared_ptr<outbound_events> client;
  std::shared_ptr<inbound_events> server;
  std::mutex mutex;
  bool ended = false;
  bool accepted = false;

  bool cut() { return net->is_cut(client_address, server_address); }
  void end() {
    {
      std::lock_guard lock(mutex);
      if (ended) return;
      ended = true;
    }
    // The events objects hold the links, which hold this state: drop them
    // once they heard the end, or the three keep each other alive.
    net->post([st = shared_from_this()] {
      if (st->server) st->server->on_closed();
      st->client->on_closed();
      std::lock_guard lock(st->mutex);
      st->client.reset();
      st->server.reset();
    });
  }
  bool live() {
    std::lock_guard lock(mutex);
    return !ended;
  }
};

class memory_outbound final : public outbound_link {
 public:
  explicit memory_outbound(std::shared_ptr<stream_state> s) : s_(std::move(s)) {}
  void write(wire::Batch batch) override {
    auto s = s_;
    s->net->post([s, batch = std::move(batch)]() mutable {
      if (!s->live()) return;
      if (!s->cut() && s->server) s->server->on_batch(std::move(batch));
      if (s->live()) s->client->on_written();
    });
  }
  void close() override { s_->end(); }

 private:
  std::shared_ptr<stream_state> s_;
};

class memory_inbound final : public inbound_link {
 public:
  explicit memory_inbound(std::weak_ptr<stream_state> s) : s_(std::move(s)) {}
  void respond(wire::Batch batch) override {
    auto s = s_.lock();
    if (!s) return;
    s->net->post([s, batch = std::move(batch)]() mutable {
      if (s->live() && !s->cut()) s->client->on_response(std::move(batch));
    });
  }
  void close() override {
    if (auto s = s_.lock()) s->end();
  }

 private:
  std::weak_ptr<stream_state> s_;
};

class memory_transport final : public transport {
 public:
  memory_transport(std::shared_ptr<memory_network::impl> net, std::string address)
      : net_(std::move(net)), address_(std::move(address)) {}
  ~memory_transport() override { shutdown(); }

  void serve(const std::string&, acceptor accept) override {
    std::lock_guard lock(net_->mutex);
    net_->listeners[address_] = std::move(accept);
  }
  int bound_port() const override { return 0; }

  std::shared_ptr<outbound_link> dial(const std::string& address, std::shared_ptr<outbound_events> events) override {
    auto s = std::make_shared<stream_state>();
    s->net = net_;
    s->client_address = address_;
    s->server_address = address;
    s->client = std::move(events);
    {
      std::lock_guard lock(net_->mutex);
      std::weak_ptr<stream_state> weak = s;
      // Drop enders of streams that are gone, then add this one.
      std::erase_if(net_->enders, [](auto& e) { return e(std::string()); });
      net_->enders.push_back([weak](const std::string& address) {
        auto st = weak.lock();
        if (!st || !st->live()) return true;
        if (address.empty()) return false;
        if (st->client_address != address && st->server_address != address) return false;
        st->end();
        return true;
      });
    }
    net_->post([s] {
      transport::acceptor accept;
      {
        std::lock_guard lock(s->net->mutex);
        auto it = s->net->listeners.find(s->server_address);
        if (it != s->net->listeners.end() && !s->net->cuts.count({s->client_address, s->server_address}))
          accept = it->second;
      }
      // Nobody listening there: like a refused connection. Across a cut: a
      // stream that never carries anything (the dialer's timeout ends it).
      if (!accept) {
        if (!s->cut()) s->end();
        return;
      }
      if (!s->live()) return;
      auto server = accept(std::make_shared<memory_inbound>(s));
      std::lock_guard lock(s->mutex);
      if (!s->ended) s->server = std::move(server);
    });
    return std::make_shared<memory_outbound>(s);
  }

  void shutdown() override {
    {
      std::lock_guard lock(net_->mutex);
      auto it = net_->listeners.find(address_);
      if (it != net_->listeners.end()) net_->listeners.erase(it);
    }
    std::vector<std::function<bool(const std::string&)>> enders;
    {
      std::lock_guard lock(net_->mutex);
      enders = net_->enders;
    }
    for (auto& e : enders) e(address_);
    // Let the network deliver every on_closed before the node goes away.
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    net_->post([&] {
      std::lock_guard lock(m);
      done = true;
      cv.notify_all();
    });
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done; });
  }

 private:
  std::shared_ptr<memory_network::impl> net_;
  std::string address_;
};

}  // namespace

memory_network::memory_network() : impl_(std::make_shared<impl>()) {
  impl_->thread = std::thread([n = impl_.get()] { n->run(); });
}

memory_network::~memory_network() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
    impl_->wake.notify_all();
  }
  impl_->thread.join();
}

std::unique_ptr<transport> memory_network::make_transport(const std::string& address) {
  return std::make_unique<memory_transport>(impl_, address);
}

void memory_network::cut(const std::string& a, const std::string& b) {
  std::lock_guard lock(impl_->mutex);
  impl_->cuts.insert({a, b});
  impl_->cuts.insert({b, a});
}

void memory_network::heal(const std::string& a, const std::string& b) {
  std::lock_guard lock(impl_->mutex);
  impl_->cuts.erase({a, b});
  impl_->cuts.erase({b, a});
}

}  // namespace flock::cluster
