#pragma once
// Certificate files as operators and cert-manager provide them (PEM): what
// they hold, whether they changed since last read, and a set of CAs that
// verifies a peer's chain. Used by the MQTT listeners and the cluster port.
// Plain functions and values: no threads, no state beyond what they return.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flock::tls {

// A file that is missing, unreadable, not PEM, or a key that does not match
// its certificate. The message names the file.
class file_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads `certfile` (a chain, leaf first) and `keyfile` and checks that the
// key belongs to the leaf. Returns the leaf's notAfter as unix seconds.
std::int64_t check_key_pair(const std::string& certfile, const std::string& keyfile);

// What a set of files looked like when last read: a change of any of them
// (content replaced, a Kubernetes Secret's symlink swapped) changes this.
class file_stamps {
 public:
  explicit file_stamps(std::vector<std::string> paths);
  // True when some file differs from the last call (or from construction);
  // remembers the new state.
  bool changed();

 private:
  std::vector<std::string> read() const;
  std::vector<std::string> paths_;
  std::vector<std::string> last_;
};

// The CAs of a PEM file: verifies peer certificate chains against them.
// Immutable once built; safe to share between threads.
class ca_set {
 public:
  // Throws file_error when the file cannot be read or holds no certificate.
  explicit ca_set(const std::string& cafile);
  ~ca_set();
  ca_set(const ca_set&) = delete;
  ca_set& operator=(const ca_set&) = delete;

  // `pem_chain`: the peer's certificate, then any intermediates. Returns an
  // empty string when the chain leads to one of our CAs and is valid now,
  // else why not ("no certificate", "certificate has expired", ...).
  std::string verify(std::string_view pem_chain) const;

 private:
  struct store;
  std::unique_ptr<store> store_;
};

}  // namespace flock::tls
