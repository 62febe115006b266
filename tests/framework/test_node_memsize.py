"""The node's ``<App.Server>.memsize`` reports (upstream tarsnode ``ReportMemThread``)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from tarsus.framework.node.memsize import MemoryReporter, resident_kb
from tarsus.protocol.gen import PropertyF
from tarsus.rpc.communicator import Communicator
from tarsus.testing import serve


class RecordingProperty(PropertyF.PropertyFServant):  # type: ignore[misc]
    def __init__(self) -> None:
        self.rows: list[tuple[Any, dict[str, str]]] = []

    async def reportPropMsg(self, statmsg: dict[Any, Any]) -> int:
        for head, body in statmsg.items():
            self.rows.append((head, {i.policy: i.value for i in body.vInfo}))
        return 0


async def test_every_running_server_reports_its_resident_memory() -> None:
    # A real process holding ~40 MB resident, as a server would.
    code = "b = bytearray(40 * 1024 * 1024); import sys; sys.stdin.read()"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdin=asyncio.subprocess.PIPE
    )
    try:
        await asyncio.sleep(0.5)
        recording = RecordingProperty()
        servers = [("Test.Big", proc.pid), ("Test.Stopped", 0), ("Test.Gone", 2**22 + 1)]
        async with (
            serve(recording, "tars.tarsproperty.PropertyObj") as served,
            Communicator() as comm,
        ):
            memory = MemoryReporter(comm, lambda: servers, property_obj=served.proxy_string)
            memory.sample()
            await memory.reporter.flush()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await proc.wait()
    (row,) = recording.rows  # servers without a readable process report nothing
    head, values = row
    assert (head.moduleName, head.propertyName) == ("Test.Big", "Test.Big.memsize")
    assert int(values["Max"]) > 40 * 1024  # kilobytes, as upstream


def test_resident_kb_of_a_missing_or_garbled_process(tmp_path: Path) -> None:
    assert resident_kb(2**22 + 1) is None
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "statm").write_text("garbage")
    assert resident_kb(7, proc=tmp_path) is None
    (tmp_path / "7" / "statm").write_text("100 25 3 1 0 20 0\n")
    assert resident_kb(7, proc=tmp_path) == 25 * 4  # 4 KiB pages here
