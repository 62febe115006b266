"""The node reports its servers' events to notify (``t_server_notifys``), on real processes:
a server killed with ``kill -9`` leaves a "down" alarm and a "restarted" row, and a publish
its result."""

from __future__ import annotations

from pathlib import Path

from package_support import Platform, pack, platform

from tarsus.testing import eventually

APP, SERVER = "Test", "Sleeper"


async def _events(p: Platform, n: int) -> list[tuple[str, str]]:
    store = p.framework.store
    assert store is not None

    async def enough() -> list[tuple[str, str]] | None:
        rows = await store.notifys.list(APP, SERVER, limit=50)
        found = [(r.command, r.result) for r in reversed(rows)]
        return found if len(found) >= n else None

    found: list[tuple[str, str]] = await eventually(enough, f"{n} events of {APP}.{SERVER}")
    return found


async def test_kill_9_leaves_a_down_alarm_and_a_restart_row(tmp_path: Path) -> None:
    script = b"#!/bin/sh\nexec sleep 600\n"
    tgz = pack(tmp_path / f"{SERVER}.tgz", {f"{SERVER}/{SERVER}": script})
    async with platform(tmp_path) as p:
        await p.deploy(APP, SERVER, "not_tars", {})
        ok, why = await p.publish(APP, SERVER, tgz)
        assert ok, why
        await p.start(APP, SERVER)
        pid = await p.active_pid(APP, SERVER)
        p.kill(pid)
        new_pid = await p.active_pid(APP, SERVER, other_than=pid)
        events = await _events(p, 3)
        tags = [tag for tag, _ in events]
        texts = [text for _, text in events]
        assert tags[0] == "[normal]" and "patch succ" in texts[0]
        down = next(i for i, t in enumerate(texts) if t.startswith("[alarm] down"))
        assert tags[down] == "[alarm]" and f"pid {pid}" in texts[down] and "SIGKILL" in texts[down]
        assert any(t.startswith("restarted") and f"pid {new_pid}" in t for t in texts[down:])
        row = (await p.framework.store.notifys.list(APP, SERVER, limit=1))[0]  # type: ignore[union-attr]
        assert row.server_id == f"{APP}.{SERVER}_127.0.0.1" and row.node_name == "127.0.0.1"
