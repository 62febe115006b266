"""``tarsus template list|show|set|delete`` against the real admin registry (``real_admin``: an
AdminRegistry over SQLite and MariaDB on its own loop, reached over a real socket), and against
the stand-in, which like upstream's admin registry has no ``tarsus.AdminExt``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from admin_thread import AdminRegistryThread
from adminreg_standin import StandInAdmin
from typer.testing import CliRunner, Result

from tarsus.cli import app
from tarsus.store import ServerSpec

# A tab and an emoji shortcode: `show` must print the text exactly as stored.
PARENT = "<tars>\n<application>\na=1\nb=2\n\tnote=:smile:\n</application>\n</tars>\n"
CHILD = "<tars>\n<application>\nb=3\nc=4\n</application>\n</tars>\n"
TIME = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TARSUS_ADMIN", "TARSUS_LOCATOR"):
        monkeypatch.delenv(var, raising=False)


def run(admin: str, *args: str, stdin: str | None = None) -> Result:
    """``tarsus ARGS --admin ADMIN``; a crash (rather than an exit status) fails the test."""
    argv = [*args, "--admin", admin]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, argv, input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"tarsus {' '.join(argv)} crashed") from result.exception
    assert "Traceback" not in result.output
    return result


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.stderr
    return result


def ok_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def names_in(admin: AdminRegistryThread) -> set[str]:
    return {t.template_name for t in admin.run(admin.store.templates.list())}


def test_set_show_raw_and_merged_then_list(
    real_admin: AdminRegistryThread, tmp_path: Path, clock: Any
) -> None:
    proxy = real_admin.proxy
    parent_file = write(tmp_path, "parent.conf", PARENT)
    result = ok(run(proxy, "template", "set", "test.parent", "--parent", "", "--file", parent_file))
    assert result.stdout == "set template test.parent (parent none)\n"
    when = clock.advance(90).strftime(TIME)
    doc = ok_json(
        run(
            proxy,
            "template",
            "set",
            "test.child",
            "--parent",
            "test.parent",
            "--file",
            write(tmp_path, "child.conf", CHILD),
            "--user",
            "alice",
            "--json",
        )
    )
    assert doc == {"name": "test.child", "parent": "test.parent", "user": "alice", "result": ""}

    # --raw: the text exactly as stored on stdout (so it can go back into --file), the rest on
    # stderr
    result = ok(run(proxy, "template", "show", "test.parent", "--raw"))
    assert result.stdout == PARENT
    result = ok(run(proxy, "template", "show", "test.child", "--raw"))
    assert result.stdout == CHILD
    assert result.stderr == (
        f"# template test.child, parent test.parent, last changed {when} by alice\n"
    )
    doc = ok_json(run(proxy, "template", "show", "test.child", "--raw", "--json"))
    assert doc == {
        "name": "test.child",
        "parent": "test.parent",
        "post_time": when,
        "last_user": "alice",
        "profile": CHILD,
        "result": "",
    }

    # without --raw: merged with its parent, as the node gets it
    merged = ok(run(proxy, "template", "show", "test.child")).stdout
    lines = {line.strip() for line in merged.splitlines()}
    assert {"a=1", "b=3", "c=4", "note=:smile:"} <= lines and "b=2" not in lines

    listed = ok(run(proxy, "template", "list")).stdout.splitlines()
    assert listed[0].split() == ["template", "parent", "last", "change", "user"]
    rows = {line.split()[0]: line.split()[1:] for line in listed[1:]}
    assert rows["test.child"] == ["test.parent", *when.split(), "alice"]
    assert rows["test.parent"][0] == "-"
    assert rows["tars.default"][:3] == ["(itself:", "the", "root)"]  # the built-in root
    doc = ok_json(run(proxy, "template", "list", "--json"))
    by_name = {t["name"]: t for t in doc["templates"]}
    assert list(by_name) == sorted(by_name)
    assert by_name["test.child"] == {
        "name": "test.child",
        "parent": "test.parent",
        "post_time": when,
        "last_user": "alice",
        "profile": CHILD,
    }


def test_set_replaces_and_reads_standard_input(
    real_admin: AdminRegistryThread, tmp_path: Path
) -> None:
    proxy = real_admin.proxy
    ok(
        run(
            proxy,
            "template",
            "set",
            "test.a",
            "--parent",
            "tars.default",
            "--file",
            "-",
            stdin=CHILD,
        )
    )
    changed = CHILD.replace("c=4", "c=5")
    ok(
        run(
            proxy,
            "template",
            "set",
            "test.a",
            "--parent",
            "tars.default",
            "--file",
            "-",
            stdin=changed,
        )
    )
    assert ok(run(proxy, "template", "show", "test.a", "--raw")).stdout == changed
    merged = ok(run(proxy, "template", "show", "test.a")).stdout
    assert "c=5" in merged and "<tars>" in merged


def test_set_refusals(real_admin: AdminRegistryThread, tmp_path: Path) -> None:
    proxy = real_admin.proxy
    before = names_in(real_admin)

    # the file is read before anything is sent
    missing = str(tmp_path / "nope.conf")
    result = run(proxy, "template", "set", "test.x", "--parent", "tars.default", "--file", missing)
    assert result.exit_code == 2
    assert result.stderr == f"error: --file {missing}: no such file\n"
    (tmp_path / "latin1.conf").write_bytes(b"<tars>\nx=\xe9\n</tars>\n")
    result = run(
        proxy, "template", "set", "test.x", "--parent", "", "--file", str(tmp_path / "latin1.conf")
    )
    assert result.exit_code == 2
    assert "not UTF-8 text" in result.stderr

    # what the admin registry refuses: 1007 with its reason
    bad = write(tmp_path, "bad.conf", "<tars>\n<a>\nx=1\n")
    result = run(proxy, "template", "set", "test.x", "--parent", "tars.default", "--file", bad)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: setting template test.x failed: bad parameter (1007 EM_TARS_PARAMETER_ERR): "
        "profile of template 'test.x' is not valid TC_Config: template 'test.x', line 2:"
    )
    good = write(tmp_path, "good.conf", CHILD)
    result = run(proxy, "template", "set", "test.x", "--parent", "test.nope", "--file", good)
    assert result.exit_code == 1
    assert "(1007 EM_TARS_PARAMETER_ERR)" in result.stderr
    assert "template 'test.nope' does not exist" in result.stderr
    assert names_in(real_admin) == before  # nothing refused was stored
    result = run(proxy, "template", "set", "test.x", "--parent", "", "--file", good, "--json")
    assert result.exit_code == 0  # the same file and no parent: fine
    assert names_in(real_admin) == before | {"test.x"}

    # a missing option is a usage error
    result = run(proxy, "template", "set", "test.y", "--file", good)
    assert result.exit_code == 2 and "--parent" in result.stderr


def test_delete(real_admin: AdminRegistryThread, tmp_path: Path) -> None:
    proxy = real_admin.proxy
    good = write(tmp_path, "t.conf", CHILD)
    ok(run(proxy, "template", "set", "test.parent", "--parent", "", "--file", good))
    ok(run(proxy, "template", "set", "test.child", "--parent", "test.parent", "--file", good))

    result = run(proxy, "template", "delete", "test.parent")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: deleting template test.parent failed: the template is still in use "
        "(1004 EM_TARS_SERVICE_STATE_ERR): template 'test.parent' is still used by templates "
        "test.child; change them first\n"
    )
    real_admin.run(
        real_admin.registry.deploy(
            ServerSpec("Demo", "Hello", "10.0.0.7", "tars_cpp", "test.child"), []
        )
    )
    result = run(proxy, "template", "delete", "test.child", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["name"]) == (1004, "EM_TARS_SERVICE_STATE_ERR")
    assert "still used by servers Demo.Hello" in error["result"]

    real_admin.run(real_admin.store.servers.undeploy("Demo", "Hello", "10.0.0.7"))
    assert (
        ok(run(proxy, "template", "delete", "test.child")).stdout == "deleted template test.child\n"
    )
    doc = ok_json(run(proxy, "template", "delete", "test.parent", "--json"))
    assert doc == {"name": "test.parent", "deleted": True, "result": ""}
    assert not {"test.parent", "test.child"} & names_in(real_admin)

    result = run(proxy, "template", "delete", "test.parent")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: deleting template test.parent failed: unknown error (-1 EM_TARS_UNKNOWN_ERR): "
        "template 'test.parent' not found\n"
    )
    result = run(proxy, "template", "show", "test.parent", "--raw")
    assert result.exit_code == 1
    assert "template 'test.parent' not found" in result.stderr


def test_an_admin_registry_without_the_extension_says_so(
    standin: tuple[StandInAdmin, str], tmp_path: Path
) -> None:
    """The stand-in, like upstream's admin registry, serves AdminReg only."""
    _, proxy = standin
    for args in (
        ("list",),
        ("show", "tars.default", "--raw"),
        ("set", "x", "--parent", "", "--file", write(tmp_path, "x.conf", CHILD)),
        ("delete", "x"),
    ):
        result = run(proxy, "template", *args)
        assert result.exit_code == 1, args
        assert "does not implement" in result.stderr, args
        assert "(a Tarsus extension, AdminExt: upstream's admin registry lacks it)" in result.stderr


def test_set_of_a_builtin_template_needs_force(
    real_admin: AdminRegistryThread, tmp_path: Path
) -> None:
    proxy = real_admin.proxy
    stored = real_admin.run(real_admin.store.templates.get("tars.default"))
    assert stored is not None
    mine = write(tmp_path, "mine.conf", CHILD)
    argv = ("template", "set", "tars.default", "--parent", "tars.default", "--file", mine)
    result = run(proxy, *argv)
    assert result.exit_code == 1
    assert "(1007 EM_TARS_PARAMETER_ERR)" in result.stderr
    assert "'tars.default' is built in" in result.stderr and "--force" in result.stderr
    kept = real_admin.run(real_admin.store.templates.get("tars.default"))
    assert kept is not None and kept.profile == stored.profile

    ok(run(proxy, *argv, "--force"))
    forced = real_admin.run(real_admin.store.templates.get("tars.default"))
    assert forced is not None and forced.profile == CHILD
