#pragma once
// What a scenario found: an ordered tree of named values, printed either as a
// human-readable summary or as one JSON object.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace flock::bench {

class report {
 public:
  using value = std::variant<bool, std::int64_t, double, std::string, std::shared_ptr<report>>;

  // The summary prints integers grouped (1,234,567), reals with `decimals`
  // places and the unit after the value; JSON gets the bare values.
  void count(const std::string& key, std::uint64_t v, std::string unit = "") {
    put(key, value{static_cast<std::int64_t>(v)}, std::move(unit), 0);
  }
  void signed_count(const std::string& key, std::int64_t v, std::string unit = "") {
    put(key, value{v}, std::move(unit), 0);
  }
  void real(const std::string& key, double v, std::string unit = "", int decimals = 1) {
    put(key, value{v}, std::move(unit), decimals);
  }
  void text_value(const std::string& key, std::string v) { put(key, value{std::move(v)}, "", 0); }
  void flag(const std::string& key, bool v) { put(key, value{v}, "", 0); }
  report& section(const std::string& key);

  std::string json() const;
  std::string text(int indent = 0) const;

 private:
  struct entry {
    std::string key;
    value v;
    std::string unit;
    int decimals;
  };
  void put(const std::string& key, value v, std::string unit, int decimals);
  std::vector<entry> entries_;
};

}  // namespace flock::bench
