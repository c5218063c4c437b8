#pragma once
// TLS settings of one listener and the OpenSSL context built from them.
// The context is built once at start-up (bad files are a configuration error)
// and shared, read-only, by every connection of the listener on every worker
// (OpenSSL allows SSL_new from one SSL_CTX on many threads).
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace flock::server {

struct tls_options {
  std::string certfile;  // PEM server certificate (chain); required
  std::string keyfile;   // PEM private key of certfile; required
  std::string cafile;    // PEM CA(s) that sign client certificates
  std::string ciphers;   // OpenSSL cipher list for TLS 1.2; empty: OpenSSL's default
  std::string tls_version;  // minimum: "tlsv1.2" (default when empty) or "tlsv1.3"
  bool require_certificate = false;       // mTLS: refuse clients without a cafile-signed cert
  bool use_identity_as_username = false;  // the client cert's CN is the user name

  // True when any key is set (used to refuse TLS keys on plain listeners).
  bool any_set() const {
    return !certfile.empty() || !keyfile.empty() || !cafile.empty() || !ciphers.empty() || !tls_version.empty() ||
           require_certificate || use_identity_as_username;
  }
};

// Bad TLS settings or unreadable/invalid certificate files. A configuration
// error: flockd prints the one line and exits 2.
class tls_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Checks the combination of keys (not the files). Throws tls_error.
void check_tls_options(const tls_options& options);
// Loads the files into a server context. Throws tls_error naming the file.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const tls_options& options);

}  // namespace flock::server
