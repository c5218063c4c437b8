#include "broker/core/retained_index.hpp"

#include <string>
#include <vector>

#include "broker/codec/topic.hpp"

namespace flock::core {

namespace {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// See subscription_index.hpp: pos == s.size() + 1 once the last level is taken.
std::string_view next_level(std::string_view s, std::size_t& pos) {
  std::size_t end = s.find('/', pos);
  if (end == std::string_view::npos) end = s.size();
  std::string_view level = s.substr(pos, end - pos);
  pos = end + 1;
  return level;
}

}  // namespace

// One topic level. Most nodes are leaves, so the child map sits behind a pointer.
struct retained_index::node {
  using child_map = std::unordered_map<std::string, std::unique_ptr<node>, string_hash, std::equal_to<>>;
  message_ptr msg;
  std::unique_ptr<child_map> children;

  bool empty() const { return !msg && !children; }
};

retained_index::retained_index() : root_(std::make_unique<node>()) {}

// Frees the trie without recursion: a 30,000-level topic would otherwise nest
// one destructor call per level.
retained_index::~retained_index() {
  std::vector<std::unique_ptr<node>> work;
  work.push_back(std::move(root_));
  while (!work.empty()) {
    std::unique_ptr<node> n = std::move(work.back());
    work.pop_back();
    if (n->children) {
      for (auto& [level, child] : *n->children) work.push_back(std::move(child));
    }
  }
}

int retained_index::set(message_ptr msg) {
  if (!msg) return 0;
  const std::string& topic = msg->topic;
  if (msg->payload.empty()) return erase(topic) ? -1 : 0;

  if (auto it = by_topic_.find(topic); it != by_topic_.end()) {
    node* n = it->second;
    forget_expiry(n);
    // The key views the old message's topic: keep that message alive until
    // the key points at the new one.
    message_ptr old = std::exchange(n->msg, std::move(msg));
    auto handle = by_topic_.extract(it);
    handle.key() = n->msg->topic;
    by_topic_.insert(std::move(handle));
    note_expiry(n);
    return 0;
  }

  node* n = root_.get();
  std::size_t pos = 0;
  while (pos <= topic.size()) {
    std::string_view level = next_level(topic, pos);
    if (!n->children) n->children = std::make_unique<node::child_map>();
    auto child = n->children->find(level);
    if (child == n->children->end()) child = n->children->emplace(std::string(level), std::make_unique<node>()).first;
    n = child->second.get();
  }
  n->msg = std::move(msg);
  by_topic_.emplace(n->msg->topic, n);
  note_expiry(n);
  return 1;
}

bool retained_index::erase(std::string_view topic) {
  auto it = by_topic_.find(topic);
  if (it == by_topic_.end()) return false;
  node* target = it->second;
  forget_expiry(target);
  by_topic_.erase(it);
  // `topic` may view this very message's topic: hold it until we are done.
  message_ptr keep = std::move(target->msg);

  std::vector<std::pair<node*, std::string_view>> path;  // (parent, level taken from it)
  node* n = root_.get();
  std::size_t pos = 0;
  while (pos <= topic.size()) {
    std::string_view level = next_level(topic, pos);
    path.emplace_back(n, level);
    n = n->children->find(level)->second.get();
  }
  for (auto p = path.rbegin(); p != path.rend(); ++p) {
    auto [parent, level] = *p;
    auto child = parent->children->find(level);
    if (!child->second->empty()) break;
    parent->children->erase(child);
    if (parent->children->empty()) parent->children.reset();
  }
  return true;
}

message_ptr retained_index::find(std::string_view topic) const {
  auto it = by_topic_.find(topic);
  return it == by_topic_.end() ? nullptr : it->second->msg;
}

void retained_index::match_impl(std::string_view filter, callback cb, void* ctx) const {
  if (!codec::has_wildcard(filter)) {
    if (auto it = by_topic_.find(filter); it != by_topic_.end()) cb(ctx, it->second->msg);
    return;
  }
  struct frame {
    const node* n;
    std::size_t pos;    // start of the next filter level
    bool whole_subtree; // below a '#': everything matches
  };
  // A leading wildcard never matches a topic starting with '$' (4.7.2), and
  // only root children hold first levels.
  auto skip = [&](const node* parent, const std::string& level) {
    return parent == root_.get() && !level.empty() && level.front() == '$';
  };
  std::vector<frame> stack{{root_.get(), 0, false}};
  while (!stack.empty()) {
    frame f = stack.back();
    stack.pop_back();
    const node* n = f.n;
    if (f.whole_subtree) {
      if (n->msg) cb(ctx, n->msg);
      if (n->children)
        for (const auto& [level, child] : *n->children) stack.push_back({child.get(), 0, true});
      continue;
    }
    if (f.pos > filter.size()) {
      if (n->msg) cb(ctx, n->msg);
      continue;
    }
    std::string_view level = next_level(filter, f.pos);
    if (level == "#") {
      if (n->msg) cb(ctx, n->msg);  // "a/#" also matches "a"
      if (n->children)
        for (const auto& [name, child] : *n->children)
          if (!skip(n, name)) stack.push_back({child.get(), 0, true});
    } else if (level == "+") {
      if (n->children)
        for (const auto& [name, child] : *n->children)
          if (!skip(n, name)) stack.push_back({child.get(), f.pos, false});
    } else if (n->children) {
      if (auto child = n->children->find(level); child != n->children->end())
        stack.push_back({child->second.get(), f.pos, false});
    }
  }
}

void retained_index::for_each_impl(callback cb, void* ctx) const {
  for (const auto& [topic, n] : by_topic_) cb(ctx, n->msg);
}

std::size_t retained_index::erase_expired(ports::time_point now, const std::function<void(const message_ptr&)>& erased) {
  std::size_t count = 0;
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    message_ptr victim = expiries_.begin()->second->msg;  // keeps the topic alive
    if (erased) erased(victim);
    erase(victim->topic);  // also drops the expiries_ entry
    ++count;
  }
  return count;
}

std::optional<ports::time_point> retained_index::next_expiry() const {
  if (expiries_.empty()) return std::nullopt;
  return expiries_.begin()->first;
}

void retained_index::forget_expiry(const node* n) {
  if (n->msg && n->msg->expires_at) expiries_.erase({*n->msg->expires_at, n});
}

void retained_index::note_expiry(const node* n) {
  if (n->msg && n->msg->expires_at) expiries_.emplace(*n->msg->expires_at, n);
}

}  // namespace flock::core
