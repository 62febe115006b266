"""What ``tarsus`` imports before it answers (docs/cli-call.md, "Start-up time").

Each case runs the real command in a fresh interpreter (``python -c`` running ``tarsus`` with
the given arguments, then printing ``sys.modules``), as a user's shell starts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from tarsus.cli import COMMANDS
from tarsus.testing import free_port

#: Never needed to print help or the version: the framework, the store, the IDL compiler.
HEAVY = (
    "sqlalchemy",
    "alembic",
    "tarsus.framework",
    "tarsus.store",
    "lark",
    "tarsus.idl",
    # the HTTP app's stack: only ``tarsus web`` (serving) and ``tarsus up`` import it
    "fastapi",
    "starlette",
    "uvicorn",
    "python_multipart",
)

_PROBE = """
import json, sys
sys.argv = ["tarsus", *json.loads(sys.argv[1])]
from tarsus.cli import main
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
print("\\n@@MODULES@@" + json.dumps(sorted(sys.modules)))
"""


def modules_after(*args: str, cwd: Path | None = None) -> tuple[str, set[str]]:
    """``tarsus ARGS``'s output (stdout and stderr) and every module it imported."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=cwd,
    )
    text, _, modules = done.stdout.rpartition("\n@@MODULES@@")
    return text + done.stderr, set(json.loads(modules))


def heavy_in(modules: set[str], prefixes: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("args", [["--help"], [], ["version"]])
def test_help_and_version_import_nothing_of_the_framework(args: list[str]) -> None:
    text, modules = modules_after(*args)
    assert heavy_in(modules) == []
    if args == ["version"]:
        assert text.startswith("tarsus ")
    else:
        # rich renders subcommands' help only (its help renderer alone would double the time);
        # typer's parameter checks (pydantic) are only needed once a command takes options
        assert heavy_in(modules, ("rich", "pydantic")) == []
        for name, lazy in COMMANDS.items():
            assert name in text
            assert lazy.summary.split()[0] in text


def test_call_imports_the_rpc_client_and_the_idl_compiler_only() -> None:
    text, modules = modules_after("call", "--help")
    assert "Usage: tarsus call" in text
    assert "tarsus.rpc.client" in modules and "tarsus.idl" in modules
    assert heavy_in(modules, ("sqlalchemy", "alembic", "tarsus.framework", "tarsus.store")) == []


def test_server_commands_do_not_import_the_framework_or_the_store() -> None:
    text, modules = modules_after("server", "list", "--help")
    assert "Usage: tarsus server list" in text
    assert heavy_in(modules, ("sqlalchemy", "alembic", "tarsus.framework", "tarsus.store")) == []


@pytest.mark.parametrize(
    ("args", "operation"),
    [
        (["package", "list", "Test.HelloServer"], "tarsus.ops.release"),
        (["template", "delete", "Demo.custom"], "tarsus.ops.templates"),
    ],
)
def test_a_command_running_the_consoles_operation_does_not_import_the_store(
    args: list[str], operation: str
) -> None:
    """The CLI has no database (docs/cli-operate.md, "One service layer"): running an
    operation of ``tarsus.ops`` must not cost it SQLAlchemy and Alembic."""
    closed = f"tcp -h 127.0.0.1 -p {free_port()} -t 1000"
    text, modules = modules_after(*args, "--admin", closed, "--timeout-ms", "1000")
    assert "error: cannot reach the admin registry" in text
    assert operation in modules
    assert heavy_in(modules, ("sqlalchemy", "alembic", "tarsus.framework", "tarsus.store")) == []


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_top_level_summary_is_the_commands_own(name: str) -> None:
    command = COMMANDS[name].load(name)
    assert command.name == name
    assert isinstance(command, typer.core.TyperGroup | typer.core.TyperCommand)
    own = (command.help or "").split("\n\n")[0].replace("\n", " ").strip()
    assert own == COMMANDS[name].summary


def test_an_unknown_command_is_a_usage_error_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tarsus", "nosuch"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "No such command 'nosuch'" in result.stderr


def test_the_idl_parser_tables_are_cached_per_user_and_a_damaged_cache_is_rebuilt(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "TARSUS_CACHE_DIR": str(cache)}
    hello = Path(__file__).resolve().parents[2] / "examples" / "hello" / "Hello.tars"
    check = [sys.executable, "-m", "tarsus", "idl", "check", str(hello)]

    def ok() -> None:
        done = subprocess.run(check, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""

    ok()
    (saved,) = cache.glob("idl-parser-*.cache")
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    saved.write_bytes(b"not a pickle\n")
    ok()  # rebuilt, silently
    ok()
    assert [p.name for p in cache.iterdir()] == [saved.name]  # no scratch files left


def test_web_token_does_not_import_the_http_stack(tmp_path: Path) -> None:
    text, modules = modules_after("web", "token", "--data-dir", str(tmp_path))
    assert text.strip() == (tmp_path / "web" / "token").read_text().strip()
    assert heavy_in(modules, ("fastapi", "starlette", "uvicorn", "tarsus.framework")) == []
