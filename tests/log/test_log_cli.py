"""``tarsus log`` over a real LogObj: tail and search a remote file (no admin registry needed
for remote files), and how a follow finds what is new."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tarsus.framework.log import LogService, LogSettings
from tarsus.framework.log.servant import LogExtImp
from tarsus.ops.logs import new_lines
from tarsus.testing import ServerThread

OBJ = "tars.tarslog.LogExtObj"
NOWHERE = "tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p 1"


def tarsus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tarsus", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_tail_and_search_a_remote_file(tmp_path: Path) -> None:
    service = LogService(LogSettings(directory=tmp_path / "remote"))
    service.writer.start()
    day = time.strftime("%Y%m%d")
    lines = [f"event {i} {'slow' if i % 10 == 0 else 'ok'}\n" for i in range(100)]
    service.logger("10.0.0.9", "Test", "Hello", "biz", "%Y%m%d", lines)
    service.writer.flush()
    with ServerThread(LogExtImp(service), OBJ) as server:
        where = server.proxy_string
        name = f"Hello/Test.Hello_biz_{day}.log"
        done = tarsus("log", "tail", "Test.Hello", name, "-n", "2", "--remote",
                      "--log-obj", where, "--admin", NOWHERE)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == "10.0.0.9|event 98 ok\n10.0.0.9|event 99 ok\n"
        done = tarsus("log", "search", "Test.Hello", name, "slow$", "--remote",
                      "--log-obj", where, "--admin", NOWHERE)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[:2] == [
            "1:10.0.0.9|event 0 slow",
            "11:10.0.0.9|event 10 slow",
        ]
        done = tarsus("log", "tail", "Test.Hello", "../../etc/passwd", "--remote",
                      "--log-obj", where, "--admin", NOWHERE)  # fmt: skip
        assert done.returncode == 1 and "is not one of Test.Hello's" in done.stderr
    service.writer.stop()


def test_follow_prints_only_what_a_later_tail_adds() -> None:
    assert new_lines(["a\n", "b\n"], ["a\n", "b\n", "c\n"]) == ["c\n"]
    assert new_lines(["a\n", "b\n"], ["b\n", "c\n", "d\n"]) == ["c\n", "d\n"]
    assert new_lines(["a\n"], ["x\n", "y\n"]) == ["x\n", "y\n"]
    assert new_lines(["a\n", "b\n"], ["a\n", "b\n"]) == []
