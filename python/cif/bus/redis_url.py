"""Opening a raw connection from a redis URL, as redis-py reads the URL.

Both of cif's own connections (the replay's :class:`~cif.replay.raw_redis.RawRedis` and the
services' :class:`~cif.bus.link.RedisLink`) connect here, so a URL means the same to them as
to redis-py: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) and
``unix:///path?db=N``. What to send before the caller's commands (``AUTH``, ``SELECT``,
``PING``) is :func:`handshake`.

TLS (``rediss://``) verifies the server against the system's CAs and checks its host name,
unless the URL's query says otherwise with redis-py's parameter names::

    rediss://host:6380/0?ssl_ca_certs=/path/ca.pem            # trust this CA (too)
    rediss://host:6380/0?ssl_ca_certs=ca.pem&ssl_certfile=client.pem&ssl_keyfile=client.key
    rediss://host:6380/0?ssl_check_hostname=false             # any name, still a trusted CA
    rediss://host:6380/0?ssl_cert_reqs=none                   # no verification at all

``ssl_certfile``/``ssl_keyfile`` present a client certificate (for a server with
``tls-auth-clients yes``, Redis's default). Any other ``ssl_*`` parameter, or one on a URL
that is not ``rediss://``, is refused with :class:`ValueError` rather than ignored.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from redis.connection import parse_url

#: ``ssl_cert_reqs`` values (redis-py's) and the verification each asks for
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
#: the query parameters :func:`tls_context` understands
_TLS_PARAMS = frozenset(
    ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname")
)


def tls_context(opts: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context for a ``rediss://`` URL parsed by redis-py's ``parse_url``: the
    system's default (verify against the system CAs, check the host name) adjusted by the
    URL's ``ssl_*`` query parameters (see the module docstring)."""
    unknown = sorted(k for k in opts if k.startswith("ssl_") and k not in _TLS_PARAMS)
    if unknown:
        raise ValueError(
            f"unsupported TLS parameter(s) in the redis URL: {', '.join(unknown)} "
            f"(supported: {', '.join(sorted(_TLS_PARAMS))})"
        )
    reqs = str(opts.get("ssl_cert_reqs", "required")).lower()
    if reqs not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be one of none, optional, required; got {reqs!r}")
    ctx = ssl.create_default_context()
    ca_certs = opts.get("ssl_ca_certs")
    if ca_certs:
        ctx.load_verify_locations(cafile=ca_certs)
    # check_hostname must be off before verification can be
    ctx.check_hostname = bool(opts.get("ssl_check_hostname", True)) and reqs != "none"
    ctx.verify_mode = _CERT_REQS[reqs]
    certfile, keyfile = opts.get("ssl_certfile"), opts.get("ssl_keyfile")
    if certfile:
        ctx.load_cert_chain(certfile, keyfile or None)
    elif keyfile:
        raise ValueError("ssl_keyfile needs ssl_certfile (the client certificate)")
    return ctx


async def open_connection(
    url: str, factory: Callable[[], asyncio.Protocol], timeout: float
) -> dict[str, Any]:
    """Connect ``factory()``'s protocol to the server of ``url`` (TCP, TLS or a Unix
    socket) within ``timeout`` seconds; returns the URL's parsed options."""
    opts: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    tls: ssl.SSLContext | None = None
    if url.startswith("rediss://"):
        tls = tls_context(opts)
    elif any(k.startswith("ssl_") for k in opts):
        raise ValueError("ssl_* parameters in a redis URL need the rediss:// scheme")
    loop = asyncio.get_running_loop()

    async def connect() -> None:
        if "path" in opts:
            await loop.create_unix_connection(factory, opts["path"])
        else:
            host = opts.get("host") or "127.0.0.1"
            await loop.create_connection(factory, host, int(opts.get("port") or 6379), ssl=tls)

    await asyncio.wait_for(connect(), timeout)
    return opts


def handshake(opts: dict[str, Any]) -> list[tuple[str, tuple[str | int, ...]]]:
    """The commands to send before the caller's, as ``(what to call the step in an error,
    command)``: ``AUTH`` when the URL has a password, ``SELECT`` for a database other than
    0, and a ``PING`` when there is no password: nothing else would show that the
    connection may run commands (a server requiring a password answers ``NOAUTH`` there,
    not at every later command). The step names never hold the password."""
    steps: list[tuple[str, tuple[str | int, ...]]] = []
    password = opts.get("password")
    if password is not None:
        username = opts.get("username")
        auth = ("AUTH", username, password) if username else ("AUTH", password)
        steps.append((f"AUTH as {username!r}" if username else "AUTH", auth))
    db = int(opts.get("db") or 0)
    if db:
        steps.append((f"SELECT {db}", ("SELECT", db)))
    if password is None:
        steps.append(("PING", ("PING",)))
    return steps


__all__ = ["handshake", "open_connection", "tls_context"]
