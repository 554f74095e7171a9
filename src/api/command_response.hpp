// The HTTP side of a workflow command: the answer once the hub has decided it.
#pragma once
#include "api/http_types.hpp"
#include "hub/hub.hpp"

namespace aw::api {

// ok → `ok_status` with the command's reply (plus `"seq"` when `with_seq`); a duplicate → 200 with the
// original's description and `Idempotent-Replayed: true`; a refusal or failure → its JSON error.
Response command_response(const hub::PublishResult& result, unsigned ok_status, bool with_seq = false);

// The hub callback that answers `reply` with command_response.
hub::PublishCallback reply_with(Reply reply, unsigned ok_status, bool with_seq = false);

}  // namespace aw::api
