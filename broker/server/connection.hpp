#pragma once
// One accepted TCP connection: owns the socket, the outbound buffers and the
// handler (the protocol machine) that the bytes go to. Implements
// core::connection_io for that handler.
//
// Thread: created on its worker and touched only by that worker's thread for
// life. Lifetime: kept alive by its own pending operations and by the
// worker's connection list (self_) until the socket is gone (finish()).
//
// Memory: an idle connection holds no read buffer (reads go into the worker's
// shared buffer once the socket is readable) and gives back outbound buffer
// capacity once everything is written.
#include "broker/server/asio.hpp"

#include <chrono>
#include <memory>
#include <string>

#include "broker/server/connection_base.hpp"
#include "broker/server/connection_handler.hpp"
#include "broker/server/worker_pool.hpp"

namespace flock::server {

class connection final : public connection_base, public std::enable_shared_from_this<connection> {
  struct private_tag {};

 public:
  // How long close() may spend writing what is buffered and waiting for the
  // peer to hang up before the socket is closed anyway.
  static constexpr std::chrono::milliseconds close_timeout{2000};
  // Outbound capacity above this is released once everything is written.
  static constexpr std::size_t idle_buffer_capacity = 512;
  // Reads of the worker buffer per readiness event before yielding to the
  // other connections of the worker (fairness against a flooding client).
  static constexpr int max_reads_per_turn = 16;

  // Starts reading. Must run on w's thread; `socket` must belong to w.io.
  static std::shared_ptr<connection> start(worker& w, tcp::socket socket, const handler_factory& make_handler);

  connection(worker& w, tcp::socket socket, private_tag);
  ~connection() override;

  // connection_base
  void on_tick(ports::time_point now) override;
  void abort() override { finish(); }
  bool closing() const { return closing_ || closed_; }

  // core::connection_io. close() never finishes synchronously, so a caller
  // iterating the worker's connections may call it on any of them.
  std::string& out_buffer() override { return out_; }
  void schedule_flush() override;
  std::size_t pending_bytes() const override { return out_.size() + writing_.size() - written_; }
  void close() override;
  // Server stop: lets the handler say goodbye (MQTT 5 DISCONNECT 0x8B), then close().
  void shutdown() override;
  std::string remote_address() const override;

 private:
  void wait_readable();
  void read_available();
  void on_peer_eof();
  void flush();
  void write_available();
  void on_written(const boost::system::error_code& ec);
  void continue_close();
  void finish();
  void release_idle_capacity();

  worker& worker_;
  tcp::socket socket_;
  tcp::endpoint peer_;
  std::unique_ptr<connection_handler> handler_;
  std::string out_;      // the handler appends here
  std::string writing_;  // being written; untouched until all of it is
  std::size_t written_ = 0;  // of writing_
  std::unique_ptr<asio::steady_timer> close_timer_;  // only while closing
  bool flush_posted_ = false;
  bool write_in_flight_ = false;
  bool closing_ = false;   // close requested: no more bytes go to the handler
  bool peer_eof_ = false;  // the peer will send nothing more
  bool closed_ = false;    // socket closed and handler told: nothing more happens
  bool read_paused_ = false;  // output over worker_.pause_reading_above: resume when drained
};

}  // namespace flock::server
