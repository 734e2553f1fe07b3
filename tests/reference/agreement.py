"""Checks that ``cif._core``'s single-frame and batch entry points agree.

Test helper (it imports the extension); the pure-Python baseline is ``binance_ref``.
"""

from __future__ import annotations

import re

import numpy as np

import cif._core as core
from reference import binance_ref as ref
from reference.records import Record, batch_records, event_record

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def reason_name(exc_type: type[BaseException] | str) -> str:
    """``MalformedFrame`` → ``malformed_frame``: the ERROR_REASONS entry of an exception class."""
    name = exc_type if isinstance(exc_type, str) else exc_type.__name__
    return _CAMEL.sub("_", name).lower()


#: Reference reason names translated to the extension's (same classes, snake_case).
REF_REASON_NAMES: tuple[str, ...] = tuple(reason_name(kind) for kind in ref.ERROR_KINDS)


def single_record(frame: bytes, recv_time_ns: int, symbol: str | None = None) -> Record:
    """``parse_frame``'s outcome as a record: the event, or ``("error", reason)``.

    Any exception other than a ``cif._core.ParseError`` propagates (and fails the test).
    """
    try:
        event = core.parse_frame(frame, recv_time_ns, symbol=symbol)
    except core.ParseError as e:
        return ("error", reason_name(type(e)))
    return event_record(event)


def ref_record(frame: bytes, recv_time_ns: int, symbol: str | None = None) -> Record:
    """The reference parser's outcome as a record (errors by extension reason name)."""
    try:
        event = ref.parse_frame(frame, recv_time_ns, symbol=symbol)
    except ref.RefParseError as e:
        return ("error", reason_name(e.contract_name))
    return event_record(event)


def batch_of(
    frames: list[bytes], recv_time_ns: list[int], symbol: str | None = None
) -> dict[int, Record]:
    """``parse_frames``'s outcome as frame → record, checking it covers every frame once."""
    batch = core.parse_frames(frames, np.asarray(recv_time_ns, dtype=np.int64), symbol=symbol)
    assert batch.n_frames == len(frames)
    records = batch_records(batch, core.ERROR_REASONS)
    assert sorted(records) == list(range(len(frames))), "every frame yields one row"
    assert len(batch.error_messages) == len(batch.errors["frame"])
    assert all(isinstance(m, str) and m for m in batch.error_messages)
    return records


def assert_entry_points_agree(
    frames: list[bytes], recv_time_ns: list[int], symbol: str | None = None
) -> list[Record]:
    """``parse_frame`` on each frame equals ``parse_frames``' row for it; returns the records."""
    batch = batch_of(frames, recv_time_ns, symbol)
    singles = [
        single_record(frame, recv, symbol) for frame, recv in zip(frames, recv_time_ns, strict=True)
    ]
    for i, single in enumerate(singles):
        assert batch[i] == single, (
            f"frame {i} {frames[i][:200]!r}: parse_frame gave {single!r}, "
            f"parse_frames gave {batch[i]!r}"
        )
    return singles
