"""``cif live --processes split``: each stage of the pipeline in a child process of its own.

Why: the components share nothing but Redis, and one Python process runs one thread of
Python at a time. In one process the gateway, the feature processor, the forecaster and
the API take turns on one core; as child processes they run in parallel, which is what
keeps the stack up with rates one process cannot follow (the measurements are in
``benches/README.md``, ``bench_latency.py``). The groups follow the data flow:
``ingest``, ``features``, and ``forecast`` with ``api`` (the API only forwards what the
forecaster publishes, so it shares that process).

Each child is ``python -m cif <this command line> --components <group> --processes one``:
the same flags and ``CIF_*`` environment, so every component is configured exactly as it
would be in one process. When this process started the embedded Redis, the children get
its URL in ``CIF_REDIS_URL`` (an environment variable, not a command-line argument: a URL
may carry a password, and command lines are visible to every user of the machine).

Lifetime: SIGINT and SIGTERM are passed on to the children, which stop cleanly (checkpoints,
flushes) as ``cif live`` always does. A child that exits on its own stops the others: with
a failure (non-zero exit) the supervisor exits with that child's code, as one process
does when a component fails. Children that have not stopped ``stop_grace_s`` after being
asked are killed, logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

log = logging.getLogger("cif.live.supervisor")

#: The process groups of ``--processes split``, in start order (upstream first).
GROUPS: tuple[tuple[str, ...], ...] = (("ingest",), ("features",), ("forecast", "api"))

#: How long children get to stop cleanly before they are killed.
STOP_GRACE_S = 60.0


def split_groups(components: Sequence[str]) -> list[str]:
    """The ``--components`` value of each child for the chosen components (groups with no
    chosen component are left out)."""
    chosen = set(components)
    out = []
    for group in GROUPS:
        picked = [c for c in group if c in chosen]
        if picked:
            out.append(",".join(picked))
    return out


async def supervise(
    argv: Sequence[str],
    groups: Sequence[str],
    redis_url: str | None = None,
    stop_grace_s: float = STOP_GRACE_S,
) -> int:
    """Run one child per group until a signal or a child's exit; the exit code."""
    env = dict(os.environ)
    if redis_url is not None:
        env["CIF_REDIS_URL"] = redis_url
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    children: dict[str, asyncio.subprocess.Process] = {}
    try:
        for group in groups:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cif",
                *argv,
                "--components",
                group,
                "--processes",
                "one",
                stdin=subprocess.DEVNULL,
                env=env,
            )
            children[group] = proc
            log.info("started %s (pid %d)", group, proc.pid)
        exits = {
            g: asyncio.create_task(p.wait(), name=f"cif wait {g}") for g, p in children.items()
        }
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([stopping, *exits.values()], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        failed: tuple[str, int] | None = None
        if not stop.is_set():
            for group, task in exits.items():
                if task.done():
                    code = task.result()
                    if code != 0 and failed is None:
                        failed = (group, code)
                    log.log(
                        logging.ERROR if code else logging.INFO,
                        "%s exited with code %d: stopping the other components",
                        group,
                        code,
                    )
        else:
            log.info("stopping %s", ", ".join(children))
    finally:
        await _stop_all(children, stop_grace_s)
    codes = {g: p.returncode for g, p in children.items()}
    log.info("components stopped: %s", ", ".join(f"{g} {c}" for g, c in codes.items()))
    code = failed[1] if failed is not None else next((c for c in codes.values() if c), 0)
    # A child killed by a signal has a negative code: still a failure, as an exit status.
    return code if code is not None and code >= 0 else 1


async def _stop_all(children: dict[str, asyncio.subprocess.Process], grace_s: float) -> None:
    """SIGTERM every child still running, wait up to ``grace_s``, then kill the rest."""
    for proc in children.values():
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    waits = [asyncio.ensure_future(p.wait()) for p in children.values()]
    if not waits:
        return
    _done, pending = await asyncio.wait(waits, timeout=grace_s)
    if pending:
        for group, proc in children.items():
            if proc.returncode is None:
                log.error("%s did not stop within %.0f s: killing pid %d", group, grace_s, proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        await asyncio.wait(waits)


__all__ = ["GROUPS", "STOP_GRACE_S", "split_groups", "supervise"]
