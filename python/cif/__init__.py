"""cif — the Crypto Impact Forecaster.

Binance tick data in, order-flow features and short-horizon forecasts out. The hot path
(parsing, features, scoring) lives in the Rust extension ``cif._core``; this package
orchestrates ingestion, storage, replay and the API around it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cif")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
