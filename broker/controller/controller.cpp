#include "broker/controller/controller.hpp"

#include <algorithm>
#include <cstring>

#include "broker/controller/command_codec.hpp"
#include "broker/controller/raft_codec.hpp"

namespace flock::controller {

// Our raft_io: its methods are C function pointers that find this through
// raft_io::impl. Completions wait in `pending` until controller::flush().
struct controller::io_state {
  controller* self = nullptr;
  raft_io io{};
  unsigned tick_ms = 0;
  std::uint64_t next_tick = 0;
  raft_io_tick_cb tick_cb = nullptr;
  raft_io_recv_cb recv_cb = nullptr;
  std::deque<std::function<void()>> pending;
  bool closed = false;
};

namespace {

// libraft names both the request type and the function raft_apply.
using apply_request = struct ::raft_apply;

controller::io_state& state_of(raft_io* io) { return *static_cast<controller::io_state*>(io->impl); }

void* copy_to_raft(std::string_view data) {
  void* p = raft_malloc(data.empty() ? 1 : data.size());
  if (p && !data.empty()) std::memcpy(p, data.data(), data.size());
  return p;
}

// A raft_snapshot allocated the way libraft frees it.
raft_snapshot* snapshot_for_raft(const raft_storage::snapshot& s) {
  auto* out = static_cast<raft_snapshot*>(raft_calloc(1, sizeof(raft_snapshot)));
  out->index = s.index;
  out->term = s.term;
  to_raft(s.configuration, out->configuration);  // our own, checked when it was stored
  out->configuration_index = s.configuration_index;
  out->bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  out->bufs[0].base = copy_to_raft(s.data);
  out->bufs[0].len = s.data.size();
  out->n_bufs = 1;
  return out;
}

}  // namespace

controller::controller(std::uint64_t id, std::string address, environment& env, raft_storage& storage,
                       controller_options options, commit_fn on_commit)
    : id_(id), address_(std::move(address)), env_(env), storage_(storage), on_commit_(std::move(on_commit)),
      io_(std::make_unique<io_state>()) {
  io_->self = this;
  auto& io = io_->io;
  io.version = 1;
  io.impl = io_.get();
  io.init = [](raft_io*, raft_id, const char*) { return 0; };
  io.close = [](raft_io* io, raft_io_close_cb cb) {
    auto& s = state_of(io);
    s.closed = true;
    s.tick_cb = nullptr;
    s.recv_cb = nullptr;
    if (cb) s.pending.push_back([io, cb] { cb(io); });
  };
  io.load = [](raft_io* io, raft_term* term, raft_id* vote, raft_snapshot** snapshot, raft_index* start_index,
               raft_entry** entries, size_t* n) {
    auto& st = state_of(io).self->storage_;
    *term = st.term;
    *vote = st.vote;
    *snapshot = st.last_snapshot ? snapshot_for_raft(*st.last_snapshot) : nullptr;
    *start_index = st.entries.empty() && st.last_snapshot ? st.last_snapshot->index + 1 : st.first_index;
    *n = st.entries.size();
    *entries = nullptr;
    if (st.entries.empty()) return 0;
    std::size_t total = 0;
    for (const auto& e : st.entries) total += e.data.size();
    auto* batch = static_cast<char*>(raft_malloc(total ? total : 1));
    *entries = static_cast<raft_entry*>(raft_malloc(st.entries.size() * sizeof(raft_entry)));
    char* cursor = batch;
    for (std::size_t i = 0; i < st.entries.size(); ++i) {
      const auto& e = st.entries[i];
      (*entries)[i] = raft_entry{e.term, e.type, {cursor, e.data.size()}, batch};
      if (!e.data.empty()) std::memcpy(cursor, e.data.data(), e.data.size());
      cursor += e.data.size();
    }
    return 0;
  };
  io.start = [](raft_io* io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv) {
    auto& s = state_of(io);
    s.tick_ms = msecs;
    s.tick_cb = tick;
    s.recv_cb = recv;
    s.next_tick = s.self->env_.now_ms() + msecs;
    return 0;
  };
  io.bootstrap = [](raft_io* io, const raft_configuration* conf) {
    auto& st = state_of(io).self->storage_;
    if (st.term != 0 || !st.entries.empty() || st.last_snapshot) return RAFT_CANTBOOTSTRAP;
    raft_buffer buf;
    if (int rv = raft_configuration_encode(conf, &buf); rv != 0) return rv;
    raft_storage::entry first{1, RAFT_CHANGE, std::string(static_cast<const char*>(buf.base), buf.len)};
    raft_free(buf.base);
    if (st.durable) {
      const ports::controller_entry e{first.term, first.type, first.data};
      if (!st.durable->append(1, std::span(&e, 1)) || !st.durable->save_term_vote(1, 0)) return RAFT_IOERR;
    }
    st.entries.push_back(std::move(first));
    st.first_index = 1;
    st.term = 1;
    st.vote = 0;
    return 0;
  };
  io.recover = [](raft_io* io, const raft_configuration* conf) {
    auto& st = state_of(io).self->storage_;
    raft_buffer buf;
    if (int rv = raft_configuration_encode(conf, &buf); rv != 0) return rv;
    raft_storage::entry conf_entry{st.term, RAFT_CHANGE, std::string(static_cast<const char*>(buf.base), buf.len)};
    raft_free(buf.base);
    if (st.durable) {
      const ports::controller_entry e{conf_entry.term, conf_entry.type, conf_entry.data};
      if (!st.durable->append(st.last_index() + 1, std::span(&e, 1))) return RAFT_IOERR;
    }
    st.entries.push_back(std::move(conf_entry));
    return 0;
  };
  io.set_term = [](raft_io* io, raft_term term) {
    auto& st = state_of(io).self->storage_;
    if (st.durable && !st.durable->save_term_vote(term, 0)) return RAFT_IOERR;
    st.term = term;
    st.vote = 0;
    return 0;
  };
  io.set_vote = [](raft_io* io, raft_id vote) {
    auto& st = state_of(io).self->storage_;
    if (st.durable && !st.durable->save_term_vote(st.term, vote)) return RAFT_IOERR;
    st.vote = vote;
    return 0;
  };
  io.send = [](raft_io* io, raft_io_send* req, const raft_message* m, raft_io_send_cb cb) {
    auto& s = state_of(io);
    const bool sent = s.self->env_.send(m->server_id, encode_raft_message(*m));
    req->cb = cb;
    if (cb) s.pending.push_back([req, cb, sent] { cb(req, sent ? 0 : RAFT_NOCONNECTION); });
    return 0;
  };
  io.append = [](raft_io* io, raft_io_append* req, const raft_entry entries[], unsigned n, raft_io_append_cb cb) {
    auto& s = state_of(io);
    auto& st = s.self->storage_;
    std::vector<ports::controller_entry> added;
    added.reserve(n);
    for (unsigned i = 0; i < n; ++i)
      added.push_back({entries[i].term, entries[i].type,
                       std::string(static_cast<const char*>(entries[i].buf.base), entries[i].buf.len)});
    // Durable before libraft hears it is: a vote or an acknowledgement may follow.
    const bool written = !st.durable || st.durable->append(st.last_index() + 1, added);
    if (written)
      for (auto& e : added) st.entries.push_back({e.term, e.type, std::move(e.data)});
    req->cb = cb;
    if (cb) s.pending.push_back([req, cb, written] { cb(req, written ? 0 : RAFT_IOERR); });
    return 0;
  };
  io.truncate = [](raft_io* io, raft_index index) {
    auto& st = state_of(io).self->storage_;
    if (st.durable && !st.durable->truncate(index)) return RAFT_IOERR;
    while (!st.entries.empty() && st.last_index() >= index) st.entries.pop_back();
    return 0;
  };
  io.snapshot_put = [](raft_io* io, unsigned trailing, raft_io_snapshot_put* req, const raft_snapshot* snap,
                       raft_io_snapshot_put_cb cb) {
    auto& s = state_of(io);
    auto& st = s.self->storage_;
    raft_storage::snapshot copy{snap->index, snap->term, from_raft(snap->configuration), snap->configuration_index, {}};
    for (unsigned i = 0; i < snap->n_bufs; ++i)
      copy.data.append(static_cast<const char*>(snap->bufs[i].base), snap->bufs[i].len);
    // The first entry kept: none with trailing 0 (an installed snapshot
    // replaces the log), else `trailing` entries behind the snapshot.
    std::uint64_t keep_from = snap->index + 1;
    if (trailing != 0)
      keep_from = std::max<std::uint64_t>(st.first_index, snap->index >= trailing ? snap->index - trailing + 1 : 1);
    bool written = true;
    if (st.durable)
      written = st.durable->save_snapshot({copy.index, copy.term, encode_configuration(copy.configuration),
                                           copy.configuration_index, copy.data},
                                          keep_from);
    if (written) {
      st.last_snapshot = std::move(copy);
      if (trailing == 0) {
        st.entries.clear();
        st.first_index = keep_from;
      } else {
        while (!st.entries.empty() && st.first_index < keep_from) {
          st.entries.pop_front();
          ++st.first_index;
        }
      }
    }
    req->cb = cb;
    if (cb) s.pending.push_back([req, cb, written] { cb(req, written ? 0 : RAFT_IOERR); });
    return 0;
  };
  io.snapshot_get = [](raft_io* io, raft_io_snapshot_get* req, raft_io_snapshot_get_cb cb) {
    auto& s = state_of(io);
    req->cb = cb;
    s.pending.push_back([&s, req, cb] {
      const auto& st = s.self->storage_;
      cb(req, st.last_snapshot ? snapshot_for_raft(*st.last_snapshot) : nullptr, st.last_snapshot ? 0 : RAFT_NOTFOUND);
    });
    return 0;
  };
  io.time = [](raft_io* io) -> raft_time { return state_of(io).self->env_.now_ms(); };
  io.random = [](raft_io* io, int min, int max) { return state_of(io).self->env_.random(min, max); };
  io.async_work = nullptr;

  fsm_.version = 1;
  fsm_.data = this;
  fsm_.apply = [](raft_fsm* fsm, const raft_buffer* buf, void** result) {
    auto* self = static_cast<controller*>(fsm->data);
    *result = nullptr;
    // A committed entry that does not decode is skipped by every node alike.
    auto c = decode_command(std::string_view(static_cast<const char*>(buf->base), buf->len));
    if (!c) return 0;
    const auto outcome = self->state_.apply(*c);
    // libraft counts an entry as applied once this returns.
    if (self->on_commit_) self->on_commit_(self->raft_.last_applied + 1, *c, outcome);
    return 0;
  };
  fsm_.snapshot = [](raft_fsm* fsm, raft_buffer* bufs[], unsigned* n) {
    auto* self = static_cast<controller*>(fsm->data);
    const auto bytes = encode_state(self->state_);
    *bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
    if (!*bufs) return RAFT_NOMEM;
    (*bufs)[0].base = copy_to_raft(bytes);
    (*bufs)[0].len = bytes.size();
    *n = 1;
    return 0;
  };
  fsm_.restore = [](raft_fsm* fsm, raft_buffer* buf) {
    auto* self = static_cast<controller*>(fsm->data);
    auto s = decode_state(std::string_view(static_cast<const char*>(buf->base), buf->len));
    if (!s) return RAFT_MALFORMED;
    self->state_ = std::move(*s);
    raft_free(buf->base);
    return 0;
  };

  if (raft_init(&raft_, &io_->io, &fsm_, id_, address_.c_str()) != 0) throw std::runtime_error("raft_init failed");
  raft_.data = this;
  raft_set_election_timeout(&raft_, options.election_timeout_ms);
  raft_set_heartbeat_timeout(&raft_, options.heartbeat_timeout_ms);
  raft_set_snapshot_threshold(&raft_, options.snapshot_threshold);
  raft_set_snapshot_trailing(&raft_, options.snapshot_trailing);
  raft_set_install_snapshot_timeout(&raft_, options.install_snapshot_timeout_ms);
  // A server cut off does not raise terms that disrupt the leader on return.
  raft_set_pre_vote(&raft_, true);
}

controller::~controller() {
  raft_close(&raft_, [](raft* r) { static_cast<controller*>(r->data)->closed_ = true; });
  flush();
}

void controller::flush() {
  while (!io_->pending.empty()) {
    auto fn = std::move(io_->pending.front());
    io_->pending.pop_front();
    fn();
  }
}

bool controller::bootstrap(const std::vector<raft_server_info>& servers) {
  raft_configuration conf;
  if (!to_raft(servers, conf)) return false;
  const int rv = raft_bootstrap(&raft_, &conf);
  raft_configuration_close(&conf);
  return rv == 0;
}

bool controller::start() {
  const int rv = raft_start(&raft_);
  flush();
  started_ = rv == 0;
  return started_;
}

void controller::tick() {
  if (!io_->tick_cb) return;
  const auto now = env_.now_ms();
  if (now < io_->next_tick) return;
  io_->next_tick = now + io_->tick_ms;
  io_->tick_cb(&io_->io);
  flush();
}

void controller::receive(std::uint64_t from, std::string_view from_address, std::string_view bytes) {
  if (!io_->recv_cb) return;
  auto m = decode_raft_message(bytes);
  if (!m) return;  // malformed: dropped, as a lost message (libraft resends)
  const std::string address(from_address);
  m->get().server_id = from;
  m->get().server_address = address.c_str();
  io_->recv_cb(&io_->io, m->release());
  flush();
}

bool controller::propose(const replication::command& c) {
  if (!started_ || raft_state(&raft_) != RAFT_LEADER || raft_.transfer != nullptr) return false;
  const auto bytes = encode_command(c);
  raft_buffer buf{copy_to_raft(bytes), bytes.size()};
  auto* req = new apply_request{};
  const int rv = raft_apply(&raft_, req, &buf, 1, [](apply_request* r, int, void*) { delete r; });
  if (rv != 0) {
    // Not appended: the buffer is still ours (libraft freed it only when it
    // failed after appending, which it does not report apart).
    if (rv == RAFT_NOTLEADER) raft_free(buf.base);
    delete req;
    return false;
  }
  flush();
  return true;
}

namespace {
void change_done(raft_change* req, int) { delete req; }
}  // namespace

bool controller::add_server(std::uint64_t id, const std::string& address) {
  auto* req = new ::raft_change{};
  if (raft_add(&raft_, req, id, address.c_str(), change_done) != 0) {
    delete req;
    return false;
  }
  flush();
  return true;
}

bool controller::assign_role(std::uint64_t id, int role) {
  auto* req = new ::raft_change{};
  if (raft_assign(&raft_, req, id, role, change_done) != 0) {
    delete req;
    return false;
  }
  flush();
  return true;
}

bool controller::remove_server(std::uint64_t id) {
  auto* req = new ::raft_change{};
  if (raft_remove(&raft_, req, id, change_done) != 0) {
    delete req;
    return false;
  }
  flush();
  return true;
}

bool controller::leads() const { return started_ && raft_state(const_cast<raft*>(&raft_)) == RAFT_LEADER; }

std::uint64_t controller::leader() const {
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(const_cast<raft*>(&raft_), &id, &address);
  return id;
}

std::uint64_t controller::term() const { return raft_.current_term; }
std::uint64_t controller::commit_index() const { return raft_.commit_index; }
std::uint64_t controller::applied_index() const { return raft_.last_applied; }
std::vector<raft_server_info> controller::configuration() const { return from_raft(raft_.configuration); }
std::string controller::errmsg() const { return raft_errmsg(const_cast<raft*>(&raft_)); }

}  // namespace flock::controller
