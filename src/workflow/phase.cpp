#include "workflow/phase.hpp"

#include <algorithm>

namespace aw::workflow {
namespace {

constexpr std::array<std::string_view, 8> kNames = {
    "requirements", "design", "implementation", "testing", "deployment", "completed", "failed", "cancelled"};

// Each unfinished phase: its successor, then the two ways out.
constexpr std::array<Phase, 3> kFromRequirements = {Phase::design, Phase::failed, Phase::cancelled};
constexpr std::array<Phase, 3> kFromDesign = {Phase::implementation, Phase::failed, Phase::cancelled};
constexpr std::array<Phase, 3> kFromImplementation = {Phase::testing, Phase::failed, Phase::cancelled};
constexpr std::array<Phase, 3> kFromTesting = {Phase::deployment, Phase::failed, Phase::cancelled};
constexpr std::array<Phase, 3> kFromDeployment = {Phase::completed, Phase::failed, Phase::cancelled};

std::size_t index_of(Phase p) noexcept {
  return static_cast<std::size_t>(p);
}

}  // namespace

std::string_view phase_name(Phase phase) noexcept {
  return kNames[index_of(phase)];
}

std::optional<Phase> parse_phase(std::string_view name) noexcept {
  for (Phase p : kAllPhases)
    if (phase_name(p) == name) return p;
  return std::nullopt;
}

bool is_final(Phase phase) noexcept {
  return phase == Phase::completed || phase == Phase::failed || phase == Phase::cancelled;
}

std::span<const Phase> allowed_next(Phase from) noexcept {
  switch (from) {
    case Phase::requirements:
      return kFromRequirements;
    case Phase::design:
      return kFromDesign;
    case Phase::implementation:
      return kFromImplementation;
    case Phase::testing:
      return kFromTesting;
    case Phase::deployment:
      return kFromDeployment;
    case Phase::completed:
    case Phase::failed:
    case Phase::cancelled:
      break;
  }
  return {};
}

bool can_move(Phase from, Phase to) noexcept {
  auto next = allowed_next(from);
  return std::find(next.begin(), next.end(), to) != next.end();
}

std::string phase_names() {
  std::string out;
  for (Phase p : kAllPhases) {
    if (!out.empty()) out += ", ";
    out += phase_name(p);
  }
  return out;
}

}  // namespace aw::workflow
