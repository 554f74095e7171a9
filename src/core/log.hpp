// Structured log lines: `ts=... level=... event=... key=value ...`, one per line on stderr.
#pragma once
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace aw::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

bool parse_level(std::string_view text, Level& out) noexcept;
void set_level(Level level) noexcept;
bool enabled(Level level) noexcept;

using Field = std::pair<std::string_view, std::string_view>;

// Values are quoted when they contain spaces, quotes or '='.
void write(Level level, std::string_view event, std::initializer_list<Field> fields = {});

inline void info(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::info)) write(Level::info, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::warn)) write(Level::warn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::error)) write(Level::error, event, fields);
}
inline void debug(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::debug)) write(Level::debug, event, fields);
}

}  // namespace aw::log
