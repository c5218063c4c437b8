#pragma once
// The optional shared cluster secret (cluster_secret_file). Every hello and
// hello reply carries an HMAC-SHA256 of the secret over the sender's name,
// incarnation and direction: the receiver refuses a stream whose proof does
// not match before it learns anything from it, and the dialler drops a reply
// that does not prove the secret (so a process squatting on a peer's address
// gets no forwarded messages). Over TLS this is a second factor beside the
// certificate; over plaintext (cluster_tls off) it keeps out a node started
// with the wrong configuration, not an attacker who can read the traffic.
#include <cstdint>
#include <string>
#include <string_view>

namespace flock::cluster {

enum class hello_direction { hello, reply };

// Empty when `secret` is empty (no secret configured).
std::string hello_proof(const std::string& secret, hello_direction d, std::string_view name, std::uint64_t incarnation);
// Constant-time: true when no secret is configured or `proof` matches.
bool hello_proof_ok(const std::string& secret, hello_direction d, std::string_view name, std::uint64_t incarnation,
                    std::string_view proof);

}  // namespace flock::cluster
