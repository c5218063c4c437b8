#pragma once
// Topic names, topic filters, matching, and UTF-8 rules (MQTT 5 sections 1.5.4, 4.7).
#include <optional>
#include <string_view>

namespace flock::codec {

// Well-formed UTF-8, no U+0000, no UTF-16 surrogates (U+D800..U+DFFF), no overlong forms.
bool valid_utf8(std::string_view s);

// A PUBLISH topic name: non-empty, valid UTF-8, no '+' or '#', at most 65535 bytes.
bool valid_topic_name(std::string_view topic);

// A SUBSCRIBE filter: non-empty, valid UTF-8; '+' occupies a whole level; '#'
// occupies a whole level and is last. Shared-subscription filters
// ($share/{group}/{filter}) are valid when the group is non-empty and has no
// '+', '#' or '/', and the inner filter is valid.
bool valid_topic_filter(std::string_view filter);

// True if `filter` (not a shared one) matches `topic`. A leading '+' or '#'
// does not match a topic starting with '$' (4.7.2).
bool topic_matches(std::string_view filter, std::string_view topic);

// "$share/group/a/b" -> {group, "a/b"}; "$queue/a/b" -> {"$queue", "a/b"}
// (the $queue/ alias: one group shared by every $queue subscriber).
// Not a shared filter -> nullopt.
struct shared_filter {
  std::string_view group;
  std::string_view filter;
};
std::optional<shared_filter> parse_shared_filter(std::string_view filter);

bool has_wildcard(std::string_view filter);

}  // namespace flock::codec
