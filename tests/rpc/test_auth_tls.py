"""Securing a servant: Tars' access-key handshake (``-e 1``) and ``ssl`` endpoints.

The handshake is checked against upstream's own code: the TarsCpp peer server
(``shared/peers/tarscpp/CppServer`` beside the clone, or ``$TARSUS_TARSCPP_SERVER``) accepts
our client's handshake and refuses a wrong key, and the same binary, as a *client* (its
keepAlive to the node object its config names), authenticates to our server. Hostile clients
(no handshake, calls before it, a bad signature, a replayed old handshake, another object's
name) are refused, logged, and nothing they sent is executed. Certificates for the TLS tests
are made in the test with the ``cryptography`` library.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import struct
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import tarsus.idl
from tarsus.codec import RequestPacket, ResponsePacket, decode, encode
from tarsus.conf import ConfigError
from tarsus.protocol.gen.AuthF import AUTH_STATE
from tarsus.protocol.gen.NodeF import ServerFServant, ServerInfo
from tarsus.rpc import tls_transport
from tarsus.rpc.application import Application
from tarsus.rpc.auth import AUTH_FUNC, AUTH_MESSAGE_TYPE, Credentials, check_package, make_package
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import ConnectError
from tarsus.rpc.framing import frame, split_frames
from tarsus.rpc.security import ServantSecurity
from tarsus.rpc.server_config import ServerConfig
from tarsus.rpc.tls import TlsConfig, TlsConfigError
from tarsus.testing import eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
Test: Any = tarsus.idl.load(ROOT / "examples" / "hello" / "Hello.tars").Test
OBJ = "Test.HelloServer.HelloObj"
KEYS = Credentials("tars-test-user", "123456")


class Hello(Test.HelloServant):  # type: ignore[misc,name-defined]
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def sayHello(self, name: str) -> tuple[int, str]:
        self.calls.append(name)
        return 0, f"hello {name}"


async def _serve(
    servant: Any, endpoint: str, security: ServantSecurity | None, name: str = OBJ
) -> tuple[Application, Any]:
    app = Application()
    adapter = app.add_servant(servant, name, endpoint, security=security)
    await app.start()
    return app, adapter


# -- the handshake's bytes -------------------------------------------------------------------


def test_signature_is_upstreams_scheme() -> None:
    """sha1 twice as hex text (upstream's comment: 123456 gives 69c5fceb...), the time OR-ed
    in little-endian, 3DES over secret1: a package checks against the same secret only, within
    the hour, for the object it names."""
    now = 1_700_000_000
    body = make_package(OBJ, KEYS, now)
    keys = {KEYS.access_key: KEYS.secret_key}
    assert check_package(body, OBJ, keys, now) == (AUTH_STATE.AUTH_SUCC, KEYS.access_key)
    assert check_package(body, OBJ, {KEYS.access_key: "1234567"}, now)[0] in (
        AUTH_STATE.AUTH_ERROR,
        AUTH_STATE.AUTH_DEC_FAIL,
    )
    assert check_package(body, "Test.Other.Obj", keys, now)[0] == AUTH_STATE.AUTH_WRONG_OBJ
    assert check_package(body, OBJ, {"someone": "123456"}, now)[0] == AUTH_STATE.AUTH_WRONG_AK
    assert check_package(body, OBJ, keys, now + 3600)[0] == AUTH_STATE.AUTH_WRONG_TIME
    assert check_package(body, OBJ, keys, now + 3599)[0] == AUTH_STATE.AUTH_SUCC
    assert check_package(b"\x00" * 10, OBJ, keys, now)[0] == AUTH_STATE.AUTH_PROTO_ERR
    assert check_package(b"\xff" * 64, OBJ, keys, now)[0] == AUTH_STATE.AUTH_PROTO_ERR
    # The signature is 3DES of 40 hex characters plus a full pad block.
    from tarsus.protocol.gen.AuthF import BasicAuthPackage

    package = decode(body, BasicAuthPackage)
    assert len(package.sSignature.encode("utf-8", "surrogateescape")) == 48
    assert (package.iTime, package.sHashMethod) == (now, "sha1")
    assert repr(KEYS).count("123456") == 0


# -- the TarsCpp peer ------------------------------------------------------------------------


def _tarscpp() -> Path:
    named = os.environ.get("TARSUS_TARSCPP_SERVER")
    path = Path(named) if named else ROOT.parent / "shared" / "peers" / "tarscpp" / "CppServer"
    if not path.is_file():
        pytest.skip(f"no TarsCpp peer server at {path} (set $TARSUS_TARSCPP_SERVER)")
    return path


class Seen(ServerFServant):  # type: ignore[misc]
    def __init__(self) -> None:
        self.alive: list[ServerInfo] = []

    async def keepAlive(self, serverInfo: ServerInfo) -> int:
        self.alive.append(serverInfo)
        return 0


@pytest.fixture
async def cpp_node() -> AsyncIterator[tuple[Seen, Any]]:
    """Our node object (``-e 1``) that CppServer sends keepAlive to: the servant, its adapter."""
    node = Seen()
    node_keys = ServantSecurity(Credentials("node-user", "node-secret"))
    app, adapter = await _serve(
        node, "tcp -h 127.0.0.1 -p 0 -t 60000 -e 1", node_keys, "tars.tarsnode.ServerObj"
    )
    try:
        yield node, adapter
    finally:
        await app.stop(drain_timeout=1.0)


@pytest.fixture
def cpp_server(tmp_path: Path, cpp_node: tuple[Seen, Any]) -> Iterator[int]:
    """CppServer serving HelloObj on an ``-e 1`` endpoint with upstream's demo keys (its
    port), and sending keepAlive to ``cpp_node`` (its client config holding that node's keys).
    The node listens before CppServer starts: a TarsCpp client whose first connection is
    refused waits before it tries that endpoint again, which a loaded machine once stretched
    past the test's patience."""
    binary = _tarscpp()
    port = free_port()
    node_port = cpp_node[1].port
    conf = tmp_path / "cpp.conf"
    conf.write_text(f"""<tars>
<application>
  <client>
    sync-invoke-timeout = 3000
    modulename = Test.CppServer
    <tars.tarsnode.ServerObj>
      accesskey = node-user
      secretkey = node-secret
    </tars.tarsnode.ServerObj>
  </client>
  <server>
    app = Test
    server = CppServer
    basepath = {tmp_path}
    datapath = {tmp_path}
    logpath = {tmp_path}
    node = tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p {node_port} -t 10000 -e 1
    <Test.CppServer.HelloObjAdapter>
      endpoint = tcp -h 127.0.0.1 -p {port} -t 10000 -e 1
      servant = Test.CppServer.HelloObj
      threads = 1
      maxconns = 100
      queuecap = 1000
      queuetimeout = 10000
      protocol = tars
      order = allow,deny
      allow =
      deny =
      accesskey = {KEYS.access_key}
      secretkey = {KEYS.secret_key}
    </Test.CppServer.HelloObjAdapter>
  </server>
</application>
</tars>
""")
    log = (tmp_path / "out.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), f"--config={conf}"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def test_tarscpp_both_ways(cpp_server: int, cpp_node: tuple[Seen, Any]) -> None:
    """Our client authenticates to a TarsCpp server, which refuses a wrong key and a client
    with none; TarsCpp's client authenticates to our server (its keepAlive gets through)."""
    port, (node, adapter) = cpp_server, cpp_node
    cpp_obj = "Test.CppServer.HelloObj"
    target = f"{cpp_obj}@tcp -h 127.0.0.1 -p {port} -e 1"
    async with Communicator(cache_dir=None, security={cpp_obj: ServantSecurity(KEYS)}) as c:
        hello = c.string_to_proxy(Test.HelloProxy, target)
        answer = await eventually(
            lambda: hello.sayHello("auth"), "CppServer to answer", ignoring=ConnectError
        )
        assert answer == (0, "hello auth, from C++")
    wrong = ServantSecurity(Credentials(KEYS.access_key, "654321"))
    async with Communicator(cache_dir=None, security={cpp_obj: wrong}) as c:
        with pytest.raises(ConnectError, match="refused the credentials"):
            await c.string_to_proxy(Test.HelloProxy, target).sayHello("x")
    async with Communicator(cache_dir=None) as c:
        with pytest.raises(ConnectError, match="no accesskey/secretkey is configured"):
            await c.string_to_proxy(Test.HelloProxy, target).sayHello("x")
    await eventually(lambda: node.alive, "keepAlive from TarsCpp")
    assert node.alive[0].application == "Test" and node.alive[0].serverName == "CppServer"
    assert not adapter.auth.refused


# -- hostile clients against our server ------------------------------------------------------


@pytest.fixture
async def guarded() -> AsyncIterator[tuple[Hello, Any]]:
    servant = Hello()
    app, adapter = await _serve(
        servant, "tcp -h 127.0.0.1 -p 0 -t 60000 -e 1", ServantSecurity(KEYS)
    )
    try:
        yield servant, adapter
    finally:
        await app.stop(drain_timeout=1.0)


def _call(rid: int, name: str = "mallory") -> bytes:
    body = Test.HelloServant._tars_ops_["sayHello"]
    from tarsus.codec.versions import codec_for

    args = codec_for(1).encode_args(body, (name,))
    return frame(encode(RequestPacket(1, 0, 0, rid, OBJ, "sayHello", args, 3000, {}, {})))


def _handshake(package: bytes, obj: str = OBJ) -> bytes:
    packet = RequestPacket(1, 0, AUTH_MESSAGE_TYPE, 1, obj, AUTH_FUNC, package, 3000, {}, {})
    return frame(encode(packet))


async def _exchange(port: int, *writes: bytes) -> tuple[list[Any], bool]:
    """Send *writes* (each its own write), read until the server closes or goes quiet; the
    packets it answered and whether it closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for data in writes:
        writer.write(data)
        await writer.drain()
    got = bytearray()
    closed = False
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 1.0)
            if not chunk:
                closed = True
                break
            got += chunk
    except (TimeoutError, ConnectionError):
        closed = closed or reader.at_eof()
    writer.close()
    return [decode(body, ResponsePacket) for body in split_frames(got)], closed


async def test_hostile_clients_are_refused_and_nothing_runs(
    guarded: tuple[Hello, Any], caplog: pytest.LogCaptureFixture
) -> None:
    servant, adapter = guarded
    port = adapter.port
    caplog.set_level(logging.WARNING, "tarsus.rpc.auth")
    old = make_package(OBJ, KEYS, now=1_000_000_000)  # a handshake recorded long ago
    bad = bytearray(make_package(OBJ, KEYS))
    bad[-3] ^= 0x55  # inside the signature
    attempts = {
        "a call without a handshake": [_call(1)],
        "calls first, handshake after": [_call(5) + _call(6), _handshake(make_package(OBJ, KEYS))],
        "a replayed old handshake": [_handshake(old), _call(2)],
        "a bad signature": [_handshake(bytes(bad)), _call(2)],
        "a wrong secret": [
            _handshake(make_package(OBJ, Credentials(KEYS.access_key, "x"))),
            _call(2),
        ],
        "an unknown access key": [_handshake(make_package(OBJ, Credentials("eve", "123456")))],
        "another object's name": [_handshake(make_package("Test.X.Obj", KEYS), "Test.X.Obj")],
        "garbage": [b"\x00\x00\x00\x09abcde"],
        "an absurd length": [struct.pack(">I", 1 << 30)],
    }
    for what, writes in attempts.items():
        answers, closed = await _exchange(port, *writes)
        assert (answers, closed) == ([], True), what
    assert servant.calls == []
    assert sum(adapter.auth.refused.values()) == len(attempts)
    assert set(adapter.auth.refused) >= {"AUTH_PROTO_ERR", "AUTH_WRONG_TIME", "AUTH_WRONG_AK"}
    assert "refused connection from" in caplog.text and "nothing executed" in caplog.text
    assert not adapter.connections and not adapter.auth.gates


async def test_handshake_then_calls_on_the_same_connection(guarded: tuple[Hello, Any]) -> None:
    """The handshake split over writes, a call pipelined right behind it, then more calls: all
    answered; the answer to the handshake is upstream's (request id 1, body AUTH_SUCC)."""
    servant, adapter = guarded
    hs = _handshake(make_package(OBJ, KEYS))
    answers, closed = await _exchange(
        adapter.port, hs[:3], hs[3:20], hs[20:] + _call(2, "a"), _call(3, "b")
    )
    assert not closed
    assert [(a.iRequestId, a.iRet) for a in answers] == [(1, 0), (2, 0), (3, 0)]
    assert bytes(answers[0].sBuffer) == b"AUTH_SUCC"
    assert answers[0].iMessageType == AUTH_MESSAGE_TYPE
    assert servant.calls == ["a", "b"]
    # Our own client: one handshake per connection, then plain calls.
    async with Communicator(cache_dir=None, security={OBJ: ServantSecurity(KEYS)}) as comm:
        hello = comm.string_to_proxy(Test.HelloProxy, f"{OBJ}@{adapter.bound_endpoint}")
        assert [await hello.sayHello(str(i)) for i in range(3)] == [
            (0, f"hello {i}") for i in range(3)
        ]


async def test_silent_connection_does_not_stay(guarded: tuple[Hello, Any]) -> None:
    """A connection that never sends its handshake is closed when the adapter closes (and
    after AUTH_TIMEOUT_S on its own); it never counts as a served connection."""
    _servant, adapter = guarded
    reader, writer = await asyncio.open_connection("127.0.0.1", adapter.port)
    await eventually(lambda: adapter.auth.gates, "the gate to hold the connection")
    assert not adapter.connections
    adapter.auth.close()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


# -- TLS ---------------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    path: Path, cn: str, issuer: tuple[x509.Certificate, Any] | None, *, ca: bool = False
) -> tuple[x509.Certificate, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(signer_cert.subject if signer_cert else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    cert = builder.sign(signer_key, hashes.SHA256())
    (path / f"{cn}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (path / f"{cn}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA with a server and a client certificate, and a stranger CA with its own client."""
    d = tmp_path_factory.mktemp("pki")
    ca = _issue(d, "ca", None, ca=True)
    _issue(d, "server", ca)
    _issue(d, "client", ca)
    other = _issue(d, "other-ca", None, ca=True)
    _issue(d, "stranger", other)
    return d


def _tls(d: Path, me: str = "", ca: str = "ca", verify: bool = False) -> TlsConfig:
    cert = str(d / f"{me}.crt") if me else ""
    key = str(d / f"{me}.key") if me else ""
    return TlsConfig(str(d / f"{ca}.crt") if ca else "", cert, key, verify)


async def test_tls_endpoint_with_client_certificates_and_auth(pki: Path) -> None:
    """An ssl endpoint with verifyclient = 1 and -e 1: a client with the CA, its certificate and
    the keys is served; one checking against another CA, one without a certificate, one with a
    certificate from another CA, and one speaking plain TCP are refused."""
    servant = Hello()
    security = ServantSecurity(KEYS, _tls(pki, "server", verify=True))
    app, adapter = await _serve(servant, "ssl -h 127.0.0.1 -p 0 -t 60000 -e 1", security)
    target = f"{OBJ}@{adapter.bound_endpoint}"

    async def call(client: ServantSecurity) -> Any:
        async with Communicator(cache_dir=None, security={OBJ: client}) as comm:
            return await comm.string_to_proxy(Test.HelloProxy, target).sayHello("tls")

    try:
        assert await call(ServantSecurity(KEYS, _tls(pki, "client"))) == (0, "hello tls")
        for refused in (
            ServantSecurity(KEYS, _tls(pki, "client", ca="other-ca")),  # server not trusted
            ServantSecurity(KEYS, _tls(pki)),  # no client certificate
            ServantSecurity(KEYS, _tls(pki, "stranger")),  # client from another CA
        ):
            with pytest.raises(ConnectError):
                await call(refused)
        answers, closed = await _exchange(adapter.port, _handshake(make_package(OBJ, KEYS)))
        assert (answers, closed) == ([], True)  # plain TCP on a TLS port
        assert servant.calls == ["tls"]
    finally:
        await app.stop(drain_timeout=1.0)


def test_security_config_keys(pki: Path, tmp_path: Path) -> None:
    """The keys as a node's config writes them; what cannot work is a clear error at load."""

    def conf(adapter_keys: str, endpoint: str = "tcp -h 127.0.0.1 -p 1 -e 1") -> str:
        return f"""<tars>
<application>
  <client>
    <Test.Other.Obj>
      accesskey = a
      secretkey = s
      ca = {pki / "ca.crt"}
    </Test.Other.Obj>
  </client>
  <server>
    app = Test
    server = HelloServer
    <Test.HelloServer.HelloObjAdapter>
      endpoint = {endpoint}
      servant = {OBJ}
      {adapter_keys}
    </Test.HelloServer.HelloObjAdapter>
  </server>
</application>
</tars>"""

    config = ServerConfig.load(
        conf("accesskey = k\nsecretkey = s\ncert = c\nkey = k\nverifyclient = 1")
    )
    security = config.adapters[0].security
    assert security is not None and security.credentials == Credentials("k", "s")
    assert security.tls == TlsConfig("", "c", "k", True)
    other = config.client.objects["Test.Other.Obj"]
    assert other.credentials == Credentials("a", "s") and other.tls is not None
    for keys, endpoint, message in (
        ("", "tcp -h 127.0.0.1 -p 1 -e 1", "-e 1: set accesskey and secretkey"),
        ("accesskey = k", "tcp -h 127.0.0.1 -p 1", "accesskey and secretkey go together"),
        ("accesskey = k\nsecretkey = s", "ssl -h 127.0.0.1 -p 1", "set cert and key"),
        ("cert = c\nkey = k\nverifyclient = yes", "ssl -h 127.0.0.1 -p 1", "verifyclient"),
    ):
        with pytest.raises(ConfigError, match=message):
            ServerConfig.load(conf(keys, endpoint))
    with pytest.raises(TlsConfigError, match="no such file"):
        TlsConfig("", str(tmp_path / "none.crt"), str(tmp_path / "none.key")).server_context()
    missing_ca = tmp_path / "gone-ca.crt"  # OpenSSL's error names no file: ours does
    with pytest.raises(TlsConfigError, match=f"client: {missing_ca}: no such file"):
        TlsConfig(str(missing_ca)).client_context()
    with pytest.raises(TlsConfigError, match="verifyclient = 1 needs ca"):
        TlsConfig("", str(pki / "server.crt"), str(pki / "server.key"), True).server_context()


# -- the TLS layer (tarsus.rpc.tls_transport) against asyncio's own, and under load ----------


async def test_tls_layer_talks_to_asyncios_own_tls_both_ways(pki: Path) -> None:
    """Our ssl server answers a client on asyncio's own TLS layer (``ssl=`` of
    ``open_connection``), and our client calls a server on it (``start_server(ssl=)``): the
    bytes on the wire are TLS, whoever moves them."""
    servant = Hello()
    app, adapter = await _serve(
        servant, "ssl -h 127.0.0.1 -p 0 -t 60000", ServantSecurity(None, _tls(pki, "server"))
    )
    try:
        client_ctx = _tls(pki).client_context()
        reader, writer = await asyncio.open_connection("127.0.0.1", adapter.port, ssl=client_ctx)
        writer.write(_call(7, "stdlib client"))
        head = await asyncio.wait_for(reader.readexactly(4), 5)
        body = await reader.readexactly(struct.unpack(">I", head)[0] - 4)
        rsp = decode(body, ResponsePacket)
        writer.close()
        assert rsp.iRequestId == 7 and rsp.iRet == 0
        op = Test.HelloServant._tars_ops_["sayHello"]
        assert tuple(op.decode_results(rsp.sBuffer)) == (0, "hello stdlib client")
    finally:
        await app.stop(drain_timeout=1.0)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(4)
        req = decode(await reader.readexactly(struct.unpack(">I", head)[0] - 4), RequestPacket)
        (name,) = op.decode_args(req.sBuffer)
        results = op.encode_results((0, f"stdlib server to {name}"))
        rsp = ResponsePacket(1, 0, req.iRequestId, 0, 0, results, {}, "", {})
        writer.write(frame(encode(rsp)))
        await writer.drain()
        writer.close()

    stdlib = await asyncio.start_server(
        answer, "127.0.0.1", 0, ssl=_tls(pki, "server").server_context()
    )
    port = stdlib.sockets[0].getsockname()[1]
    try:
        security = {OBJ: ServantSecurity(None, _tls(pki))}
        async with Communicator(cache_dir=None, security=security) as comm:
            proxy = comm.string_to_proxy(Test.HelloProxy, f"{OBJ}@ssl -h 127.0.0.1 -p {port}")
            assert await proxy.sayHello("tarsus") == (0, "stdlib server to tarsus")
    finally:
        stdlib.close()
        await stdlib.wait_closed()


async def test_tls_carries_big_calls_among_many_small_ones(pki: Path) -> None:
    """A 1 MiB call (about 64 TLS records each way) among 200 small ones in flight on the same
    connection: every answer comes back whole and to its caller."""
    servant = Hello()
    app, adapter = await _serve(
        servant, "ssl -h 127.0.0.1 -p 0 -t 60000", ServantSecurity(None, _tls(pki, "server"))
    )
    big = "".join(chr(ord("a") + i % 26) for i in range(1 << 20))
    try:
        security = {OBJ: ServantSecurity(None, _tls(pki))}
        async with Communicator(cache_dir=None, security=security) as comm:
            proxy = comm.string_to_proxy(Test.HelloProxy, f"{OBJ}@{adapter.bound_endpoint}")
            names = [str(i) for i in range(100)] + [big] + [str(i) for i in range(100, 200)]
            answers = await asyncio.gather(*(proxy.sayHello(n) for n in names))
        assert answers == [(0, f"hello {n}") for n in names]
        assert len(adapter.connections) <= 1
    finally:
        await app.stop(drain_timeout=1.0)


async def test_tls_connection_closed_by_the_server_is_replaced(pki: Path) -> None:
    """The server closes an idle TLS connection (its close_notify first): the client notices,
    and its next call (made once it noticed) opens a new connection and is answered. (The idle
    timeout counts from the connection's start: 2 s leave a loaded machine time for the new
    one's handshake.)"""
    servant = Hello()
    app, adapter = await _serve(
        servant, "ssl -h 127.0.0.1 -p 0 -t 2000", ServantSecurity(None, _tls(pki, "server"))
    )
    try:
        security = {OBJ: ServantSecurity(None, _tls(pki))}
        async with Communicator(cache_dir=None, security=security) as comm:
            proxy = comm.string_to_proxy(Test.HelloProxy, f"{OBJ}@{adapter.bound_endpoint}")
            assert await proxy.sayHello("first") == (0, "hello first")
            (endpoint,) = comm.object_proxy(f"{OBJ}@{adapter.bound_endpoint}").adapters.values()
            conn = await endpoint.connection()
            await eventually(lambda: not adapter.connections, "idle connection closed")
            # the client has noticed once its connection reads the close: a call sent in
            # between would go out on the closing connection and fail with "connection closed"
            await eventually(lambda: conn.closed, "the client to notice the close")
            assert await proxy.sayHello("second") == (0, "hello second")
        assert servant.calls == ["first", "second"]
    finally:
        await app.stop(drain_timeout=1.0)


async def test_tls_handshake_that_never_comes_is_dropped(
    pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that connects to an ssl endpoint and never starts the handshake is
    disconnected when the handshake timeout passes (it holds no connection of the adapter)."""
    monkeypatch.setattr(tls_transport, "HANDSHAKE_TIMEOUT", 0.2)
    app, adapter = await _serve(
        Hello(), "ssl -h 127.0.0.1 -p 0 -t 60000", ServantSecurity(None, _tls(pki, "server"))
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", adapter.port)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        assert not adapter.connections
    finally:
        await app.stop(drain_timeout=1.0)
