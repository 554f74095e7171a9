// Reading hiredis replies: one place for the two things every Redis file of the broker needs.
#pragma once
#include <hiredis/hiredis.h>

#include <charconv>
#include <string_view>
#include <system_error>

namespace aw::broker::redis {

// A string or status reply's bytes; empty for any other reply (nil, integer, array, null pointer).
inline std::string_view reply_text(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
             ? std::string_view(r->str, r->len)
             : std::string_view();
}

// The whole of `s` as a number; false (out untouched) when it is not one.
template <typename T>
bool parse_number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace aw::broker::redis
