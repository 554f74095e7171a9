// base64url without padding (RFC 4648 §5), as JOSE uses it, through OpenSSL.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace aw::auth {

// nullopt when `in` is not base64url (padding is tolerated, other characters are not).
std::optional<std::string> base64url_decode(std::string_view in);

std::string base64url_encode(std::string_view in);

}  // namespace aw::auth
