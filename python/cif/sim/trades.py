"""Retained trade history behind ``/api/v3/trades`` and ``/api/v3/historicalTrades``.

Trades are kept in numpy columns (id, price, qty, time, buyer-is-maker) so that a million
or more of them cost tens of megabytes, and lookups by id are a binary search. New trades
are staged in Python lists (cheap appends from the hot loop) and moved into the columns
when read or when the stage grows; once more than twice ``retain`` trades are held, the
oldest are dropped so that at least ``retain`` remain.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cif.sim.fixed import fmt8, quote8

_STAGE_LIMIT = 65_536


class TradeStore:
    """Append-only (ids strictly increasing) trade history with bounded memory."""

    def __init__(self, retain: int = 1_000_000) -> None:
        if retain < 1:
            raise ValueError("retain must be positive")
        self.retain = retain
        self._ids: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self._px: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self._qty: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self._time: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self._maker: npt.NDArray[np.bool_] = np.empty(0, np.bool_)
        self._s_ids: list[int] = []
        self._s_px: list[int] = []
        self._s_qty: list[int] = []
        self._s_time: list[int] = []
        self._s_maker: list[bool] = []

    def append(self, trade_id: int, price8: int, qty8: int, time_ms: int, maker: bool) -> None:
        """Record one trade; ids must increase."""
        self._s_ids.append(trade_id)
        self._s_px.append(price8)
        self._s_qty.append(qty8)
        self._s_time.append(time_ms)
        self._s_maker.append(maker)
        if len(self._s_ids) >= _STAGE_LIMIT:
            self._flush()

    def extend(
        self,
        ids: list[int],
        prices8: list[int],
        qtys8: list[int],
        times_ms: list[int],
        makers: list[bool],
    ) -> None:
        """Record a batch of trades (parallel lists); ids must increase."""
        self._s_ids.extend(ids)
        self._s_px.extend(prices8)
        self._s_qty.extend(qtys8)
        self._s_time.extend(times_ms)
        self._s_maker.extend(makers)
        if len(self._s_ids) >= _STAGE_LIMIT:
            self._flush()

    def _flush(self) -> None:
        if not self._s_ids:
            return
        self._ids = np.concatenate([self._ids, np.asarray(self._s_ids, np.int64)])
        self._px = np.concatenate([self._px, np.asarray(self._s_px, np.int64)])
        self._qty = np.concatenate([self._qty, np.asarray(self._s_qty, np.int64)])
        self._time = np.concatenate([self._time, np.asarray(self._s_time, np.int64)])
        self._maker = np.concatenate([self._maker, np.asarray(self._s_maker, np.bool_)])
        for stage in (self._s_ids, self._s_px, self._s_qty, self._s_time, self._s_maker):
            stage.clear()
        if len(self._ids) > 2 * self.retain:
            cut = len(self._ids) - self.retain
            self._ids = self._ids[cut:].copy()
            self._px = self._px[cut:].copy()
            self._qty = self._qty[cut:].copy()
            self._time = self._time[cut:].copy()
            self._maker = self._maker[cut:].copy()

    def __len__(self) -> int:
        return len(self._ids) + len(self._s_ids)

    @property
    def first_id(self) -> int | None:
        """The oldest retained trade id, or None when empty."""
        self._flush()
        return int(self._ids[0]) if len(self._ids) else None

    @property
    def last_id(self) -> int | None:
        """The newest trade id, or None when empty."""
        if self._s_ids:
            return self._s_ids[-1]
        return int(self._ids[-1]) if len(self._ids) else None

    def _rows(self, start: int, stop: int) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for i in range(start, stop):
            px = int(self._px[i])
            qty = int(self._qty[i])
            rows.append(
                {
                    "id": int(self._ids[i]),
                    "price": fmt8(px),
                    "qty": fmt8(qty),
                    "quoteQty": fmt8(quote8(px, qty)),
                    "time": int(self._time[i]),
                    "isBuyerMaker": bool(self._maker[i]),
                    "isBestMatch": True,
                }
            )
        return rows

    def recent(self, limit: int) -> list[dict[str, object]]:
        """The newest ``limit`` trades, oldest first (``GET /api/v3/trades``)."""
        self._flush()
        n = len(self._ids)
        return self._rows(max(0, n - limit), n)

    def from_id(self, from_id: int, limit: int) -> list[dict[str, object]]:
        """Up to ``limit`` trades with id >= ``from_id``, oldest first.

        Ids older than the retained window start at the oldest retained trade (the real
        exchange keeps everything; the simulator keeps ``retain`` trades at least).
        """
        self._flush()
        start = int(np.searchsorted(self._ids, from_id, side="left"))
        return self._rows(start, min(len(self._ids), start + limit))
