#pragma once
// One peer node as this node sees it: its identity and liveness, our stream
// to it (the outbox, three lanes in one batch per write: the control lane,
// ordered and never dropped while the stream is up; the bounded data lane of
// forwarded publishes, with the QoS 1/2 copies sent but not yet acknowledged
// resent after a broken stream; the bulk lane, messages in no particular
// order that may take long: a retained snapshot), and what it told
// us (its routes, the last forwarded publish applied from it).
//
// Each write carries the control lane first, then forwards, then bulk
// messages, at most options::batch_bytes of them, and bulk gets a quarter of
// a batch while forwards wait: a heartbeat waits for at most the one write
// in flight, whatever is queued behind it, and a snapshot moves on under
// full forwarding load. One write at a time, so one thread at a time
// encodes (the one that finished the last write, or the first producer
// after an idle spell).
//
// Threads: the outbox is locked (workers enqueue, the transport's threads
// write and acknowledge); the rest belongs to the node's thread unless
// marked. Lives while the node knows that name (a restart of the same node
// keeps it); a node gone long enough is forgotten and its slot reused
// (node::forget_departed), and the object lives on while a stream handler
// or a late event still holds it.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/ports/cluster.hpp"
#include "cluster/options.hpp"
#include "cluster/replication_lane.hpp"
#include "cluster/route_replica.hpp"
#include "cluster/transport.hpp"

namespace flock::cluster {

struct outbox_stats {
  std::atomic<std::uint64_t> forwarded{0};
  std::atomic<std::uint64_t> dropped_qos0{0};       // no link, or the outbox was full
  std::atomic<std::uint64_t> dropped_full{0};       // QoS 1/2 refused by a full outbox
  std::atomic<std::uint64_t> unconfirmed_acks{0};   // publisher acks released without the peer's
};

class peer : public std::enable_shared_from_this<peer> {
 public:
  peer(ports::peer_id id, std::string name, const options& opts);

  const ports::peer_id id;
  const std::string name;

  // --- outbox (any thread) ---
  // A control frame; dropped when the stream is down (what it carried is
  // sent again on the next connect: snapshots, or a claim times out).
  void send(wire::Frame frame);
  void send(std::vector<wire::Frame> frames);
  // Our retained messages, on the bulk lane: their order does not matter
  // (the peer keeps the newest stamp) and they may be many, so the lane
  // holds references and encodes them as it writes. Dropped with the stream
  // (sent again on the next connect).
  void send_retained(std::vector<core::message_ptr> messages);
  // A bulk frame (a snapshot chunk), behind forwards; dropped with the
  // stream.
  void send_bulk(wire::Frame frame);
  // Bulk messages not yet written.
  bool bulk_pending() const;
  // A group of our store's parts this peer follows (replication lane:
  // after the control lane, kept until acknowledged, sent again on a new
  // stream). False when the lane overflowed: it was emptied and the peer
  // is lagging.
  bool replicate(std::uint64_t group, std::vector<ports::replicated_part_ptr> parts);
  void on_replicate_ack(std::uint64_t group);
  std::size_t replication_backlog() const;
  // Whether the follower is lagging: acknowledgements have waited for it
  // longer than `timeout`, or its lane overflowed since the last call.
  bool replication_lagging(ports::time_point now, ports::duration timeout);
  // Node thread: it refused a part since the owner last looked.
  bool replication_refused = false;
  // A forwarded publish. Never blocks: QoS 0 is dropped when there is no
  // stream or no room; QoS 1/2 waits in the outbox (bounded) and `ack` is
  // confirmed when the peer has it durable or it cannot be confirmed.
  void forward(const core::message_ptr& msg, std::vector<ports::shared_pick> picks, const core::remote_ack_ptr& ack);
  void on_ack(std::uint64_t seq);
  void on_written();
  // The stream is up (the peer answered our hello): resend what it did not
  // apply, then everything queued. Node thread.
  void connected(std::shared_ptr<outbound_link> link, std::uint64_t applied_seq, std::uint32_t protocol);
  // The protocol it reads (its HelloReply's; 1 until it answered): what is
  // sent to it is encoded in that version. Any thread.
  std::uint32_t protocol() const { return protocol_.load(std::memory_order_acquire); }
  // The stream is gone: publishers stop waiting for this peer; unacknowledged
  // copies stay for the next stream. Node thread.
  void disconnected();
  // Publisher acks held longer than ack_timeout are released. Node thread.
  void expire_acks(ports::time_point now);
  bool ready() const;
  std::size_t outbox_size() const;
  // Nothing queued on the control lane and no write in flight (shutdown waits for it).
  bool control_idle() const;
  outbox_stats stats;

  // Forgotten by the node (its slot may hold another node now): late events
  // of its streams are ignored. Set on the node's thread, read anywhere.
  std::atomic<bool> retired{false};

  // --- node thread ---
  ports::time_point known_since{};  // when the slot was made
  bool ever_up = false;             // forgotten sooner if never reachable
  std::string address;             // where it accepts streams (its advertised address)
  std::uint64_t incarnation = 0;   // as of its last hello
  bool up = false;                 // reachable both ways and heard from lately
  bool left = false;               // said Leave; down until it says hello again
  std::shared_ptr<outbound_link> link;  // also while connecting
  bool handshaken = false;
  ports::time_point dial_started{};
  ports::time_point next_dial{};
  ports::time_point last_heartbeat{};
  std::chrono::milliseconds backoff{100};
  route_replica routes;            // what it announced
  // From its route change (its clock) to applied here, per delta; read by
  // scrapes from any thread.
  core::latency_histogram route_lag{core::latency_bounds_us};
  ports::time_point last_resync{};
  int retained_mismatches = 0;     // heartbeats in a row whose retained digest differed
  ports::time_point last_retained_push{};
  std::shared_ptr<inbound_link> inbound;  // its stream to us, to close when it is declared down
  ports::store_identity store;     // its data directory (when it runs the replication controller)
  int controller = 0;              // wire::ControllerState as it last said

  // Any thread: the last time we heard from it (either stream).
  void heard(ports::time_point now) { last_heard_.store(now.time_since_epoch().count(), std::memory_order_relaxed); }
  ports::time_point last_heard() const { return ports::time_point(ports::duration(last_heard_.load(std::memory_order_relaxed))); }

  // Receiving side (transport threads; locked): the last forwarded publish
  // applied from the peer's incarnation `inc`. Returns false for a duplicate.
  bool accept_forward(std::uint64_t inc, std::uint64_t seq);
  std::uint64_t applied_seq(std::uint64_t inc);
  // The last forwarded publish from incarnation `inc` that went through
  // the core (routed, and durable where it had to be). Any thread; locked.
  void note_routed(std::uint64_t inc, std::uint64_t seq);
  std::uint64_t routed_seq(std::uint64_t inc);
  // Sending side: the sequence number of the last publish queued for this
  // peer (0: none yet). Any thread.
  std::uint64_t last_forward_seq() const;

  // Under the node's routes lock: our deltas go to this peer.
  bool routes_live = false;

 private:
  struct outgoing {
    std::uint64_t seq = 0;
    core::message_ptr msg;
    std::vector<ports::shared_pick> picks;
    core::remote_ack_ptr ack;  // reset once confirmed
    ports::time_point sent_at{};
    std::size_t bytes = 0;
  };
  void pump();
  void confirm(outgoing& o, bool unconfirmed);
  bool full(std::size_t more_bytes) const;

  const options& opts_;
  mutable std::mutex mutex_;
  std::shared_ptr<outbound_link> writer_;  // set while the stream is up
  bool writing_ = false;
  std::deque<wire::Frame> control_;
  replication_lane replication_{opts_.max_outbox_bytes};
  std::deque<core::message_ptr> bulk_;
  std::deque<wire::Frame> bulk_frames_;
  std::deque<outgoing> resend_;   // unacknowledged from an earlier stream, first
  std::deque<outgoing> data_;     // not yet sent
  std::deque<outgoing> unacked_;  // sent on this stream, QoS 1/2
  std::uint64_t next_seq_ = 1;
  std::size_t bytes_ = 0;

  std::atomic<ports::duration::rep> last_heard_{0};
  std::atomic<std::uint32_t> protocol_{1};
  std::mutex inbound_mutex_;
  std::uint64_t applied_inc_ = 0;
  std::uint64_t applied_seq_ = 0;
  std::uint64_t routed_inc_ = 0;
  std::uint64_t routed_seq_ = 0;
};

}  // namespace flock::cluster
