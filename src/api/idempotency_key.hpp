// The Idempotency-Key header every publishing route accepts: one check, so the generic publish and the
// workflow commands refuse the same keys with the same answer.
#pragma once
#include <cstddef>
#include <optional>

#include "api/http_types.hpp"

namespace aw::api {

inline constexpr std::size_t kMaxIdempotencyKeyLength = 256;

// 400 `bad_idempotency_key` when the header is present but empty or longer than 256 characters.
std::optional<Response> check_idempotency_key(const Request& req);

}  // namespace aw::api
