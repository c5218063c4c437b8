#include "broker/core/broker.hpp"

#include "broker/core/broker_impl.hpp"
#include "broker/core/front_door.hpp"

namespace flock::core {

broker::impl::impl(broker_config cfg, ports::executor& ex, ports::clock& clk)
    : config(std::move(cfg)),
      executor(ex),
      clock(clk),
      started(clk.now()),
      stats(ex.worker_count()),
      cluster(make_single_node(*this)),
      timed(ex.worker_count()) {
  for (std::uint32_t w = 0; w < ex.worker_count(); ++w) mailboxes.push_back(std::make_unique<delivery_mailbox>());
}

broker::broker(broker_config config, ports::executor& executor, ports::clock& clock)
    : impl_(std::make_unique<impl>(std::move(config), executor, clock)), front_(std::make_unique<front_door>(*impl_)) {}

broker::~broker() = default;

const broker_config& broker::config() const { return impl_->config; }
broker_metrics broker::metrics() { return impl_->metrics(); }
std::optional<queue_reading> broker::queue_depths(std::chrono::milliseconds timeout) {
  return impl_->queue_depths(timeout);
}

void broker::set_authenticator(const ports::authenticator* auth) { impl_->authenticator = auth; }
void broker::set_authorizer(const ports::authorizer* authz) { impl_->authorizer = authz; }
void broker::set_store(ports::store* store) { impl_->persistence = journal(store); }
void broker::set_cluster_side(std::unique_ptr<cluster_side> side) { impl_->cluster = std::move(side); }
void broker::restore(ports::restored_state state) { impl_->restore(std::move(state)); }

void broker::on_tick(ports::worker_id worker) { impl_->on_tick(worker); }

void broker::impl::on_tick(ports::worker_id w) {
  const auto now = this->now();
  // Offline sessions of this worker: delayed wills and expiry.
  std::vector<std::shared_ptr<session>> due;
  for (auto it = timed[w].begin(); it != timed[w].end();) {
    session& s = *it->first;
    if (s.ended() || s.online() || s.owner() != w) {
      it = timed[w].erase(it);
      continue;
    }
    if ((s.will() && s.will()->due <= now) || (s.expires_at() && *s.expires_at() <= now)) due.push_back(it->second);
    ++it;
  }
  for (auto& s : due) {
    const bool expires = s->expires_at() && *s->expires_at() <= now;
    if (s->will() && s->will()->due <= now) {
      message_ptr msg = s->will()->msg;
      s->will().reset();
      publish_will(msg);
      if (!expires) s->save(false);  // the stored record no longer carries the will
    }
    if (expires) end_session(s);
    else if (!s->will() && !s->expires_at()) timed[w].erase(s.get());
  }
  if (w == 0) {
    {
      std::unique_lock lock(retained_mutex);
      retained.erase_expired(now, [&](const message_ptr& m) { cluster->retained_expired(m); });
      cluster->tick(now);
    }
    if (config.sys_interval.count() > 0 && (last_sys == ports::time_point{} || now - last_sys >= config.sys_interval)) {
      last_sys = now;
      publish_sys();
    }
  }
}

}  // namespace flock::core
