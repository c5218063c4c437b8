#pragma once
// What a connection_machine needs from its transport. Implemented by the
// server (one per accepted socket) and by fakes in unit tests. Every call is
// made on the connection's worker thread.
#include <cstddef>
#include <optional>
#include <string>

namespace flock::core {

class connection_io {
 public:
  virtual ~connection_io() = default;
  // Encoded packets are appended here; the transport writes what accumulated
  // once per loop turn (one writev for many packets).
  virtual std::string& out_buffer() = 0;
  // Asks the transport to write out_buffer() at the end of this loop turn.
  virtual void schedule_flush() = 0;
  // Bytes appended but not yet written to the socket (for slow-reader limits).
  virtual std::size_t pending_bytes() const = 0;
  // Writes what is buffered (best effort, bounded in time), then closes.
  // After close() the machine receives no more on_bytes.
  virtual void close() = 0;
  // "ip:port" of the peer, for logs.
  virtual std::string remote_address() const = 0;
  // The client certificate's common name when the listener says it is the
  // user name (TLS listener with use_identity_as_username); empty otherwise.
  // Such a listener accepts only clients that presented a CA-signed
  // certificate with a CN, so a value here is already authenticated.
  virtual std::optional<std::string> tls_identity() const { return std::nullopt; }
};

}  // namespace flock::core
