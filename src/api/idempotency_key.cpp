// The Idempotency-Key check shared by every publishing route.
#include "api/idempotency_key.hpp"

#include "api/errors.hpp"

namespace aw::api {

std::optional<Response> check_idempotency_key(const Request& req) {
  if (req.has_idempotency_key &&
      (req.idempotency_key.empty() || req.idempotency_key.size() > kMaxIdempotencyKeyLength))
    return error_response(400, "bad_idempotency_key", "Idempotency-Key must be 1-256 characters");
  return std::nullopt;
}

}  // namespace aw::api
