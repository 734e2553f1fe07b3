"""A Binance-compatible spot exchange simulator (WebSocket market streams + public REST).

Binance itself is unreachable from where ``cif`` is developed and tested, so this package
serves the same protocol from 127.0.0.1, fed either by a recorded capture (replayed byte for
byte) or by a seeded synthetic matching engine. Run it with ``python -m cif.sim`` or
``cif sim``; see ``cif.sim.cli`` for the flags.

Layout: ``symbols`` (instrument specs), ``fixed`` (fixed-point text), ``streams`` (stream
names and the subscription hub), ``session`` (one client connection's outgoing side),
``control`` (live SUBSCRIBE/... requests), ``rest`` (the REST endpoints and request weight),
``trades`` (retained trade history), ``replay`` and ``market``/``synthetic`` (the two market
sources), ``faults`` (fault injection), ``server`` (the WS+REST socket), ``cli``.
"""

from __future__ import annotations
