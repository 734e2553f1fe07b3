"""Instrument specifications: tick size, step size and a plausible starting price.

The two captured symbols use Binance's real filters of August 2024; any other symbol
gets generic filters so that ``--symbols`` accepts arbitrary names.
"""

from __future__ import annotations

from dataclasses import dataclass

from cif.sim.fixed import SCALE, fmt8


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One tradable pair. ``tick8``/``step8``/``start_price8`` are in units of 1e-8."""

    stream_name: str  # lowercase, as used in stream names ("btcusdt")
    base_asset: str
    quote_asset: str
    tick8: int
    step8: int
    start_price8: int

    @property
    def symbol(self) -> str:
        """The REST/event spelling ("BTCUSDT")."""
        return self.stream_name.upper()

    def exchange_info(self) -> dict[str, object]:
        """This symbol's entry of ``GET /api/v3/exchangeInfo`` (the fields clients read)."""
        return {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": self.base_asset,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote_asset,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt8(self.tick8),
                    "maxPrice": fmt8(1_000_000 * SCALE),
                    "tickSize": fmt8(self.tick8),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt8(self.step8),
                    "maxQty": fmt8(9000 * SCALE),
                    "stepSize": fmt8(self.step8),
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
        }


_QUOTES = ("USDT", "FDUSD", "USDC", "BTC", "ETH", "BNB", "EUR", "TRY")

_KNOWN: dict[str, SymbolSpec] = {
    "btcusdt": SymbolSpec("btcusdt", "BTC", "USDT", 1_000_000, 1_000, 6_183_763_000_000),
    "ethusdt": SymbolSpec("ethusdt", "ETH", "USDT", 1_000_000, 10_000, 265_012_000_000),
}


def is_valid_stream_symbol(name: str) -> bool:
    """Binance symbols in stream names: lowercase letters/digits, 2 to 20 characters."""
    return 2 <= len(name) <= 20 and name.isascii() and name.isalnum() and name.islower()


def spec_for(name: str) -> SymbolSpec:
    """The spec for a lowercase symbol name; unknown names get generic filters."""
    name = name.lower()
    if name in _KNOWN:
        return _KNOWN[name]
    if not is_valid_stream_symbol(name):
        raise ValueError(f"invalid symbol name: {name!r}")
    upper = name.upper()
    quote = next((q for q in _QUOTES if upper.endswith(q) and len(upper) > len(q)), "USDT")
    base = upper[: -len(quote)] if upper.endswith(quote) else upper
    return SymbolSpec(name, base, quote, 1_000_000, 100_000, 100 * SCALE)
