#pragma once
// Decides which topics a client may publish to and read from. Implemented by
// the ACL file (broker/auth); absent when the broker has no ACL configured
// (then every client may use every topic).
// Called on the client's worker, for every PUBLISH, every SUBSCRIBE filter
// and every message delivered: must be thread-safe, quick and not block.
#include <optional>
#include <string_view>

namespace flock::ports {

class authorizer {
 public:
  virtual ~authorizer() = default;
  // Write access: may this client publish to `topic` (a topic name)?
  virtual bool can_publish(std::string_view client_id, std::optional<std::string_view> username,
                           std::string_view topic) const = 0;
  // Read access to `filter`: a subscription filter, or a topic name when a
  // message is about to be delivered (the per-message read check).
  virtual bool can_subscribe(std::string_view client_id, std::optional<std::string_view> username,
                             std::string_view filter) const = 0;
};

}  // namespace flock::ports
