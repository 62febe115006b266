"""The remote log service, ``tars.tarslog.LogObj``, over a real socket: upstream's file
layout for ``logger`` and ``loggerbyInfo`` (set paths, rolling, hour list, log types),
reading back through ``tarsus.LogExt``, and what a hostile caller may not make it do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tarsus.framework.log import LogService, LogSettings, Roll, by_info
from tarsus.framework.service import host
from tarsus.protocol.gen import LogF, TarsusLog
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator

OBJ = "tars.tarslog.LogObj"
EXT_OBJ = "tars.tarslog.LogExtObj"


@dataclass
class Served:
    service: LogService
    log: LogF.LogProxy
    ext: TarsusLog.LogExtProxy
    root: Path

    async def written(self) -> None:
        """Wait until everything sent so far is in its file."""
        await asyncio.to_thread(self.service.writer.flush)


async def _serve(settings: LogSettings) -> AsyncIterator[Served]:
    app = Application()
    any_port = "tcp -h 127.0.0.1 -p 0 -t 60000"
    service = host(app, LogService(settings), {OBJ: any_port, EXT_OBJ: any_port})
    await app.start()
    where = f"{OBJ}@{service.adapters[0].bound_endpoint}"
    ext_where = f"{EXT_OBJ}@{service.adapters[1].bound_endpoint}"
    try:
        async with Communicator(cache_dir=None) as comm:
            yield Served(
                service,
                comm.string_to_proxy(LogF.LogProxy, where),
                comm.string_to_proxy(TarsusLog.LogExtProxy, ext_where),
                settings.directory,
            )
    finally:
        await app.stop(drain_timeout=1.0)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    settings = LogSettings(
        directory=tmp_path / "remote_app_log",
        hourly=frozenset({"Test.Hourly"}),
        log_types={"Test.Typed.access": "2hour"},
    )
    async for s in _serve(settings):
        yield s


def today(fmt: str = "%Y%m%d") -> str:
    return time.strftime(fmt)


async def test_logger_writes_upstreams_file_with_the_callers_address(served: Served) -> None:
    await served.log.logger("Test", "Hello", "access", "%Y%m%d", ["one\n", "two\n"])
    await served.log.logger("Test", "Hello", "", "%Y%m%d", ["plain"])
    await served.written()
    access = served.root / "Test/Hello" / f"Test.Hello_access_{today()}.log"
    assert access.read_text() == "127.0.0.1|one\n127.0.0.1|two\n"
    # No file name: App.Server_<date>.log; a line without its newline gets one.
    plain = served.root / "Test/Hello" / f"Test.Hello_{today()}.log"
    assert plain.read_text() == "127.0.0.1|plain\n"


async def test_hour_list_forces_hourly_files(served: Served) -> None:
    await served.log.logger("Test", "Hourly", "x", "%Y%m%d", ["a\n"])
    await served.written()
    (found,) = (served.root / "Test/Hourly").iterdir()
    assert found.name == f"Test.Hourly_x_{today('%Y%m%d%H')}.log"


async def test_logger_by_info_honours_set_prefix_suffix_concat_and_separator(
    served: Served,
) -> None:
    info = LogF.LogInfo(
        appname="Test",
        servername="Hello",
        sFilename="pay",
        sFormat="%Y%m%d",
        setdivision="sz.a.1",
        sConcatStr="-",
        sSepar="#",
    )
    await served.log.loggerbyInfo(info, ["x\n"])
    no_prefix = LogF.LogInfo(
        appname="Test",
        servername="Hello",
        sFilename="raw",
        sFormat="%Y%m%d",
        setdivision="sz.a.*",
        bHasSufix=False,
        bHasAppNamePrefix=False,
    )
    await served.log.loggerbyInfo(no_prefix, ["y\n"])
    await served.written()
    assert (served.root / f"Test/sza1/Hello/Test.Hello-pay-{today()}.log").read_text() == (
        "127.0.0.1#x\n"
    )
    assert (served.root / f"Test/sza/Hello/raw_{today()}").read_text() == "127.0.0.1|y\n"
    code, files = await served.ext.listLogFiles("Test", "Hello")
    assert code == 0
    assert files == sorted([f"sza1/Hello/Test.Hello-pay-{today()}.log", f"sza/Hello/raw_{today()}"])


async def test_log_type_rolls_on_multiples_and_the_services_map_wins() -> None:
    info = LogF.LogInfo(appname="A", servername="S", sFilename="f", sFormat="", sLogType="10minute")
    target = by_info(info)
    assert target.roll == Roll("%Y%m%d%H%M", 600)
    at = time.mktime((2024, 5, 1, 12, 37, 5, 0, 0, -1))
    assert target.relative_path(at).as_posix() == "A/S/A.S_f_202405011230.log"
    typed = LogF.LogInfo(appname="A", servername="S", sFilename="f", sFormat="%Y", sLogType="day")
    overridden = by_info(typed, log_types={"A.S.f": "2hour"})
    assert overridden.roll == Roll("%Y%m%d%H", 7200)


async def test_reading_back_tail_and_grep_through_the_extension(served: Served) -> None:
    lines = [f"line {i} {'even' if i % 2 == 0 else 'odd'}\n" for i in range(100)]
    await served.log.logger("Test", "Hello", "biz", "%Y%m%d", lines)
    await served.written()
    name = f"Hello/Test.Hello_biz_{today()}.log"
    code, text = await served.ext.getLogData("Test", "Hello", name, "tail -n 2")
    assert code == 0 and text == "127.0.0.1|line 98 even\n127.0.0.1|line 99 odd\n"
    code, text = await served.ext.getLogData("Test", "Hello", name, "grep -c even")
    assert (code, text) == (0, "50\n")
    code, text = await served.ext.getLogData("Test", "Hello", name, "tail -1; rm -rf /")
    assert code == -1 and "not allowed" in text


@pytest.mark.parametrize(
    ("app", "server", "file", "fmt"),
    [
        ("..", "Hello", "x", "%Y%m%d"),
        ("Test", "../../etc", "x", "%Y%m%d"),
        ("Test", "Hello", "../../../tmp/evil", "%Y%m%d"),
        ("Test", "Hello", "x", "/../../%Y"),
        ("Test", "Hello", "x", "%Y/%m"),
        ("Test", "", "x", "%Y%m%d"),
    ],
)
async def test_names_that_would_leave_the_log_path_are_refused(
    served: Served, tmp_path: Path, app: str, server: str, file: str, fmt: str
) -> None:
    await served.log.logger(app, server, file, fmt, ["evil\n"])
    info = LogF.LogInfo(appname=app, servername=server, sFilename=file, sFormat=fmt)
    await served.log.loggerbyInfo(info, ["evil\n"])
    await served.written()
    assert served.service.refused == 2
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


async def test_reading_outside_a_servers_files_is_refused(served: Served, tmp_path: Path) -> None:
    (tmp_path / "secret.log").write_text("secret\n")
    for name in ("../../secret.log", "Hello/../../../secret.log", "Other/x.log", "/etc/passwd"):
        code, text = await served.ext.getLogData("Test", "Hello", name, "cat")
        assert code == -1 and "secret" not in text.replace(name, ""), (name, text)
    code, files = await served.ext.listLogFiles("..", "Hello")
    assert (code, files) == (-1, [])


async def test_a_flood_beyond_the_bound_is_dropped_and_counted(tmp_path: Path) -> None:
    settings = LogSettings(directory=tmp_path / "logs", max_pending=4096)
    async for served in _serve(settings):
        big = ["x" * 1000 + "\n"] * 10  # 10 kB: more than may wait
        await served.log.logger("Test", "Hello", "", "%Y%m%d", big)
        await served.log.logger("Test", "Hello", "", "%Y%m%d", ["small\n"])
        await served.written()
        counts = served.service.writer.counts
        assert counts.dropped_lines == 10 and counts.written_lines == 1
        assert (served.root / f"Test/Hello/Test.Hello_{today()}.log").read_text() == (
            "127.0.0.1|small\n"
        )


async def test_many_distinct_files_keep_open_handles_bounded(tmp_path: Path) -> None:
    settings = LogSettings(directory=tmp_path / "logs", max_open=8, threads=2)
    async for served in _serve(settings):
        await asyncio.gather(
            *(served.log.logger("Test", "Hello", f"f{i}", "%Y%m%d", ["l\n"]) for i in range(200))
        )
        await served.written()
        assert served.service.writer.open_files <= 8
        assert len(list((served.root / "Test/Hello").iterdir())) == 200


async def test_many_writers_to_one_file_lose_nothing_and_keep_each_batch_whole(
    served: Served,
) -> None:
    async def client(n: int) -> None:
        for b in range(20):
            batch = [f"{n} {b} {i}\n" for i in range(50)]
            await served.log.logger("Test", "Hello", "many", "", batch)

    await asyncio.gather(*(client(n) for n in range(10)))
    await served.written()
    text = (served.root / f"Test/Hello/Test.Hello_many_{today()}.log").read_text()
    lines = text.splitlines()
    assert len(lines) == 10 * 20 * 50
    assert len(set(lines)) == len(lines)
