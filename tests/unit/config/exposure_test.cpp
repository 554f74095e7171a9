// Secure by default: an anonymous server listens on loopback only, unless --allow-anonymous.
#include "config/exposure.hpp"

#include <gtest/gtest.h>

namespace aw::config {
namespace {

TEST(Exposure, LoopbackAddressesAndNames) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("::"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("192.168.1.10"));
  EXPECT_FALSE(is_loopback_host("fe80::1"));
  EXPECT_FALSE(is_loopback_host(""));
  EXPECT_FALSE(is_loopback_host("no-such-host.invalid"));
}

TEST(Exposure, AnonymousOnANonLoopbackAddressNeedsTheFlag) {
  Options o;
  EXPECT_EQ(exposure_error(o), "");  // 127.0.0.1 by default
  o.listen_host = "0.0.0.0";
  auto why = exposure_error(o);
  EXPECT_NE(why.find("--listen"), std::string::npos);
  EXPECT_NE(why.find("--allow-anonymous"), std::string::npos);
  EXPECT_FALSE(exposed_anonymously(Options{}));
  EXPECT_TRUE(exposed_anonymously(o));
  o.allow_anonymous = true;
  EXPECT_EQ(exposure_error(o), "");
  o.allow_anonymous = false;
  o.api_keys_file = "keys.json";
  EXPECT_EQ(exposure_error(o), "");
  EXPECT_FALSE(exposed_anonymously(o));
  Options t;
  t.listen_host = "::";
  t.auth_secret = "s";
  EXPECT_EQ(exposure_error(t), "");
}

TEST(Exposure, TheAdminListenerToo) {
  Options o;
  o.admin_listen_host = "0.0.0.0";
  EXPECT_NE(exposure_error(o).find("--admin-listen"), std::string::npos);
  o.admin_listen_host = "127.0.0.1";
  EXPECT_EQ(exposure_error(o), "");
}

}  // namespace
}  // namespace aw::config
