"""Feature rows as ``features:{symbol}`` stream entries, and back.

An entry's ID is ``<seq>-0``, where ``seq`` is the ingest sequence number of the input
event the row was computed after. Re-publishing a row (a processor that restarts from its
last checkpoint recomputes the same rows) is therefore a no-op: Redis refuses an ID that is
not above the stream's top.

Fields, in order: ``seq``, ``ts`` (the engine clock, exchange ms), ``recv_ts_ns``, ``kind``
(0 trade, 1 book event), then **one field for all the features**: its name is the feature
names joined by ``,`` (in the engine's row order), its value their values joined by ``,``.
Each value is Python's shortest round-trip ``repr`` of the double (``nan`` for NaN,
``inf``/``-inf``), so ``float()`` on the consumer's side gets the exact bits back (NaN
payloads aside: every NaN is the same undefined value here). For example::

    seq 42  ts 1723161255308  recv_ts_ns 1723161255311000000  kind 0
    mid,spread,ofi_1s,...  61837.635,0.01,nan,...

One field rather than one per feature: every field is an object to build, send, parse and
store on both sides of Redis, and a row has ~40 features. The names field is the same for
every row, so Redis keeps it once per stream node (entries with the master entry's fields
store only their values).

Readers take every field other than the four header fields as a ``,``-joined list of names
with as many ``,``-joined values; entries written one field per feature (before this
layout) are the case of one name per field and read the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

from cif._core import pack_feature_rows
from cif.bus.stream_writer import FieldValue, StreamEntry

#: Fields every feature entry starts with, before the feature values.
ROW_FIELDS = ("seq", "ts", "recv_ts_ns", "kind")

#: The header fields' names as ``str`` and as Redis ``bytes``: every other field holds features.
ROW_FIELD_KEYS = frozenset(ROW_FIELDS) | frozenset(f.encode() for f in ROW_FIELDS)


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """One decoded ``features:{symbol}`` entry."""

    seq: int
    ts: int
    recv_ts_ns: int
    kind: int
    values: dict[str, float]


def values_field(names: Sequence[str]) -> str:
    """The name of the features' field for these feature names (joined by ``,``); a name
    that is empty or contains ``,`` is a ``ValueError``."""
    for name in names:
        if not name or "," in name:
            raise ValueError(f"feature name {name!r} is empty or contains ','")
    return ",".join(names)


def feature_entry(
    key: str,
    seq: int,
    ts: int,
    recv_ts_ns: int,
    kind: int,
    names: Sequence[str],
    values: Sequence[float],
) -> StreamEntry:
    """The entry of one row: the header, then ``names`` -> the ``repr`` of ``values``."""
    if len(names) != len(values):
        raise ValueError(f"{len(names)} feature names but {len(values)} values")
    fields: dict[str, FieldValue] = {
        "seq": seq,
        "ts": ts,
        "recv_ts_ns": recv_ts_ns,
        "kind": kind,
    }
    if names:
        fields[values_field(names)] = ",".join([repr(float(v)) for v in values])
    return StreamEntry(key, f"{seq}-0", fields)


def row_entries(key: str, rows: Mapping[str, NDArray[Any]]) -> list[StreamEntry]:
    """The entries of the rows returned by ``FeatureEngine.process`` / ``compute_features``
    (``seq``, ``ts``, ``recv_ts_ns``, ``kind``, then one float column per feature, in
    order)."""
    names = [n for n in rows if n not in ROW_FIELDS]
    field = values_field(names) if names else None
    seqs = rows["seq"].tolist()
    ts = rows["ts"].tolist()
    recv = rows["recv_ts_ns"].tolist()
    kinds = rows["kind"].tolist()
    # Columns to Python floats once (repr of a Python float is the shortest round trip).
    columns = [rows[n].tolist() for n in names]
    out: list[StreamEntry] = []
    for i, seq in enumerate(seqs):
        fields: dict[str, FieldValue] = {
            "seq": seq,
            "ts": ts[i],
            "recv_ts_ns": recv[i],
            "kind": kinds[i],
        }
        if field is not None:
            fields[field] = ",".join([repr(column[i]) for column in columns])
        out.append(StreamEntry(key, f"{seq}-0", fields))
    return out


def packed_rows(rows: Mapping[str, NDArray[Any]]) -> tuple[int, list[tuple[int, bytes]]]:
    """The rows of :func:`row_entries`, pre-packed for a hand-built XADD script call.

    Returns the number of fields per row and, per row, its ``seq`` and its fields as RESP
    bulk strings (``name value name value ...``): byte for byte what ``row_entries`` is
    stored as, without an object per field (the publisher's hot path). The encoding runs in
    Rust (``cif._core.pack_feature_rows``: ``%d`` and Python's ``repr`` of each double).
    """
    return pack_feature_rows(rows)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def feature_texts(fields: Mapping[Any, Any]) -> dict[str, Any]:
    """The features of an entry (``str`` or Redis ``bytes`` fields), not yet parsed, in
    entry order: feature name -> its value as stored (``bytes`` stay ``bytes``: ``float()``
    takes them, and its error then shows the value as stored). A field whose names and
    values differ in number is a ``ValueError``."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key in ROW_FIELD_KEYS:
            continue
        names = _text(key).split(",")
        values: list[Any] = (
            value.split(b",") if isinstance(value, bytes) else _text(value).split(",")
        )
        if len(names) != len(values):
            raise ValueError(
                f"feature field {_text(key)[:60]!r} names {len(names)} features "
                f"but has {len(values)} values"
            )
        out.update(zip(names, values, strict=True))
    return out


def decode_features(fields: Mapping[Any, Any]) -> dict[str, float]:
    """The feature values of an entry (:func:`feature_texts`), parsed: feature name ->
    float, bit-exact."""
    return {name: float(raw) for name, raw in feature_texts(fields).items()}


def decode_feature_entry(fields: Mapping[Any, Any]) -> FeatureRow:
    """A whole entry: the row header and the feature values."""

    def header(name: str) -> int:
        raw = fields.get(name, fields.get(name.encode()))
        if raw is None:
            raise KeyError(f"feature entry has no field {name!r}")
        return int(raw)

    return FeatureRow(
        seq=header("seq"),
        ts=header("ts"),
        recv_ts_ns=header("recv_ts_ns"),
        kind=header("kind"),
        values=decode_features(fields),
    )
