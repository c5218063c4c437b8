#pragma once
// Mutual TLS on the cluster port (docs/clustering.md, "Security"). Every
// node presents its certificate both when it accepts a stream and when it
// dials one, and accepts only peers whose chain leads to a CA of `cafile`:
// we verify chains ourselves (gRPC is told not to), so that each refusal is
// counted and logged with its reason. No host name check: a node is
// whatever holds a certificate of the cluster's CA, whatever address it
// was dialled at.
//
// Files are re-read when they change (cert-manager rotates them in place):
// gRPC's file watcher swaps the node's own certificate for new handshakes,
// and reload_if_changed() swaps the CAs and the reported expiry. Streams
// already up keep the certificates they were opened with.
//
// Threads: verify() from gRPC's handshake threads; reload_if_changed() and
// status() from the node's thread; all guarded. Lifetime: the node's.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "broker/ports/cluster.hpp"
#include "broker/tls/certificate_files.hpp"
#include "cluster/options.hpp"
#include "cluster/peer_refusals.hpp"

namespace grpc {
class ServerCredentials;
class ChannelCredentials;
}  // namespace grpc

namespace flock::cluster {

class cluster_tls : public std::enable_shared_from_this<cluster_tls> {
 public:
  // Reads and checks the files: throws tls::file_error naming the bad one.
  cluster_tls(const options& opts, std::shared_ptr<peer_refusals> refusals);

  std::shared_ptr<grpc::ServerCredentials> server_credentials();
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials();

  // Empty when the peer's chain verifies; else why not (and counted).
  std::string verify(std::string_view pem_chain, std::string_view who);
  // Re-reads the files if they changed; a bad new set is logged and counted,
  // and the last good one stays in use.
  void reload_if_changed();
  ports::certificate_status status() const;

 private:
  void load();

  const options opts_;
  std::shared_ptr<peer_refusals> refusals_;
  tls::file_stamps stamps_;
  mutable std::mutex mutex_;
  std::shared_ptr<const tls::ca_set> cas_;
  ports::certificate_status status_;
};

}  // namespace flock::cluster
