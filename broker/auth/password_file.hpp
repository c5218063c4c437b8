#pragma once
// Users and salted password hashes, in Mosquitto's password file format, so
// files made with `mosquitto_passwd` work unchanged:
//   user:$7$<iterations>$<salt base64>$<PBKDF2-HMAC-SHA512 base64>
//   user:$6$<salt base64>$<SHA512(password || salt) base64>
// Loaded once at start-up; read-only afterwards (safe from every worker).
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/ports/authenticator.hpp"

namespace flock::auth {

class password_file final : public ports::authenticator {
 public:
  // Throws std::runtime_error("<path>:<line>: <why>") on an unreadable file or
  // a malformed line.
  static password_file load(const std::string& path);
  // Parses the file's text (for tests).
  static password_file parse(std::string_view text, const std::string& origin);

  bool check(std::string_view username, std::optional<std::string_view> password) const override;
  std::size_t size() const { return users_.size(); }

  // A new "$7$" entry for `password` (used by `flockctl passwd`).
  static std::string hash_password(std::string_view password, int iterations = 101);

 private:
  struct entry {
    int kind = 7;  // 6: salted SHA512, 7: PBKDF2-SHA512
    int iterations = 0;
    std::string salt;
    std::string hash;
  };
  std::unordered_map<std::string, entry> users_;
};

}  // namespace flock::auth
