"""Digests of feature and forecast rows: one hex string that says "these runs agree".

Why a chained digest and not one running BLAKE2b: a live processor must keep its digest in
its checkpoint (after a kill -9 it re-processes the rows since the last checkpoint, and
those must not be counted twice), and ``hashlib``'s hasher state cannot be serialized. So
the state is small and explicit: rows are grouped into blocks of :data:`BLOCK_ROWS` rows
(boundaries by row count only, hence independent of how the rows were batched), and

    chain_0 = blake2b(b"cif-digest-v1:" + kind)
    chain_i = blake2b(chain_{i-1} || bytes of the rows of block i)

The state is ``(count, chain, bytes of the rows of the unfinished block, first/last seq)``
(:meth:`ChainDigest.state` / :meth:`ChainDigest.from_state`), at most one block of rows.
The reported digest is ``blake2b(chain || unfinished rows || count as int64 LE)``, so it is
defined for any number of rows and does not change the state.

Row bytes (little-endian):

- features: ``seq`` int64, ``ts`` int64, then each feature value as float64 in column order;
- forecasts: ``seq`` int64, then the probabilities as float64 in the model's class order.

Every NaN is hashed as the canonical quiet NaN (``0x7ff8000000000000``): NaN means
"undefined" here, and its payload bits do not survive a trip through the stream text
(``repr``/``float``), so they must not make two identical runs differ.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cif._core import feature_digest_rows, forecast_digest_rows

#: Rows per chained block. Small enough that the unfinished block (part of every
#: checkpoint) stays below ~90 kB for 40 features, large enough that hashing is per block.
BLOCK_ROWS = 256
DIGEST_SIZE = 32
_STATE_MAGIC = b"cifdg1"
_CANONICAL_NAN = np.int64(0x7FF8000000000000)
_ROW_HEADER = ("seq", "ts", "recv_ts_ns", "kind")


def _row_matrix(seq: ArrayLike, head: Sequence[ArrayLike], values: NDArray[Any]) -> bytes:
    """``(n, H + F)`` int64 LE rows: the header columns, then the values' float64 bits."""
    seq_arr = np.asarray(seq, dtype=np.int64)
    n = len(seq_arr)
    vals = np.ascontiguousarray(values, dtype=np.float64)
    vals = vals.reshape(n, vals.shape[-1] if vals.ndim == 2 else (vals.size // n if n else 0))
    out = np.empty((n, 1 + len(head) + vals.shape[1]), dtype="<i8")
    out[:, 0] = seq_arr
    for j, col in enumerate(head):
        out[:, 1 + j] = np.asarray(col, dtype=np.int64)
    bits = vals.view(np.int64)
    out[:, 1 + len(head) :] = np.where(np.isnan(vals), _CANONICAL_NAN, bits)
    return out.tobytes()


def feature_names_of(rows: Mapping[str, Any]) -> list[str]:
    """The feature columns of a ``compute_features`` table, in order."""
    return [n for n in rows if n not in _ROW_HEADER]


def feature_row_bytes(rows: Mapping[str, ArrayLike]) -> tuple[int, bytes]:
    """Row count and row bytes of a feature table (``seq``, ``ts``, features in order).

    Built in Rust (``cif._core.feature_digest_rows``): the processor digests every batch
    it publishes, and the column-by-column NumPy build (:func:`feature_row_bytes_numpy`,
    kept as the reference) cost more than packing the rows for Redis."""
    return feature_digest_rows(rows)


def feature_row_bytes_numpy(rows: Mapping[str, ArrayLike]) -> tuple[int, bytes]:
    """:func:`feature_row_bytes` in NumPy (the reference the Rust build is tested against)."""
    names = feature_names_of(rows)
    seq = np.asarray(rows["seq"], dtype=np.int64)
    if names:
        values = np.column_stack([np.asarray(rows[n], dtype=np.float64) for n in names])
    else:
        values = np.zeros((len(seq), 0))
    return len(seq), _row_matrix(seq, [rows["ts"]], values)


def forecast_row_bytes(seq: ArrayLike, probs: ArrayLike) -> tuple[int, bytes]:
    """Row count and row bytes of forecasts: ``seq`` and the ``(n, K)`` probabilities.

    Built in Rust (``cif._core.forecast_digest_rows``): the forecaster digests every batch,
    and the NumPy build (:func:`forecast_row_bytes_numpy`, the reference) was a dozen
    array calls per batch of a few rows."""
    seq_arr = np.ascontiguousarray(seq, dtype=np.int64)
    p = np.ascontiguousarray(probs, dtype=np.float64)
    if p.ndim != 2:
        p = p.reshape(len(seq_arr), p.size // len(seq_arr) if len(seq_arr) else 0)
    return forecast_digest_rows(seq_arr, p)


def forecast_row_bytes_numpy(seq: ArrayLike, probs: ArrayLike) -> tuple[int, bytes]:
    """:func:`forecast_row_bytes` in NumPy (the reference the Rust build is tested against)."""
    seq_arr = np.asarray(seq, dtype=np.int64)
    return len(seq_arr), _row_matrix(seq_arr, [], np.asarray(probs, dtype=np.float64))


@dataclass
class ChainDigest:
    """The incremental, checkpointable digest of one symbol's rows of one kind."""

    kind: str
    count: int = 0
    chain: bytes = b""
    partial: bytes = b""
    partial_rows: int = 0
    row_size: int = 0
    first_seq: int | None = None
    last_seq: int | None = None

    def __post_init__(self) -> None:
        if not self.chain:
            self.chain = hashlib.blake2b(
                b"cif-digest-v1:" + self.kind.encode(), digest_size=DIGEST_SIZE
            ).digest()

    def update_bytes(self, n_rows: int, data: bytes, first_seq: int, last_seq: int) -> None:
        """Add ``n_rows`` rows of equal size (``data``), in order."""
        if n_rows == 0:
            return
        size, rem = divmod(len(data), n_rows)
        if rem or size < 8:
            raise ValueError(f"{len(data)} bytes are not {n_rows} rows of equal size")
        if self.row_size and size != self.row_size:
            raise ValueError(f"rows of {size} bytes after rows of {self.row_size} bytes")
        if self.last_seq is not None and first_seq <= self.last_seq:
            raise ValueError(f"row seq {first_seq} is not above the last one ({self.last_seq})")
        self.row_size = size
        buf = self.partial + data
        rows = self.partial_rows + n_rows
        full = rows // BLOCK_ROWS
        block = BLOCK_ROWS * size
        chain = self.chain
        for b in range(full):
            chain = hashlib.blake2b(
                chain + buf[b * block : (b + 1) * block], digest_size=DIGEST_SIZE
            ).digest()
        self.chain = chain
        self.partial = buf[full * block :]
        self.partial_rows = rows - full * BLOCK_ROWS
        self.count += n_rows
        if self.first_seq is None:
            self.first_seq = first_seq
        self.last_seq = last_seq

    def update_features(self, rows: Mapping[str, ArrayLike]) -> None:
        """Add the rows of a ``compute_features`` / ``FeatureEngine.process`` table."""
        n, data = feature_row_bytes(rows)
        if n:
            seq = np.asarray(rows["seq"], dtype=np.int64)
            self.update_bytes(n, data, int(seq[0]), int(seq[-1]))

    def update_forecasts(self, seq: ArrayLike, probs: ArrayLike) -> None:
        """Add forecasts: their feature rows' ``seq`` and ``(n, K)`` probabilities."""
        n, data = forecast_row_bytes(seq, probs)
        if n:
            s = np.asarray(seq, dtype=np.int64)
            self.update_bytes(n, data, int(s[0]), int(s[-1]))

    def hexdigest(self) -> str:
        """The digest of every row so far (the state is unchanged)."""
        tail = self.partial + struct.pack("<q", self.count)
        return hashlib.blake2b(self.chain + tail, digest_size=DIGEST_SIZE).hexdigest()

    def state(self) -> bytes:
        """Everything needed to resume (:meth:`from_state`)."""
        kind = self.kind.encode()
        first = -1 if self.first_seq is None else self.first_seq
        last = -1 if self.last_seq is None else self.last_seq
        head = (
            struct.pack("<6sB", _STATE_MAGIC, len(kind))
            + kind
            + struct.pack("<qqqqq", self.count, self.partial_rows, self.row_size, first, last)
        )
        return head + self.chain + self.partial

    @classmethod
    def from_state(cls, data: bytes) -> ChainDigest:
        """The digest :meth:`state` saved; ``ValueError`` on anything else."""
        try:
            magic, n_kind = struct.unpack_from("<6sB", data, 0)
            if magic != _STATE_MAGIC:
                raise ValueError("not a cif digest state")
            pos = 7
            kind = data[pos : pos + n_kind].decode()
            pos += n_kind
            count, p_rows, row_size, first, last = struct.unpack_from("<qqqqq", data, pos)
            pos += 40
            chain = data[pos : pos + DIGEST_SIZE]
            partial = data[pos + DIGEST_SIZE :]
        except (struct.error, UnicodeDecodeError) as exc:
            raise ValueError(f"bad digest state: {exc}") from exc
        if len(chain) != DIGEST_SIZE or len(partial) != p_rows * row_size:
            raise ValueError("bad digest state: truncated")
        return cls(
            kind=kind,
            count=count,
            chain=chain,
            partial=partial,
            partial_rows=p_rows,
            row_size=row_size,
            first_seq=None if first < 0 else first,
            last_seq=None if last < 0 else last,
        )

    def summary(self) -> dict[str, Any]:
        """What a run reports and a live run records: count, digest, first/last seq."""
        return {
            "count": self.count,
            "digest": self.hexdigest(),
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
        }

    def record_fields(self) -> dict[str, bytes]:
        """The fields of the ``digest:{kind}:{sym}`` hash (see :func:`cif.bus.keys.digest_key`)."""
        return {
            "count": b"%d" % self.count,
            "digest": self.hexdigest().encode(),
            "first_seq": b"" if self.first_seq is None else b"%d" % self.first_seq,
            "last_seq": b"" if self.last_seq is None else b"%d" % self.last_seq,
            "state": self.state(),
        }


def features_digest(rows: Mapping[str, ArrayLike]) -> ChainDigest:
    """The digest of a whole feature table."""
    d = ChainDigest("features")
    d.update_features(rows)
    return d


def forecasts_digest(seq: ArrayLike, probs: ArrayLike) -> ChainDigest:
    """The digest of a whole set of forecasts."""
    d = ChainDigest("forecasts")
    d.update_forecasts(seq, probs)
    return d
