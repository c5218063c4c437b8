#include "broker/server/connection.hpp"

#include <boost/asio/write.hpp>

#include "broker/server/log.hpp"

namespace flock::server {

using boost::system::error_code;

std::shared_ptr<connection> connection::start(worker& w, tcp::socket socket, const handler_factory& make_handler) {
  auto c = std::make_shared<connection>(w, std::move(socket), private_tag{});
  error_code ec;
  // MQTT packets are small and latency matters; we batch ourselves.
  c->socket_.set_option(tcp::no_delay(true), ec);
  c->socket_.non_blocking(true, ec);
  c->peer_ = c->socket_.remote_endpoint(ec);  // may fail if the peer already left: reading will notice
  c->handler_ = make_handler(*c);
  c->link(w, c);
  log::debug("connection from ", c->remote_address(), " on worker ", w.id);
  c->read_available();
  return c;
}

connection::connection(worker& w, tcp::socket socket, private_tag) : worker_(w), socket_(std::move(socket)) {}

connection::~connection() = default;

std::string connection::remote_address() const { return endpoint_text(peer_); }

void connection::on_tick(ports::time_point now) {
  if (!closing_ && !closed_) handler_->on_tick(now);
}

// --- reading -----------------------------------------------------------------

void connection::wait_readable() {
  socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const error_code& ec) {
    if (self->closed_) return;
    if (ec) return self->finish();
    self->read_available();
  });
}

// Reads until the socket is drained (the reactor is edge-triggered: stopping
// earlier would leave data that no readiness event announces again). A read
// that did not fill the buffer drained it: everything queued was taken, and
// bytes that arrive later raise a new edge, which the wait's re-arm also
// catches. So no read just to see EAGAIN: one recvfrom per wake-up, not two.
void connection::read_available() {
  auto& buffer = worker_.read_buffer;
  for (int i = 0; i < max_reads_per_turn; ++i) {
    error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return wait_readable();
    if (ec == asio::error::eof) return on_peer_eof();
    if (ec) return finish();
    // While closing, bytes are read only to be discarded, so that closing
    // with unread input does not turn into a reset that destroys our last
    // packets (e.g. a refusing CONNACK) before the client reads them.
    if (!closing_) handler_->on_bytes({buffer.data(), n});
    if (closed_) return;
    if (!closing_ && pending_bytes() > worker_.pause_reading_above) {
      read_paused_ = true;  // on_written resumes once the output has drained
      return;
    }
    if (n < buffer.size()) return wait_readable();
  }
  asio::post(worker_.io, [self = shared_from_this()] {
    if (!self->closed_) self->read_available();
  });
}

void connection::on_peer_eof() {
  peer_eof_ = true;
  if (!closing_) {
    // Write what the handler still has queued (a half-closed peer may still
    // read), then close.
    close();
  } else if (!write_in_flight_ && out_.empty()) {
    finish();
  }
}

// --- writing -----------------------------------------------------------------

void connection::schedule_flush() {
  if (closed_ || flush_posted_ || write_in_flight_) return;  // on_written picks up what accumulated
  flush_posted_ = true;
  asio::post(worker_.io, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

void connection::flush() {
  if (closed_ || write_in_flight_ || out_.empty()) return;
  // The handler keeps appending to out_ while writing_ is on the wire.
  writing_.swap(out_);
  written_ = 0;
  write_available();
}

// Writes as much as the kernel takes now, and waits for room only when it
// takes no more. (asio::async_write hands the socket at most 64 KiB per turn
// of the event loop: a subscriber on a worker busy with publishers got 64 KiB
// per turn, a few thousand msg/s, while its output buffer filled up.)
void connection::write_available() {
  while (written_ < writing_.size()) {
    error_code ec;
    std::size_t n = socket_.write_some(asio::buffer(writing_.data() + written_, writing_.size() - written_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      write_in_flight_ = true;
      socket_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](const error_code& wait_ec) {
        self->write_in_flight_ = false;
        if (self->closed_) return;
        if (wait_ec) return self->on_written(wait_ec);
        self->write_available();
      });
      return;
    }
    if (ec) return on_written(ec);
    written_ += n;
  }
  on_written({});
}

void connection::on_written(const error_code& ec) {
  write_in_flight_ = false;
  if (closed_) return;
  if (ec) return finish();
  writing_.clear();
  written_ = 0;
  if (!out_.empty()) return flush();
  release_idle_capacity();
  if (closing_) return continue_close();
  handler_->on_drained();
  if (read_paused_ && !closed_ && !closing_) {
    read_paused_ = false;
    read_available();
  }
}

void connection::release_idle_capacity() {
  if (writing_.capacity() > idle_buffer_capacity) std::string().swap(writing_);
  if (out_.empty() && out_.capacity() > idle_buffer_capacity) std::string().swap(out_);
}

// --- closing -----------------------------------------------------------------

void connection::shutdown() {
  if (!closing_ && !closed_) handler_->on_server_shutdown();
  close();
}

void connection::close() {
  if (closing_ || closed_) return;
  closing_ = true;
  close_timer_ = std::make_unique<asio::steady_timer>(worker_.io, close_timeout);
  close_timer_->async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->closed_) return;
    log::debug("connection ", self->remote_address(), ": close deadline passed, dropping ",
               self->pending_bytes(), " unsent bytes");
    self->finish();
  });
  // Posted, never synchronous: callers may be iterating connections.
  asio::post(worker_.io, [self = shared_from_this()] {
    if (self->closed_ || self->write_in_flight_) return;  // on_written continues the close
    if (!self->out_.empty()) return self->flush();
    self->continue_close();
  });
}

// Everything is written: send FIN and wait (bounded by close_timer_) for the
// peer to hang up; the read loop discards whatever it still sends.
void connection::continue_close() {
  if (closed_) return;
  if (peer_eof_) return finish();
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) finish();
}

void connection::finish() {
  if (closed_) return;
  closed_ = true;
  if (close_timer_) close_timer_->cancel();
  error_code ec;
  socket_.close(ec);  // completes pending operations with operation_aborted; they see closed_
  auto keep_alive = unlink(worker_);
  handler_->on_closed();
  log::debug("connection ", remote_address(), " closed");  // after the session let go of it
}

}  // namespace flock::server
