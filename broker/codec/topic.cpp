#include "broker/codec/topic.hpp"

#include <cstdint>

namespace flock::codec {

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    std::uint8_t c = *p;
    if (c < 0x80) {
      if (c == 0) return false;  // U+0000 is forbidden in MQTT strings
      ++p;
      continue;
    }
    int extra;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Reject overlong forms, surrogates and code points past U+10FFFF.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000)) return false;
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;
    if (cp > 0x10FFFF) return false;
    p += extra + 1;
  }
  return true;
}

bool valid_topic_name(std::string_view topic) {
  if (topic.empty() || topic.size() > 65535) return false;
  if (topic.find_first_of("+#") != std::string_view::npos) return false;
  return valid_utf8(topic);
}

namespace {

// Wildcard placement within a plain (non-shared) filter.
bool valid_plain_filter(std::string_view filter) {
  if (filter.empty()) return false;
  for (std::size_t i = 0; i < filter.size(); ++i) {
    char c = filter[i];
    bool level_start = i == 0 || filter[i - 1] == '/';
    bool level_end = i + 1 == filter.size() || filter[i + 1] == '/';
    if (c == '+' && !(level_start && level_end)) return false;
    if (c == '#' && !(level_start && i + 1 == filter.size())) return false;
  }
  return true;
}

}  // namespace

bool valid_topic_filter(std::string_view filter) {
  if (filter.empty() || filter.size() > 65535 || !valid_utf8(filter)) return false;
  if (filter.starts_with("$share/") || filter == "$share") {
    auto shared = parse_shared_filter(filter);
    if (!shared) return false;
    return valid_plain_filter(shared->filter);
  }
  if (filter.starts_with("$queue/")) return valid_plain_filter(filter.substr(7));
  return valid_plain_filter(filter);
}

std::optional<shared_filter> parse_shared_filter(std::string_view filter) {
  if (filter.starts_with("$queue/")) return shared_filter{"$queue", filter.substr(7)};
  if (!filter.starts_with("$share/")) return std::nullopt;
  auto rest = filter.substr(7);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  auto group = rest.substr(0, slash);
  if (group.find_first_of("+#") != std::string_view::npos) return std::nullopt;
  auto inner = rest.substr(slash + 1);
  if (inner.empty()) return std::nullopt;
  return shared_filter{group, inner};
}

bool has_wildcard(std::string_view filter) { return filter.find_first_of("+#") != std::string_view::npos; }

bool topic_matches(std::string_view filter, std::string_view topic) {
  // A leading wildcard never matches a $-topic (4.7.2).
  if (!topic.empty() && topic[0] == '$' && !filter.empty() && (filter[0] == '+' || filter[0] == '#')) return false;
  std::size_t f = 0, t = 0;
  while (true) {
    std::size_t f_end = filter.find('/', f);
    std::string_view f_level = filter.substr(f, f_end == std::string_view::npos ? std::string_view::npos : f_end - f);
    if (f_level == "#") return true;  // matches the parent level and everything below
    if (t == std::string_view::npos) return false;  // topic ran out, filter did not
    std::size_t t_end = topic.find('/', t);
    std::string_view t_level = topic.substr(t, t_end == std::string_view::npos ? std::string_view::npos : t_end - t);
    if (f_level != "+" && f_level != t_level) return false;
    bool f_done = f_end == std::string_view::npos;
    bool t_done = t_end == std::string_view::npos;
    if (f_done && t_done) return true;
    if (f_done) return false;
    f = f_end + 1;
    t = t_done ? std::string_view::npos : t_end + 1;
    if (t_done) {
      // Topic "a" against "a/#": '#' also matches the parent level.
      std::size_t next_end = filter.find('/', f);
      std::string_view next = filter.substr(f, next_end == std::string_view::npos ? std::string_view::npos : next_end - f);
      return next == "#" && next_end == std::string_view::npos;
    }
  }
}

}  // namespace flock::codec
