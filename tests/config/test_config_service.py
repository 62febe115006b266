"""The config center, ``tars.tarsconfig.ConfigObj``, over a real socket and a real SQLite store:
upstream's ``Config`` answers (levels, references, merge order, sets, checkConfig, the rate
limit), our ``ConfigExt`` for operators, what a hostile caller gets, and a Python service's
``app.add_config`` / ``tars.loadconfig`` against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tarsus.framework.config import ConfigService, ConfigSettings
from tarsus.framework.service import host
from tarsus.protocol.gen import AdminF, ConfigF, TarsusConfig
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.store import Store
from tarsus.store.configs import MERGE_SEPARATOR as SEP

OBJ = "tars.tarsconfig.ConfigObj"
EXT_OBJ = "tars.tarsconfig.ConfigExtObj"
Code = TarsusConfig.ConfigExtCode


@dataclass
class Center:
    app: Application
    store: Store
    config: ConfigF.ConfigProxy
    ext: TarsusConfig.ConfigExtProxy
    where: str

    async def add(self, level: int, server: str, name: str, content: str, **kw: str) -> int:
        f = TarsusConfig.ConfigFile(
            level=level, serverName=server, fileName=name, content=content, **kw
        )
        code, new_id, result = await self.ext.addConfigFile(f, "first", "ann")
        assert code == 0, result
        return new_id


async def _center(store: Store, settings: ConfigSettings) -> AsyncIterator[Center]:
    app = Application()
    any_port = "tcp -h 127.0.0.1 -p 0 -t 60000"
    service = host(app, ConfigService(store, settings), {OBJ: any_port, EXT_OBJ: any_port})
    await app.start()
    where = f"{OBJ}@{service.adapters[0].bound_endpoint}"
    ext_where = f"{EXT_OBJ}@{service.adapters[1].bound_endpoint}"
    try:
        async with Communicator(cache_dir=None) as comm:
            yield Center(
                app,
                store,
                comm.string_to_proxy(ConfigF.ConfigProxy, where),
                comm.string_to_proxy(TarsusConfig.ConfigExtProxy, ext_where),
                where,
            )
    finally:
        await app.stop(drain_timeout=1.0)


@pytest.fixture
async def center(store: Store) -> AsyncIterator[Center]:
    """The config center over a fresh store, on SQLite and on MariaDB."""
    async for c in _center(store, ConfigSettings(limit=0)):
        yield c


async def test_an_instance_gets_references_server_and_node_parts_in_order(center: Center) -> None:
    common = await center.add(1, "Test", "common.conf", "<db>\nhost=a\n</db>")
    server = await center.add(2, "Test.Hello", "hello.conf", "<hello>\nx=server\n</hello>")
    node = await center.add(
        3, "Test.Hello", "hello.conf", "<hello>\nx=node\n</hello>", host="127.0.0.1"
    )
    assert (await center.ext.addConfigReference(server, common))[0] == 0
    expected = SEP.join(
        ["<db>\nhost=a\n</db>", "<hello>\nx=server\n</hello>", "<hello>\nx=node\n</hello>"]
    )
    # loadConfig: the caller's address is the host
    assert await center.config.loadConfig("Test", "Hello", "hello.conf") == (0, expected)
    assert await center.config.loadConfigByHost("Test.Hello", "hello.conf", "10.0.0.9") == (
        0,
        SEP.join(["<db>\nhost=a\n</db>", "<hello>\nx=server\n</hello>"]),
    )
    assert await center.config.loadConfig("Test", "", "common.conf") == (0, "<db>\nhost=a\n</db>")
    assert await center.config.ListConfig("Test", "Hello") == (0, ["hello.conf"])
    code, names = await center.config.ListAllConfigByInfo(
        ConfigF.GetConfigListInfo(appname="Test", bAppOnly=True)
    )
    assert (code, names) == (0, ["common.conf"])
    # the operator's merged view is the same text
    code, text, _ = await center.ext.mergedConfig("Test", "Hello", "hello.conf", "127.0.0.1", "")
    assert (code, text) == (0, expected)
    code, got, _ = await center.ext.getConfigFile(server)
    assert (code, got.references, got.level, got.lastUser) == (0, [common], 2, "ann")
    assert node > server


async def test_a_set_caller_gets_its_set_variant(center: Center) -> None:
    common = await center.add(1, "Test", "common.conf", "x=app")
    await center.add(1, "Test", "common.conf", "x=set", setDivision="mtt.sz.1")
    server = await center.add(2, "Test.Hello", "hello.conf", "y=1", setDivision="mtt.sz.1")
    assert (await center.ext.addConfigReference(server, common))[0] == 0
    info = ConfigF.ConfigInfo(
        appname="Test", servername="Hello", filename="hello.conf", setdivision="mtt.sz.1"
    )
    assert await center.config.loadConfigByInfo(info) == (0, SEP.join(["x=app", "x=set", "y=1"]))
    app_only = ConfigF.ConfigInfo(
        appname="Test", servername="", filename="common.conf", bAppOnly=True, setdivision="mtt.sz.1"
    )
    assert await center.config.loadConfigByInfo(app_only) == (0, "x=app" + SEP + "x=set")
    bad = ConfigF.ConfigInfo(
        appname="Test", servername="Hello", filename="hello.conf", setdivision="mtt"
    )
    assert await center.config.loadConfigByInfo(bad) == (-1, "")
    code, reason = await center.config.checkConfigByInfo(bad)
    assert code == -1 and "name.area.group" in reason


async def test_check_config_parses_the_merged_text(center: Center) -> None:
    await center.add(2, "Test.Hello", "good.conf", "<a>\nx=1\n</a>")
    await center.add(2, "Test.Hello", "bad.conf", "<a>\nx=1\n")
    assert (await center.config.checkConfig("Test.Hello", "good.conf", ""))[0] == 0
    code, result = await center.config.checkConfig("Test.Hello", "bad.conf", "")
    assert code == -1 and "not TC_Config" in result
    code, result = await center.config.checkConfigByInfo(
        ConfigF.ConfigInfo(appname="Test", servername="Hello", filename="bad.conf")
    )
    assert code == -1 and "not TC_Config" in result


async def test_loads_beyond_the_rate_limit_get_429(store: Store) -> None:
    async for c in _center(store, ConfigSettings(limit=2, interval=3600)):
        await c.add(2, "Test.Hello", "a.conf", "x=1")
        await c.add(2, "Test.Hello", "b.conf", "x=2")
        answers = [(await c.config.loadConfig("Test", "Hello", "a.conf"))[0] for _ in range(4)]
        assert answers == [0, 0, 0, 429]
        # another file is another caller; the operators' view is never limited
        assert (await c.config.loadConfig("Test", "Hello", "b.conf"))[0] == 0
        assert (await c.ext.mergedConfig("Test", "Hello", "a.conf", "127.0.0.1", ""))[0] == 0


async def test_operators_update_history_restore_and_delete(center: Center) -> None:
    fid = await center.add(2, "Test.Hello", "a.conf", "v=1")
    assert await center.ext.updateConfigFile(fid, "v=2", "tuning", "bob") == (0, "")
    code, versions, _ = await center.ext.listConfigHistory(fid)
    assert code == 0
    assert [(v.reason, v.lastUser, v.content) for v in versions] == [
        ("tuning", "bob", ""),
        ("first", "ann", ""),
    ]
    code, old, _ = await center.ext.getConfigHistory(versions[1].id)
    assert (code, old.content) == (0, "v=1")
    assert (await center.ext.restoreConfigHistory(old.id, "", "cid"))[0] == 0
    assert await center.config.loadConfigByHost("Test.Hello", "a.conf", "") == (0, "v=1")
    code, files, _ = await center.ext.listConfigFiles(
        TarsusConfig.ConfigFilter(application="Test", withContent=True)
    )
    assert [(f.fileName, f.content, f.lastUser) for f in files] == [("a.conf", "v=1", "cid")]
    assert (await center.ext.deleteConfigFile(fid, "cid"))[0] == 0
    assert (await center.ext.getConfigFile(fid))[0] == Code.CONFIG_NOT_FOUND


async def test_a_referenced_file_is_not_deleted(center: Center) -> None:
    common = await center.add(1, "Test", "common.conf", "x=1")
    server = await center.add(2, "Test.Hello", "hello.conf", "y=1")
    assert (await center.ext.addConfigReference(server, common))[0] == 0
    code, result = await center.ext.deleteConfigFile(common, "eve")
    assert code == Code.CONFIG_REFERENCED and "referenced" in result
    assert (await center.ext.getConfigFile(common))[0] == 0
    assert (await center.ext.removeConfigReference(server, common))[0] == 0
    assert (await center.ext.deleteConfigFile(common, "eve"))[0] == 0


async def test_hostile_input_gets_clear_answers_and_nothing_changes(center: Center) -> None:
    def file(
        name: str, content: str = "x=1", server: str = "Test.Hello"
    ) -> TarsusConfig.ConfigFile:
        return TarsusConfig.ConfigFile(level=2, serverName=server, fileName=name, content=content)

    for name in ("../../etc/passwd", "a/b.conf", "..", "", "x" * 10_000):
        code, _, result = await center.ext.addConfigFile(file(name), "", "eve")
        assert code == Code.CONFIG_BAD_INPUT and "config file name" in result, (name, result)
    code, _, result = await center.ext.addConfigFile(file("a.conf", server="Te st.He"), "", "eve")
    assert code == Code.CONFIG_BAD_INPUT and "application" in result
    huge = "x" * (3 * 1024 * 1024)
    code, _, result = await center.ext.addConfigFile(file("big.conf", huge), "", "eve")
    assert code == Code.CONFIG_BAD_INPUT and "at most" in result
    fid = await center.add(2, "Test.Hello", "a.conf", "x=1")
    code, _, result = await center.ext.addConfigFile(file("a.conf"), "", "eve")
    assert code == Code.CONFIG_EXISTS and "already exists" in result
    assert (await center.ext.updateConfigFile(fid, huge, "", "eve"))[0] == Code.CONFIG_BAD_INPUT
    assert (await center.ext.updateConfigFile(999, "x", "", "eve"))[0] == Code.CONFIG_NOT_FOUND
    # the loads: -1 and no text (never a file from elsewhere; the reason is in the log, since
    # @tars/config would take a message in the text for the file), and the checks say why
    for app, server, name in (
        ("Test", "Hello", "../../../etc/passwd"),
        ("..", "Hello", "a.conf"),
        ("Test", "He/llo", "a.conf"),
    ):
        assert await center.config.loadConfig(app, server, name) == (-1, "")
        code, reason = await center.config.checkConfig(f"{app}.{server}", name, "")
        assert code == -1 and ("may only use" in reason or "must not be empty" in reason), reason
    # no such file: upstream's 0 and an empty text; the operators' view says what is missing
    assert await center.config.loadConfig("Nobody", "Hello", "a.conf") == (0, "")
    code, _, reason = await center.ext.mergedConfig("Nobody", "Hello", "a.conf", "", "")
    assert code == Code.CONFIG_NOT_FOUND and "no config file a.conf for Nobody.Hello" in reason
    code, reason = await center.config.checkConfig("Nobody.Hello", "a.conf", "")
    assert code == -1 and "no config file" in reason
    code, names = await center.config.ListConfig("Test", "../x")
    assert (code, names) == (-1, [])
    # still serving, nothing stored but the one good file
    code, files, _ = await center.ext.listConfigFiles(TarsusConfig.ConfigFilter(application="Test"))
    assert [f.fileName for f in files] == ["a.conf"]


# ------------------------------------------------------------------ a Python service


def _service_config(tmp: Path, where: str) -> str:
    (tmp / "bin").mkdir(exist_ok=True)
    return f"""<tars>
  <application>
    <server>
      app=Test
      server=Hello
      local=tcp -h 127.0.0.1 -p 0 -t 10000
      basepath={tmp}/bin/
      datapath={tmp}/data/
      logpath={tmp}/log
      config={where}
    </server>
    <client>
      sync-invoke-timeout=3000
    </client>
  </application>
</tars>
"""


async def test_a_python_service_pulls_its_file_and_hears_of_pushes(
    center: Center, tmp_path: Path
) -> None:
    fid = await center.add(2, "Test.Hello", "hello.conf", "greeting=hi")
    app = Application.from_config(_service_config(tmp_path, center.where))
    pushed: list[tuple[str, str]] = []

    @app.on_config_pushed
    async def reread(filename: str, path: Path) -> None:
        pushed.append((filename, path.read_text()))

    await app.start()
    try:
        target = tmp_path / "bin" / "hello.conf"
        assert await app.add_config("hello.conf") == "[succ] get remote config:hello.conf"
        assert target.read_text() == "greeting=hi"
        assert pushed == []  # add_config is the service's own pull, not a push
        # an operator changes it and pushes tars.loadconfig (as `tarsus config push` does)
        assert (await center.ext.updateConfigFile(fid, "greeting=hello", "", "ann"))[0] == 0
        assert app.admin_adapter is not None
        async with Communicator(cache_dir=None) as comm:
            admin = comm.string_to_proxy(
                AdminF.AdminFProxy, f"AdminObj@{app.admin_adapter.bound_endpoint}"
            )
            reply = await admin.notify("tars.loadconfig hello.conf")
        assert reply == "[succ] get remote config:hello.conf"
        assert pushed == [("hello.conf", "greeting=hello")]
        assert target.with_name("hello.conf.1.bak").read_text() == "greeting=hi"
        # the config center goes away: the last local copy is used
        await center.app.stop(drain_timeout=1.0)
        reply = await app.add_config("hello.conf")
        assert reply.startswith("[fail]") and "use the local config" in reply
        assert target.read_text() == "greeting=hello"
    finally:
        await app.stop()


async def test_a_failing_push_hook_is_named_in_the_reply_and_the_file_stays(
    center: Center, tmp_path: Path
) -> None:
    await center.add(2, "Test.Hello", "hello.conf", "greeting=hi")
    app = Application.from_config(_service_config(tmp_path, center.where))

    @app.on_config_pushed
    def broken(filename: str, path: Path) -> None:
        raise ValueError("cannot parse greeting")

    await app.start()
    try:
        reply = await app.load_pushed_config("hello.conf")
        assert reply.startswith("[succ] get remote config:hello.conf; [fail] callback broken")
        assert "cannot parse greeting" in reply
        assert (tmp_path / "bin" / "hello.conf").read_text() == "greeting=hi"
        # a failed fetch runs no hook
        assert (await app.load_pushed_config("nosuch.conf")).startswith("[fail]")
    finally:
        await app.stop()


async def test_a_database_failure_is_an_answer_not_a_crash(center: Center) -> None:
    from sqlalchemy import text

    fid = await center.add(2, "Test.Hello", "a.conf", "x=1")
    async with center.store.begin() as conn:  # what a broken database looks like to a query
        await conn.execute(text("ALTER TABLE t_config_files RENAME TO t_config_files_gone"))
    assert await center.config.loadConfig("Test", "Hello", "a.conf") == (-1, "")
    code, reason = await center.config.checkConfig("Test.Hello", "a.conf", "")
    assert code == -1 and "the config database failed" in reason
    code, result = await center.ext.updateConfigFile(fid, "x=2", "", "ann")
    assert code == Code.CONFIG_DB_ERROR and "database failed" in result
    async with center.store.begin() as conn:
        await conn.execute(text("ALTER TABLE t_config_files_gone RENAME TO t_config_files"))
    assert await center.config.loadConfig("Test", "Hello", "a.conf") == (0, "x=1")


async def test_a_merged_file_too_big_for_one_answer_is_refused(store: Store) -> None:
    big = "x" * (2 * 1024 * 1024)  # at the size limit of one file; five make 10 MiB
    async for c in _center(store, ConfigSettings(limit=0)):
        server = await c.add(2, "Test.Hello", "big.conf", big)
        for i in range(4):
            ref = await c.add(1, "Test", f"part{i}.conf", big)
            assert (await c.ext.addConfigReference(server, ref))[0] == 0
        assert await c.config.loadConfig("Test", "Hello", "big.conf") == (-1, "")
        code, reason = await c.config.checkConfig("Test.Hello", "big.conf", "")
        assert code == -1 and "an answer carries at most" in reason
        code, _, result = await c.ext.listConfigFiles(
            TarsusConfig.ConfigFilter(application="Test", withContent=True)
        )
        assert code == Code.CONFIG_BAD_INPUT and "list without contents" in result
        code, files, _ = await c.ext.listConfigFiles(TarsusConfig.ConfigFilter(application="Test"))
        assert (code, len(files)) == (0, 5)
