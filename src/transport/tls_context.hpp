// The server's TLS settings (--tls-cert, --tls-key) as an OpenSSL context: TLS 1.2 and later only,
// OpenSSL 3's default ciphers, ALPN http/1.1. A SIGHUP builds a new context from the files; new
// connections take the current one and each connection keeps the one it started with, so a reload
// drops nothing. A context that cannot be built leaves the current one in place.
#pragma once
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace aw::transport {

namespace net = boost::asio;

// The certificate or key cannot be used; the message names the flag.
class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TlsContext {
 public:
  // Loads both files and checks that the key matches the certificate (throws TlsError).
  TlsContext(std::string cert_file, std::string key_file);

  // The context new connections take; thread-safe.
  std::shared_ptr<net::ssl::context> current() const;
  // Builds a new context from the files; false (and the error in `error`) leaves the current one.
  bool reload(std::string& error);
  // The certificate in use: its serial number (hex) and subject, for the log.
  std::string serial() const;
  std::string subject() const;

  static std::shared_ptr<net::ssl::context> build(const std::string& cert_file, const std::string& key_file);

 private:
  const std::string cert_file_;
  const std::string key_file_;
  mutable std::mutex mutex_;
  std::shared_ptr<net::ssl::context> current_;
};

}  // namespace aw::transport
