// Client → server messages on an agent channel: `{"type":"ping"}`, `{"type":"snapshot"}` and
// `{"type":"refresh","token":"..."}` (a new token before the current one expires).
#pragma once
#include <string>
#include <string_view>

namespace aw::protocol {

struct ClientMessage {
  enum class Kind { ping, snapshot, refresh, invalid } kind = Kind::invalid;
  std::string token;       // for refresh
  std::string error_code;  // for invalid: "bad_json", "bad_message", "unknown_type"
  std::string error_message;
};

ClientMessage parse_client_message(std::string_view text);

}  // namespace aw::protocol
