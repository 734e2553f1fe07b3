"""Pure-Python references of the feature processor's stream-entry codecs.

- :func:`packed_rows` is the Python encoder ``cif.features.entries.packed_rows`` was before
  it moved to Rust (``cif._core.pack_feature_rows``): ``%d`` of the row fields and
  ``repr(float)`` of each feature in one ``,``-joined field, as RESP bulk strings.
- :func:`decode` runs entries through ``EventLogBuilder.add_trade_entry`` /
  ``add_book_entry`` one at a time, as the processor did before
  ``cif._core.decode_event_entries``: the columns and the indices of the refused entries.

Tests compare the Rust codecs with these byte for byte / bit for bit; benches time both.
Not part of the package: ``cif`` never imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from numpy.typing import NDArray

from cif.bus.stream_writer import bulk
from cif.features.entries import ROW_FIELDS
from cif.features.event_log import EventColumns, EventLogBuilder

#: Exceptions the Python builder raises for an undecodable entry.
BUILDER_ERRORS = (KeyError, ValueError, TypeError, IndexError, OverflowError)


def packed_rows(rows: Mapping[str, NDArray[Any]]) -> tuple[int, list[tuple[int, bytes]]]:
    """The number of fields per row and, per row, ``(seq, fields as RESP bulk strings)``:
    the four row fields, then one field named by the feature names joined by ``,``, its
    value the ``repr`` of each feature joined by ``,``."""
    names = [n for n in rows if n not in ROW_FIELDS]
    heads = [bulk(n.encode()) for n in ROW_FIELDS]
    if names:
        heads.append(bulk(",".join(names).encode()))
    seqs = rows["seq"].tolist()
    ts = rows["ts"].tolist()
    recv = rows["recv_ts_ns"].tolist()
    kinds = rows["kind"].tolist()
    columns = [rows[n].tolist() for n in names]
    out: list[tuple[int, bytes]] = []
    for i, seq in enumerate(seqs):
        values = [b"%d" % seq, b"%d" % ts[i], b"%d" % recv[i], b"%d" % kinds[i]]
        if names:
            values.append(",".join([repr(column[i]) for column in columns]).encode())
        parts: list[bytes] = []
        for head, value in zip(heads, values, strict=True):
            parts.append(head)
            parts.append(b"$%d\r\n%s\r\n" % (len(value), value))
        out.append((seq, b"".join(parts)))
    return len(heads), out


def decode(
    entries: Sequence[tuple[bool, Mapping[Any, Any]]], depth_levels: int
) -> tuple[EventColumns, list[int]]:
    """The builder's columns of ``(is_trade, fields)`` entries and the refused indices."""
    builder = EventLogBuilder(depth_levels)
    refused: list[int] = []
    for i, (is_trade, fields) in enumerate(entries):
        try:
            if is_trade:
                builder.add_trade_entry(fields)
            else:
                builder.add_book_entry(fields)
        except BUILDER_ERRORS:
            refused.append(i)
    return builder.build(), refused
