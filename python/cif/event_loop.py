"""The event loop the long-running commands (``cif live``, ``cif api``, ``cif sim``) run on.

``--event-loop`` (``CIF_EVENT_LOOP``): ``auto`` (the default) runs on uvloop when it is
installed (it is a dependency everywhere but Windows) and on asyncio's own loop otherwise;
``uvloop`` insists on it (an error when it is missing); ``asyncio`` is the standard library
loop.

Why uvloop: every stage of ``cif live`` is Python waiting on sockets (the exchange feed,
Redis, the WebSocket clients), and at 5,000 ticks/s the one event loop is busy more than
half the time. uvloop's transports and scheduling (libuv) cost less CPU per read, write
and callback than asyncio's selector loop, and the latency tail is the time a stage's
wake-up waits behind the others (measurements: ``benches/README.md``). The code uses
only the asyncio API, so both loops run it; the test suite runs the commands on both.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from cif.settings import env

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The accepted ``--event-loop`` values.
CHOICES = ("auto", "uvloop", "asyncio")


def add_event_loop_argument(parser: argparse.ArgumentParser) -> None:
    """``--event-loop`` (``CIF_EVENT_LOOP``, default ``auto``)."""
    parser.add_argument(
        "--event-loop",
        default=env("EVENT_LOOP", "auto"),
        help="event loop: auto (uvloop when installed, else asyncio), uvloop or asyncio "
        "(default: $CIF_EVENT_LOOP or auto)",
    )


def loop_factory(choice: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loop's name and factory for an ``--event-loop`` value (``ValueError`` for an
    unknown value, or ``uvloop`` when it is not installed)."""
    if choice not in CHOICES:
        raise ValueError(f"--event-loop must be one of {', '.join(CHOICES)}, got {choice!r}")
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ValueError(
                    "--event-loop uvloop: uvloop is not installed (pip install uvloop)"
                ) from None
        else:
            return "uvloop", uvloop.new_event_loop
    return "asyncio", asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """``asyncio.run(main)`` on the chosen loop (see :func:`loop_factory`)."""
    try:
        name, factory = loop_factory(choice)
    except ValueError:
        main.close()  # never awaited: close it, so no "never awaited" warning follows
        raise
    log.info("event loop: %s", name)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


__all__ = ["CHOICES", "add_event_loop_argument", "loop_factory", "run"]
