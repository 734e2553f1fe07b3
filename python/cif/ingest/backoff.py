"""Exponential backoff with full jitter, a cap, and no retry limit.

Reconnecting clients that all wait the same deterministic delays reconnect in lockstep;
drawing each wait uniformly from ``[0, min(cap, base * 2**attempt)]`` spreads them out.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays for consecutive failed attempts; ``reset()`` after a success."""

    def __init__(
        self,
        base_s: float = 0.25,
        cap_s: float = 30.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if base_s <= 0 or cap_s < base_s or factor < 1:
            raise ValueError("need 0 < base_s <= cap_s and factor >= 1")
        self.base_s = base_s
        self.cap_s = cap_s
        self.factor = factor
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The largest delay the next attempt can draw."""
        # Bounded exponent: no float overflow however many attempts fail.
        return min(self.cap_s, self.base_s * self.factor ** min(self.attempt, 64))

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        ceiling = self.ceiling()
        self.attempt += 1
        return self._rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        """Back to the shortest delays (after a connection proved healthy)."""
        self.attempt = 0
