"""Reading capture files in the shared format: ``<recv ns> <json>`` per line, optionally gzip.

The files under ``shared/data/binance`` are real Binance combined-stream captures; the same
format is what ``cif`` records, so capture files can be imported, replayed and served by the
simulator through one reader.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"


class CaptureFormatError(ValueError):
    """A capture line is not ``<integer ns> <payload>``."""


@dataclass(frozen=True, slots=True)
class CaptureLine:
    """One captured message: the local receive time and the frame bytes exactly as received."""

    line_no: int
    recv_time_ns: int
    payload: bytes


def read_capture_bytes(path: str | Path) -> bytes:
    """Return the whole capture text, decompressing gzip files (detected by magic bytes)."""
    raw = Path(path).read_bytes()
    if raw[:2] == GZIP_MAGIC:
        return gzip.decompress(raw)
    return raw


def iter_capture(path: str | Path) -> Iterator[CaptureLine]:
    """Yield every non-blank line of a capture file, in file order.

    Raises ``CaptureFormatError`` naming the file and line for a line that does not start
    with an integer receive time followed by a space.
    """
    text = read_capture_bytes(path)
    for line_no, line in enumerate(text.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        ts, sep, payload = line.partition(b" ")
        if not sep or not ts.isdigit():
            raise CaptureFormatError(
                f"{path}:{line_no}: expected '<recv ns> <json>', got {line[:60]!r}"
            )
        yield CaptureLine(line_no=line_no, recv_time_ns=int(ts), payload=payload)
