#pragma once
// One message on its way to one session, and the session's view of the
// connection it is attached to.
#include <cstdint>
#include <vector>

#include "broker/core/message.hpp"

namespace flock::core {

// What a session holds per queued or in-flight message: the shared message
// plus the per-subscriber parts of the PUBLISH.
struct delivery {
  message_ptr msg;
  std::uint8_t qos = 0;        // min(message QoS, highest granted QoS)
  bool retain = false;         // retain flag as sent to this subscriber
  std::vector<std::uint32_t> subscription_ids;
  // Written to the store for this session (a queued record and one
  // reference on msg): whoever drops the delivery deletes the record.
  bool stored = false;
  // Routed as it was published, so it counts towards the delivery latency
  // (not a retained message sent on subscribe, nor one restored or moved).
  bool live = false;
};

enum class outgoing_state : std::uint8_t { awaiting_puback, awaiting_pubrec, awaiting_pubcomp };

struct inflight_message {
  std::uint16_t packet_id = 0;
  outgoing_state state = outgoing_state::awaiting_puback;
  delivery d;  // d.msg is released once the receiver has it (awaiting_pubcomp)
  std::uint64_t message_id = 0;  // key of the stored in-flight record; 0: not stored
};

// Implemented by the protocol machine the session is attached to. Called only
// on the session's owning worker.
class session_sink {
 public:
  virtual ~session_sink() = default;
  // Room for another QoS 1/2 message: the client's Receive Maximum and ours.
  virtual std::uint16_t send_window() const = 0;
  // False while the transport has too many unsent bytes (slow reader).
  virtual bool writable() const = 0;
  // too_large and not_authorized: not sent, and never will be; the session
  // drops the message as if it had been delivered.
  enum class send_result : std::uint8_t { sent, too_large, not_authorized };
  // Encodes and writes a PUBLISH (dup set on session resume).
  virtual send_result send_publish(const delivery& d, std::uint16_t packet_id, bool dup) = 0;
  virtual void send_pubrel(std::uint16_t packet_id) = 0;
  // What is sent from now on waits until store ticket t is durable (a QoS 2
  // PUBLISH must not reach the client before its in-flight record is on
  // disk, nor a PUBREL before its state change). 0: nothing to wait for.
  virtual void hold_output_until(std::uint64_t ticket) = 0;
  // Another connection took the session over: say so (v5 DISCONNECT 0x8E) and
  // close. The sink detaches itself before this returns.
  virtual void take_over() = 0;
};

class session;

// A connection waiting for its session after CONNECT. Called on the
// connection's worker once the session is resumed there or created.
class session_requester {
 public:
  virtual ~session_requester() = default;
  virtual void on_session_ready(std::shared_ptr<session> s, bool session_present) = 0;
  // A newer connection with the same client id won while this one waited
  // (for instance for the cluster): it gets no session and closes.
  virtual void on_session_refused() = 0;
};

}  // namespace flock::core
