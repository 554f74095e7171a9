#include "core/clock.hpp"

#include <chrono>
#include <ctime>

namespace aw {
namespace {

void put_digits(char* at, int value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    at[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

std::int64_t now_unix_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::int64_t now_steady_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

void append_timestamp(std::string& out, std::int64_t unix_ms) {
  std::int64_t secs = unix_ms / 1000;
  int ms = static_cast<int>(unix_ms % 1000);
  if (ms < 0) {  // before 1970: the calendar second below, plus a positive fraction
    ms += 1000;
    --secs;
  }
  // Every event carries a timestamp, and the events of one commit share it: the calendar part is
  // worked out once per second per thread instead of gmtime + printf per event.
  thread_local std::int64_t cached_secs = INT64_MIN;
  thread_local char cached[19];  // "YYYY-MM-DDTHH:MM:SS"
  if (secs != cached_secs) {
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    put_digits(cached, (tm.tm_year + 1900) % 10000, 4);
    cached[4] = '-';
    put_digits(cached + 5, tm.tm_mon + 1, 2);
    cached[7] = '-';
    put_digits(cached + 8, tm.tm_mday, 2);
    cached[10] = 'T';
    put_digits(cached + 11, tm.tm_hour, 2);
    cached[13] = ':';
    put_digits(cached + 14, tm.tm_min, 2);
    cached[16] = ':';
    put_digits(cached + 17, tm.tm_sec, 2);
    cached_secs = secs;
  }
  char tail[5] = {'.', 0, 0, 0, 'Z'};
  put_digits(tail + 1, ms, 3);
  out.append(cached, sizeof cached).append(tail, sizeof tail);
}

std::string format_timestamp(std::int64_t unix_ms) {
  std::string out;
  out.reserve(24);
  append_timestamp(out, unix_ms);
  return out;
}

}  // namespace aw
