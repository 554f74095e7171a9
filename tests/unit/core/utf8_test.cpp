// The one UTF-8 validator: what browsers would reject must be refused, whole or fed in pieces.
#include "core/utf8.hpp"

#include <gtest/gtest.h>

#include <string>

namespace aw {
namespace {

TEST(Utf8, AcceptsWellFormedText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("w\xc3\xb6rld"));      // ö
  EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));      // €
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));  // 😀
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_TRUE(is_valid_utf8(std::string("nul\0inside", 10)));
}

TEST(Utf8, RefusesMalformedText) {
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // cut after the lead byte
  EXPECT_FALSE(is_valid_utf8("\xf0\x9f\x98"));      // cut inside an emoji
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong, three bytes
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("ok\xe2\x82"));    // cut at the end
  EXPECT_FALSE(is_valid_utf8("\xe2\x28\xa1"));  // bad continuation
}

TEST(Utf8, CompletePrefixStopsBeforeACutCharacter) {
  EXPECT_EQ(complete_utf8_prefix(""), 0u);
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("ab\xc3"), 2u);             // ö cut after its lead byte
  EXPECT_EQ(complete_utf8_prefix("ab\xc3\xb6"), 4u);         // ö whole
  EXPECT_EQ(complete_utf8_prefix("a\xf0\x9f\x98"), 1u);      // emoji missing one byte
  EXPECT_EQ(complete_utf8_prefix("a\xf0\x9f\x98\x80"), 5u);  // emoji whole
  EXPECT_EQ(complete_utf8_prefix("\xe2\x82"), 0u);           // € cut
  EXPECT_EQ(complete_utf8_prefix("x\xe2\x82\xac"), 4u);
  // Every cut of a mixed text: the prefix is valid, and never more than 3 bytes are held back.
  const std::string text = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80!";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    std::size_t keep = complete_utf8_prefix(std::string_view(text).substr(0, cut));
    EXPECT_TRUE(is_valid_utf8(std::string_view(text).substr(0, keep))) << cut;
    EXPECT_LE(cut - keep, 3u) << cut;
  }
}

TEST(Utf8, ValidatorFedInPieces) {
  EXPECT_TRUE(is_valid_utf8("plain ascii, long enough for the eight-byte path"));
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));       // U+D7FF
  EXPECT_FALSE(is_valid_utf8("\xed\xbf\xbf"));      // a surrogate
  EXPECT_FALSE(is_valid_utf8("\xe0\x9f\xbf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xf0\x8f\xbf\xbf"));  // overlong
  EXPECT_FALSE(is_valid_utf8("\xc1\xbf"));          // overlong
  Utf8Validator v;
  EXPECT_TRUE(v.feed("\xf0\x9f"));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed("\x98\x80"));
  EXPECT_TRUE(v.complete());
  EXPECT_FALSE(v.feed("\xe2\x28"));  // a lead byte, then no continuation
}

TEST(Utf8, CountsCodePoints) {
  EXPECT_EQ(count_code_points(""), 0u);
  EXPECT_EQ(count_code_points("abc"), 3u);
  EXPECT_EQ(count_code_points("w\xc3\xb6rld"), 5u);
  EXPECT_EQ(count_code_points("\xf0\x9f\x98\x80!"), 2u);
}

}  // namespace
}  // namespace aw
