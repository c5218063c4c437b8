#include "broker/tls/certificate_files.hpp"

#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

namespace flock::tls {

namespace {

template <class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* p) const { Free(p); }
};
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO, BIO_free_all>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "not PEM";
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : "OpenSSL error " + std::to_string(code);
}

bio_ptr open_file(const char* key, const std::string& path) {
  bio_ptr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    throw file_error(std::string(key) + " '" + path + "': cannot read file");
  }
  return bio;
}

// Every certificate in a PEM text, in order.
std::vector<x509_ptr> read_chain(BIO* bio) {
  std::vector<x509_ptr> chain;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) chain.emplace_back(cert);
  ERR_clear_error();  // the read past the last certificate
  return chain;
}

std::int64_t not_after(X509* cert) {
  struct tm t {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &t) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&t));
}

}  // namespace

std::int64_t check_key_pair(const std::string& certfile, const std::string& keyfile) {
  ERR_clear_error();
  auto cert_bio = open_file("certfile", certfile);
  auto chain = read_chain(cert_bio.get());
  if (chain.empty()) throw file_error("certfile '" + certfile + "': no PEM certificate in it");
  auto key_bio = open_file("keyfile", keyfile);
  pkey_ptr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw file_error("keyfile '" + keyfile + "': " + openssl_error());
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    throw file_error("keyfile '" + keyfile + "' does not match certfile '" + certfile + "'");
  }
  return not_after(chain.front().get());
}

file_stamps::file_stamps(std::vector<std::string> paths) : paths_(std::move(paths)), last_(read()) {}

std::vector<std::string> file_stamps::read() const {
  std::vector<std::string> out;
  for (const auto& path : paths_) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      out.emplace_back("missing");
      continue;
    }
    out.push_back(std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) +
                  ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
  }
  return out;
}

bool file_stamps::changed() {
  auto now = read();
  if (now == last_) return false;
  last_ = std::move(now);
  return true;
}

struct ca_set::store {
  X509_STORE* cas = X509_STORE_new();
  ~store() { X509_STORE_free(cas); }
};

ca_set::ca_set(const std::string& cafile) : store_(std::make_unique<store>()) {
  ERR_clear_error();
  auto bio = open_file("cafile", cafile);
  auto cas = read_chain(bio.get());
  if (cas.empty()) throw file_error("cafile '" + cafile + "': no PEM certificate in it");
  for (auto& ca : cas)
    if (X509_STORE_add_cert(store_->cas, ca.get()) != 1) ERR_clear_error();  // a duplicate is harmless
}

ca_set::~ca_set() = default;

std::string ca_set::verify(std::string_view pem_chain) const {
  if (pem_chain.empty()) return "no certificate";
  bio_ptr bio(BIO_new_mem_buf(pem_chain.data(), static_cast<int>(pem_chain.size())));
  auto chain = read_chain(bio.get());
  if (chain.empty()) return "no certificate";
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (std::size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted, chain[i].get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  std::string error;
  if (!ctx || X509_STORE_CTX_init(ctx, store_->cas, chain.front().get(), untrusted) != 1) {
    error = "cannot verify: " + openssl_error();
  } else if (X509_verify_cert(ctx) != 1) {
    error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  }
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);  // the certificates stay owned by `chain`
  ERR_clear_error();
  return error;
}

}  // namespace flock::tls
