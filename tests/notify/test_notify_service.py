"""Notifications, ``tars.tarsnotify.NotifyObj``, over a real socket into ``t_server_notifys``:
every method, upstream's level tags, filters, retention, the database down, and the
``RemoteNotify`` reporter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tarsus.framework.notify import NotifyService, NotifySettings
from tarsus.framework.service import host
from tarsus.protocol.gen.NotifyF import NOTIFYLEVEL, NotifyKey, NotifyProxy, ReportInfo, ReportType
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.notify import RemoteNotify
from tarsus.rpc.remote_config import ConfigLoadError
from tarsus.store import Store
from tarsus.store.errors import StoreUnavailable
from tarsus.testing import eventually, free_port

OBJ = "tars.tarsnotify.NotifyObj"


@dataclass
class Served:
    service: NotifyService
    proxy: NotifyProxy
    where: str
    comm: Communicator


async def _serve(store: Store, settings: NotifySettings) -> AsyncIterator[Served]:
    app = Application()
    service = host(app, NotifyService(store, settings), {OBJ: "tcp -h 127.0.0.1 -p 0 -t 60000"})
    await app.start()
    where = f"{OBJ}@{service.adapters[0].bound_endpoint}"
    try:
        async with Communicator(cache_dir=None) as comm:
            yield Served(service, comm.string_to_proxy(NotifyProxy, where), where, comm)
    finally:
        await app.stop(drain_timeout=1.0)


@pytest.fixture
async def notify(store: Store) -> AsyncIterator[Served]:
    settings = NotifySettings(
        flush_interval=0.05, page_size=2, filters={"TestNoisy": ("heartbeat",)}
    )
    async for s in _serve(store, settings):
        yield s


async def _rows(store: Store, server: str = "Hello") -> list[tuple[str, str, str, str]]:
    rows = await store.notifys.list("Test", server, limit=100)
    return [(r.command, r.result, r.node_name, r.server_id) for r in reversed(rows)]


async def test_every_method_lands_in_the_table_with_upstreams_level_tags(
    notify: Served, store: Store
) -> None:
    p = notify.proxy
    await p.reportServer("Test.Hello", "140", "[fail] cannot open the queue")
    await p.reportServer("Test.Hello", "", "started")
    await p.notifyServer("Test.Hello", NOTIFYLEVEL.NOTIFYWARN, "slow disk")
    await p.reportNotifyInfo(
        ReportInfo(
            eType=ReportType.REPORT,
            sApp="Test",
            sSet="sz.a.1",
            sContainer="",
            sServer="Hello",
            sMessage="[alarm] down, server is inactive",
            sNodeName="10.0.0.7",
        )
    )
    rows = await _wait_rows(store, 4)
    assert rows == [
        ("[error]", "[fail] cannot open the queue", "127.0.0.1", "Test.Hello_127.0.0.1"),
        ("[normal]", "started", "127.0.0.1", "Test.Hello_127.0.0.1"),
        ("[warn]", "slow disk", "127.0.0.1", "Test.Hello_127.0.0.1"),
        ("[alarm]", "[alarm] down, server is inactive", "10.0.0.7", "Test.Hello_10.0.0.7"),
    ]
    last = (await store.notifys.list("Test", "Hello", limit=1))[0]
    assert (last.set_name, last.set_area, last.set_group) == ("sz", "a", "1")

    # getNotifyInfo pages newest first (page size 2 here)
    ret, page0 = await p.getNotifyInfo(NotifyKey(name="Test.Hello", ip="", page=0))
    assert ret == 0 and page0.nextpage == 1
    assert [i.sMessage for i in page0.notifyItems] == [
        "[alarm] down, server is inactive",
        "slow disk",
    ]
    assert [i.iLevel for i in page0.notifyItems] == [2, 1]
    ret, page1 = await p.getNotifyInfo(NotifyKey(name="Test.Hello", ip="127.0.0.1", page=1))
    assert ret == 0 and page1.nextpage == -1
    assert [i.sServerId for i in page1.notifyItems] == ["Test.Hello_127.0.0.1"]
    # a hostile key: an answer, not a crash
    assert (await p.getNotifyInfo(NotifyKey(name="../..", ip="", page=-5)))[0] == -1


async def test_filters_drop_and_long_messages_are_cut(notify: Served, store: Store) -> None:
    await notify.proxy.reportServer("Test.Noisy", "", "heartbeat missed")
    await notify.proxy.reportServer("Test.Noisy", "", "x" * 100_000)
    rows = await _wait_rows(store, 1, "Noisy")
    assert len(rows[0][1]) == 8192 and rows[0][1].endswith("[cut]")
    assert notify.service.journal.counters.filtered == 1


async def test_retention_keeps_the_newest_rows_per_instance_and_drops_old_ones(
    store: Store, clock: object
) -> None:
    settings = NotifySettings(retain_history=3, retain_days=1)
    service = NotifyService(store, settings)
    j = service.journal
    for i in range(5):
        j.accept(_info("Hello", f"event {i}"), "10.0.0.1")
    j.accept(_info("Other", "old one"), "10.0.0.1")
    await j.flush()
    assert await j.prune() == 2  # events 0 and 1
    assert [r[1] for r in await _rows(store)] == ["event 2", "event 3", "event 4"]
    clock.advance(2 * 86400)  # type: ignore[attr-defined]
    assert await j.prune() == 4
    assert await store.notifys.list("Test", "Other") == []


async def test_database_down_buffers_a_bounded_number_and_writes_them_later(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = NotifyService(store, NotifySettings(buffer_rows=5))
    j = service.journal
    real_add = store.notifys.add

    async def down(rows: object) -> None:
        raise StoreUnavailable("cannot connect to database: refused")

    monkeypatch.setattr(store.notifys, "add", down)
    for i in range(8):
        j.accept(_info("Hello", f"event {i}"), "10.0.0.1")
    assert await j.flush() == 0
    assert len(j.queue) == 5 and j.counters.dropped == 3
    assert "refused" in j.last_error
    monkeypatch.setattr(store.notifys, "add", real_add)
    assert await j.flush() == 5
    assert [r[1] for r in await _rows(store)] == [f"event {i}" for i in range(3, 8)]
    assert j.last_error == ""


async def test_remote_notify_never_blocks_and_sends_once_notify_answers(
    store: Store,
) -> None:
    settings = NotifySettings(flush_interval=0.05)
    async with Communicator(cache_dir=None) as comm:
        # nothing listens yet: queued, not lost; past the capacity: dropped and counted
        from tarsus.testing import free_port

        port = free_port()
        where = f"{OBJ}@tcp -h 127.0.0.1 -p {port} -t 60000"
        reporter = RemoteNotify(comm, where, application="Test", server="Hello", capacity=3)
        assert reporter.report("[error] first")
        assert reporter.notify(NOTIFYLEVEL.NOTIFYERROR, "second")
        assert reporter.report("third")
        assert not reporter.report("fourth")
        assert reporter.dropped == 1
        app = Application()
        host(app, NotifyService(store, settings), {OBJ: f"tcp -h 127.0.0.1 -p {port} -t 60000"})
        await app.start()
        try:
            assert await reporter.flush(timeout=15)
            rows = await _wait_rows(store, 3)
            assert [(r[0], r[1]) for r in rows] == [
                ("[error]", "[error] first"),
                ("[error]", "second"),
                ("[normal]", "third"),
            ]
            await reporter.close()
        finally:
            await app.stop(drain_timeout=1.0)


def test_settings_read_upstreams_keys() -> None:
    from tarsus.conf import parse

    tc = parse(
        "<tars>\n retainHistory = 7\n <hash>\n  max_page_size = 20\n </hash>\n"
        " <filter>\n  TestHello = ping;pong|pang\n  default = noise\n </filter>\n"
        " <tarsus>\n  retainDays = 3\n  bufferRows = 9\n </tarsus>\n</tars>\n"
    )
    s = NotifySettings.from_tcconfig(tc)
    assert (s.retain_history, s.page_size, s.retain_days, s.buffer_rows) == (7, 20, 3, 9)
    assert s.filtered("TestHello", "a pang") and s.filtered("TestX", "noise!")
    assert not s.filtered("TestX", "ping")


async def _wait_rows(
    store: Store, n: int, server: str = "Hello"
) -> list[tuple[str, str, str, str]]:
    async def enough() -> list[tuple[str, str, str, str]] | None:
        rows = await _rows(store, server)
        return rows if len(rows) >= n else None

    rows: list[tuple[str, str, str, str]] = await eventually(enough, f"{n} rows of {server}")
    return rows


def _info(server: str, message: str) -> ReportInfo:
    return ReportInfo(
        eType=ReportType.REPORT,
        sApp="Test",
        sSet="",
        sContainer="",
        sServer=server,
        sMessage=message,
    )


async def _cli(*args: str) -> tuple[int, str]:
    import asyncio
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tarsus",
        "notify",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_cli_sends_and_lists_a_servers_events(notify: Served, store: Store) -> None:
    where = notify.where
    assert (await _cli("send", "Test.Hello", "[warn] queue half full", "--notify", where))[0] == 0
    assert (await _cli("send", "Test.Hello", "bank down", "--level", "error", "--notify", where))[
        0
    ] == 0
    await _wait_rows(store, 2)
    code, out = await _cli("list", "Test.Hello", "--json", "--notify", where)
    assert code == 0, out
    answer = json.loads(out)
    assert [(e["level"], e["message"]) for e in answer["events"]] == [
        ("error", "bank down"),
        ("warn", "[warn] queue half full"),
    ]
    code, out = await _cli("list", "Test/../x", "--notify", where)
    assert code != 0 and "APP.SERVER" in out


async def test_a_python_services_config_load_is_reported(
    notify: Served, store: Store, tmp_path: Path
) -> None:
    (tmp_path / "bin").mkdir()
    closed = free_port()  # nothing listens: the config service is down
    app = Application.from_config(
        f"""<tars>
  <application>
    <server>
      app=Test
      server=Hello
      localip=127.0.0.1
      local=tcp -h 127.0.0.1 -p 0 -t 10000
      basepath={tmp_path}/bin/
      logpath={tmp_path}/log
      config=tars.tarsconfig.ConfigObj@tcp -h 127.0.0.1 -p {closed} -t 1000
      notify={notify.where}
    </server>
  </application>
</tars>
"""
    )
    await app.start()
    try:
        with pytest.raises(ConfigLoadError):
            await app.add_config("hello.conf")  # no copy here either
        (tmp_path / "bin" / "hello.conf").write_text("greeting=hi")
        reply = await app.add_config("hello.conf")  # the local copy is kept
        rows = await _wait_rows(store, 2)
        assert [r[0] for r in rows] == ["[error]", "[error]"]
        assert rows[0][1].startswith("[fail] get remote config 'hello.conf' error:")
        assert rows[1][1] == reply and "use the local config" in reply
        assert rows[0][2] == "127.0.0.1"
    finally:
        await app.stop()
