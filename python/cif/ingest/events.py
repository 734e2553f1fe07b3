"""The event types of the system, as the rest of the Python side names them.

The classes themselves are defined in Rust (``cif._core``) so that parsing produces them
without a Python-level copy; this module adds the unions and literals used in annotations.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from cif._core import AggTrade, BookTicker, DepthSnapshot, DepthUpdate, ServerShutdown, Trade

Side: TypeAlias = Literal["buy", "sell"]
Level: TypeAlias = tuple[float, float]
Event: TypeAlias = Trade | AggTrade | DepthUpdate | DepthSnapshot | BookTicker | ServerShutdown
MarketEvent: TypeAlias = Trade | AggTrade | DepthUpdate | DepthSnapshot | BookTicker

EVENT_TYPES: tuple[type, ...] = (
    Trade,
    AggTrade,
    DepthUpdate,
    DepthSnapshot,
    BookTicker,
    ServerShutdown,
)

__all__ = [
    "EVENT_TYPES",
    "AggTrade",
    "BookTicker",
    "DepthSnapshot",
    "DepthUpdate",
    "Event",
    "Level",
    "MarketEvent",
    "ServerShutdown",
    "Side",
    "Trade",
]
