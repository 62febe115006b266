"""``tarsus config``'s own checks and failures, before or without a config center of ours:
a name the console refuses, nothing listening, and an upstream tarsconfig (``Config`` only, no
``tarsus.ConfigExt``) answering on the port. The commands against the real service:
tests/framework/test_config_cli.py."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from tarsus.cli import app
from tarsus.cli.admin_client import AdminAddress
from tarsus.cli.config_center import config_address
from tarsus.codec.constants import CONFIG_OBJ
from tarsus.protocol.gen import ConfigF
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
    assert config_address(None, admin) == f"{CONFIG_OBJ}@tcp -h 10.0.0.5 -p 18193"
    assert config_address("tcp -h 10.0.0.6 -p 1", admin) == f"{CONFIG_OBJ}@tcp -h 10.0.0.6 -p 1"
    through = AdminAddress("tars.tarsAdminRegistry.AdminRegObj", "tars.tarsregistry.QueryObj@x")
    assert config_address(None, through) == CONFIG_OBJ
