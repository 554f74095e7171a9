// The upgrade answer and permessage-deflate negotiation: every request gets a well-formed HTTP response
// (101 with the right Sec-WebSocket-Accept, or a 400/426 refusal with a reason) whose head no request
// byte can break into extra lines; deflate is agreed only when offered and enabled, and always without
// context takeover on either side.
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "protocol/ws_handshake.hpp"

namespace {

// The head is lines ending in CRLF, with no other CR, LF or NUL.
bool well_formed_head(std::string_view response) {
  std::size_t end = response.find("\r\n\r\n");
  if (end == std::string_view::npos) return false;
  std::string_view head = response.substr(0, end + 2);
  for (std::size_t i = 0; i < head.size(); ++i) {
    char c = head[i];
    if (c == '\0') return false;
    if (c == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n')) return false;
    if (c == '\n' && (i == 0 || head[i - 1] != '\r')) return false;
  }
  return true;
}

bool printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  aw::fuzz::FuzzInput in(data, size);
  const std::uint8_t present = in.byte();
  const bool compression = in.flag();
  aw::protocol::UpgradeRequest req;
  req.version = in.pick<unsigned>({11, 10, 9, 20});
  req.get = !(present & 0x80);
  req.has_host = !(present & 0x40);
  std::string connection = in.text(64), upgrade = in.text(64), key = in.text(64), version = in.text(8);
  std::string extensions = in.rest();
  if (present & 1) req.connection = connection;
  if (present & 2) req.upgrade = upgrade;
  if (present & 4) req.key = key;
  if (present & 8) req.ws_version = version;
  req.extensions = extensions;

  aw::protocol::HandshakeAnswer answer = aw::protocol::answer_upgrade(req, compression);
  FUZZ_CHECK(well_formed_head(answer.response));
  if (answer.accepted) {
    FUZZ_CHECK(answer.response.rfind("HTTP/1.1 101 ", 0) == 0);
    FUZZ_CHECK(req.key.has_value());
    FUZZ_CHECK(answer.response.find("Sec-WebSocket-Accept: " + aw::protocol::sec_websocket_accept(*req.key) +
                                    "\r\n") != std::string::npos);
    FUZZ_CHECK(!answer.deflate || compression);
    FUZZ_CHECK(answer.deflate == (answer.response.find("permessage-deflate") != std::string::npos));
  } else {
    FUZZ_CHECK(answer.error != nullptr && !answer.deflate);
    const std::string_view status = std::string_view(answer.response).substr(0, 13);
    FUZZ_CHECK(status == "HTTP/1.1 400 " || status == "HTTP/1.1 426 " || status == "HTTP/1.0 400 " ||
               status == "HTTP/1.0 426 ");
  }

  const aw::protocol::DeflateAgreement deflate = aw::protocol::negotiate_deflate(extensions);
  const std::string& agreed = deflate.extension;
  if (!agreed.empty()) {
    FUZZ_CHECK(agreed.rfind("permessage-deflate", 0) == 0 && printable(agreed));
    FUZZ_CHECK(agreed.find("server_no_context_takeover") != std::string::npos);
    FUZZ_CHECK(agreed.find("client_no_context_takeover") != std::string::npos);
    // The window compressed with is one zlib's raw deflate has, and the one named back when named.
    FUZZ_CHECK(deflate.server_window_bits >= 9 && deflate.server_window_bits <= 15);
    const std::size_t named = agreed.find("server_max_window_bits=");
    FUZZ_CHECK(named == std::string::npos ||
               agreed.substr(named + 23) == std::to_string(deflate.server_window_bits));
  }
  const std::string b64 = aw::protocol::base64(key);
  FUZZ_CHECK(b64.size() == (key.size() + 2) / 3 * 4 && printable(b64));
  FUZZ_CHECK(aw::protocol::sha1(key).size() == 20);
  return 0;
}
