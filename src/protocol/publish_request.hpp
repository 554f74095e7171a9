// The body of `POST /api/agents/{id}/events`: `{"type": "<name>", "data": {...}}`, validated, with
// `data` kept as the exact bytes the publisher sent.
#pragma once
#include <string>
#include <string_view>

namespace aw::protocol {

inline constexpr std::size_t kMaxEventTypeLength = 64;

struct PublishRequest {
  std::string type;
  std::string data;  // raw JSON object text; "{}" when the publisher sent no data
};

struct PublishParse {
  bool ok = false;
  std::string error_code;  // "bad_json", "number_out_of_range", "duplicate_key", "bad_type", "reserved_type",
                           // "bad_data"
  std::string error_message;
  PublishRequest request;
};

// Event types are 1..64 characters of [A-Za-z0-9_.:-].
bool is_valid_event_type(std::string_view type) noexcept;

// Types the server itself sends on a session; a published event may not take them, or clients would
// mistake it for the server's own message.
bool is_session_message_type(std::string_view type) noexcept;

// Types only the workflow routes publish (workflow_created, requirements_submitted, phase_changed,
// stream, workflow_deleted): the generic route refuses them, so a subscriber can trust where they came
// from. `progress` is both: generic progress is fine, but progress naming a workflow (a `workflow_id` in
// its data) is the workflow route's, and refused here too.
bool is_workflow_event_type(std::string_view type) noexcept;

PublishParse parse_publish_request(std::string_view body);

}  // namespace aw::protocol
