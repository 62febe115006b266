"""``tarsus install`` on real hosts: a framework installed over MariaDB, then a fresh host (a
network namespace) joining with ``curl http://FW/install/node.sh | TARSUS_JOIN_TOKEN=... sh``
and showing in ``tarsus node list`` — and everything again, which changes nothing
(docs/install.md). The framework listens beyond loopback, so it is secured
(docs/security.md): its operating objects take only callers with its keys, a node gets them
only for the join token, and Hello deployed on the joined node answers all along.

The framework host is the root namespace on the bridge address; the node host has nothing of
Tarsus but what node.sh fetches (a venv under its own prefix, from the framework's wheels, with
no package index). Both are started detached (no systemd here), as on a host without systemd.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from netns import Network, unavailable_reason
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tarsus.install.layout import Layout
from tarsus.install.pki import ensure_keys
from tarsus.install.settings import NodeSettings, load_settings
from tarsus.install.units import Service, verify_unit
from tarsus.testing import eventually_sync, framework_ports, free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from store_support import MARIADB_SERVER, make_store_url, require_mariadb

TARSUS = [sys.executable, "-m", "tarsus"]


HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
#: the CLI's keys (``client.conf`` of the install), set by the fixture
_KEYS: dict[str, str] = {}


def _tarsus(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TARSUS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **_KEYS, **(env or {})},
    )


async def _sql(statement: str, url: str = MARIADB_SERVER) -> list[Any]:
    engine = create_async_engine(make_url(url).set(drivername="mysql+asyncmy"))
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement))
            return list(result) if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def framework(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    asyncio.run(require_mariadb())
    root = tmp_path_factory.mktemp("install")
    db = make_store_url("mariadb", root)
    database = make_url(db).database or ""
    with Network() as net:
        ports = framework_ports()
        web = free_port()
        port_args = [f"--port={k}={v}" for k, v in dataclasses.asdict(ports).items()]
        argv = [
            "install", "framework", "--db", db.replace("mysql+asyncmy://", "mysql://"),
            "--prefix", str(root / "fw"), "--host", net.gateway, "--tls",
            *port_args, f"--port=web={web}",
        ]  # fmt: skip
        layout = Layout(root / "fw")
        _KEYS["TARSUS_CLIENT_KEYS"] = str(layout.client_keys_file)
        try:
            first = _tarsus(*argv)
            assert first.returncode == 0, first.stderr
            yield {
                "net": net,
                "root": root,
                "argv": argv,
                "first": first,
                "layout": layout,
                "web": f"http://{net.gateway}:{web}",
                "locator": f"tars.tarsregistry.QueryObj@tcp -h {net.gateway} -p {ports.query}",
                "db": db,
                "database": database,
                "ports": ports,
            }
        finally:
            service = Service("framework", layout)
            pid = service.running_pid()
            if pid is not None:
                service.stop_detached(pid)
            asyncio.run(_sql(f"DROP DATABASE IF EXISTS `{database}`"))
            user = f"tarsus_{database}"[:32]
            asyncio.run(_sql(f"DROP USER IF EXISTS '{user}'@'%'"))


def test_framework_install_is_idempotent_and_least_privileged(framework: dict[str, Any]) -> None:
    layout: Layout = framework["layout"]
    settings = layout.settings_file("framework")
    assert "framework is up" in framework["first"].stderr
    assert settings.stat().st_mode & 0o777 == 0o600  # it holds the database password
    text_before = settings.read_text()
    db_line = next(line for line in text_before.splitlines() if line.startswith("db = "))
    url = make_url(db_line.split("=", 1)[1].strip().strip('"'))
    assert url.username == f"tarsus_{framework['database']}"[:32]
    assert url.password and len(str(url.password)) >= 24  # generated, not a known default
    tls = {p.name: p.read_bytes() for p in layout.tls_dir.iterdir()}
    assert set(tls) == {f"{n}.{e}" for n in ("ca", "server", "client") for e in ("crt", "key")}
    for name in ("ca", "server", "client"):
        assert (layout.tls_dir / f"{name}.key").stat().st_mode & 0o077 == 0
    assert (layout.auth_dir / "accesskey").read_text().strip()
    # beyond loopback: secured, the CLI's keys and the join token private
    assert "secure = true" in text_before
    assert layout.client_keys_file.stat().st_mode & 0o077 == 0
    token_file = layout.data_dir / "web" / "join-token"
    assert token_file.stat().st_mode & 0o077 == 0
    assert f"TARSUS_JOIN_TOKEN={token_file.read_text().strip()} sh" in framework["first"].stderr
    pid = Service("framework", layout).running_pid()
    assert pid is not None

    # The framework's user works on its own database and nowhere else.
    framework_url = url.set(drivername="mysql+asyncmy").render_as_string(hide_password=False)
    assert asyncio.run(_sql("SELECT COUNT(*) FROM t_server_conf", framework_url))[0][0] > 0
    with pytest.raises(Exception, match="denied"):
        asyncio.run(_sql("SELECT COUNT(*) FROM mysql.user", framework_url))
    with pytest.raises(Exception, match="denied"):
        asyncio.run(_sql("CREATE DATABASE tarsus_test_should_not_exist", framework_url))

    # Again: the same settings, keys and password; the running framework is left alone.
    again = _tarsus(*framework["argv"])
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stderr
    assert settings.read_text() == text_before
    assert {p.name: p.read_bytes() for p in layout.tls_dir.iterdir()} == tls
    assert Service("framework", layout).running_pid() == pid

    unit = layout.unit_dir / "tarsus-framework.service"
    assert "install run framework" in unit.read_text()
    assert verify_unit(unit) is None


def test_install_errors_are_clear(framework: dict[str, Any]) -> None:
    root: Path = framework["root"]
    argv: list[str] = list(framework["argv"])
    # wrong database password: refused, nothing started
    bad_db = argv[argv.index("--db") + 1].replace("root@", "root:nope@")
    free = [f"--port={k}={v}" for k, v in dataclasses.asdict(framework_ports()).items()]
    done = _tarsus(
        "install", "framework", "--db", bad_db, "--prefix", str(root / "wrongdb"),
        "--host", "127.0.0.1", *free, f"--port=web={free_port()}",
    )  # fmt: skip
    assert done.returncode == 1
    assert "wrong user or password" in done.stderr and "Traceback" not in done.stderr
    # the ports are the running framework's: named, with who holds them
    other = list(argv)
    other[other.index("--prefix") + 1] = str(root / "second")
    done = _tarsus(*other)
    assert done.returncode == 1
    assert "is in use by pid" in done.stderr and "--port query=" in done.stderr
    # a node pointed at nothing
    dead = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {free_port()}"
    done = _tarsus("install", "node", "--locator", dead, "--prefix", str(root / "nonode"))
    assert done.returncode == 1
    assert "does not answer" in done.stderr and "Traceback" not in done.stderr
    assert not (root / "nonode" / "etc" / "tarsus" / "node.toml").exists()


def _admin_log(layout: Layout) -> str:
    """What the framework's services logged (the admin registry's refusals among it)."""
    return "\n".join(
        p.read_text(errors="replace") for p in (layout.data_dir / "node").rglob("*.log")
    )


async def _refused_calls(
    proxy_type: type[Any], obj: str, endpoint: str, call: Callable[[Any], Awaitable[Any]]
) -> list[str]:
    """``call`` on ``obj`` at ``endpoint`` without the keys, and with a wrong secret: the
    error each gets (none: it went through)."""
    from tarsus.rpc.auth import Credentials
    from tarsus.rpc.communicator import Communicator
    from tarsus.rpc.errors import TarsError
    from tarsus.rpc.security import ServantSecurity

    errors = []
    wrong = {obj: ServantSecurity(Credentials("tarsus-guess", "guessed"))}
    # no handshake at all (the endpoint given without -e 1), then a wrong key
    for proxy, security in ((f"{obj}@{endpoint}", None), (f"{obj}@{endpoint} -e 1", wrong)):
        async with Communicator(cache_dir=None, security=security) as comm:
            stub = comm.string_to_proxy(proxy_type, proxy)
            try:
                await call(stub.with_options(timeout_ms=3000))
            except TarsError as e:
                errors.append(str(e))
    return errors


async def _refused_admin_calls(admin: str, node: str) -> list[str]:
    """Stop Hello through AdminRegObj without the keys, and with a wrong secret: each fails."""
    from tarsus.protocol.gen import AdminReg

    return await _refused_calls(
        AdminReg.AdminRegProxy,
        "tars.tarsAdminRegistry.AdminRegObj",
        admin,
        lambda stub: stub.stopServer("Test", "HelloServer", node),
    )


async def _registered(locator: str, obj: str) -> tuple[int, int]:
    """``(istcp, authType)`` of the registry's answer for ``obj``: 2 is ssl, 1 is ``-e 1``."""
    from tarsus.protocol.gen import QueryF
    from tarsus.rpc.communicator import Communicator

    async with Communicator(locator, cache_dir=None) as comm:
        query = comm.string_to_proxy(QueryF.QueryFProxy, locator)
        (found,) = await query.findObjectById(obj)
        return int(found.istcp), int(found.authType)


def test_operators_config_and_log_objects_take_only_the_keys(framework: dict[str, Any]) -> None:
    """ConfigExt (editing config files) and LogExt (reading remote logs) are on objects of
    their own with ``-e 1``, over TLS (``--tls``); upstream's ConfigObj stays open (plain
    tcp) for every server's loads; the CLI reaches the guarded objects through the registry,
    over TLS with the install's CA (``client.conf``)."""
    from tarsus.protocol.gen import ConfigF, TarsusConfig, TarsusLog
    from tarsus.rpc.communicator import Communicator

    net: Network = framework["net"]
    ports = framework["ports"]
    root: Path = framework["root"]
    locator = framework["locator"]
    # The registry answers the guarded objects as ssl -e 1, the open ones as tcp.
    assert asyncio.run(_registered(locator, "tars.tarsconfig.ConfigExtObj")) == (2, 1)
    assert asyncio.run(_registered(locator, "tars.tarsAdminRegistry.AdminRegObj")) == (2, 1)
    assert asyncio.run(_registered(locator, "tars.tarsconfig.ConfigObj")) == (1, 0)
    client_conf = framework["layout"].client_keys_file.read_text()
    assert "ca = " in client_conf and "ca.crt" in client_conf
    # The CLI with the install's keys finds ConfigExtObj through the registry, checks its
    # certificate and signs.
    conf = root / "op.conf"
    conf.write_text("<op>\n  workers=2\n</op>\n")
    done = _tarsus(
        "config", "add", "Test.OpServer", str(conf), "--reason", "r", "--locator", locator
    )
    assert done.returncode == 0, done.stdout + done.stderr

    hostile = TarsusConfig.ConfigFile(
        level=2, serverName="Test.OpServer", fileName="evil.conf", content="<x/>"
    )
    errors = asyncio.run(
        _refused_calls(
            TarsusConfig.ConfigExtProxy,
            "tars.tarsconfig.ConfigExtObj",
            f"ssl -h {net.gateway} -p {ports.configext}",
            lambda stub: stub.addConfigFile(hostile, "r", "mallory"),
        )
    )
    assert len(errors) == 2, errors
    errors = asyncio.run(
        _refused_calls(
            TarsusLog.LogExtProxy,
            "tars.tarslog.LogExtObj",
            f"ssl -h {net.gateway} -p {ports.logext}",
            lambda stub: stub.listLogFiles("tars", "tarsregistry"),
        )
    )
    assert len(errors) == 2, errors
    listed = _tarsus("config", "list", "Test.OpServer", "--json", "--locator", locator)
    assert listed.returncode == 0, listed.stderr
    assert "op.conf" in listed.stdout and "evil.conf" not in listed.stdout

    async def load_without_keys() -> tuple[int, str]:
        async with Communicator(locator, cache_dir=None) as comm:
            config = comm.string_to_proxy(ConfigF.ConfigProxy, "tars.tarsconfig.ConfigObj")
            answer: tuple[int, str] = await config.loadConfig("Test", "OpServer", "op.conf")
            return answer

    assert asyncio.run(load_without_keys()) == (0, conf.read_text())


async def _framework_pids(url: str) -> dict[str, int]:
    rows = await _sql(
        "SELECT server_name, process_id FROM t_server_conf WHERE application='tars'", url
    )
    return {str(name): int(pid or 0) for name, pid in rows}


async def _store_back_to(revision: str, url: str) -> None:
    """The store as an older Tarsus left it: its last migrations undone (Alembic downgrade)."""
    from alembic import command

    from tarsus.store.migrate import alembic_config

    engine = create_async_engine(make_url(url).set(drivername="mysql+asyncmy"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))
    finally:
        await engine.dispose()


def _upgrade_in_place(framework: dict[str, Any], calls: Path) -> None:
    """``tarsus install framework`` over an older install — its settings' version stamp older
    and its store one migration behind (0005 undone) — while Hello answers calls in a loop:
    the store migrated to head, the framework process re-executed in place and every
    framework service restarted (a new pid each), one at a time, and not one call failed."""
    from tarsus.store.migrate import head_revision

    layout: Layout = framework["layout"]
    db = framework["db"]
    before = asyncio.run(_framework_pids(db))
    assert len(before) >= 11 and all(before.values()), before
    asyncio.run(_store_back_to("0004", db))
    settings_file = layout.settings_file("framework")
    current = settings_file.read_text()
    stamp = next(line for line in current.splitlines() if line.startswith("version = "))
    settings_file.write_text(current.replace(stamp, 'version = "0.0.1"'))
    outer = Service("framework", layout).running_pid()
    start = len(calls.read_text().splitlines())

    done = _tarsus(*framework["argv"])
    assert done.returncode == 0, done.stderr
    assert "upgrading in place" in done.stderr and "restarted one at a time" in done.stderr
    assert settings_file.read_text() == current
    revision = asyncio.run(_sql("SELECT version_num FROM alembic_version", db))
    assert revision == [(head_revision(),)]
    assert asyncio.run(_sql("SELECT COUNT(*) FROM t_web_user", db))[0][0] >= 0
    assert Service("framework", layout).running_pid() == outer  # re-executed, same pid

    def all_new() -> bool:
        after = asyncio.run(_framework_pids(db))
        return all(after[name] not in (0, pid) for name, pid in before.items())

    eventually_sync(all_new, "every framework service running with a new pid", timeout=30)
    during = [json.loads(x) for x in calls.read_text().splitlines()[start:]]
    assert len(during) > 20
    assert all(c["ok"] for c in during), [c for c in during if not c["ok"]][:3]


def _console(framework: dict[str, Any]) -> httpx.Client:
    """The framework's console as its admin (the password set at the framework host, as
    docs/console.md says for a forgotten one)."""
    password = framework["root"] / "admin-password"
    password.write_text("a-password-for-the-join-test\n")
    done = _tarsus(
        "web", "passwd", "admin", "--db", framework["db"], "--password-file", str(password)
    )
    assert done.returncode == 0, done.stderr
    console = httpx.Client(base_url=framework["web"], timeout=60)
    r = console.post(
        "/api/v1/session", json={"uid": "admin", "password": "a-password-for-the-join-test"}
    )
    assert r.status_code == 201, r.text
    console.headers["X-CSRF-Token"] = r.json()["csrf"]
    return console


def test_a_fresh_host_joins_with_curl_pipe_sh(framework: dict[str, Any]) -> None:
    net: Network = framework["net"]
    layout: Layout = framework["layout"]
    root: Path = framework["root"]
    locator, web = framework["locator"], framework["web"]
    token = (layout.data_dir / "web" / "join-token").read_text().strip()

    # The node's keys only for the join token: none, or a wrong one, is refused before
    # anything is written.
    for env, said in (({}, "this framework is secured"), ({"TARSUS_JOIN_TOKEN": "nope"}, "403")):
        done = _tarsus(
            "install", "node", "--locator", locator, "--web", web,
            "--prefix", str(root / "badnode"), env=env,
        )  # fmt: skip
        assert done.returncode == 1 and said in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (root / "badnode" / "etc" / "tarsus" / "node.toml").exists()

    host = net.add_host("n1")
    prefix = root / "n1"
    # the command as the console's "Add a node" gives it to a logged-in admin
    console = _console(framework)
    command = console.get("/api/v1/install-command").json()["command"]
    assert command == f"curl -fsS {web}/install/node.sh | TARSUS_JOIN_TOKEN={token} sh"
    assert command in console.get("/nodes/add").text
    script = command.replace("| TARSUS_JOIN_TOKEN=", f"| TARSUS_PREFIX={prefix} TARSUS_JOIN_TOKEN=")
    # what the fresh host can use: no package index (proxies unset), only the framework
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    started = time.monotonic()
    done = subprocess.run(
        ["ip", "netns", "exec", host.netns, "bash", "-o", "pipefail", "-c", script],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (prefix / "opt" / "tarsus" / "bin" / "python").is_file()
    node_settings = Layout(prefix).settings_file("node")
    assert locator in node_settings.read_text()
    assert node_settings.stat().st_mode & 0o077 == 0  # it holds the framework's keys

    def connected(name: str, env: dict[str, str] | None = None) -> bool:
        listed = _tarsus("node", "list", "--locator", locator, "--json", timeout=60, env=env)
        return any(
            n["name"] == name and n["connected"]
            for n in json.loads(listed.stdout or "{}").get("nodes", [])
        )

    eventually_sync(lambda: connected(host.address), f"node {host.address} connected", timeout=60)
    print(f"node joined in {time.monotonic() - started:.1f} s")

    def in_console() -> bool:  # the node list the "Add a node" page polls
        listed = console.get("/api/v1/nodes", params={"q": host.address}).json()["items"]
        return any(n["name"] == host.address and n["alive"] for n in listed)

    eventually_sync(in_console, f"node {host.address} alive in the console", timeout=60)
    assert host.address in console.get("/nodes/add").text

    # The CLI without the keys cannot operate the framework.
    nokeys = root / "nokeys.conf"
    nokeys.write_text("<tars>\n</tars>\n")
    done = _tarsus("node", "list", "--locator", locator, env={"TARSUS_CLIENT_KEYS": str(nokeys)})
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stdout + done.stderr

    # Hello deployed, published and started on the joined node, through the secured objects.
    tgz = root / "hello.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name in ("tarsus.toml", "server.py", "Hello.tars"):
            tar.add(HELLO / name, arcname=name)
    idl = "Test.HelloServer"
    where = ("--locator", locator)
    done = _tarsus("package", "upload", idl, str(tgz), "--json", *where)
    assert done.returncode == 0, done.stdout + done.stderr
    version = str(json.loads(done.stdout)["id"])
    for argv in (
        ("server", "deploy", idl, "--node", host.address, "--servant", "HelloObj=18601"),
        ("server", "publish", idl, "--version", version, "--all", "--no-restart"),
        ("server", "start", idl, "--node", host.address),
    ):
        done = _tarsus(*argv, *where)
        assert done.returncode == 0, done.stdout + done.stderr
    calls = root / "calls.jsonl"
    caller = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "caller.py"), locator, str(calls)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def answered() -> bool:
            lines = calls.read_text().splitlines() if calls.exists() else []
            return any(json.loads(line)["ok"] for line in lines)

        eventually_sync(answered, "Hello on the joined node answering", timeout=90)

        # Without the keys, or with a wrong one, AdminRegObj executes nothing: Hello answers on.
        admin = f"ssl -h {net.gateway} -p {framework['ports'].admin}"
        errors = asyncio.run(_refused_admin_calls(admin, host.address))
        assert len(errors) == 2, errors
        eventually_sync(
            lambda: _admin_log(layout).count("refused connection from") >= 2,
            "the admin registry logging both refusals",
            timeout=30,
        )
        seen = len(calls.read_text().splitlines())
        eventually_sync(
            lambda: len(calls.read_text().splitlines()) > seen + 20, "more calls", timeout=30
        )
        fresh = [json.loads(x) for x in calls.read_text().splitlines()[seen:]]
        assert all(c["ok"] for c in fresh), [c for c in fresh if not c["ok"]][:3]

        _upgrade_in_place(framework, calls)
    finally:
        caller.kill()
        caller.wait()

    text_ok = node_settings.read_text()
    joined = load_settings(node_settings)
    assert isinstance(joined, NodeSettings) and joined.ca
    # The join handed the node the framework's CA: it checks the framework's certificate.
    assert Path(joined.ca).read_text() == (layout.tls_dir / "ca.crt").read_text()

    def node_toml(name: str, *, secret: str = "", ca: str = "") -> Path:
        """n1's node.toml for host ``name``: its own directories, maybe another secret or CA."""
        text = text_ok.replace(str(prefix), str(root / name))
        for key, value in (("secretkey", secret), ("ca", ca or joined.ca)):
            line = next(x for x in text.splitlines() if x.startswith(f"{key} = "))
            text = text.replace(line, f'{key} = "{value}"' if value else line)
        path = root / name / "etc" / "tarsus" / "node.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    # A node with a wrong secret never attaches: the admin registry and the registry refuse it.
    n2 = net.add_host("n2")
    bad = node_toml("n2", secret="guessed")
    refusals = _admin_log(layout).count("refused connection from")
    n2.popen([*TARSUS, "install", "run", "node", "--config", str(bad)], log=root / "n2.log")
    eventually_sync(
        lambda: f"refused connection from ('{n2.address}'" in _admin_log(layout),
        "the wrong-key node refused",
        timeout=60,
    )
    assert _admin_log(layout).count("refused connection from") > refusals
    assert not connected(n2.address)

    # A node whose CA file is gone stops with the file's name.
    n3 = net.add_host("n3")
    gone = root / "n3" / "gone-ca.crt"
    missing = node_toml("n3", ca=str(gone))
    done = n3.run([*TARSUS, "install", "run", "node", "--config", str(missing)])
    assert done.returncode == 2 and f"{gone}: no such file" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    # One given another CA (as if an impostor answered at the framework's address) refuses
    # the framework's certificate and never attaches.
    other_ca = ensure_keys(root / "other" / "tls", root / "other" / "auth", "other").ca_cert
    foreign = node_toml("n3", ca=str(other_ca))
    n3_log = root / "n3.log"
    n3.popen([*TARSUS, "install", "run", "node", "--config", str(foreign)], log=n3_log)
    eventually_sync(
        lambda: "certificate verify failed" in n3_log.read_text(errors="replace").lower(),
        "the node with another CA refusing the framework's certificate",
        timeout=60,
    )
    assert not connected(n3.address)

    # node.sh again: installs nothing new, leaves the running agent alone
    pid = Service("node", Layout(prefix)).running_pid()
    again = subprocess.run(
        ["ip", "netns", "exec", host.netns, "bash", "-o", "pipefail", "-c", script],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert Service("node", Layout(prefix)).running_pid() == pid
