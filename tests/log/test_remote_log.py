"""The Python remote logger (``tarsus.rpc.remote_log``) against a real LogObj: batches,
dyeing, dropped lines counted and reported, and a server wired from its config's ``<log>``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tarsus.codec.constants import LOG_EXT_OBJ
from tarsus.framework.log import LogService, LogSettings
from tarsus.framework.service import host
from tarsus.rpc import logs
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.remote_log import RemoteLog, dyeing, install, uninstall

OBJ = "tars.tarslog.LogObj"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[LogService, str]]:
    app = Application()
    any_port = "tcp -h 127.0.0.1 -p 0 -t 60000"
    svc = host(app, LogService(LogSettings(directory=tmp_path / "remote")), {
        OBJ: any_port, LOG_EXT_OBJ: any_port
    })  # fmt: skip
    await app.start()
    try:
        yield svc, f"{OBJ}@{svc.adapters[0].bound_endpoint}"
    finally:
        await app.stop(drain_timeout=1.0)


def day() -> str:
    return time.strftime("%Y%m%d")


async def test_a_handler_sends_formatted_lines_in_batches(
    service: tuple[LogService, str],
) -> None:
    svc, where = service
    async with Communicator(cache_dir=None) as comm:
        remote = RemoteLog(comm, "Test", "Py", log_obj=where, batch=100)
        logger = logging.getLogger("test.remote.batches")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(remote.handler("biz"))
        for i in range(1000):
            logger.info("event %d", i)
        assert remote.pending == 1000
        await remote.flush()
        await asyncio.to_thread(svc.writer.flush)
        assert remote.sent == 1000 and remote.dropped == 0
    text = (svc.settings.directory / f"Test/Py/Test.Py_biz_{day()}.log").read_text()
    lines = text.splitlines()
    assert len(lines) == 1000
    assert lines[0].startswith("127.0.0.1|") and lines[0].endswith("|INFO|event 0")
    assert lines[-1].endswith("|event 999")


async def test_dyed_records_also_go_to_the_dyeing_log(service: tuple[LogService, str]) -> None:
    svc, where = service
    async with Communicator(cache_dir=None) as comm:
        remote = RemoteLog(comm, "Test", "Py", log_obj=where)
        install(remote)
        root_level = logging.getLogger().level
        logging.getLogger().setLevel(logging.INFO)
        try:
            logging.getLogger("test.dye").info("not dyed")
            with dyeing("user42"):
                logging.getLogger("test.dye").info("dyed roll line")
                logs.day_logger("pay").info("dyed day line")
            logs.day_logger("pay").info("plain day line")
            await remote.flush()
        finally:
            uninstall(remote)
            logging.getLogger().setLevel(root_level)
        await asyncio.to_thread(svc.writer.flush)
    root = svc.settings.directory
    roll = (root / f"tars_dyeing/dyeing/tars_dyeing.dyeing_roll_{day()}.log").read_text()
    assert roll.count("\n") == 1 and roll.startswith("127.0.0.1|Test.Py|")
    assert roll.endswith("|INFO|dyed roll line\n")
    dyed_day = (root / f"tars_dyeing/dyeing/tars_dyeing.dyeing_day_{day()}.log").read_text()
    assert dyed_day.count("\n") == 1 and dyed_day.startswith("127.0.0.1|Test.Py|")
    assert dyed_day.endswith("|dyed day line\n")
    pay = (root / f"Test/Py/Test.Py_pay_{day()}.log").read_text()
    assert "dyed day line" in pay and "plain day line" in pay


async def test_a_full_queue_drops_counts_and_says_so_in_the_log(
    service: tuple[LogService, str],
) -> None:
    svc, where = service
    async with Communicator(cache_dir=None) as comm:
        remote = RemoteLog(comm, "Test", "Py", log_obj=where, max_pending=10)
        logger = logging.getLogger("test.remote.drops")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(remote.handler())
        for i in range(25):
            logger.info("n %d", i)
        assert remote.dropped == 15
        await remote.flush()
        await asyncio.to_thread(svc.writer.flush)
    text = (svc.settings.directory / f"Test/Py/Test.Py_{day()}.log").read_text()
    assert "remote log: 15 lines dropped (queue full)" in text
    assert text.count("|INFO|n ") == 10


async def test_an_unreachable_log_service_costs_lines_not_the_caller() -> None:
    async with Communicator(cache_dir=None) as comm:
        remote = RemoteLog(comm, "Test", "Py", log_obj=f"{OBJ}@tcp -h 127.0.0.1 -p 1 -t 500")
        logger = logging.getLogger("test.remote.down")
        logger.propagate = False
        logger.addHandler(remote.handler())
        logger.warning("lost")
        await remote.flush()
        assert remote.failed == 1 and remote.sent == 0


async def test_a_named_day_log_line_is_sent_once_when_the_default_day_log_exists(
    service: tuple[LogService, str],
) -> None:
    """Without logs.setup(), a named day logger propagates to the default one (its parent in
    logging's tree); both carry the remote handler, and the line is still sent once."""
    svc, where = service
    logs.day_logger("")  # the default day log exists, as in any server that used it
    async with Communicator(cache_dir=None) as comm:
        remote = RemoteLog(comm, "Test", "Once", log_obj=where)
        install(remote)
        try:
            logs.day_logger("orders").info("one line")
            await remote.flush()
        finally:
            uninstall(remote)
        await asyncio.to_thread(svc.writer.flush)
    orders = (svc.settings.directory / f"Test/Once/Test.Once_orders_{day()}.log").read_text()
    assert orders.count("one line") == 1, orders
