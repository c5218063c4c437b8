#include "cluster/cluster_secret.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace flock::cluster {

std::string hello_proof(const std::string& secret, hello_direction d, std::string_view name, std::uint64_t incarnation) {
  if (secret.empty()) return {};
  std::string text = d == hello_direction::hello ? "flock-hello\n" : "flock-reply\n";
  text.append(name).append("\n").append(std::to_string(incarnation));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(text.data()),
       text.size(), mac, &length);
  return std::string(reinterpret_cast<const char*>(mac), length);
}

bool hello_proof_ok(const std::string& secret, hello_direction d, std::string_view name, std::uint64_t incarnation,
                    std::string_view proof) {
  if (secret.empty()) return true;
  const auto expected = hello_proof(secret, d, name, incarnation);
  return proof.size() == expected.size() && CRYPTO_memcmp(proof.data(), expected.data(), expected.size()) == 0;
}

}  // namespace flock::cluster
