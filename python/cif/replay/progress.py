"""Progress on a terminal: tqdm when it is installed, else one rewritten stderr line.

Why optional: tqdm is not a dependency of cif; a replay in a pipe or a test prints nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """Counts steps (symbols, batches) towards ``total``; silent off a TTY or when quiet."""

    def __init__(self, total: int, label: str, *, quiet: bool = False, unit: str = "") -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.n = 0
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar: Any = None
        self._t0 = time.monotonic()
        if self.enabled:
            try:
                from tqdm import tqdm  # type: ignore[import-untyped, import-not-found, unused-ignore]

                self._bar = tqdm(total=total, desc=label, unit=unit or "it", file=sys.stderr)
            except ImportError:
                self._bar = None

    def step(self, what: str = "", n: int = 1) -> None:
        """``n`` more steps done (``what``: the item now in progress)."""
        self.n += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(what)
            self._bar.update(n)
            return
        rate = self.n / max(time.monotonic() - self._t0, 1e-9)
        sys.stderr.write(
            f"\r{self.label}: {self.n}/{self.total} {self.unit} ({rate:,.0f}/s) {what}    "
        )
        sys.stderr.flush()

    def done(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            sys.stderr.write("\n")
