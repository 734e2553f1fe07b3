"""Counting and sampling the frames ingestion skips.

A bad frame never stops a connection or the process: it is counted under its reason (the
parser's reasons plus ``wrong_symbol`` and ``unexpected_event``) and the first few of each
reason are logged with a sample of the frame, then every 1000th, so a flood of bad frames
cannot flood the log.
"""

from __future__ import annotations

import logging
from collections import Counter

from cif._core import (
    InvalidValue,
    MalformedFrame,
    MissingField,
    ParseError,
    UnknownEvent,
    WrongType,
)

log = logging.getLogger(__name__)

_LOG_FIRST = 5
_LOG_EVERY = 1000
_SAMPLE_BYTES = 200

_REASONS: tuple[tuple[type[ParseError], str], ...] = (
    (MalformedFrame, "malformed_frame"),
    (MissingField, "missing_field"),
    (WrongType, "wrong_type"),
    (InvalidValue, "invalid_value"),
    (UnknownEvent, "unknown_event"),
)


def reason_of(exc: ParseError) -> str:
    """The counter name of a parse error."""
    for cls, name in _REASONS:
        if isinstance(exc, cls):
            return name
    return "parse_error"


class BadFrames:
    """Per-reason counts of skipped frames, with sampled logging."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def skip(self, reason: str, frame: bytes, detail: str, where: str = "") -> None:
        """Count one skipped frame; log it if it is among the sampled ones."""
        self.counts[reason] += 1
        n = self.counts[reason]
        if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
            log.warning(
                "%sskipped frame #%d with reason %s: %s; frame: %r",
                f"{where}: " if where else "",
                n,
                reason,
                detail,
                frame[:_SAMPLE_BYTES],
            )
