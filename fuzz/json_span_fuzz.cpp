// The raw JSON slices publishers' data travels in, against Boost.JSON: for valid JSON, member_span of
// every top-level key is text that parses to the value Boost.JSON reads for that key (the last of
// duplicates, escaped spellings included), and nothing for a key the object lacks or a top level that
// is not an object. append_quoted of valid UTF-8 parses back to the same string.
#include <algorithm>
#include <cmath>
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "json_reference.hpp"
#include "protocol/json_span.hpp"
#include "utf8_reference.hpp"

namespace {

// Equal, but doubles only to within a few units in the last place: Boost.JSON 1.81 reads a long decimal
// (14444444444444.4444) one ulp apart depending on where in the input it stands, so the same text
// inside the whole document and alone may differ in the last bit (the fuzzer found exactly that).
bool same(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double(), y = b.get_double();
    return x == y || std::fabs(x - y) <= 1e-15 * std::max(std::fabs(x), std::fabs(y)) * 4;
  }
  if (a.kind() != b.kind()) return false;
  if (const auto* oa = a.if_object()) {
    const auto& ob = b.get_object();
    if (oa->size() != ob.size()) return false;
    for (const auto& m : *oa) {
      const auto* other = ob.if_contains(m.key());
      if (!other || !same(m.value(), *other)) return false;
    }
    return true;
  }
  if (const auto* aa = a.if_array()) {
    const auto& ab = b.get_array();
    if (aa->size() != ab.size()) return false;
    for (std::size_t i = 0; i < aa->size(); ++i)
      if (!same((*aa)[i], ab[i])) return false;
    return true;
  }
  return a == b;
}

bool parses_to(std::string_view text, const boost::json::value& expected) {
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 64;
  boost::json::value v = boost::json::parse(text, ec, {}, opts);
  return !ec && same(v, expected);
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
