// See coalesce.hpp. Works on ops, before encoding, so a dropped message's
// payload is never serialised. Keys are small structs (ids by value, names
// by view into the ops) rather than encoded strings: a 16-byte queue key
// would not fit std::string's inline buffer and cost an allocation per op.
#include "storage/coalesce.hpp"

#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "storage/kv_backend.hpp"

namespace flock::storage {
namespace {

struct op_key {
  column col = column::meta;
  std::uint64_t a = 0;  // session id or message id
  std::uint64_t b = 0;  // message id or packet id
  std::string_view s;   // filter or topic
  bool operator==(const op_key&) const = default;
};

struct op_key_hash {
  std::size_t operator()(const op_key& k) const noexcept {
    std::size_t h = std::hash<std::string_view>{}(k.s);
    h ^= (k.a * 0x9E3779B97F4A7C15ULL) + (k.b * 0xC2B2AE3D27D4EB4FULL) + static_cast<std::size_t>(k.col);
    return h;
  }
};

struct op_class {
  op_key key;
  bool put = false;
  bool never_drop = false;
  bool written_once = false;  // rule 2 applies
};

op_key ids(column c, std::uint64_t a, std::uint64_t b = 0) { return {c, a, b, {}}; }
op_key named(column c, std::uint64_t a, std::string_view s) { return {c, a, 0, s}; }
op_class put(op_key k, bool written_once = false) { return {k, true, false, written_once}; }
op_class del(op_key k, bool written_once = false) { return {k, false, false, written_once}; }

op_class classify(const ports::store_op& op) {
  return std::visit(
      [](const auto& o) -> op_class {
        using T = std::decay_t<decltype(o)>;
        using namespace ports;
        using enum column;
        if constexpr (std::is_same_v<T, session_put>) return put(ids(sessions, o.session_id));
        else if constexpr (std::is_same_v<T, session_delete>) return {ids(sessions, o.session_id), false, true, false};
        else if constexpr (std::is_same_v<T, subscription_put>) return put(named(subscriptions, o.session_id, o.filter));
        else if constexpr (std::is_same_v<T, subscription_delete>) return del(named(subscriptions, o.session_id, o.filter));
        else if constexpr (std::is_same_v<T, message_put>) return put(ids(messages, o.msg->id), true);
        else if constexpr (std::is_same_v<T, message_delete>) return del(ids(messages, o.message_id), true);
        else if constexpr (std::is_same_v<T, queued_put>) return put(ids(queue, o.session_id, o.message_id), true);
        else if constexpr (std::is_same_v<T, queued_delete>) return del(ids(queue, o.session_id, o.message_id), true);
        else if constexpr (std::is_same_v<T, inflight_put>) return put(ids(inflight, o.session_id, o.message_id));
        else if constexpr (std::is_same_v<T, inflight_delete>) return del(ids(inflight, o.session_id, o.message_id));
        else if constexpr (std::is_same_v<T, incoming_put>) return put(ids(incoming, o.session_id, o.packet_id));
        else if constexpr (std::is_same_v<T, incoming_delete>) return del(ids(incoming, o.session_id, o.packet_id));
        else if constexpr (std::is_same_v<T, retained_put>) return put(named(retained, 0, o.msg->topic));
        else if constexpr (std::is_same_v<T, retained_delete>) return del(named(retained, 0, o.topic));
        else if constexpr (std::is_same_v<T, partition_drop>) return {ids(meta, o.partition), false, true, false};
        else static_assert(sizeof(T) == 0, "every store_op is classified");
      },
      op);
}

struct key_state {
  std::size_t last = 0;
  bool has_put = false;
};

}  // namespace

std::size_t coalesce(std::vector<ports::store_op>& ops) {
  const std::size_t n = ops.size();
  if (n < 2) return 0;
  std::vector<op_class> cls;
  cls.reserve(n);
  std::vector<key_state*> state(n);
  std::unordered_map<op_key, key_state, op_key_hash> by_key;
  by_key.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    cls.push_back(classify(ops[i]));
    auto& st = by_key[cls[i].key];
    st.last = i;
    st.has_put = st.has_put || cls[i].put;
    state[i] = &st;
  }
  std::vector<bool> keep(n);
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& st = *state[i];
    bool k = cls[i].never_drop || st.last == i;                                    // rule 1
    if (k && !cls[i].never_drop && cls[i].written_once && !cls[i].put && st.has_put) k = false;  // rule 2
    keep[i] = k;
    dropped += k ? 0 : 1;
  }
  if (dropped == 0) return 0;
  std::size_t out = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (keep[i]) {
      if (out != i) ops[out] = std::move(ops[i]);
      ++out;
    }
  ops.resize(out);
  return dropped;
}

}  // namespace flock::storage
