#include "cluster/cluster_tls.hpp"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>

namespace flock::cluster {

namespace {

namespace gx = grpc::experimental;

// Hands each handshake's peer chain to cluster_tls::verify. Synchronous:
// verifying a short chain against a few CAs is cheaper than a thread hop.
class chain_verifier final : public gx::ExternalCertificateVerifier {
 public:
  explicit chain_verifier(std::weak_ptr<cluster_tls> tls) : tls_(std::move(tls)) {}
  bool Verify(gx::TlsCustomVerificationCheckRequest* request, std::function<void(grpc::Status)>,
              grpc::Status* status) override {
    auto tls = tls_.lock();
    std::string chain(request->peer_cert_full_chain().data(), request->peer_cert_full_chain().size());
    if (chain.empty()) chain.assign(request->peer_cert().data(), request->peer_cert().size());
    const std::string who(request->target_name().data(), request->target_name().size());
    auto error = tls ? tls->verify(chain, who) : std::string("node stopping");
    *status = error.empty() ? grpc::Status::OK : grpc::Status(grpc::StatusCode::UNAUTHENTICATED, error);
    return true;
  }
  void Cancel(gx::TlsCustomVerificationCheckRequest*) override {}

 private:
  std::weak_ptr<cluster_tls> tls_;
};

unsigned reload_seconds(const options& o) {
  return static_cast<unsigned>(std::max<long long>(1, std::chrono::ceil<std::chrono::seconds>(o.tls_reload_interval).count()));
}

}  // namespace

cluster_tls::cluster_tls(const options& opts, std::shared_ptr<peer_refusals> refusals)
    : opts_(opts), refusals_(std::move(refusals)), stamps_({opts.certfile, opts.keyfile, opts.cafile}) {
  load();
}

void cluster_tls::load() {
  const auto not_after = tls::check_key_pair(opts_.certfile, opts_.keyfile);
  auto cas = std::make_shared<const tls::ca_set>(opts_.cafile);
  std::lock_guard lock(mutex_);
  cas_ = std::move(cas);
  status_.listener = "cluster";
  status_.not_after_unix = not_after;
}

std::shared_ptr<grpc::ServerCredentials> cluster_tls::server_credentials() {
  auto files = std::make_shared<gx::FileWatcherCertificateProvider>(opts_.keyfile, opts_.certfile, opts_.cafile,
                                                                      reload_seconds(opts_));
  gx::TlsServerCredentialsOptions o(files);
  o.watch_identity_key_cert_pairs();
  o.watch_root_certs();
  // Ask for the client's certificate but let chain_verifier judge it, so a
  // peer without one is refused (and counted) by us, not by the handshake.
  o.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  o.set_certificate_verifier(gx::ExternalCertificateVerifier::Create<chain_verifier>(weak_from_this()));
  return gx::TlsServerCredentials(o);
}

std::shared_ptr<grpc::ChannelCredentials> cluster_tls::channel_credentials() {
  auto files = std::make_shared<gx::FileWatcherCertificateProvider>(opts_.keyfile, opts_.certfile, opts_.cafile,
                                                                      reload_seconds(opts_));
  gx::TlsChannelCredentialsOptions o;
  o.set_certificate_provider(files);
  o.watch_identity_key_cert_pairs();
  o.watch_root_certs();
  o.set_verify_server_certs(false);  // chain_verifier does it
  o.set_check_call_host(false);      // peers are dialled by pod name or address alike
  o.set_certificate_verifier(gx::ExternalCertificateVerifier::Create<chain_verifier>(weak_from_this()));
  return gx::TlsCredentials(o);
}

std::string cluster_tls::verify(std::string_view pem_chain, std::string_view who) {
  std::shared_ptr<const tls::ca_set> cas;
  {
    std::lock_guard lock(mutex_);
    cas = cas_;
  }
  auto error = cas->verify(pem_chain);
  if (!error.empty()) refusals_->refuse(ports::peer_refusal::certificate, who, error);
  return error;
}

void cluster_tls::reload_if_changed() {
  if (!stamps_.changed()) return;
  try {
    load();
    std::lock_guard lock(mutex_);
    ++status_.reloads_ok;
    server::log::info("cluster: certificate files reloaded (", opts_.certfile, ")");
  } catch (const tls::file_error& e) {
    std::lock_guard lock(mutex_);
    ++status_.reloads_failed;
    server::log::error("cluster: certificate files changed but cannot be used, keeping the previous ones: ", e.what());
  }
}

ports::certificate_status cluster_tls::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

}  // namespace flock::cluster
