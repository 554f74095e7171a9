// JSON error bodies: `{"error": {"code": "...", "message": "..."}}`, the one shape every error takes. A body
// is always valid UTF-8 JSON, whatever client bytes its message quotes.
#pragma once
#include <string_view>

#include "api/http_types.hpp"

namespace aw::api {

Response error_response(unsigned status, std::string_view code, std::string_view message);

// 400 bad_agent_id: the one answer to an agent id outside 1-128 characters of [A-Za-z0-9_.:-].
Response bad_agent_id_response();

// 503 broker_unavailable: a shared broker's directory could not be asked who owns a workflow or stream
// id (which may well exist, so not 404).
Response directory_unavailable_response();

// With extra members: `details_json` is a JSON object whose members join code and message.
Response error_response(unsigned status, std::string_view code, std::string_view message,
                        std::string_view details_json);

}  // namespace aw::api
