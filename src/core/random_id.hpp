// Random identifiers for sessions and history epochs.
#pragma once
#include <string>

namespace aw {

// `bytes` random bytes from the OS, hex encoded (2 * bytes characters).
std::string random_hex_id(std::size_t bytes = 8);

}  // namespace aw
