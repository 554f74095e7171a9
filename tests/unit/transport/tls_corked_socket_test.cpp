// The corked socket over TLS: what is queued in one pass leaves in one TLS write (one record), whole and
// in order; more than a record leaves in as many writes; and the TLS context refuses files it cannot
// use, naming the flag. The certificate is made here with OpenSSL (no key is committed).
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <boost/asio/read.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <cstdio>
#include <filesystem>
#include <string>

#include "transport/corked_socket.hpp"
#include "transport/tls_context.hpp"

namespace aw::transport {
namespace {

namespace fs = std::filesystem;

// A self-signed P-256 certificate and its key, written as PEM files into a fresh directory.
struct CertFiles {
  fs::path dir;
  fs::path cert;
  fs::path key;

  CertFiles() {
    dir = fs::temp_directory_path() / ("aw-tls-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    cert = dir / "cert.pem";
    key = dir / "key.pem";
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 0x77);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"),
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~CertFiles() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// A TLS connection over loopback: the server side in a CorkedSocket, the client an Asio SSL stream.
struct TlsPair {
  CertFiles files;
  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
  net::ssl::context client_ctx{net::ssl::context::tls_client};
  net::ssl::stream<tcp::socket> client{ioc, client_ctx};
  metrics::ShardCounters counters;
  std::unique_ptr<CorkedSocket> corked;
  std::shared_ptr<int> owner = std::make_shared<int>(0);

  TlsPair() {
    TlsContext tls(files.cert.string(), files.key.string());
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    client.next_layer().connect(acceptor.local_endpoint());
    tcp::socket server(ioc);
    acceptor.accept(server);
    auto link = std::make_unique<TlsLink>(tls.current(), std::move(server));
    bool server_done = false, client_done = false;
    link->stream.async_handshake(net::ssl::stream_base::server, [&](boost::system::error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      server_done = true;
    });
    client.async_handshake(net::ssl::stream_base::client, [&](boost::system::error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      client_done = true;
    });
    while (!(server_done && client_done)) ioc.run_one();
    corked = std::make_unique<CorkedSocket>(std::move(link), ioc, counters);
    corked->set_owner(owner);
  }

  void enqueue(const std::string& s) {
    auto keep = std::make_shared<const std::string>(s);
    std::string_view bytes(*keep);
    corked->enqueue(std::move(keep), bytes, true);
  }

  // Runs the loop until `n` bytes have come through TLS to the client.
  std::string read_exactly(std::size_t n) {
    std::string out(n, '\0');
    bool done = false;
    net::async_read(client, net::buffer(out), [&](boost::system::error_code ec, std::size_t) {
      EXPECT_FALSE(ec) << ec.message();
      done = true;
    });
    while (!done) ioc.run_one();
    return out;
  }
};

TEST(TlsCorkedSocket, FramesQueuedInOnePassLeaveInOneTlsWrite) {
  TlsPair p;
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    std::string frame = "frame-" + std::to_string(i) + ";";
    expected += frame;
    p.enqueue(frame);
  }
  EXPECT_EQ(p.corked->queued_bytes(), expected.size());
  EXPECT_EQ(p.read_exactly(expected.size()), expected);
  EXPECT_EQ(p.counters.tls_writes.load(), 1u);
  EXPECT_EQ(p.counters.tls_write_segments.load(), 50u);
  EXPECT_EQ(p.corked->queued_bytes(), 0u);
}

TEST(TlsCorkedSocket, MoreThanARecordLeavesInRecordSizedWritesInOrder) {
  TlsPair p;
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    std::string frame(1000, static_cast<char>('a' + i % 26));
    expected += frame;
    p.enqueue(frame);
  }
  EXPECT_EQ(p.read_exactly(expected.size()), expected);
  // 40,000 bytes in records of at most 16 KiB: three writes, the segment cut at a record's end finished
  // in the next.
  EXPECT_EQ(p.counters.tls_writes.load(), 3u);
  EXPECT_EQ(p.corked->queued_bytes(), 0u);
}

TEST(TlsContext, RefusesFilesItCannotUseNamingTheFlag) {
  CertFiles files;
  auto message = [](const std::string& cert, const std::string& key) -> std::string {
    try {
      TlsContext ctx(cert, key);
    } catch (const TlsError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message((files.dir / "missing.pem").string(), files.key.string()).find("--tls-cert"),
            std::string::npos);
  EXPECT_NE(message(files.cert.string(), (files.dir / "missing.pem").string()).find("--tls-key"),
            std::string::npos);
  EXPECT_NE(message(files.key.string(), files.key.string()).find("--tls-cert"), std::string::npos);
  fs::path other_key = files.dir / "other.pem";
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  FILE* f = std::fopen(other_key.c_str(), "w");
  PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  EVP_PKEY_free(pkey);
  EXPECT_NE(message(files.cert.string(), other_key.string()).find("does not match"), std::string::npos);
  TlsContext ok(files.cert.string(), files.key.string());
  EXPECT_EQ(ok.serial(), "77");
}

}  // namespace
}  // namespace aw::transport
