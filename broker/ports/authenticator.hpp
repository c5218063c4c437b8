#pragma once
// Checks a CONNECT's user name and password. Implemented by the password
// file (broker/auth); absent when the broker has no users configured.
// Called on the connecting client's worker; must be thread-safe and quick.
#include <optional>
#include <string_view>

namespace flock::ports {

class authenticator {
 public:
  virtual ~authenticator() = default;
  // True when `username` exists and `password` is its password.
  virtual bool check(std::string_view username, std::optional<std::string_view> password) const = 0;
};

}  // namespace flock::ports
