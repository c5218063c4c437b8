#pragma once
// The subscription index: which targets (sessions) hold which topic filters,
// and which of them a published topic reaches. Read on every publish, so the
// layout is chosen for match(): filters without wildcards sit in one hash map
// keyed by the filter itself (one lookup per publish), wildcard filters in a
// trie of levels whose '+' and '#' children are kept apart from the literal
// ones, so a match walks only branches that can match.
//
// Header-only template so unit tests can index a fake target type.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/codec/topic.hpp"

namespace flock::core {

struct subscription_options {
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  std::uint8_t retain_handling = 0;
  std::uint32_t identifier = 0;  // 0 = none
  bool operator==(const subscription_options&) const = default;
};

template <class Target, class Options = subscription_options>
struct subscriber {
  std::shared_ptr<Target> target;
  Options options;
};

template <class Target, class Options = subscription_options>
class basic_subscription_index;

// One shared subscription group, identified by (group name, inner filter).
// Owned by the index; members are kept in insertion order and never empty
// while the group is visible. The cursor is the only part readers touch
// concurrently (under the broker's shared lock), hence atomic.
template <class Target, class Options = subscription_options>
class shared_group {
 public:
  shared_group(std::string name, std::string filter) : name_(std::move(name)), filter_(std::move(filter)) {}

  const std::string& name() const { return name_; }
  const std::string& filter() const { return filter_; }  // the inner filter, without $share/{group}/
  const std::vector<subscriber<Target, Options>>& members() const { return members_; }

  // Round-robin cursor; callers take `next_index() % members().size()`.
  std::uint32_t next_index() const { return cursor_.fetch_add(1, std::memory_order_relaxed); }
  const subscriber<Target, Options>& next_member() const { return members_[next_index() % members_.size()]; }

 private:
  friend class basic_subscription_index<Target, Options>;
  std::string name_;
  std::string filter_;
  std::vector<subscriber<Target, Options>> members_;
  mutable std::atomic<std::uint32_t> cursor_{0};
};

namespace detail {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

// Returns the level starting at `pos` and moves `pos` past its '/'. When the
// last level has been taken, pos == s.size() + 1 ("exhausted"); this keeps a
// trailing empty level ("a/") distinct from the end of the string.
inline std::string_view next_level(std::string_view s, std::size_t& pos) {
  std::size_t end = s.find('/', pos);
  if (end == std::string_view::npos) end = s.size();
  std::string_view level = s.substr(pos, end - pos);
  pos = end + 1;
  return level;
}

// A LIFO stack that lives on the caller's stack for usual topic depths and
// spills to the heap only for very deep ones, so match() neither allocates
// per publish nor recurses (a 30,000-level topic must not overflow the stack).
template <class T, std::size_t N>
class small_stack {
 public:
  void push(const T& v) {
    if (count_ < N && spill_.empty()) {
      inline_[count_++] = v;
    } else {
      spill_.push_back(v);
    }
  }
  T pop() {
    if (!spill_.empty()) {
      T v = spill_.back();
      spill_.pop_back();
      return v;
    }
    return inline_[--count_];
  }
  bool empty() const { return count_ == 0 && spill_.empty(); }

 private:
  std::array<T, N> inline_{};
  std::size_t count_ = 0;
  std::vector<T> spill_;
};

// Everything subscribed with one (inner) filter. Kept small because there is
// one per distinct filter: groups and the position map are rare, so they live
// behind one pointer.
template <class Target, class Options>
struct filter_entry {
  // Above this many plain subscribers, removal looks targets up in a map
  // instead of scanning (a broadcast filter may hold 100,000 sessions).
  static constexpr std::size_t index_above = 32;
  static constexpr std::size_t unindex_below = 16;

  struct cold_part {
    std::vector<std::unique_ptr<shared_group<Target, Options>>> groups;
    std::unordered_map<const Target*, std::uint32_t> positions;  // empty unless indexed
  };

  std::vector<subscriber<Target, Options>> direct;  // order not kept: removal swaps with the last
  std::unique_ptr<cold_part> cold;

  bool empty() const { return direct.empty() && (!cold || cold->groups.empty()); }
  bool indexed() const { return cold && !cold->positions.empty(); }

  std::size_t direct_position(const Target* t) const {
    if (indexed()) {
      auto it = cold->positions.find(t);
      return it == cold->positions.end() ? direct.size() : it->second;
    }
    for (std::size_t i = 0; i < direct.size(); ++i)
      if (direct[i].target.get() == t) return i;
    return direct.size();
  }

  // Returns true when the target is new to this filter.
  bool add_direct(std::shared_ptr<Target> target, const Options& opts) {
    std::size_t i = direct_position(target.get());
    if (i < direct.size()) {
      direct[i].options = opts;
      return false;
    }
    direct.push_back({std::move(target), opts});
    if (indexed()) {
      cold->positions.emplace(direct.back().target.get(), static_cast<std::uint32_t>(direct.size() - 1));
    } else if (direct.size() > index_above) {
      if (!cold) cold = std::make_unique<cold_part>();
      cold->positions.reserve(direct.size());
      for (std::size_t k = 0; k < direct.size(); ++k)
        cold->positions.emplace(direct[k].target.get(), static_cast<std::uint32_t>(k));
    }
    return true;
  }

  bool remove_direct(const Target* t) {
    std::size_t i = direct_position(t);
    if (i == direct.size()) return false;
    bool was_indexed = indexed();
    if (i + 1 != direct.size()) {
      direct[i] = std::move(direct.back());
      if (was_indexed) cold->positions[direct[i].target.get()] = static_cast<std::uint32_t>(i);
    }
    direct.pop_back();
    if (was_indexed) {
      cold->positions.erase(t);
      if (direct.size() < unindex_below) cold->positions = {};
    }
    drop_cold_if_unused();
    return true;
  }

  shared_group<Target, Options>* find_group(std::string_view name) const {
    if (!cold) return nullptr;
    for (const auto& g : cold->groups)
      if (g->name() == name) return g.get();
    return nullptr;
  }

  void drop_cold_if_unused() {
    if (cold && cold->groups.empty() && cold->positions.empty()) cold.reset();
  }
};

}  // namespace detail

// Owns every subscription of the process (targets are shared with their
// owners). Not thread-safe: the broker wraps it in a std::shared_mutex; add
// and remove run under the exclusive lock, match() under the shared lock
// from several workers at once, and touches nothing but group cursors.
template <class Target, class Options>
class basic_subscription_index {
 public:
  using target_ptr = std::shared_ptr<Target>;
  using group = shared_group<Target, Options>;
  using options_type = Options;

  basic_subscription_index() = default;
  basic_subscription_index(const basic_subscription_index&) = delete;
  basic_subscription_index& operator=(const basic_subscription_index&) = delete;
  ~basic_subscription_index() { dismantle(); }

  // `filter` is already valid (codec::valid_topic_filter), plain or shared.
  // Returns true for a new (filter, target); an existing one gets `opts`.
  bool add(std::string_view filter, target_ptr target, Options opts) {
    auto shared = codec::parse_shared_filter(filter);
    std::string_view inner = shared ? shared->filter : filter;
    auto& e = make_entry(inner);
    bool added;
    if (!shared) {
      bool had_direct = !e.direct.empty();
      added = e.add_direct(std::move(target), opts);
      if (!had_direct) ++filters_;
    } else {
      auto* g = e.find_group(shared->group);
      if (!g) {
        if (!e.cold) e.cold = std::make_unique<typename entry::cold_part>();
        e.cold->groups.push_back(std::make_unique<group>(std::string(shared->group), std::string(inner)));
        g = e.cold->groups.back().get();
        ++filters_;
      }
      auto& members = g->members_;
      auto it = std::find_if(members.begin(), members.end(),
                             [&](const auto& m) { return m.target.get() == target.get(); });
      added = it == members.end();
      if (added) {
        members.push_back({std::move(target), opts});
      } else {
        it->options = opts;
      }
    }
    if (added) ++size_;
    return added;
  }

  // Returns true if (filter, target) was subscribed.
  bool remove(std::string_view filter, const Target* target) {
    auto shared = codec::parse_shared_filter(filter);
    std::string_view inner = shared ? shared->filter : filter;
    entry* e = find_entry(inner);
    if (!e) return false;
    if (!shared) {
      if (!e->remove_direct(target)) return false;
      if (e->direct.empty()) --filters_;
    } else {
      auto* g = e->find_group(shared->group);
      if (!g) return false;
      auto& members = g->members_;
      auto it = std::find_if(members.begin(), members.end(), [&](const auto& m) { return m.target.get() == target; });
      if (it == members.end()) return false;
      members.erase(it);
      if (members.empty()) {
        auto& groups = e->cold->groups;
        groups.erase(std::find_if(groups.begin(), groups.end(), [&](const auto& p) { return p.get() == g; }));
        e->drop_cold_if_unused();
        --filters_;
      }
    }
    --size_;
    if (e->empty()) erase_entry(inner);
    return true;
  }

  // How many targets hold exactly `filter`: the plain subscribers of a plain
  // filter, the members of a shared one's group. Route replication announces
  // a plain filter while this is above 0, and a group with this count.
  std::size_t holders(std::string_view filter) const {
    auto shared = codec::parse_shared_filter(filter);
    const entry* e = find_entry(shared ? shared->filter : filter);
    if (!e) return 0;
    if (!shared) return e->direct.size();
    const group* g = e->find_group(shared->group);
    return g ? g->members().size() : 0;
  }

  // Options of (filter, target), or nullptr.
  const Options* find(std::string_view filter, const Target* target) const {
    auto shared = codec::parse_shared_filter(filter);
    const entry* e = find_entry(shared ? shared->filter : filter);
    if (!e) return nullptr;
    if (!shared) {
      std::size_t i = e->direct_position(target);
      return i < e->direct.size() ? &e->direct[i].options : nullptr;
    }
    const group* g = e->find_group(shared->group);
    if (!g) return nullptr;
    for (const auto& m : g->members())
      if (m.target.get() == target) return &m.options;
    return nullptr;
  }

  // on_direct(const target_ptr&, const subscription_options&) once per
  // matching plain subscription (a target holding two matching filters is
  // reported twice); on_group(const shared_group<Target>&) once per matching
  // group. Order is unspecified. Allocates nothing for topics under ~30 levels.
  template <class OnDirect, class OnGroup>
  void match(std::string_view topic, OnDirect&& on_direct, OnGroup&& on_group) const {
    auto report = [&](const entry& e) {
      for (const auto& s : e.direct) on_direct(s.target, s.options);
      if (e.cold)
        for (const auto& g : e.cold->groups) on_group(static_cast<const group&>(*g));
    };
    if (!exact_.empty()) {
      if (auto it = exact_.find(topic); it != exact_.end()) report(it->second);
    }
    if (root_.leaf()) return;
    // A leading wildcard never matches a topic starting with '$' (4.7.2).
    const bool dollar = !topic.empty() && topic.front() == '$';
    struct frame {
      const node* n = nullptr;
      std::size_t pos = 0;
    };
    detail::small_stack<frame, 32> stack;
    stack.push({&root_, 0});
    while (!stack.empty()) {
      frame f = stack.pop();
      const bool wild_ok = !(dollar && f.n == &root_);
      if (f.n->hash && wild_ok) report(*f.n->hash);  // '#' also matches the parent level
      if (f.pos > topic.size()) {
        report(f.n->here);
        continue;
      }
      std::string_view level = detail::next_level(topic, f.pos);
      if (f.n->plus && wild_ok) stack.push({f.n->plus.get(), f.pos});
      if (f.n->children) {
        if (auto it = f.n->children->find(level); it != f.n->children->end()) stack.push({it->second.get(), f.pos});
      }
    }
  }

  // fn(std::string_view filter, const target_ptr&, const subscription_options&)
  // for every subscription, shared ones as "$share/{group}/{filter}" (or
  // "$queue/{filter}"). For snapshots and route replication, not the hot path.
  template <class F>
  void for_each(F&& fn) const {
    auto emit = [&](const std::string& inner, const entry& e) {
      for (const auto& s : e.direct) fn(std::string_view(inner), s.target, s.options);
      if (!e.cold) return;
      for (const auto& g : e.cold->groups) {
        std::string full = g->name() == "$queue" ? "$queue/" + inner : "$share/" + g->name() + "/" + inner;
        for (const auto& m : g->members()) fn(std::string_view(full), m.target, m.options);
      }
    };
    for (const auto& [filter, e] : exact_) emit(filter, e);
    std::vector<std::pair<const node*, std::string>> stack;
    stack.emplace_back(&root_, std::string());
    while (!stack.empty()) {
      auto [n, path] = std::move(stack.back());
      stack.pop_back();
      auto child_path = [&](std::string_view level) { return n == &root_ ? std::string(level) : path + "/" + std::string(level); };
      if (n != &root_) emit(path, n->here);
      if (n->hash) emit(child_path("#"), *n->hash);
      if (n->plus) stack.emplace_back(n->plus.get(), child_path("+"));
      if (n->children)
        for (const auto& [level, c] : *n->children) stack.emplace_back(c.get(), child_path(level));
    }
  }

  std::size_t size() const { return size_; }  // plain subscriptions + group members
  // Distinct filters in use; "a" and "$share/g/a" count separately.
  std::size_t filter_count() const { return filters_; }
  bool empty() const { return size_ == 0; }

 private:
  using entry = detail::filter_entry<Target, Options>;

  // A trie level. Most nodes are leaves, so the child map sits behind a pointer.
  struct node {
    entry here;  // filters ending at this level
    std::unique_ptr<detail::string_map<std::unique_ptr<node>>> children;
    std::unique_ptr<node> plus;
    std::unique_ptr<entry> hash;  // filters ending in '#' below this level
    bool leaf() const { return !children && !plus && !hash; }
    bool empty() const { return leaf() && here.empty(); }
  };

  entry& make_entry(std::string_view inner) {
    if (!codec::has_wildcard(inner)) {
      auto it = exact_.find(inner);
      if (it == exact_.end()) it = exact_.emplace(std::string(inner), entry{}).first;
      return it->second;
    }
    node* n = &root_;
    std::size_t pos = 0;
    while (pos <= inner.size()) {
      std::string_view level = detail::next_level(inner, pos);
      if (level == "#") {
        if (!n->hash) n->hash = std::make_unique<entry>();
        return *n->hash;
      }
      if (level == "+") {
        if (!n->plus) n->plus = std::make_unique<node>();
        n = n->plus.get();
        continue;
      }
      if (!n->children) n->children = std::make_unique<detail::string_map<std::unique_ptr<node>>>();
      auto it = n->children->find(level);
      if (it == n->children->end()) it = n->children->emplace(std::string(level), std::make_unique<node>()).first;
      n = it->second.get();
    }
    return n->here;
  }

  entry* find_entry(std::string_view inner) const {
    if (!codec::has_wildcard(inner)) {
      auto it = exact_.find(inner);
      return it == exact_.end() ? nullptr : const_cast<entry*>(&it->second);
    }
    const node* n = &root_;
    std::size_t pos = 0;
    while (pos <= inner.size()) {
      std::string_view level = detail::next_level(inner, pos);
      if (level == "#") return n->hash.get();
      if (level == "+") {
        n = n->plus.get();
      } else {
        if (!n->children) return nullptr;
        auto it = n->children->find(level);
        n = it == n->children->end() ? nullptr : it->second.get();
      }
      if (!n) return nullptr;
    }
    return const_cast<entry*>(&n->here);
  }

  // Drops the (now empty) entry of `inner` and every trie node left empty.
  void erase_entry(std::string_view inner) {
    if (!codec::has_wildcard(inner)) {
      if (auto it = exact_.find(inner); it != exact_.end()) exact_.erase(it);
      return;
    }
    std::vector<std::pair<node*, std::string_view>> path;  // (parent, level taken from it)
    node* n = &root_;
    std::size_t pos = 0;
    while (pos <= inner.size()) {
      std::string_view level = detail::next_level(inner, pos);
      if (level == "#") {
        n->hash.reset();
        break;
      }
      path.emplace_back(n, level);
      n = level == "+" ? n->plus.get() : n->children->find(level)->second.get();
    }
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      auto [parent, level] = *it;
      if (level == "+") {
        if (!parent->plus->empty()) return;
        parent->plus.reset();
      } else {
        auto child = parent->children->find(level);
        if (!child->second->empty()) return;
        parent->children->erase(child);
        if (parent->children->empty()) parent->children.reset();
      }
    }
  }

  // Frees the trie without recursion: a deep filter would otherwise nest
  // one destructor call per level.
  void dismantle() {
    std::vector<std::unique_ptr<node>> work;
    auto take_children = [&](node& n) {
      if (n.plus) work.push_back(std::move(n.plus));
      if (n.children) {
        for (auto& [level, c] : *n.children) work.push_back(std::move(c));
        n.children.reset();
      }
    };
    take_children(root_);
    while (!work.empty()) {
      std::unique_ptr<node> n = std::move(work.back());
      work.pop_back();
      take_children(*n);
    }
  }

  detail::string_map<entry> exact_;  // filters without wildcards, keyed by the filter
  node root_;                        // filters with wildcards
  std::size_t size_ = 0;
  std::size_t filters_ = 0;
};

class session;
using subscription_index = basic_subscription_index<session>;

}  // namespace flock::core
