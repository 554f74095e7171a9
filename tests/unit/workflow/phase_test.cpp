// The phase machine, exhaustively: every (from, to) pair against the table the issue describes.
#include "workflow/phase.hpp"

#include <gtest/gtest.h>

#include <set>
#include <utility>
#include <vector>

namespace aw::workflow {
namespace {

using P = Phase;

// The legal moves, written out by hand rather than derived from the code under test.
const std::set<std::pair<P, P>> kLegal = {
    {P::requirements, P::design},    {P::requirements, P::failed},   {P::requirements, P::cancelled},
    {P::design, P::implementation},  {P::design, P::failed},         {P::design, P::cancelled},
    {P::implementation, P::testing}, {P::implementation, P::failed}, {P::implementation, P::cancelled},
    {P::testing, P::deployment},     {P::testing, P::failed},        {P::testing, P::cancelled},
    {P::deployment, P::completed},   {P::deployment, P::failed},     {P::deployment, P::cancelled},
};

TEST(Phase, EveryPairMatchesTheTable) {
  int checked = 0;
  for (P from : kAllPhases) {
    for (P to : kAllPhases) {
      EXPECT_EQ(can_move(from, to), kLegal.count({from, to}) == 1)
          << phase_name(from) << " -> " << phase_name(to);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 64);
}

TEST(Phase, AllowedNextListsTheSuccessorFirstThenTheWaysOut) {
  auto next = allowed_next(P::requirements);
  EXPECT_EQ(std::vector<P>(next.begin(), next.end()), (std::vector<P>{P::design, P::failed, P::cancelled}));
  next = allowed_next(P::deployment);
  EXPECT_EQ(std::vector<P>(next.begin(), next.end()),
            (std::vector<P>{P::completed, P::failed, P::cancelled}));
}

TEST(Phase, AllowedNextAgreesWithCanMove) {
  for (P from : kAllPhases) {
    std::set<P> listed(allowed_next(from).begin(), allowed_next(from).end());
    for (P to : kAllPhases) EXPECT_EQ(listed.count(to) == 1, can_move(from, to));
  }
}

TEST(Phase, FinalPhasesAllowNothing) {
  for (P p : kAllPhases) {
    bool final = p == P::completed || p == P::failed || p == P::cancelled;
    EXPECT_EQ(is_final(p), final) << phase_name(p);
    EXPECT_EQ(allowed_next(p).empty(), final) << phase_name(p);
  }
}

TEST(Phase, NoPhaseMovesToItself) {
  for (P p : kAllPhases) EXPECT_FALSE(can_move(p, p)) << phase_name(p);
}

TEST(Phase, NamesRoundTrip) {
  for (P p : kAllPhases) EXPECT_EQ(parse_phase(phase_name(p)), p);
  EXPECT_EQ(phase_name(P::implementation), "implementation");
  EXPECT_FALSE(parse_phase("Design"));
  EXPECT_FALSE(parse_phase(""));
  EXPECT_FALSE(parse_phase("done"));
  EXPECT_EQ(phase_names(),
            "requirements, design, implementation, testing, deployment, completed, failed, cancelled");
}

TEST(Phase, WorkflowsStartInRequirements) {
  EXPECT_EQ(kFirstPhase, P::requirements);
}

}  // namespace
}  // namespace aw::workflow
