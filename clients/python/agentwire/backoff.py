"""Exponential backoff with full jitter.

Why full jitter (a uniformly random delay between 0 and the exponential cap) rather than a fixed
exponential delay: when a server restarts, every client it had notices at the same moment; with fixed
delays they would all come back in synchronized waves, each a small thundering herd. Spreading each
wave over the whole interval keeps the reconnect load flat, at the cost of sometimes retrying very soon,
which is harmless (see "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Backoff:
    """``delay(n)`` for the n-th consecutive failure (0-based) is uniform in ``[0, min(max, base * 2**n)]``."""

    base: float = 0.5
    max: float = 30.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.max <= 0:
            raise ValueError("backoff base and max must be positive")
        if self.max < self.base:
            raise ValueError("backoff max must be at least base")

    def cap(self, attempt: int) -> float:
        """The upper bound of the n-th delay (no jitter)."""
        # 2**attempt overflows a float only for absurd attempt counts; cap the exponent instead of catching.
        return min(self.max, self.base * (2.0 ** min(attempt, 64)))

    def delay(self, attempt: int, rng: Optional[random.Random] = None) -> float:
        return (rng or random).uniform(0.0, self.cap(attempt))
