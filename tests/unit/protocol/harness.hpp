#pragma once
// Test doubles for driving connection machines without sockets or threads:
// a manual executor (N fake workers, tasks run when the test says so), a
// manual clock, and a fake transport that decodes what the machine sends.
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "broker/codec/codec.hpp"
#include "broker/core/broker.hpp"
#include "broker/protocol/connection_machine.hpp"

namespace flock::testing {

class manual_executor final : public ports::executor {
 public:
  explicit manual_executor(std::uint32_t workers) : queues_(workers) {}
  std::uint32_t worker_count() const override { return static_cast<std::uint32_t>(queues_.size()); }
  void post(ports::worker_id w, std::function<void()> task) override { queues_.at(w).push_back(std::move(task)); }
  ports::worker_id current_worker() const override { return current_; }
  void set_current(ports::worker_id w) { current_ = w; }
  // Runs queued tasks on every worker until none are left.
  void run_all() {
    for (bool ran = true; ran;) {
      ran = false;
      for (ports::worker_id w = 0; w < queues_.size(); ++w) {
        while (!queues_[w].empty()) {
          auto task = std::move(queues_[w].front());
          queues_[w].pop_front();
          auto saved = current_;
          current_ = w;
          task();
          current_ = saved;
          ran = true;
        }
      }
    }
  }

 private:
  std::vector<std::deque<std::function<void()>>> queues_;
  ports::worker_id current_ = 0;
};

class manual_clock final : public ports::clock {
 public:
  ports::time_point now() const override { return now_; }
  void advance(ports::duration d) { now_ += d; }

 private:
  ports::time_point now_ = ports::time_point{} + std::chrono::hours(1);
};

// A connection as the machine sees it: everything sent lands in `out`.
class fake_io final : public core::connection_io {
 public:
  std::string& out_buffer() override { return out_; }
  void schedule_flush() override {}
  std::size_t pending_bytes() const override { return pending_; }
  void close() override { closed_ = true; }
  std::string remote_address() const override { return "127.0.0.1:1"; }

  bool closed() const { return closed_; }
  void set_pending(std::size_t n) { pending_ = n; }
  // Decodes and removes every complete packet sent so far.
  std::vector<codec::packet> take(codec::protocol_version v) {
    std::vector<codec::packet> packets;
    std::size_t used = 0;
    while (used < out_.size()) {
      auto rest = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(out_.data()) + used, out_.size() - used);
      auto f = codec::peek_frame(rest, 1 << 28);
      if (f.state != codec::frame::status::complete) break;
      auto d = codec::decode(rest.first(f.size), v);
      if (auto* p = std::get_if<codec::packet>(&d)) packets.push_back(std::move(*p));
      used += f.size;
    }
    out_.erase(0, used);
    return packets;
  }

 private:
  std::string out_;
  std::size_t pending_ = 0;
  bool closed_ = false;
};

// One client: a fake transport plus the machine, pinned to a worker.
struct client {
  client(core::broker& b, manual_executor& ex, ports::worker_id worker, codec::protocol_version v,
         core::listener_settings listener = {})
      : ex_(ex), worker_(worker), version(v) {
    ex_.set_current(worker_);
    machine = std::make_unique<protocol::connection_machine>(b, io, listener);
  }
  void send(const codec::packet& p) {
    std::string bytes;
    codec::encode(p, version, bytes);
    send_raw(bytes);
  }
  void send_raw(const std::string& bytes) {
    ex_.set_current(worker_);
    machine->on_bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    ex_.run_all();
  }
  void tick(ports::time_point now) {
    ex_.set_current(worker_);
    machine->on_tick(now);
    ex_.run_all();
  }
  void drop() {  // the socket went away without DISCONNECT
    ex_.set_current(worker_);
    machine->on_closed();
    ex_.run_all();
  }
  // Everything received and not yet taken.
  std::vector<codec::packet> received() {
    pull();
    return std::exchange(inbox, {});
  }
  // Takes the packets of type T, leaving the others for later checks.
  template <class T>
  std::vector<T> received_of() {
    pull();
    std::vector<T> out;
    std::vector<codec::packet> rest;
    for (auto& p : inbox) {
      if (auto* t = std::get_if<T>(&p)) out.push_back(std::move(*t));
      else rest.push_back(std::move(p));
    }
    inbox = std::move(rest);
    return out;
  }
  void pull() {
    ex_.run_all();
    for (auto& p : io.take(version)) inbox.push_back(std::move(p));
  }

  manual_executor& ex_;
  ports::worker_id worker_;
  codec::protocol_version version;
  fake_io io;
  std::vector<codec::packet> inbox;
  std::unique_ptr<protocol::connection_machine> machine;
};

inline codec::connect connect_packet(std::string id, codec::protocol_version v, bool clean = true,
                                     std::uint16_t keep_alive = 60) {
  codec::connect c;
  c.version = v;
  c.client_id = std::move(id);
  c.clean_start = clean;
  c.keep_alive = keep_alive;
  return c;
}

}  // namespace flock::testing
