#pragma once
// The table of scalar configuration keys: name, flag, help, how to set it
// from text and how to print its value. Shared by the YAML reader, the flag
// parser and --help, so the three can never disagree. Immutable; any thread.
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "broker/app/config.hpp"

namespace flock::app {

struct key_spec {
  std::string_view key;   // YAML key; the flag is "--" + key with '_' -> '-'
  std::string_view hint;  // value placeholder in --help: N, BOOL, DIR...
  std::string_view help;
  // Throws std::invalid_argument with a message like "expected ..., got 'x'".
  std::function<void(config&, const std::string&)> set;
  std::function<std::string(const config&)> get;
};

std::span<const key_spec> config_keys();
const key_spec* find_key(std::string_view key);
std::string flag_name(std::string_view key);

// Value parsers; throw std::invalid_argument with a readable message.
bool parse_bool(const std::string& text);
std::uint64_t parse_unsigned(const std::string& text, std::uint64_t min, std::uint64_t max);

}  // namespace flock::app
