"""Chaos: the database, a node agent and a framework host are killed, one after the other.

Hosts (network namespaces, real processes): ``db`` runs a MariaDB of this test's own
(mariadb_host.py; the machine's shared one is never touched); ``fa`` and ``fb`` each run the
framework in the production layout over it (``tarsus up --processes``, as in
test_failover.py); ``n1`` runs a node agent with Hello; ``cl`` calls Hello by name in a loop
through the locator list (caller.py). Before any fault, Hello is deployed with a package
(uploaded and published) and a config file is stored for it. One topology for the three
faults keeps CI time low; each section says what it kills and what it checks
(docs/failover.md, "Faults").

1. **The database is killed** (SIGKILL of ``mariadbd``). Checked: the client's calls keep
   being answered; fresh lookups (``tarsus call`` without a cache) are answered from the
   registries' memory; a deploy, a config write, a package upload and a publish are refused
   with an error naming the database, and change nothing; a Hello that crashes meanwhile is
   restarted by its node. The database is started again on the same files: the deploy,
   package and config made before are intact, the refused deploy, config write and upload
   now go through (and the refused upload left no file behind), and both admin registries
   report Hello active with the pid of the restarted process.
2. **n1's node agent is killed** (SIGKILL of ``tarsus node``; Hello runs on). Checked: Hello
   keeps answering, same process; both admin registries lose n1 from their push channel;
   after the node timeout the registry marks n1 lost and says so (a ``[alarm]`` event of
   ``tars.tarsnode`` on n1, ``tarsus notify list``). A new agent adopts Hello (same pid):
   n1 is back on both admin registries, Hello active with that pid, routed again.
3. **Framework host A is killed** (every process on ``fa`` SIGKILLed, its network up). Checked:
   the client's calls go on; fresh lookups are answered (by B); through B the deploy, package
   and config are intact and a restart of Hello works. ``tarsus up`` on A again (same data
   directory): both registries route Hello on n1 and both admin registries report the same
   state, n1 connected to A's again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from mariadb_host import mariadb_host
from mariadb_host import unavailable_reason as no_mariadb
from netns import Host, Network, unavailable_reason
from test_failover import HELLO, HELLO_IDL, _agree, _has, _json, _node, _on, _up
from test_multihost import PY, ROOT, _calls, _hello_pids

from tarsus.codec.constants import NOTIFY_OBJ, NOTIFY_PORT
from tarsus.testing import eventually

pytestmark = [
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
    # CI has mariadb-server (scripts/test starts it): there, a missing one fails the test
    pytest.mark.skipif(
        no_mariadb() is not None and os.environ.get("CI") != "true", reason=str(no_mariadb())
    ),
]

#: seconds without keepAlive before the registry marks a node lost (above the 10 s beat)
NODE_TIMEOUT = 15
CONFIG = "[chaos]\nkept = through every fault\n"


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    return done


async def _tarsus(host: Host, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_on, host, *args, timeout=timeout)


async def _fresh_lookup(client: Host, locator: str, name: str) -> None:
    """``tarsus call`` by name: a new process, no route cache, the registry must answer."""
    _ok(
        await _tarsus(
            client,
            "call",
            "--locator",
            locator,
            "--idl",
            HELLO_IDL,
            f"{HELLO}.HelloObj",
            "sayHello",
            json.dumps({"name": name}),
        )
    )


async def _status(client: Host, node: Host, admin: str) -> tuple[str, int]:
    status = await _json(
        client, "server", "status", HELLO, "--node", node.address, "--admin", admin
    )
    return status["present_state"], status["pid"]


async def _reports(client: Host, node: Host, admin: str, want: tuple[str, int]) -> bool:
    return await _status(client, node, admin) == want


async def _kept(client: Host, node: Host, admin: str, packages: Any) -> None:
    """What was deployed, published and configured before the faults, read through ``admin``
    (and the config center on its host)."""
    assert await _json(client, "package", "list", HELLO, "--admin", admin) == packages
    status = await _json(
        client, "server", "status", HELLO, "--node", node.address, "--admin", admin
    )
    assert status["setting_state"] == "active", status
    shown = _ok(await _tarsus(client, "config", "show", HELLO, "hello.conf", "--admin", admin))
    assert shown.stdout.strip() == CONFIG.strip()


async def _refused(client: Host, args: tuple[str, ...], logs: Path) -> None:
    """``tarsus ARGS`` fails, saying the database is what failed."""
    done = await _tarsus(client, *args)
    said = done.stdout + done.stderr
    with open(logs / "refused.txt", "a") as out:
        out.write(f"$ tarsus {' '.join(args)}\n{said}\n")
    assert done.returncode != 0, said
    assert "cannot connect to database" in said, said


async def _answering(calls: Path, since: float) -> None:
    """The client's calls since ``since`` were answered (a restart costs a few), and one is
    answered now."""
    now = time.time()
    await eventually(
        lambda: any(c["ok"] for c in _calls(calls) if c["t"] > now), "Hello to answer the client"
    )
    during = _answered_since(calls, since)
    failed = [c for c in during if not c["ok"]]
    assert len(failed) <= len(during) * 0.2, failed[:10]


def _answered_since(calls: Path, since: float) -> list[dict[str, Any]]:
    during = [c for c in _calls(calls) if c["t"] > since]
    assert during, "the client stopped calling"
    return during


async def test_database_node_agent_and_framework_host_killed(tmp_path: Path) -> None:
    with Network() as net:
        dbh, fa, fb = net.add_host("db"), net.add_host("fa"), net.add_host("fb")
        n1, client = net.add_host("n1"), net.add_host("cl")
        database = mariadb_host(dbh, tmp_path / "db")
        await asyncio.to_thread(database.install)
        url = database.url("db_tars")
        locator = (
            f"tars.tarsregistry.QueryObj@tcp -h {fa.address} -p 17890:tcp -h {fb.address} -p 17890"
        )
        admin_a = f"tars.tarsAdminRegistry.AdminRegObj@tcp -h {fa.address} -p 12000"
        admin_b = f"tars.tarsAdminRegistry.AdminRegObj@tcp -h {fb.address} -p 12000"
        notify_b = f"{NOTIFY_OBJ}@tcp -h {fb.address} -p {NOTIFY_PORT}"
        logs = tmp_path / "logs"
        logs.mkdir()

        async def framework_up(fw: Host, log: str) -> None:
            _up(fw, url, locator, tmp_path, logs, log=log, node_timeout=NODE_TIMEOUT)
            await eventually(
                lambda: "is up" in (logs / log).read_text(), f"the framework on {fw.name}",
                timeout=120,
            )  # fmt: skip

        for fw in (fa, fb):  # one after the other: the first creates the store
            await framework_up(fw, f"{fw.name}.log")
        agent = _node(n1, locator, tmp_path, logs)
        for admin in (admin_a, admin_b):
            await eventually(
                lambda admin=admin: _has(client, admin, n1.address),
                f"n1 connected to {admin}", timeout=60, interval=0.5,
            )  # fmt: skip

        # Deployed, published and configured before any fault.
        tgz = tmp_path / "hello.tgz"
        with tarfile.open(tgz, "w:gz") as tar:
            for name in ("tarsus.toml", "server.py", "Hello.tars"):
                tar.add(ROOT / "examples/hello" / name, arcname=name)
        _ok(
            await _tarsus(
                client,
                "server",
                "deploy",
                HELLO,
                "--node",
                n1.address,
                "--servant",
                "HelloObj=18601",
                "--package",
                str(tgz),
                "--start",
                "--admin",
                admin_a,
                timeout=120,
            )
        )
        conf = tmp_path / "hello.conf"
        conf.write_text(CONFIG)
        _ok(
            await _tarsus(
                client,
                "config",
                "add",
                HELLO,
                str(conf),
                "--reason",
                "before the faults",
                "--admin",
                admin_a,
            )
        )
        packages = await _json(client, "package", "list", HELLO, "--admin", admin_a)
        assert packages["packages"], packages
        calls = logs / "calls.jsonl"
        client.popen(
            [
                PY, str(ROOT / "tests/multihost/caller.py"), locator, str(calls),
                "--cache-dir", str(tmp_path / "client-cache"), "--refresh-ms", "5000",
            ],
            log=logs / "client.log",
            cwd=ROOT,
        )  # fmt: skip
        await eventually(lambda: any(c["ok"] for c in _calls(calls)), "Hello to answer")
        await eventually(
            lambda: _agree(client, (fa, fb), [f"{n1.address}:18601"]),
            "both registries to route Hello on n1", timeout=60, interval=0.5,
        )  # fmt: skip

        # 1. The database is killed.
        database.kill()
        killed = time.time()
        await _fresh_lookup(client, locator, "database down")
        deploy_other = (
            "server", "deploy", "Test.ChaosServer", "--node", n1.address,
            "--servant", "ChaosObj=18602", "--admin", admin_a,
        )  # fmt: skip
        await _refused(client, deploy_other, logs)
        conf2 = tmp_path / "during.conf"
        conf2.write_text("[during]\nthe = outage\n")
        config_other = (
            "config", "add", HELLO, str(conf2), "--reason", "during the outage",
            "--admin", admin_b,
        )  # fmt: skip
        await _refused(client, config_other, logs)
        upload = ("package", "upload", HELLO, str(tgz), "--admin", admin_a)
        await _refused(client, upload, logs)
        version = str(packages["packages"][0]["id"])
        publish = ("server", "publish", HELLO, "--version", version, "--all", "--admin", admin_b)
        await _refused(client, publish, logs)
        (crashed,) = _hello_pids(n1)
        os.kill(crashed, signal.SIGKILL)  # a crash while the database is away
        (restarted,) = await eventually(
            lambda: [p for p in _hello_pids(n1) if p != crashed],
            "n1's node to restart its crashed Hello", timeout=30, interval=0.2,
        )  # fmt: skip
        await _fresh_lookup(client, locator, "still down")
        await _answering(calls, killed)

        await asyncio.to_thread(database.start)
        for admin in (admin_a, admin_b):
            await eventually(
                lambda admin=admin: _reports(client, n1, admin, ("active", restarted)),
                f"{admin} to report the restarted Hello", timeout=60, interval=1.0,
            )  # fmt: skip
        await _kept(client, n1, admin_a, packages)
        _ok(await _tarsus(client, *deploy_other))
        _ok(await _tarsus(client, *config_other))
        _ok(await _tarsus(client, *upload))
        packages = await _json(client, "package", "list", HELLO, "--admin", admin_a)
        # the refused upload's file was deleted: every file in the store has its row
        uploads = tmp_path / "patchs/tars.upload/Test/HelloServer"
        assert sorted(p.name for p in uploads.glob("*.tgz")) == sorted(
            p["tgz"] for p in packages["packages"]
        )

        # 2. n1's node agent is killed; Hello runs on.
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
        killed = time.time()
        for admin in (admin_a, admin_b):
            await eventually(
                lambda admin=admin: _not_connected(client, admin, n1.address),
                f"{admin} to lose n1", timeout=60, interval=0.5,
            )  # fmt: skip

        async def lost_event() -> list[dict[str, Any]]:
            events = await _json(
                client, "notify", "list", "tars.tarsnode", "--node", n1.address,
                "--notify", notify_b,
            )  # fmt: skip
            return [e for e in events["events"] if "lost" in e["message"]]

        (event,) = await eventually(lost_event, "an event saying n1 is lost", timeout=90)
        assert event["message"].startswith("[alarm]"), event
        assert _hello_pids(n1) == [restarted], "Hello kept running without its agent"
        during = _answered_since(calls, killed)
        assert all(c["ok"] for c in during[-20:]), during[-20:]

        agent = _node(n1, locator, tmp_path, logs)
        for admin in (admin_a, admin_b):
            await eventually(
                lambda admin=admin: _has(client, admin, n1.address),
                f"n1 back on {admin}", timeout=60, interval=0.5,
            )  # fmt: skip
            await eventually(
                lambda admin=admin: _reports(client, n1, admin, ("active", restarted)),
                f"{admin} to report the adopted Hello", timeout=60, interval=1.0,
            )  # fmt: skip
        assert _hello_pids(n1) == [restarted], "the new agent adopted Hello, no second one"
        await eventually(
            lambda: _agree(client, (fa, fb), [f"{n1.address}:18601"]),
            "both registries to route Hello on n1 again", timeout=60, interval=0.5,
        )  # fmt: skip

        # 3. Framework host A is killed: every process on it.
        fa.kill()
        killed = time.time()
        for i in range(3):
            await _fresh_lookup(client, locator, f"A killed {i}")
        await _kept(client, n1, admin_b, packages)
        _ok(
            await _tarsus(
                client, "server", "restart", HELLO, "--node", n1.address, "--admin", admin_b
            )
        )
        (again,) = await eventually(
            lambda: [p for p in _hello_pids(n1) if p != restarted], "n1's Hello restarted through B"
        )
        await _answering(calls, killed)

        await framework_up(fa, "fa-again.log")
        await eventually(
            lambda: _agree(client, (fa, fb), [f"{n1.address}:18601"]),
            "both registries to route Hello on n1", timeout=90, interval=1.0,
        )  # fmt: skip
        await eventually(
            lambda: _has(client, admin_a, n1.address), "n1 back on A's admin registry",
            timeout=60, interval=0.5,
        )  # fmt: skip
        for admin in (admin_a, admin_b):
            await eventually(
                lambda admin=admin: _reports(client, n1, admin, ("active", again)),
                f"{admin} to report Hello active", timeout=60, interval=1.0,
            )  # fmt: skip
        await _kept(client, n1, admin_a, packages)
        final = _answered_since(calls, time.time() - 3)
        assert final[-1]["ok"], final[-5:]


async def _not_connected(client: Host, admin: str, node: str) -> bool:
    """``admin`` answers and has no push connection to ``node``."""
    done = await asyncio.to_thread(_on, client, "node", "list", "--json", "--admin", admin)
    if done.returncode != 0:
        return False
    listed = json.loads(done.stdout)["nodes"]
    return not any(n["name"] == node and n.get("connected") for n in listed)
