// The raw JSON slices publishers' data travels in, against Boost.JSON: for valid JSON, member_span of
// every top-level key is text that parses to the value Boost.JSON reads for that key (the last of
// duplicates, escaped spellings included), and nothing for a key the object lacks or a top level that
// is not an object. append_quoted of valid UTF-8 parses back to the same string.
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "json_reference.hpp"
#include "protocol/json_span.hpp"
#include "utf8_reference.hpp"

namespace {

bool parses_to(std::string_view text, const boost::json::value& expected) {
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 64;
  boost::json::value v = boost::json::parse(text, ec, {}, opts);
  return !ec && v == expected;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  aw::fuzz::FuzzInput in(data, size);
  const std::string key = in.text(24);
  const std::string text = in.rest();

  std::string quoted;
  aw::protocol::append_quoted(quoted, text);
  if (aw::fuzz::reference_utf8(text)) FUZZ_CHECK(parses_to(quoted, boost::json::value(text)));

  auto ref = aw::fuzz::json_reference(text);
  if (!ref.value) return 0;  // member_span takes valid JSON only
  const boost::json::object* obj = ref.value->if_object();
  if (!obj) {
    FUZZ_CHECK(!aw::protocol::member_span(text, key));
    return 0;
  }
  for (const auto& member : *obj) {
    auto span = aw::protocol::member_span(text, member.key());
    FUZZ_CHECK(span);
    // Boost.JSON 1.81 reads 0e400 as NaN, which equals nothing: then the span need only parse.
    if (ref.non_finite)
      FUZZ_CHECK(aw::fuzz::json_reference(*span).value.has_value());
    else
      FUZZ_CHECK(parses_to(*span, member.value()));
  }
  if (!obj->contains(key)) FUZZ_CHECK(!aw::protocol::member_span(text, key));
  return 0;
}
