"""``tarsus server|node|template`` against a stand-in admin registry over a real socket.

The stand-in (``conftest.StandInAdmin``) is there until the lead's end-to-end test drives the
real ``tars.tarsAdminRegistry.AdminRegObj``. Commands run in-process through typer's
``CliRunner``, except the unreachable-admin checks, which run ``python -m tarsus`` for real.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from adminreg_standin import ADMIN_OBJ, AdminReg, StandInAdmin
from typer.testing import CliRunner, Result

import tarsus.cli.server
from tarsus.cli import app
from tarsus.testing import ServerThread, free_port

HELLO_TOML = """
[package]
name = "Test.HelloServer"

[servants]
HelloObj = { port = 18601 }
EchoObj = { port = 18602 }
"""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("TARSUS_ADMIN", "TARSUS_LOCATOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TARSUS_CACHE_DIR", str(tmp_path / "cache"))
    # no package store (a port nothing listens on): publish hands the node the package's path
    monkeypatch.setenv("TARSUS_PATCH", f"tcp -h 127.0.0.1 -p {free_port()}")
    monkeypatch.setattr(tarsus.cli.server, "PATCH_POLL_INTERVAL_S", 0.01)


def run(admin: str | None, *args: str) -> Result:
    """``tarsus ARGS --admin ADMIN``; a crash (rather than an exit status) fails the test."""
    argv = [*args, "--admin", admin] if admin else list(args)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, argv)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"tarsus {' '.join(argv)} crashed") from result.exception
    assert "Traceback" not in result.output
    return result


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def hello_package(root: Path, toml: str = HELLO_TOML) -> Path:
    pkg = root / "hello"
    (pkg / "src").mkdir(parents=True)
    (pkg / "tarsus.toml").write_text(toml)
    (pkg / "src" / "server.py").write_text("print('hello')\n")
    (pkg / "src" / "__pycache__").mkdir()
    (pkg / "src" / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"\0junk")
    return pkg


def tgz_of(files: dict[str, bytes], path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --------------------------------------------------------------------------- deploy


def test_deploy_a_directory_takes_servants_from_tarsus_toml_publishes_and_starts(
    standin: tuple[StandInAdmin, str], tmp_path: Path
) -> None:
    admin, proxy = standin
    pkg = hello_package(tmp_path)
    result = run(
        proxy, "server", "deploy", "Test.HelloServer", "--node", "10.0.0.7",
        "--package", str(pkg), "--start", "--user", "alice",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr

    # one call deploys the instance and its servants, atomically (AdminExt.deployServer)
    ((conf, servants, replace, user),) = admin.called("deployServer")
    assert (conf.application, conf.serverName, conf.nodeName) == ("Test", "HelloServer", "10.0.0.7")
    assert conf.profile == "tars.tarspython.default"  # upstream: the template name travels here
    assert (conf.serverType, conf.settingState, replace) == ("tars_python", "inactive", False)
    assert user == "alice"
    adapters = {a.servant: a for a in servants}
    assert set(adapters) == {"Test.HelloServer.HelloObj", "Test.HelloServer.EchoObj"}
    hello = adapters["Test.HelloServer.HelloObj"]
    assert hello.adapterName == "Test.HelloServer.HelloObjAdapter"
    assert hello.endpoint == "tcp -h 10.0.0.7 -p 18601 -t 60000"
    assert adapters["Test.HelloServer.EchoObj"].endpoint == "tcp -h 10.0.0.7 -p 18602 -t 60000"

    # the directory went out as a .tgz whose md5 is the one sent, holding the tree (no caches)
    (req,) = admin.patch_requests
    assert (req.appname, req.servername, req.nodename) == ("Test", "HelloServer", "10.0.0.7")
    assert (req.user, req.servertype, req.version) == ("alice", "tars_python", "")
    archive, data = admin.patched_archives[0]
    assert archive.is_absolute() and archive.suffix == ".tgz"
    assert req.md5 == hashlib.md5(data).hexdigest()
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["src", "src/server.py", "tarsus.toml"]
    assert admin.called("startServer") == [("Test", "HelloServer", "10.0.0.7")]
    names = [n for n, _ in admin.calls]  # started only once the node had installed it:
    assert names.index("startServer") > max(
        i for i, n in enumerate(names) if n == "getPatchPercent"
    )

    assert "deployed Test.HelloServer on node 10.0.0.7" in result.stdout
    assert "tcp -h 10.0.0.7 -p 18601 -t 60000" in result.stdout
    assert "started Test.HelloServer on node 10.0.0.7" in result.stdout


def test_packing_the_same_tree_twice_gives_the_same_archive(
    standin: tuple[StandInAdmin, str], tmp_path: Path
) -> None:
    admin, proxy = standin
    pkg = hello_package(tmp_path)
    for _ in range(2):
        args = ["server", "deploy", "Test.HelloServer", "--node", "10.0.0.7", "--replace"]
        assert run(proxy, *args, "--package", str(pkg)).exit_code == 0
    first, second = admin.patch_requests
    assert first.md5 == second.md5 and first.filepath == second.filepath


def test_deploy_a_tgz_by_file_url_with_a_servant_override_json_shape(
    standin: tuple[StandInAdmin, str], tmp_path: Path
) -> None:
    admin, proxy = standin
    tgz = tgz_of(
        {"HelloServer/tarsus.toml": HELLO_TOML.encode(), "HelloServer/app.py": b"x = 1\n"},
        tmp_path / "hello.tgz",
    )
    doc = ok_json(
        run(
            proxy,
            "server",
            "deploy",
            "Test.HelloServer",
            "--node",
            "10.0.0.7",
            "--json",
            "--package",
            tgz.as_uri(),
            "--servant",
            "HelloObj=19000",
            "--template",
            "tars.tarspython.default",
        )
    )
    assert doc == {
        "server": "Test.HelloServer",
        "application": "Test",
        "server_name": "HelloServer",
        "node": "10.0.0.7",
        "template": "tars.tarspython.default",
        "server_type": "tars_python",
        "replaced": False,
        "container": None,
        "servants": [
            {
                "name": "HelloObj",
                "servant": "Test.HelloServer.HelloObj",
                "adapter": "Test.HelloServer.HelloObjAdapter",
                "endpoint": "tcp -h 10.0.0.7 -p 19000 -t 60000",
                "port": 19000,
            },
            {
                "name": "EchoObj",
                "servant": "Test.HelloServer.EchoObj",
                "adapter": "Test.HelloServer.EchoObjAdapter",
                "endpoint": "tcp -h 10.0.0.7 -p 18602 -t 60000",
                "port": 18602,
            },
        ],
        "package": {
            "archive": str(tgz),
            "md5": hashlib.md5(tgz.read_bytes()).hexdigest(),
            "packed_from": None,
            "manifest": f"{tgz}:HelloServer/tarsus.toml",
            "result": "patch request sent to node",
            "version": "7",
            "percent": 100,
            "node_result": "patch succ",
        },
        "started": False,
        "start_result": None,
    }
    assert admin.patch_requests[0].filepath == str(tgz)
    assert not admin.called("startServer")


def test_package_name_mismatch_is_a_usage_error_and_nothing_is_sent(
    standin: tuple[StandInAdmin, str], tmp_path: Path
) -> None:
    admin, proxy = standin
    pkg = hello_package(tmp_path)
    result = run(
        proxy, "server", "deploy", "Test.OtherServer", "--node", "10.0.0.7", "--package", str(pkg)
    )
    assert result.exit_code == 2
    assert "'Test.HelloServer'" in result.stderr and "'Test.OtherServer'" in result.stderr
    assert str(pkg / "tarsus.toml") in result.stderr
    assert admin.calls == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["TestHelloServer", "--servant", "A=1"], "APP.SERVER"),
        (["Test.HelloServer"], "no servants to deploy"),
        (["Test.HelloServer", "--servant", "HelloObj"], "NAME=PORT"),
        (["Test.HelloServer", "--servant", "HelloObj=70000"], "1..65535"),
        (["Test.HelloServer", "--package", "/no/such/dir"], "no package at"),
        (["Test.HelloServer", "--package", "https://example.com/x.tgz"], "file:// URL"),
    ],
)
def test_deploy_usage_errors_exit_2_before_any_call(
    standin: tuple[StandInAdmin, str], args: list[str], message: str
) -> None:
    admin, proxy = standin
    result = run(proxy, "server", "deploy", "--node", "10.0.0.7", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert admin.calls == []


def test_a_bad_tarsus_toml_names_the_file_and_the_key(
    standin: tuple[StandInAdmin, str], tmp_path: Path
) -> None:
    _, proxy = standin
    pkg = hello_package(
        tmp_path, '[package]\nname = "Test.HelloServer"\n[servants]\nHelloObj = 5\n'
    )
    result = run(
        proxy, "server", "deploy", "Test.HelloServer", "--node", "n", "--package", str(pkg)
    )
    assert result.exit_code == 2
    assert "tarsus.toml: [servants] HelloObj" in result.stderr


def test_a_failed_patch_fails_the_deploy_with_the_nodes_reason_and_does_not_start(
    standin: tuple[StandInAdmin, str], tmp_path: Path
) -> None:
    admin, proxy = standin
    admin.patch_steps = [(0, 40, True, False, ""), (0, 60, False, False, "tar: disk full")]
    pkg = hello_package(tmp_path)
    result = run(
        proxy, "server", "deploy", "Test.HelloServer", "--node", "10.0.0.7",
        "--package", str(pkg), "--start",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "failed on the node at 60%: tar: disk full" in result.stderr
    assert "stays deployed on node 10.0.0.7" in result.stderr
    assert not admin.called("startServer")


def test_a_refused_deploy_names_its_cause_and_nothing_else_is_sent(
    standin: tuple[StandInAdmin, str], tmp_path: Path
) -> None:
    admin, proxy = standin
    admin.refuse_deploy = (
        1007,
        "deploy Test.HelloServer on node '10.0.0.7': port 18601 of node 10.0.0.7 is taken by "
        "Test.OtherServer.OtherObjAdapter",
    )
    result = run(
        proxy, "server", "deploy", "Test.HelloServer", "--node", "10.0.0.7",
        "--package", str(hello_package(tmp_path)), "--start",
    )  # fmt: skip
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith("error: deploying Test.HelloServer on node 10.0.0.7 failed")
    assert "1007 EM_TARS_PARAMETER_ERR" in line
    assert "port 18601 of node 10.0.0.7 is taken by Test.OtherServer" in line
    assert [n for n, _ in admin.calls] == ["deployServer"]  # no publish, no start, no undo


def test_deploying_twice_without_replace_says_why(standin: tuple[StandInAdmin, str]) -> None:
    _, proxy = standin
    args = ["server", "deploy", "Test.HelloServer", "--node", "10.0.0.7", "--servant", "HelloObj=1"]
    assert run(proxy, *args).exit_code == 0
    result = run(proxy, *args)
    assert result.exit_code == 1
    assert "already deployed" in result.stderr  # the admin registry's reason
    assert run(proxy, *args, "--replace").exit_code == 0


# --------------------------------------------------------------------------- lifecycle


def deploy_hello(proxy: str, node: str = "10.0.0.7") -> None:
    args = ["server", "deploy", "Test.HelloServer", "--node", node, "--servant", "HelloObj=18601"]
    assert run(proxy, *args).exit_code == 0


def test_error_codes_are_translated_to_words_with_the_servers_text(
    standin: tuple[StandInAdmin, str],
) -> None:
    _, proxy = standin
    deploy_hello(proxy, node="10.9.9.9")
    result = run(proxy, "server", "start", "Test.HelloServer", "--node", "10.9.9.9")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert "starting Test.HelloServer on node 10.9.9.9 failed" in line
    assert "not registered, or its heartbeat timed out" in line
    assert "1001 EM_TARS_NODE_NOT_REGISTRY_ERR" in line
    assert "node '10.9.9.9' not registered or heartbeat timeout" in line  # the server's text

    result = run(proxy, "server", "stop", "Test.NoServer", "--node", "10.0.0.7", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == 1003 and error["name"] == "EM_TARS_LOAD_SERVICE_DESC_ERR"
    assert error["result"] == " 'Test.NoServer_10.0.0.7' no config"
    assert "descriptor could not be loaded" in error["message"]


def test_start_stop_restart_status_notify_undeploy(standin: tuple[StandInAdmin, str]) -> None:
    admin, proxy = standin
    deploy_hello(proxy)
    server = ["Test.HelloServer", "--node", "10.0.0.7"]

    result = run(proxy, "server", "start", *server)
    assert result.exit_code == 0 and "started Test.HelloServer on node 10.0.0.7" in result.stdout
    doc = ok_json(run(proxy, "server", "status", *server, "--json"))
    assert doc == {
        "server": "Test.HelloServer",
        "node": "10.0.0.7",
        "setting_state": "active",
        "present_state": "active",
        "present_state_in_node": "active",
        "pid": 4242,
        "patch_version": "",
        "patch_time": "",
        "patch_user": "",
        "notes": [],
    }
    human = run(proxy, "server", "status", *server).stdout
    assert "present on node" in human and "4242" in human

    doc = ok_json(run(proxy, "server", "restart", *server, "--json"))
    assert doc == {
        "server": "Test.HelloServer",
        "node": "10.0.0.7",
        "action": "restartServer",
        "result": "",
    }
    assert run(proxy, "server", "stop", *server).exit_code == 0
    assert admin.servers["Test", "HelloServer", "10.0.0.7"].setting == "inactive"

    result = run(proxy, "server", "notify", *server, "tars.setloglevel", "DEBUG")
    assert result.exit_code == 0
    assert result.stdout.strip() == "[notify:tars.setloglevel DEBUG] done"
    doc = ok_json(run(proxy, "server", "notify", *server, "tars.viewstatus", "--json"))
    assert doc["command"] == "tars.viewstatus" and doc["result"] == "[notify:tars.viewstatus] done"

    result = run(proxy, "server", "undeploy", *server, "--user", "bob")
    assert (
        result.exit_code == 0 and "undeployed Test.HelloServer from node 10.0.0.7" in result.stdout
    )
    assert admin.called("undeploy")[-1] == ("Test", "HelloServer", "10.0.0.7", "bob")
    assert admin.servers == {}


def test_publish_to_a_deployed_server_restarts_it(
    standin: tuple[StandInAdmin, str], tmp_path: Path
) -> None:
    admin, proxy = standin
    deploy_hello(proxy)
    pkg = hello_package(tmp_path)
    doc = ok_json(
        run(
            proxy,
            "server",
            "publish",
            "Test.HelloServer",
            "--node",
            "10.0.0.7",
            "--package",
            str(pkg),
            "--json",
        )
    )
    assert doc["restarted"] is True and doc["package"]["version"] == "7"
    assert admin.called("restartServer") == [("Test", "HelloServer", "10.0.0.7")]
    assert len(admin.called("deployServer")) == 1  # publishing does not re-register


def test_server_list_filters_and_json(standin: tuple[StandInAdmin, str]) -> None:
    _, proxy = standin
    deploy_hello(proxy, "10.0.0.7")
    deploy_hello(proxy, "10.0.0.8")
    args = ["server", "deploy", "Shop.StoreServer", "--node", "10.0.0.7", "--servant", "StoreObj=1"]
    assert run(proxy, *args, "--server-type", "tars_cpp").exit_code == 0

    doc = ok_json(run(proxy, "server", "list", "--json"))
    assert [(s["server"], s["node"]) for s in doc["servers"]] == [
        ("Shop.StoreServer", "10.0.0.7"),
        ("Test.HelloServer", "10.0.0.7"),
        ("Test.HelloServer", "10.0.0.8"),
    ]
    assert doc["servers"][0] == {
        "server": "Shop.StoreServer",
        "application": "Shop",
        "server_name": "StoreServer",
        "node": "10.0.0.7",
        "setting_state": "inactive",
        "present_state": "inactive",
        "server_type": "tars_cpp",
    }
    doc = ok_json(run(proxy, "server", "list", "--node", "10.0.0.8", "--json"))
    assert [s["server"] for s in doc["servers"]] == ["Test.HelloServer"]
    human = run(proxy, "server", "list", "--app", "Shop").stdout
    assert "Shop.StoreServer" in human and "Test.HelloServer" not in human


# --------------------------------------------------------------------------- nodes, templates


def test_node_list_with_heartbeats_and_pings(standin: tuple[StandInAdmin, str]) -> None:
    _, proxy = standin
    doc = ok_json(run(proxy, "node", "list", "--ping", "--json"))
    assert doc == {
        "nodes": [
            {
                "name": "10.0.0.7",
                "heartbeat": "2026-05-09 10:00:00",
                "connected": True,
                "ping": {"ok": True, "result": "ping succ"},
            },
            {
                "name": "10.0.0.8",
                "heartbeat": "",
                "connected": False,
                "ping": {
                    "ok": False,
                    "result": "node '10.0.0.8' is not connected to this admin registry",
                },
            },
        ]
    }
    human = run(proxy, "node", "list").stdout
    assert "not connected to this admin registry" in human and "ping" not in human


def test_node_ping(standin: tuple[StandInAdmin, str]) -> None:
    _, proxy = standin
    assert ok_json(run(proxy, "node", "ping", "10.0.0.7", "--json")) == {
        "node": "10.0.0.7",
        "ok": True,
        "result": "ping succ",
    }
    result = run(proxy, "node", "ping", "10.0.0.8")
    assert result.exit_code == 1
    assert (
        "node 10.0.0.8 did not answer the ping: node '10.0.0.8' is not connected" in result.stderr
    )


def test_template_show(standin: tuple[StandInAdmin, str]) -> None:
    admin, proxy = standin
    result = run(proxy, "template", "show", "tars.tarspython.default")
    assert result.exit_code == 0
    assert result.stdout == admin.templates["tars.tarspython.default"]
    doc = ok_json(run(proxy, "template", "show", "tars.tarspython.default", "--json"))
    assert doc["result"] == "(tars.tarspython.default:OK)"
    result = run(proxy, "template", "show", "tars.nope")
    assert result.exit_code == 1
    assert "no template 'tars.nope': (tars.nope:template not found)" in result.stderr


# --------------------------------------------------------------------------- reaching it


def test_the_admin_address_may_come_from_the_environment(
    standin: tuple[StandInAdmin, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, proxy = standin
    monkeypatch.setenv("TARSUS_ADMIN", proxy.partition("@")[2])  # just the endpoint
    assert run(None, "node", "ping", "10.0.0.7").exit_code == 0
    assert admin.called("pingNode") == [("10.0.0.7",)]


def tarsus_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TARSUS_ADMIN", "TARSUS_LOCATOR")}
    return subprocess.run(
        [sys.executable, "-m", "tarsus", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.slow
def test_an_unreachable_admin_registry_is_one_line_naming_it() -> None:
    address = f"tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p {free_port()}"
    proc = tarsus_cli("server", "list", "--admin", address)
    assert proc.returncode == 1
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: cannot reach the admin registry {address}: ")

    proc = tarsus_cli("node", "list", "--json", "--admin", address)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["name"] == "PROXY_CONNECT_ERR" and address in error["message"]


@pytest.mark.slow
def test_an_unreachable_registry_when_resolving_through_the_locator(tmp_path: Path) -> None:
    locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {free_port()}"
    proc = tarsus_cli("server", "status", "Test.HelloServer", "--node", "n", "--locator", locator)
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert "cannot find the admin registry" in line and "tars.tarsregistry.QueryObj" in line


class UpstreamAdmin(StandInAdmin):
    """An admin registry with AdminReg only, as upstream's: no ``deployServer``."""

    _tars_ops_ = AdminReg.AdminRegServant._tars_ops_


def test_deploy_against_an_upstream_admin_registry_says_what_it_lacks() -> None:
    server = ServerThread(UpstreamAdmin(), ADMIN_OBJ)
    try:
        result = run(
            server.served.proxy_string,
            "server", "deploy", "Test.HelloServer", "--node", "10.0.0.7", "--servant",
            "HelloObj=18601",
        )  # fmt: skip
    finally:
        server.stop()
    assert result.exit_code == 1
    assert "does not implement deployServer" in result.stderr
    assert "upstream's admin registry lacks it" in result.stderr


@pytest.mark.parametrize(
    "text",
    ["<tars>\n  <application>\n", "<tars><application><client>\n<Test.A.Obj>\naccesskey = a\n"],
)
def test_a_malformed_client_keys_file_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """``$TARSUS_CLIENT_KEYS`` naming a broken file: each command says which file and line,
    exits 2, and prints no traceback; a missing file is named too."""
    bad = tmp_path / "client.conf"
    bad.write_text(text)
    nowhere = f"tcp -h 127.0.0.1 -p {free_port()}"
    for keys in (bad, tmp_path / "missing.conf"):
        monkeypatch.setenv("TARSUS_CLIENT_KEYS", str(keys))
        for argv in (
            ["node", "list", "--admin", nowhere],
            ["alert", "list", "--alarm", nowhere],
            ["call", f"Test.HelloServer.HelloObj@{nowhere}", "sayHello", '{"name": "x"}',
             "--idl", str(Path(__file__).parents[2] / "examples" / "hello" / "Hello.tars")],
        ):  # fmt: skip
            result = CliRunner().invoke(app, argv)
            assert result.exit_code == 2, (argv, result.output)
            assert result.exception is None or isinstance(result.exception, SystemExit)
            assert f"client keys {keys}" in result.stderr, (argv, result.stderr)
            assert "Traceback" not in result.output
