#include "broker/server/tls.hpp"

#include "broker/server/asio.hpp"

#include <boost/asio/ssl/context.hpp>
#include <fstream>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace flock::server {

namespace {

// The first queued OpenSSL error as text (and the queue cleared).
std::string openssl_error() {
  unsigned long code = ERR_get_error();
  std::string text = "unknown OpenSSL error";
  if (code != 0) {
    const char* reason = ERR_reason_error_string(code);
    text = reason ? reason : "OpenSSL error " + std::to_string(code);
  }
  ERR_clear_error();
  return text;
}

void require_readable(const char* key, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw tls_error(std::string(key) + " '" + path + "': cannot read file");
}

int min_protocol(const std::string& version) {
  if (version.empty() || version == "tlsv1.2") return TLS1_2_VERSION;
  if (version == "tlsv1.3") return TLS1_3_VERSION;
  throw tls_error("tls_version: expected tlsv1.2 or tlsv1.3, got '" + version + "'");
}

}  // namespace

void check_tls_options(const tls_options& o) {
  if (o.certfile.empty()) throw tls_error("certfile is required for mqtts and wss listeners");
  if (o.keyfile.empty()) throw tls_error("keyfile is required for mqtts and wss listeners");
  if (o.require_certificate && o.cafile.empty())
    throw tls_error("require_certificate needs cafile (the CA that signs client certificates)");
  if (o.use_identity_as_username && !o.require_certificate)
    throw tls_error("use_identity_as_username needs require_certificate: true");
  min_protocol(o.tls_version);
}

std::shared_ptr<boost::asio::ssl::context> make_tls_context(const tls_options& o) {
  check_tls_options(o);
  namespace ssl = boost::asio::ssl;
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, min_protocol(o.tls_version));
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // An idle TLS connection gives its OpenSSL record buffers back.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);

  require_readable("certfile", o.certfile);
  if (SSL_CTX_use_certificate_chain_file(native, o.certfile.c_str()) != 1)
    throw tls_error("certfile '" + o.certfile + "': " + openssl_error());
  require_readable("keyfile", o.keyfile);
  if (SSL_CTX_use_PrivateKey_file(native, o.keyfile.c_str(), SSL_FILETYPE_PEM) != 1)
    throw tls_error("keyfile '" + o.keyfile + "': " + openssl_error());
  if (SSL_CTX_check_private_key(native) != 1)
    throw tls_error("keyfile '" + o.keyfile + "' does not match certfile '" + o.certfile + "'");
  if (!o.cafile.empty()) {
    require_readable("cafile", o.cafile);
    if (SSL_CTX_load_verify_locations(native, o.cafile.c_str(), nullptr) != 1)
      throw tls_error("cafile '" + o.cafile + "': " + openssl_error());
    // Tell clients which CAs we accept, so they pick the right certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.cafile.c_str()))
      SSL_CTX_set_client_CA_list(native, names);
    ERR_clear_error();
  }
  if (o.require_certificate) SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  else SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  if (!o.ciphers.empty() && SSL_CTX_set_cipher_list(native, o.ciphers.c_str()) != 1)
    throw tls_error("ciphers '" + o.ciphers + "': " + openssl_error());
  return ctx;
}

}  // namespace flock::server
