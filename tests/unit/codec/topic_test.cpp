#include "broker/codec/topic.hpp"

#include <gtest/gtest.h>

#include <string>

namespace flock::codec {
namespace {

using namespace std::string_literals;

// ---- UTF-8 (MQTT 5 section 1.5.4) ----

TEST(topic_utf8, accepts_ascii_and_multibyte_characters) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain/ascii"));
  EXPECT_TRUE(valid_utf8("\xC3\xA9"));          // U+00E9, 2 bytes
  EXPECT_TRUE(valid_utf8("\xE2\x82\xAC"));      // U+20AC, 3 bytes
  EXPECT_TRUE(valid_utf8("\xF0\x9F\x98\x80"));  // U+1F600, 4 bytes
  EXPECT_TRUE(valid_utf8("\xEF\xBF\xBF"));      // U+FFFF (a non-character, still allowed)
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the last code point
  EXPECT_TRUE(valid_utf8("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(valid_utf8("\xEE\x80\x80"));      // U+E000, just above them
}

TEST(topic_utf8, rejects_the_null_character) {
  EXPECT_FALSE(valid_utf8("a\0b"s));
  EXPECT_FALSE(valid_utf8("\0"s));
  EXPECT_FALSE(valid_utf8("\xC0\x80"));  // overlong U+0000 ("modified UTF-8")
}

TEST(topic_utf8, rejects_overlong_encodings) {
  EXPECT_FALSE(valid_utf8("\xC1\xBF"));          // U+007F in 2 bytes
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));      // '/' in 3 bytes
  EXPECT_FALSE(valid_utf8("\xE0\x9F\xBF"));      // U+07FF in 3 bytes
  EXPECT_FALSE(valid_utf8("\xF0\x8F\xBF\xBF"));  // U+FFFF in 4 bytes
  EXPECT_TRUE(valid_utf8("\xC2\x80"));           // U+0080: shortest form, fine
  EXPECT_TRUE(valid_utf8("\xE0\xA0\x80"));       // U+0800
  EXPECT_TRUE(valid_utf8("\xF0\x90\x80\x80"));   // U+10000
}

TEST(topic_utf8, rejects_utf16_surrogates) {
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));  // U+D800
  EXPECT_FALSE(valid_utf8("\xED\xBF\xBF"));  // U+DFFF
  EXPECT_FALSE(valid_utf8("\xED\xA0\xBD\xED\xB8\x80"));  // a CESU-8 surrogate pair
}

TEST(topic_utf8, rejects_code_points_above_u10ffff_and_invalid_lead_bytes) {
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(valid_utf8("\xF8\x88\x80\x80\x80"));  // 5-byte form
  EXPECT_FALSE(valid_utf8("\xFF"));
  EXPECT_FALSE(valid_utf8("\x80"));  // a lone continuation byte
  EXPECT_FALSE(valid_utf8("a\xBF"));
}

TEST(topic_utf8, rejects_truncated_and_interrupted_sequences) {
  EXPECT_FALSE(valid_utf8("\xC3"));
  EXPECT_FALSE(valid_utf8("\xE2\x82"));
  EXPECT_FALSE(valid_utf8("\xF0\x9F\x98"));
  EXPECT_FALSE(valid_utf8("\xE2\x82" "a"));  // continuation replaced by ASCII
  EXPECT_FALSE(valid_utf8("\xC3" "\xC3\xA9"));
  EXPECT_TRUE(valid_utf8("a\xC3\xA9" "b"));  // a complete sequence at the end is fine
}

// ---- topic names ----

TEST(topic_name, accepts_ordinary_names_including_empty_levels) {
  EXPECT_TRUE(valid_topic_name("a"));
  EXPECT_TRUE(valid_topic_name("a/b/c"));
  EXPECT_TRUE(valid_topic_name("/"));
  EXPECT_TRUE(valid_topic_name("a//b/"));
  EXPECT_TRUE(valid_topic_name("$SYS/broker/uptime"));
  EXPECT_TRUE(valid_topic_name(" "));
  EXPECT_TRUE(valid_topic_name("caf\xC3\xA9/\xE2\x82\xAC"));
}

TEST(topic_name, rejects_empty_wildcards_bad_utf8_and_oversize) {
  EXPECT_FALSE(valid_topic_name(""));
  EXPECT_FALSE(valid_topic_name("a/+"));
  EXPECT_FALSE(valid_topic_name("a/#"));
  EXPECT_FALSE(valid_topic_name("a+b"));
  EXPECT_FALSE(valid_topic_name("a\0b"s));
  EXPECT_FALSE(valid_topic_name("\xED\xA0\x80"));
  EXPECT_TRUE(valid_topic_name(std::string(65535, 'a')));
  EXPECT_FALSE(valid_topic_name(std::string(65536, 'a')));
}

// ---- topic filters ----

TEST(topic_filter, accepts_wildcards_that_occupy_whole_levels) {
  for (auto f : {"a", "+", "#", "a/+", "+/a", "a/#", "+/+/#", "/+", "+/", "a//+/#", "/#", "$SYS/#", "+/+"})
    EXPECT_TRUE(valid_topic_filter(f)) << f;
}

TEST(topic_filter, rejects_wildcards_inside_a_level_or_hash_not_last) {
  for (auto f : {"a+", "+a", "a/b+/c", "a/+b", "a#", "#a", "a/#/b", "#/", "##", "++", "a/b#", "sport/tennis#"})
    EXPECT_FALSE(valid_topic_filter(f)) << f;
}

TEST(topic_filter, rejects_empty_bad_utf8_and_oversize) {
  EXPECT_FALSE(valid_topic_filter(""));
  EXPECT_FALSE(valid_topic_filter("a/\xC0\x80"));
  EXPECT_FALSE(valid_topic_filter("a\0"s));
  EXPECT_TRUE(valid_topic_filter(std::string(65535, 'a')));
  EXPECT_FALSE(valid_topic_filter(std::string(65536, 'a')));
}

TEST(topic_filter, accepts_shared_filters_with_a_group_and_a_valid_inner_filter) {
  EXPECT_TRUE(valid_topic_filter("$share/g/a"));
  EXPECT_TRUE(valid_topic_filter("$share/group-1/a/+/#"));
  EXPECT_TRUE(valid_topic_filter("$share/g/#"));
  EXPECT_TRUE(valid_topic_filter("$share/g//"));  // inner filter "/" is two empty levels
  EXPECT_TRUE(valid_topic_filter("$queue/a/b"));
  EXPECT_TRUE(valid_topic_filter("$queue/#"));
}

TEST(topic_filter, rejects_malformed_shared_filters) {
  for (auto f : {"$share", "$share/", "$share/g", "$share/g/", "$share//a", "$share/+/a", "$share/#/a", "$share/g+/a",
                 "$share/g/a+", "$share/g/#/a", "$queue/", "$queue/a#"})
    EXPECT_FALSE(valid_topic_filter(f)) << f;
}

TEST(topic_filter, dollar_share_without_a_slash_after_it_is_an_ordinary_filter) {
  EXPECT_TRUE(valid_topic_filter("$shared/a"));
  EXPECT_FALSE(parse_shared_filter("$shared/a").has_value());
  EXPECT_FALSE(parse_shared_filter("$queued/a").has_value());
}

TEST(topic_filter, parse_shared_filter_splits_group_and_inner_filter) {
  auto s = parse_shared_filter("$share/workers/jobs/+/#");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->group, "workers");
  EXPECT_EQ(s->filter, "jobs/+/#");

  auto q = parse_shared_filter("$queue/orders/eu");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->group, "$queue");
  EXPECT_EQ(q->filter, "orders/eu");

  EXPECT_FALSE(parse_shared_filter("a/b").has_value());
  EXPECT_FALSE(parse_shared_filter("$SYS/x").has_value());
  EXPECT_FALSE(parse_shared_filter("$share/g").has_value());
}

TEST(topic_filter, has_wildcard_detects_plus_and_hash) {
  EXPECT_FALSE(has_wildcard("a/b"));
  EXPECT_FALSE(has_wildcard("$SYS/x"));
  EXPECT_TRUE(has_wildcard("a/+"));
  EXPECT_TRUE(has_wildcard("#"));
}

// ---- matching (4.7) ----

struct match_case {
  const char* filter;
  const char* topic;
  bool matches;
};

TEST(topic_matches, follows_the_spec_examples_and_edge_cases) {
  const match_case cases[] = {
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/#", "sport", true},
      {"#", "sport/tennis", true},
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"a/b", "a/b", true},
      {"a/b", "a/b/", false},
      {"a/b/", "a/b", false},
      {"a/b", "A/b", false},
      {"a//b", "a//b", true},
      {"a/+/b", "a//b", true},
      {"a/+/#", "a", false},
      {"a/+/#", "a/b", true},
      {"a/#", "ab", false},
      {"+", "a", true},
      {"/", "/", true},
      {"#", "/", true},
  };
  for (const auto& c : cases) EXPECT_EQ(topic_matches(c.filter, c.topic), c.matches) << c.filter << " vs " << c.topic;
}

TEST(topic_matches, leading_wildcards_do_not_match_dollar_topics) {
  EXPECT_FALSE(topic_matches("#", "$SYS/uptime"));
  EXPECT_FALSE(topic_matches("+/monitor/Clients", "$SYS/monitor/Clients"));
  EXPECT_FALSE(topic_matches("+", "$x"));
  EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/monitor/Clients"));
  EXPECT_TRUE(topic_matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
  EXPECT_TRUE(topic_matches("$SYS/#", "$SYS"));
  EXPECT_TRUE(topic_matches("a/+", "a/$x"));  // only the first level is special
  EXPECT_TRUE(topic_matches("a/#", "a/$x/y"));
}

}  // namespace
}  // namespace flock::codec
