#pragma once
// Topic access rules in Mosquitto's acl_file format, so existing files work
// unchanged:
//   # comment
//   topic [read|write|readwrite|deny] <filter>     no access word: readwrite
//   user <name>                                    later `topic` lines are this user's
//   pattern [read|write|readwrite|deny] <filter>   every client; %c = client id, %u = user name
// `topic` lines before the first `user` line apply to clients without a user
// name. A client gets access when one of its rules grants it and no `deny`
// rule of its own or of the patterns applies ("deny wins"); anything not
// granted is refused.
// Loaded once at start-up; read-only afterwards (safe from every worker).
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/ports/authorizer.hpp"

namespace flock::auth {

class acl_file final : public ports::authorizer {
 public:
  // Throws std::runtime_error("<path>:<line>: <why>") on an unreadable file or
  // a malformed line.
  static acl_file load(const std::string& path);
  // Parses the file's text (for tests).
  static acl_file parse(std::string_view text, const std::string& origin);

  // Write access to a topic name: some write rule matches it, no deny rule does.
  bool can_publish(std::string_view client_id, std::optional<std::string_view> username,
                   std::string_view topic) const override;
  // Read access: some read rule's filter covers every topic `filter` matches
  // (rule `a/#` covers `a/b/+`), and no deny rule covers all of them (a deny
  // on part of the filter is enforced per delivery). Shared subscriptions are
  // checked by their inner filter.
  bool can_subscribe(std::string_view client_id, std::optional<std::string_view> username,
                     std::string_view filter) const override;

  std::size_t rule_count() const;

  // One level of a rule's filter. %c / %u must be a whole level (as Mosquitto documents).
  struct level {
    enum class kind : std::uint8_t { literal, plus, hash, client_id, username };
    kind k = kind::literal;
    std::string text;  // literal only
  };
  enum access : std::uint8_t { deny = 0, read = 1, write = 2, readwrite = 3 };
  struct rule {
    access acc = readwrite;
    std::vector<level> levels;
  };

 private:
  bool allowed(std::string_view client_id, std::optional<std::string_view> username, std::string_view subject,
               access wanted) const;

  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<rule> anonymous_;
  std::unordered_map<std::string, std::vector<rule>, string_hash, std::equal_to<>> users_;
  std::vector<rule> patterns_;
};

}  // namespace flock::auth
