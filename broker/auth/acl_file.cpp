#include "broker/auth/acl_file.hpp"

#include <fstream>
#include <sstream>

#include "broker/codec/topic.hpp"

namespace flock::auth {

namespace {

using level = acl_file::level;
using rule = acl_file::rule;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// The first blank-separated word of `s`; `s` keeps the (trimmed) rest.
std::string_view next_word(std::string_view& s) {
  std::size_t end = 0;
  while (end < s.size() && !is_blank(s[end])) ++end;
  auto word = s.substr(0, end);
  s = trim(s.substr(end));
  return word;
}

void split_levels(std::string_view s, std::vector<std::string_view>& out) {
  out.clear();
  while (true) {
    auto slash = s.find('/');
    out.push_back(s.substr(0, slash));
    if (slash == std::string_view::npos) return;
    s.remove_prefix(slash + 1);
  }
}

// The client an access check is about.
struct who {
  std::string_view client_id;
  std::optional<std::string_view> username;
};

// The text a rule's level stands for: itself, or the substituted id.
std::string_view value_of(const level& l, const who& w) {
  switch (l.k) {
    case level::kind::client_id: return w.client_id;
    case level::kind::username: return w.username.value_or(std::string_view{});
    default: return l.text;
  }
}

bool is_wild(const level& l) { return l.k == level::kind::plus || l.k == level::kind::hash; }
bool dollar(std::string_view s) { return !s.empty() && s.front() == '$'; }

// Every topic matched by `subject` (a filter or a topic name) is matched by
// the rule's filter. A leading wildcard never matches a '$' topic (MQTT 4.7.2).
bool covers(const rule& r, const std::vector<std::string_view>& s, const who& w) {
  for (std::size_t i = 0;; ++i) {
    if (i == r.levels.size()) return i == s.size();
    const level& l = r.levels[i];
    if (i == 0 && is_wild(l) && dollar(s[0])) return false;
    if (l.k == level::kind::hash) return true;  // also covers the parent level
    if (i == s.size()) return false;
    if (s[i] == "#") return false;  // the subject reaches below what this level covers
    if (l.k == level::kind::plus) continue;
    if (s[i] == "+" || s[i] != value_of(l, w)) return false;
  }
}

// A substituted id must stay one plain level: "+", "#" or "/" in a user name
// would otherwise widen the rule (Mosquitto refuses + and # the same way).
bool safe_value(std::string_view v) { return v.find_first_of("+#/") == std::string_view::npos; }

enum class usable : std::uint8_t { yes, skip, unsafe };

usable usable_for(const rule& r, const who& w) {
  bool uses_client = false, uses_user = false;
  for (const auto& l : r.levels) {
    uses_client = uses_client || l.k == level::kind::client_id;
    uses_user = uses_user || l.k == level::kind::username;
  }
  if (uses_user && !w.username) return usable::skip;  // %u never matches a client without a user name
  if ((uses_user && !safe_value(*w.username)) || (uses_client && !safe_value(w.client_id))) return usable::unsafe;
  return usable::yes;
}

thread_local std::vector<std::string_view> t_levels;

}  // namespace

acl_file acl_file::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read ACL file");
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

acl_file acl_file::parse(std::string_view text, const std::string& origin) {
  acl_file file;
  std::vector<rule>* topics = &file.anonymous_;  // `topic` lines before any `user` line
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    auto line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    auto fail = [&](const std::string& why) {
      return std::runtime_error(origin + ":" + std::to_string(line_no) + ": " + why);
    };
    auto keyword = next_word(line);
    if (keyword == "user") {
      if (line.empty()) throw fail("'user' needs a user name");
      topics = &file.users_[std::string(line)];
      continue;
    }
    if (keyword != "topic" && keyword != "pattern")
      throw fail("unknown keyword '" + std::string(keyword) + "' (expected topic, user or pattern)");
    bool pattern = keyword == "pattern";
    if (line.empty()) throw fail("'" + std::string(keyword) + "' needs a topic");
    // As in Mosquitto: one word is the topic (readwrite); with more, the first
    // word is the access and the rest, spaces included, the topic.
    rule r;
    std::string_view filter = line;
    auto rest = line;
    auto first = next_word(rest);
    if (!rest.empty()) {
      if (first == "read") r.acc = read;
      else if (first == "write") r.acc = write;
      else if (first == "readwrite") r.acc = readwrite;
      else if (first == "deny") r.acc = deny;
      else throw fail("unknown access '" + std::string(first) + "' (expected read, write, readwrite or deny)");
      filter = rest;
    }
    if (!codec::valid_topic_filter(filter))
      throw fail("invalid topic filter '" + std::string(filter) + "'");
    std::vector<std::string_view> parts;
    split_levels(filter, parts);
    for (auto part : parts) {
      level l;
      if (part == "+") l.k = level::kind::plus;
      else if (part == "#") l.k = level::kind::hash;
      else if (pattern && part == "%c") l.k = level::kind::client_id;
      else if (pattern && part == "%u") l.k = level::kind::username;
      else if (pattern && (part.find("%c") != std::string_view::npos || part.find("%u") != std::string_view::npos))
        throw fail("%c and %u must be a whole topic level, as in 'devices/%c/#'");
      else l.text = std::string(part);
      r.levels.push_back(std::move(l));
    }
    (pattern ? file.patterns_ : *topics).push_back(std::move(r));
  }
  return file;
}

bool acl_file::allowed(std::string_view client_id, std::optional<std::string_view> username, std::string_view subject,
                       access wanted) const {
  auto& levels = t_levels;
  split_levels(subject, levels);
  const who w{client_id, username};
  // A user not named in the file has only the patterns.
  const std::vector<rule>* own = &anonymous_;
  if (username) {
    auto it = users_.find(*username);
    own = it == users_.end() ? nullptr : &it->second;
  }
  // Deny wins, wherever it comes from. A deny that covers only part of a
  // subscription's filter does not refuse it: those topics are filtered out
  // per delivered message instead, so `#` stays usable next to a deny.
  if (own) {
    for (const auto& r : *own)
      if (r.acc == deny && covers(r, levels, w)) return false;
  }
  for (const auto& r : patterns_) {
    if (r.acc != deny) continue;
    switch (usable_for(r, w)) {
      case usable::skip: continue;
      case usable::unsafe: return false;  // cannot tell what it denies: deny all
      case usable::yes: break;
    }
    if (covers(r, levels, w)) return false;
  }
  if (own) {
    for (const auto& r : *own)
      if ((r.acc & wanted) && covers(r, levels, w)) return true;
  }
  for (const auto& r : patterns_)
    if ((r.acc & wanted) && usable_for(r, w) == usable::yes && covers(r, levels, w)) return true;
  return false;
}

bool acl_file::can_publish(std::string_view client_id, std::optional<std::string_view> username,
                           std::string_view topic) const {
  return allowed(client_id, username, topic, write);
}

bool acl_file::can_subscribe(std::string_view client_id, std::optional<std::string_view> username,
                             std::string_view filter) const {
  if (auto shared = codec::parse_shared_filter(filter)) filter = shared->filter;
  return allowed(client_id, username, filter, read);
}

std::size_t acl_file::rule_count() const {
  std::size_t n = anonymous_.size() + patterns_.size();
  for (const auto& [user, rules] : users_) n += rules.size();
  return n;
}

}  // namespace flock::auth
