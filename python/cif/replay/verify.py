"""Verify a live run: recompute offline, compare digests, and on a mismatch find the first
divergent row.

Why digests first: comparing one hex string per symbol costs nothing on the live side (the
processor records it with every checkpoint, ``digest:features:{sym}``, and the forecaster
likewise ``digest:forecasts:{sym}``) and reads no stream. Only when the feature digests
differ are the live rows read back (``features:{sym}``) and compared row by row with the
recomputed ones, to name the first divergent event (seq, ts) and the first feature in
column order that differs (live value, replay value). The forecast digest, when the live
run recorded one, is compared with the replay's (the forecasts the forecaster would
publish, over the same seq range); the report names which of the two diverged.

The offline rows compared are those with ``seq`` in the live digest's ``[first_seq,
last_seq]`` (the live run may still be going, or may have started later than the history).
Values compare bit for bit, NaN equal to NaN (the digests' rule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from numpy.typing import NDArray

from cif.bus.keys import digest_key, features_key
from cif.digest import ChainDigest, feature_names_of, forecasts_digest
from cif.features.entries import decode_feature_entry
from cif.forecast.models import Model
from cif.replay.offline import ReplayResult, replay_symbol

_PAGE = 5_000


@dataclass
class LiveDigest:
    """What a live run recorded."""

    count: int
    digest: str
    first_seq: int | None
    last_seq: int | None

    @classmethod
    def read(cls, client: redis.Redis, key: str) -> LiveDigest | None:
        raw: Any = client.hgetall(key)
        if not raw:
            return None
        d = {k.decode(): v.decode(errors="replace") for k, v in raw.items() if k != b"state"}

        def opt(name: str) -> int | None:
            return int(d[name]) if d.get(name) else None

        return cls(int(d["count"]), d["digest"], opt("first_seq"), opt("last_seq"))


@dataclass
class Divergence:
    """The first divergent row and feature."""

    seq: int
    ts: int | None
    feature: str | None
    live: float | None
    replay: float | None
    note: str = ""

    def describe(self) -> str:
        where = f"seq {self.seq} (ts {self.ts})"
        if self.feature is None:
            return f"first divergent event: {where}: {self.note}"
        return (
            f"first divergent event: {where}, feature {self.feature}: "
            f"live {self.live!r}, replay {self.replay!r}"
        )


@dataclass
class VerifyReport:
    """The outcome for one symbol (``record``: the run record with ``divergence``)."""

    symbol: str
    identical: bool
    message: str
    record: dict[str, Any] = field(default_factory=dict)
    first: Divergence | None = None


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _restrict(
    rows: Mapping[str, NDArray[Any]], lo: int | None, hi: int | None
) -> dict[str, NDArray[Any]]:
    seq = rows["seq"]
    mask = np.ones(len(seq), dtype=bool)
    if lo is not None:
        mask &= seq >= lo
    if hi is not None:
        mask &= seq <= hi
    return {k: v[mask] for k, v in rows.items()}


def compare_rows(
    client: redis.Redis,
    key: str,
    rows: Mapping[str, NDArray[Any]],
    lo: int | None,
    hi: int | None,
) -> tuple[int, Divergence | None]:
    """Row by row against the live stream: number of divergent rows and the first one."""
    names = feature_names_of(rows)
    replay: dict[int, tuple[int, list[float]]] = {}
    cols = [rows[n].tolist() for n in names]
    for i, (s, t) in enumerate(zip(rows["seq"].tolist(), rows["ts"].tolist(), strict=True)):
        replay[s] = (t, [c[i] for c in cols])
    live: dict[int, tuple[int, dict[str, float]]] = {}
    start = "-" if lo is None else f"{lo}-0"
    end = "+" if hi is None else f"{hi}-0"
    while True:
        page: Any = client.xrange(key, start, end, count=_PAGE)
        for _id, fields in page:
            r = decode_feature_entry(fields)
            live[r.seq] = (r.ts, r.values)
        if len(page) < _PAGE:
            break
        last = page[-1][0].decode()
        ms, n = last.split("-")
        start = f"{ms}-{int(n) + 1}"
    divergent = 0
    first: Divergence | None = None
    for s in sorted(set(replay) | set(live)):
        d: Divergence | None = None
        if s not in live:
            d = Divergence(s, replay[s][0], None, None, None, "row missing from the live stream")
        elif s not in replay:
            d = Divergence(s, live[s][0], None, None, None, "live row the replay does not have")
        else:
            (t_r, vals), (t_l, lvals) = replay[s], live[s]
            if t_r != t_l:
                d = Divergence(s, t_l, "ts", float(t_l), float(t_r))
            else:
                for name, v in zip(names, vals, strict=True):
                    lv = lvals.get(name, math.nan)
                    if not _same(lv, v):
                        d = Divergence(s, t_l, name, lv, v)
                        break
        if d is not None:
            divergent += 1
            if first is None:
                first = d
    return divergent, first


def _compare_forecasts(
    result: ReplayResult, live: LiveDigest | None, record: dict[str, Any]
) -> tuple[bool, str]:
    """The live forecast digest against the replay's forecasts in its seq range: (equal or
    not recorded, what to say). Fills the ``*forecast*`` fields of ``record``."""
    if live is None:
        record.update(live_forecasts_digest=None)
        return True, "no live forecast digest (forecasts not compared)"
    seq = np.asarray(result.rows["seq"], dtype=np.int64)
    keep = np.asarray(result.ok, dtype=bool).copy()
    if live.first_seq is not None:
        keep &= seq >= live.first_seq
    if live.last_seq is not None:
        keep &= seq <= live.last_seq
    mine = forecasts_digest(seq[keep], np.asarray(result.probs, dtype=np.float64)[keep])
    record.update(
        live_forecasts_digest=live.digest,
        live_forecast_rows=live.count,
        compared_forecast_rows=mine.count,
        compared_forecasts_digest=mine.hexdigest(),
    )
    if mine.count == live.count and mine.hexdigest() == live.digest:
        return True, f"forecasts identical: {live.count} forecasts, digest {live.digest}"
    return False, (
        f"forecasts DIVERGENT: live {live.count} forecasts digest {live.digest[:16]}, replay "
        f"{mine.count} forecasts digest {mine.hexdigest()[:16]}"
    )


def verify_symbol(
    con: Any,
    symbol: str,
    redis_url: str,
    namespace: str = "",
    *,
    model: Model | None = None,
    settings: Mapping[str, Any] | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> VerifyReport:
    """Recompute ``symbol`` from the history and compare with the live run's digest."""
    sym = symbol.lower()
    client = redis.Redis.from_url(redis_url)
    try:
        live = LiveDigest.read(client, digest_key("features", sym, namespace))
        live_fc = LiveDigest.read(client, digest_key("forecasts", sym, namespace))
        result = replay_symbol(con, sym, from_ms, to_ms, model=model, settings=settings)
        record = result.record()
        fc_ok, fc_msg = _compare_forecasts(result, live_fc, record)
        if live is None:
            msg = f"{sym}: no live digest at {digest_key('features', sym, namespace)}"
            record.update(divergence=None, live_features_digest=None)
            return VerifyReport(sym, False, msg, record)
        rows = _restrict(result.rows, live.first_seq, live.last_seq)
        mine = ChainDigest("features")
        mine.update_features(rows)
        record.update(
            live_features_digest=live.digest,
            live_feature_rows=live.count,
            compared_rows=mine.count,
            compared_digest=mine.hexdigest(),
        )
        if mine.count == live.count and mine.hexdigest() == live.digest:
            record["divergence"] = 0 if fc_ok else 1
            record["diverged"] = [] if fc_ok else ["forecasts"]
            verdict = "identical" if fc_ok else "DIVERGENT (forecasts)"
            msg = (
                f"{sym}: {verdict}: features {live.count} rows (seq {live.first_seq}.."
                f"{live.last_seq}), digest {live.digest}; {fc_msg}"
            )
            return VerifyReport(sym, fc_ok, msg, record)
        key = features_key(sym, namespace)
        divergent, first = compare_rows(client, key, rows, live.first_seq, live.last_seq)
        record["divergence"] = max(divergent, 1)
        record["diverged"] = ["features"] if fc_ok else ["features", "forecasts"]
        if first is not None:
            record["first_divergence"] = {
                "seq": first.seq,
                "ts": first.ts,
                "feature": first.feature,
                "live": first.live,
                "replay": first.replay,
                "note": first.note,
            }
            detail = first.describe()
        else:
            detail = "the live stream's rows all match (trimmed stream or digest-only change)"
        msg = (
            f"{sym}: DIVERGENT ({' and '.join(record['diverged'])}): live {live.count} rows "
            f"digest {live.digest[:16]}, replay {mine.count} rows digest "
            f"{mine.hexdigest()[:16]}; {divergent} divergent rows; {detail}; {fc_msg}"
        )
        return VerifyReport(sym, False, msg, record, first)
    finally:
        client.close()
