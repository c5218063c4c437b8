#include "tools/flock-bench/report.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace flock::bench {

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string json_number(double d) {
  if (!std::isfinite(d)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", d);
  if (std::fabs(d) >= 1e6) std::snprintf(buf, sizeof buf, "%.1f", d);
  return buf;
}

std::string grouped(std::int64_t v) {  // 1234567 -> 1,234,567
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

}  // namespace

void report::put(const std::string& key, value v, std::string unit, int decimals) {
  for (auto& e : entries_)
    if (e.key == key) {
      e = entry{key, std::move(v), std::move(unit), decimals};
      return;
    }
  entries_.push_back(entry{key, std::move(v), std::move(unit), decimals});
}

report& report::section(const std::string& key) {
  for (auto& e : entries_)
    if (e.key == key)
      if (auto* r = std::get_if<std::shared_ptr<report>>(&e.v)) return **r;
  auto child = std::make_shared<report>();
  entries_.push_back(entry{key, child, "", 0});
  return *child;
}

std::string report::json() const {
  std::string out = "{";
  bool first = true;
  for (const auto& e : entries_) {
    if (!first) out += ",";
    first = false;
    out += json_string(e.key) + ":";
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) out += v ? "true" : "false";
          else if constexpr (std::is_same_v<T, std::int64_t>) out += std::to_string(v);
          else if constexpr (std::is_same_v<T, double>) out += json_number(v);
          else if constexpr (std::is_same_v<T, std::string>) out += json_string(v);
          else out += v->json();
        },
        e.v);
  }
  return out + "}";
}

std::string report::text(int indent) const {
  std::size_t width = 0;
  for (const auto& e : entries_)
    if (!std::holds_alternative<std::shared_ptr<report>>(e.v)) width = std::max(width, e.key.size());
  std::ostringstream out;
  std::string pad(static_cast<std::size_t>(indent), ' ');
  for (const auto& e : entries_) {
    if (auto* r = std::get_if<std::shared_ptr<report>>(&e.v)) {
      out << pad << e.key << ":\n" << (*r)->text(indent + 2);
      continue;
    }
    out << pad << e.key << std::string(width - e.key.size() + 2, ' ');
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) out << (v ? "yes" : "no");
          else if constexpr (std::is_same_v<T, std::int64_t>) out << grouped(v);
          else if constexpr (std::is_same_v<T, double>) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.*f", e.decimals, v);
            out << buf;
          } else if constexpr (std::is_same_v<T, std::string>) out << v;
        },
        e.v);
    if (!e.unit.empty()) out << " " << e.unit;
    out << "\n";
  }
  return out.str();
}

}  // namespace flock::bench
