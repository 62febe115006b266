"""``tarsus config``'s own checks and failures, before or without a config center of ours:
a name the console refuses, nothing listening, and an upstream tarsconfig (``Config`` only, no
``tarsus.ConfigExt``) answering on the port. The commands against the real service:
tests/framework/test_config_cli.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from admin_thread import AdminRegistryThread
from typer.testing import CliRunner, Result

from tarsus.cli import app
from tarsus.cli.admin_client import AdminAddress
from tarsus.cli.config_center import config_address
from tarsus.codec.constants import CONFIG_EXT_OBJ, CONFIG_OBJ
from tarsus.protocol.gen import ConfigF
from tarsus.store import ServerSpec
from tarsus.testing import ServerThread, free_port


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TARSUS_ADMIN", "TARSUS_LOCATOR", "TARSUS_CONFIG_OBJ"):
        monkeypatch.delenv(var, raising=False)


def run(*args: str) -> Result:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"tarsus {' '.join(args)} crashed") from result.exception
    assert "Traceback" not in result.output
    return result


class UpstreamConfig(ConfigF.ConfigServant):
    """What an upstream tarsconfig serves: Config, and no ConfigExt."""

    async def loadConfig(self, app: str, server: str, filename: str) -> tuple[int, str]:
        return 0, ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["show", "Test.HelloServer", "../etc/passwd"], "is not a config file name"),
        (["show", "Test.Hello.Server", "a.conf"], "give the owner as APP"),
        (["show", "Test", "a.conf", "--node", "n1"], "--node names a node file of a server"),
        (["show", "Test", "a.conf", "--set", "sz.a"], "write the set as NAME.AREA.GROUP"),
        (["show", "Test.HelloServer"], "give the file name after Test.HelloServer"),
        (["show", "Test.HelloServer", "a.conf", "--merged"], "give --node NODE"),
        (["add", "Test", "-", "--reason", "x"], "give the file's name with --name"),
        (["add", "Test", "nosuch/x.conf", "--reason", "x"], "no such file"),
        (["list", "Test", "--level", "cluster"], "one of app, set, server, node"),
    ],
)
def test_a_bad_command_line_is_refused_before_any_call(args: list[str], says: str) -> None:
    # nothing listens on the admin registry or config center given: a call would fail with 1
    port = free_port()
    where = f"tcp -h 127.0.0.1 -p {port}"
    result = run("config", *args, "--admin", where, "--config-obj", where)
    assert result.exit_code == 2, result.output
    assert says in result.stderr


def test_a_level_that_disagrees_with_the_owner_is_refused() -> None:
    result = run("config", "add", "Test", "pyproject.toml", "--reason", "x", "--level", "node")
    assert result.exit_code == 2
    assert "--level node needs APP.SERVER and --node NODE" in result.stderr


def test_no_config_center_is_one_clear_error() -> None:
    where = f"tcp -h 127.0.0.1 -p {free_port()}"
    result = run("config", "list", "Test", "--config-obj", where, "--timeout-ms", "2000")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the config center")
    assert "--config-obj or $TARSUS_CONFIG_OBJ says where" in result.stderr


def test_an_upstream_tarsconfig_is_named_as_lacking_the_extension() -> None:
    with ServerThread(UpstreamConfig(), CONFIG_OBJ) as upstream:
        result = run("config", "history", "7", "--config-obj", upstream.proxy_string, "--json")
    assert result.exit_code == 1
    assert "does not implement listConfigHistory" in result.stderr
    assert "upstream's tarsconfig lacks it" in result.stderr
    assert '"error"' in result.stdout


def test_the_config_center_is_found_beside_the_admin_registry() -> None:
    admin = AdminAddress("tars.tarsAdminRegistry.AdminRegObj@tcp -h 10.0.0.5 -p 12000")
    ext = CONFIG_EXT_OBJ
    assert config_address(None, admin) == f"{ext}@tcp -h 10.0.0.5 -p 18194"
    assert config_address("tcp -h 10.0.0.6 -p 1", admin) == f"{ext}@tcp -h 10.0.0.6 -p 1"
    through = AdminAddress("tars.tarsAdminRegistry.AdminRegObj", "tars.tarsregistry.QueryObj@x")
    assert config_address(None, through) == ext


def test_the_commands_against_the_real_config_center(tmp_path: Path, store_url: str) -> None:
    """Add, list, show (exact and merged for an instance in a set), edit, history, diff,
    restore, references, and a refused delete, on ConfigObj and AdminRegObj over one store."""
    with AdminRegistryThread(store_url, config_center=True) as admin:
        spec = ServerSpec("Demo", "Hello", "10.0.0.7", "tars_cpp", "tars.default")
        spec = dataclasses.replace(spec, enable_set="Y", set_name="sz", set_area="a", set_group="1")
        admin.run(admin.registry.deploy(spec, []))

        def cfg(*args: str) -> Result:
            return run("config", *args, "--admin", admin.proxy, "--config-obj", admin.config_proxy)

        def cfg_json(*args: str) -> Any:
            result = cfg(*args, "--json")
            assert result.exit_code == 0, result.stderr
            return json.loads(result.stdout)

        files = {}
        for owner, name, text, extra in [
            ("Demo", "common.conf", "<c>\nall=1\n</c>\n", []),
            ("Demo", "common.conf", "<c>\nsz=1\n</c>\n", ["--set", "sz.a.1"]),
            ("Demo.Hello", "hello.conf", "<h>\nw=2\n\tnote=:smile:\n</h>\n", ["--set", "sz.a.1"]),
        ]:
            path = tmp_path / f"{len(files)}.conf"
            path.write_text(text)
            doc = cfg_json("add", owner, str(path), "--name", name, "--reason", "new", *extra)
            files[(owner, name, *extra)] = doc["id"]
        listed = cfg_json("list", "Demo")["files"]
        assert {(f["level"], f["name"], f["set"], f["node"]) for f in listed} == {
            ("app", "common.conf", "", ""),
            ("set", "common.conf", "sz.a.1", ""),
            ("server", "hello.conf", "sz.a.1", ""),
            ("node", "hello.conf", "sz.a.1", "10.0.0.7"),  # made for the deployed instance
        }
        assert (
            cfg("show", "Demo.Hello", "hello.conf", "--set", "sz.a.1").stdout
            == "<h>\nw=2\n\tnote=:smile:\n</h>\n"
        )

        node = tmp_path / "node.conf"
        node.write_text("<h>\nw=8\n</h>\n")
        assert cfg("edit", "Demo.Hello", "hello.conf", "--node", "10.0.0.7", "--file", str(node),
                   "--reason", "big box").exit_code == 0  # fmt: skip
        assert cfg(
            "reference",
            "add",
            "Demo.Hello",
            "hello.conf",
            "--set",
            "sz.a.1",
            "--ref",
            "common.conf",
        )
        merged = cfg("show", "Demo.Hello", "hello.conf", "--merged", "--node", "10.0.0.7")
        assert merged.exit_code == 0, merged.stderr
        out = merged.stdout
        assert out.index("all=1") < out.index("sz=1") < out.index("w=2") < out.index("w=8")

        server_id = files[("Demo.Hello", "hello.conf", "--set", "sz.a.1")]
        node.write_text("<h>\nw=4\n</h>\n")
        assert cfg("edit", str(server_id), "--file", str(node), "--reason", "more").exit_code == 0
        again = cfg_json("edit", str(server_id), "--file", str(node), "--reason", "same")
        assert again["changed"] is False
        versions = cfg_json("history", str(server_id))["versions"]
        assert [v["reason"] for v in versions] == ["more", "new"]
        new, old = versions[0]["version"], versions[1]["version"]
        diff = cfg("diff", str(old), str(new)).stdout
        assert "-w=2\n" in diff and "+w=4\n" in diff and diff.startswith(f"--- version {old}")
        assert cfg("diff", str(new)).stderr.strip() == "no differences"
        assert cfg("restore", str(old)).exit_code == 0
        assert "w=2" in cfg("show", str(server_id)).stdout
        assert len(cfg_json("history", str(server_id))["versions"]) == 3

        refused = cfg("delete", "Demo", "common.conf")
        assert refused.exit_code == 1
        assert "other files reference it" in refused.stderr
        assert cfg(
            "reference",
            "remove",
            "Demo.Hello",
            "hello.conf",
            "--set",
            "sz.a.1",
            "--ref",
            "common.conf",
        )
        assert cfg("delete", "Demo", "common.conf").exit_code == 0
        gone = cfg("show", "Demo", "common.conf")
        assert gone.exit_code == 1 and "no config file common.conf of Demo" in gone.stderr
