#pragma once
// An application message as it travels through the broker: decoded once,
// shared (immutable, reference counted) by every session it is delivered to.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "broker/codec/packet.hpp"
#include "broker/ports/clock.hpp"

namespace flock::core {

struct message {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  // Properties forwarded unchanged (payload format, content type, response
  // topic, correlation data, user properties). Never carries topic alias,
  // subscription identifiers or message expiry: those are per delivery.
  codec::properties props;
  // Message Expiry Interval turned into a deadline; nullopt: never expires.
  std::optional<ports::time_point> expires_at;
  std::string publisher;  // client id, for No Local
};

using message_ptr = std::shared_ptr<const message>;

}  // namespace flock::core
