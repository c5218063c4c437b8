#include "broker/auth/password_file.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace flock::auth {

namespace {

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string pbkdf2_sha512(std::string_view password, std::string_view salt, int iterations) {
  std::string out(64, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                    EVP_sha512(), 64, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string salted_sha512(std::string_view password, std::string_view salt) {
  std::string out(64, '\0');
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr);
  EVP_DigestUpdate(ctx, password.data(), password.size());
  EVP_DigestUpdate(ctx, salt.data(), salt.size());
  EVP_DigestFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()), &len);
  EVP_MD_CTX_free(ctx);
  out.resize(len);
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    auto pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return parts;
    start = pos + 1;
  }
}

}  // namespace

password_file password_file::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read password file");
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

password_file password_file::parse(std::string_view text, const std::string& origin) {
  password_file file;
  int line_no = 0;
  for (auto line : split(text, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    auto fail = [&](const char* why) {
      return std::runtime_error(origin + ":" + std::to_string(line_no) + ": " + why);
    };
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) throw fail("expected user:hash");
    std::string user(line.substr(0, colon));
    auto fields = split(line.substr(colon + 1), '$');  // "", kind, ...
    entry e;
    if (fields.size() == 4 && fields[0].empty() && fields[1] == "6") {
      e.kind = 6;
      auto salt = base64_decode(fields[2]);
      auto hash = base64_decode(fields[3]);
      if (!salt || !hash) throw fail("bad base64 in $6$ hash");
      e.salt = *salt;
      e.hash = *hash;
    } else if (fields.size() == 5 && fields[0].empty() && fields[1] == "7") {
      e.kind = 7;
      try {
        e.iterations = std::stoi(std::string(fields[2]));
      } catch (...) {
        throw fail("bad iteration count in $7$ hash");
      }
      if (e.iterations <= 0) throw fail("bad iteration count in $7$ hash");
      auto salt = base64_decode(fields[3]);
      auto hash = base64_decode(fields[4]);
      if (!salt || !hash) throw fail("bad base64 in $7$ hash");
      e.salt = *salt;
      e.hash = *hash;
    } else {
      throw fail("unsupported hash (expected $6$ or $7$ as written by mosquitto_passwd or flockctl passwd)");
    }
    file.users_[user] = std::move(e);
  }
  return file;
}

bool password_file::check(std::string_view username, std::optional<std::string_view> password) const {
  auto it = users_.find(std::string(username));
  if (it == users_.end() || !password) return false;
  const entry& e = it->second;
  std::string computed = e.kind == 7 ? pbkdf2_sha512(*password, e.salt, e.iterations) : salted_sha512(*password, e.salt);
  return computed.size() == e.hash.size() && CRYPTO_memcmp(computed.data(), e.hash.data(), computed.size()) == 0;
}

std::string password_file::hash_password(std::string_view password, int iterations) {
  std::string salt(12, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size()));
  return "$7$" + std::to_string(iterations) + "$" + base64_encode(salt) + "$" +
         base64_encode(pbkdf2_sha512(password, salt, iterations));
}

}  // namespace flock::auth
