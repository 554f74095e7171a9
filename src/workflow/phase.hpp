// The phases a workflow moves through and the one table that says which move is legal. Workflows go
// forward one phase at a time (requirements → design → implementation → testing → deployment →
// completed); from any unfinished phase they may also fail or be cancelled. completed, failed and
// cancelled are final.
#pragma once
#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace aw::workflow {

enum class Phase { requirements, design, implementation, testing, deployment, completed, failed, cancelled };

inline constexpr std::array<Phase, 8> kAllPhases = {
    Phase::requirements, Phase::design,    Phase::implementation, Phase::testing,
    Phase::deployment,   Phase::completed, Phase::failed,         Phase::cancelled};

// Where every workflow starts.
inline constexpr Phase kFirstPhase = Phase::requirements;

std::string_view phase_name(Phase phase) noexcept;
std::optional<Phase> parse_phase(std::string_view name) noexcept;

// completed, failed and cancelled: nothing follows them.
bool is_final(Phase phase) noexcept;

// The phases `from` may move to, in pipeline order (empty for final phases).
std::span<const Phase> allowed_next(Phase from) noexcept;
bool can_move(Phase from, Phase to) noexcept;

// "requirements, design, ..." — every phase name, for error messages.
std::string phase_names();

}  // namespace aw::workflow
