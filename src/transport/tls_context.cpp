#include "transport/tls_context.hpp"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>
#include <fstream>

namespace aw::transport {
namespace {

// ALPN: we speak HTTP/1.1 (WebSocket upgrades included); a client offering only others gets no ALPN.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_len, kHttp11, sizeof kHttp11, in, in_len) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// An encrypted key would make OpenSSL ask for its passphrase on the terminal: refuse it instead.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

void require_readable(const std::string& file, const char* flag) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TlsError(std::string("--") + flag + " " + file + ": cannot be read");
}

X509* certificate_of(const net::ssl::context& ctx) {
  return SSL_CTX_get0_certificate(const_cast<net::ssl::context&>(ctx).native_handle());
}

}  // namespace

std::shared_ptr<net::ssl::context> TlsContext::build(const std::string& cert_file,
                                                     const std::string& key_file) {
  require_readable(cert_file, "tls-cert");
  require_readable(key_file, "tls-key");
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  // TLS 1.2 and 1.3 only; OpenSSL 3's default cipher lists are kept (no RC4, 3DES, export or NULL).
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                   net::ssl::context::single_dh_use);
  // Client-started renegotiation (TLS 1.2) is a way to make the server do handshakes on one connection.
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
  SSL_CTX_set_default_passwd_cb(native, no_passphrase);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) throw TlsError("--tls-cert " + cert_file + ": not a PEM certificate (chain): " + ec.message());
  // The key is read on its own first, so that a file that is no key and a key of another certificate
  // are told apart.
  EVP_PKEY* key = nullptr;
  if (FILE* f = std::fopen(key_file.c_str(), "r")) {
    key = PEM_read_PrivateKey(f, nullptr, no_passphrase, nullptr);
    std::fclose(f);
  }
  if (!key) throw TlsError("--tls-key " + key_file + ": not an unencrypted PEM private key");
  X509* cert = SSL_CTX_get0_certificate(native);
  const bool matches = cert && X509_check_private_key(cert, key) == 1;
  const bool used = matches && SSL_CTX_use_PrivateKey(native, key) == 1;
  EVP_PKEY_free(key);
  if (!matches)
    throw TlsError("--tls-key " + key_file + " does not match the certificate of --tls-cert " + cert_file);
  if (!used) throw TlsError("--tls-key " + key_file + ": OpenSSL refused the key");
  return ctx;
}

TlsContext::TlsContext(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      current_(build(cert_file_, key_file_)) {}

std::shared_ptr<net::ssl::context> TlsContext::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

bool TlsContext::reload(std::string& error) {
  try {
    auto next = build(cert_file_, key_file_);
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
    return true;
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
}

std::string TlsContext::serial() const {
  auto ctx = current();
  X509* cert = certificate_of(*ctx);
  if (!cert) return {};
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (!bn) return {};
  char* hex = BN_bn2hex(bn);
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

std::string TlsContext::subject() const {
  auto ctx = current();
  X509* cert = certificate_of(*ctx);
  if (!cert) return {};
  char* line = X509_NAME_oneline(X509_get_subject_name(cert), nullptr, 0);
  std::string out = line ? line : "";
  OPENSSL_free(line);
  return out;
}

}  // namespace aw::transport
