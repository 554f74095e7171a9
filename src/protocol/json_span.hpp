// Byte-exact slices of JSON text. Publishers' `data` is forwarded verbatim — never re-serialized, so
// numbers, key order and UTF-8 reach subscribers exactly as posted, and no encoding work is done.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace aw::protocol {

// The raw text of member `key` of the top-level object in `json`, which must already be valid JSON
// (parse it first). Keys compare as parsers read them (`"d\u0061ta"` is `data`); with duplicate keys (which
// protocol/json_rules refuses before this is asked), the last one wins, as in Boost.JSON.
std::optional<std::string_view> member_span(std::string_view json, std::string_view key);

// Appends `text` as a JSON string literal (quotes included), escaping as RFC 8259 requires.
void append_quoted(std::string& out, std::string_view text);

}  // namespace aw::protocol
