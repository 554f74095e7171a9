// The agents allow-list: exact names and trailing-* prefixes.
#include "auth/agent_pattern.hpp"

#include <gtest/gtest.h>

namespace aw::auth {
namespace {

TEST(AgentPattern, ExactNamesMatchOnlyThemselves) {
  EXPECT_TRUE(agent_matches("agent-7", "agent-7"));
  EXPECT_FALSE(agent_matches("agent-7", "agent-70"));
  EXPECT_FALSE(agent_matches("agent-7", "agent-"));
  EXPECT_FALSE(agent_matches("agent-7", "Agent-7"));
  EXPECT_FALSE(agent_matches("", "agent-7"));
}

TEST(AgentPattern, TrailingStarIsAPrefix) {
  EXPECT_TRUE(agent_matches("team-a:*", "team-a:1"));
  EXPECT_TRUE(agent_matches("team-a:*", "team-a:"));
  EXPECT_FALSE(agent_matches("team-a:*", "team-a"));
  EXPECT_FALSE(agent_matches("team-a:*", "xteam-a:1"));
  EXPECT_TRUE(agent_matches("*", "anything"));
  // Only a trailing star is special.
  EXPECT_FALSE(agent_matches("*-7", "agent-7"));
  EXPECT_TRUE(agent_matches("*-7", "*-7"));
}

TEST(AgentPattern, ListAllowsWhenAnyMatches) {
  std::vector<std::string> list{"agent-7", "team-a-*"};
  EXPECT_TRUE(agent_allowed(list, "agent-7"));
  EXPECT_TRUE(agent_allowed(list, "team-a-x"));
  EXPECT_FALSE(agent_allowed(list, "agent-8"));
  EXPECT_FALSE(agent_allowed({}, "agent-7"));
}

}  // namespace
}  // namespace aw::auth
