// What every fuzz target shares: FUZZ_CHECK aborts with the broken property, so libFuzzer saves the
// input as a crash (and the replay test fails on it), in sanitized and plain builds alike.
#pragma once
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)
