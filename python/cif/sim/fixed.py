"""Fixed-point decimal text as Binance writes it: integers in units of 1e-8, 8 decimals.

Prices and quantities are kept as integers everywhere in the simulator (``p8`` = value in
units of 1e-8) so that arithmetic is exact and formatting is a cheap integer split.
"""

from __future__ import annotations

SCALE = 100_000_000


def fmt8(value8: int) -> str:
    """Format a non-negative integer amount of 1e-8 units as ``"123.45000000"``."""
    return f"{value8 // SCALE}.{value8 % SCALE:08d}"


def parse8(text: str) -> int:
    """Parse a non-negative decimal string with at most 8 decimals into 1e-8 units.

    Raises ``ValueError`` for anything else (sign, exponent, more than 8 decimals).
    """
    whole, dot, frac = text.partition(".")
    if not whole.isdigit() or (dot and not frac.isdigit()) or len(frac) > 8:
        raise ValueError(f"not a fixed-point decimal: {text!r}")
    return int(whole) * SCALE + int(frac.ljust(8, "0") or "0")


def quote8(price8: int, qty8: int) -> int:
    """Quote amount (price * qty) in 1e-8 units, truncated like Binance's ``quoteQty``."""
    return price8 * qty8 // SCALE
