"""Upstream's Node reporters against our services: ``@tars/notify`` reports into our
NotifyObj (rows in ``t_server_notifys`` with upstream's level tags) and ``@tars/winston-tars``'s
remote transport (``TarsRemote``, ``loggerbyInfo``) writes into our LogObj (a file in
upstream's layout, ``<app>/<server>/<app>.<server>_<file>_<date>.log``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from peer import run_script

from tarsus.codec.constants import LOG_EXT_OBJ, LOG_OBJ, NOTIFY_OBJ
from tarsus.framework.log import LogService, LogSettings
from tarsus.framework.notify import NotifyService
from tarsus.framework.service import host
from tarsus.rpc.application import Application
from tarsus.store import open_store
from tarsus.testing import eventually

ANY = "tcp -h 127.0.0.1 -p 0 -t 60000"


async def test_tars_notify_and_winston_tars_report_into_us(node: str, tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'tarsus.db'}")
    app = Application()
    notify = host(app, NotifyService(store), {NOTIFY_OBJ: ANY})
    remote = LogService(LogSettings(directory=tmp_path / "remote"))
    logs = host(app, remote, {LOG_OBJ: ANY, LOG_EXT_OBJ: ANY})
    await app.start()
    try:
        conf = tmp_path / "Test.NodeHello.config.conf"
        conf.write_text(
            f"""<tars>
  <application>
    enableset=n
    <server>
      app=Test
      server=NodeHello
      localip=127.0.0.1
      notify={NOTIFY_OBJ}@{notify.adapters[0].bound_endpoint}
      log={LOG_OBJ}@{logs.adapters[0].bound_endpoint}
    </server>
    <client>
      modulename=Test.NodeHello
    </client>
  </application>
</tars>
"""
        )
        run = await run_script(node, "notify_log_client.js", str(conf))
        assert run.status == 0, run.out.decode() + run.stderr_tail()
        assert json.loads(run.out) == {"ok": True}

        async def four() -> list[tuple[str, str]] | None:
            rows = await store.notifys.list("Test", "NodeHello", limit=10)
            return [(r.command, r.result) for r in rows] if len(rows) >= 4 else None

        rows = sorted(await eventually(four, "four notifications"), key=lambda r: r[1])
        assert rows == [
            ("[alarm]", "[alarm] node: the disk is almost full"),
            ("[error]", "node: cannot reach the bank"),
            ("[warn]", "node: queue half full"),
            ("[normal]", "node: started"),
        ]
        row = (await store.notifys.list("Test", "NodeHello", limit=1))[0]
        assert row.server_id == "Test.NodeHello_127.0.0.1"

        day = time.strftime("%Y%m%d")
        path = tmp_path / "remote" / "Test" / "NodeHello" / f"Test.NodeHello_nodelog_{day}.log"

        def written() -> str | None:
            text = path.read_text() if path.is_file() else ""
            return text if text.count("\n") >= 3 else None

        text = await eventually(written, f"three lines in {path}")
        lines = text.splitlines()
        assert len(lines) == 3
        assert "first line from winston" in lines[0] and "third line" in lines[2]
        assert all(line.startswith("127.0.0.1|") for line in lines)  # ipfix, as upstream
    finally:
        await app.stop(drain_timeout=1.0)
        await store.close()
