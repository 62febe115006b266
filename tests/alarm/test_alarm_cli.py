"""``tarsus alert add|list|test|events|delete`` against a real alert service (SQLite store,
real socket) and a real webhook receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result
from webhook_receiver import Receiver

from tarsus.cli import app
from tarsus.framework.alarm import AlarmSettings, add_alarm
from tarsus.rpc.application import Application
from tarsus.store import open_store
from tarsus.testing import LoopThread, free_port


@pytest.fixture
def alarm(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with LoopThread() as loop:
        store = loop.run(open_store(f"sqlite:///{tmp_path / 't.db'}", create=True))
        application = Application()
        add_alarm(
            application,
            store,
            AlarmSettings(window_s=3600),
            endpoint=f"tcp -h 127.0.0.1 -p {port} -t 60000",
        )
        loop.run(application.start())
        try:
            yield f"tars.tarsalarm.AlarmObj@tcp -h 127.0.0.1 -p {port}"
        finally:
            loop.run(application.stop())
            loop.run(store.close())


def run(alarm: str, *args: str) -> Result:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [*args, "--alarm", alarm])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("tarsus alert crashed") from result.exception
    return result


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_add_list_test_events_delete(alarm: str) -> None:
    receiver = Receiver()
    try:
        added = ok_json(
            run(
                alarm,
                "alert",
                "add",
                "api-failures",
                "--kind",
                "failure_rate",
                "--server",
                "Shop.Api",
                "--threshold",
                "5",
                "--windows",
                "3",
                "--webhook",
                receiver.url,
                "--json",
            )
        )
        assert added["added"] == "api-failures"
        rules = ok_json(run(alarm, "alert", "list", "--json"))["rules"]
        assert [(r["name"], r["server"], r["threshold"], r["windows"]) for r in rules] == [
            ("api-failures", "Api", 5.0, 3)
        ]
        listed = run(alarm, "alert", "list")
        assert "api-failures" in listed.stdout and "Shop.Api" in listed.stdout
        tested = run(alarm, "alert", "test", "api-failures")
        assert tested.exit_code == 0, tested.stderr
        assert receiver.bodies[0]["status"] == "test"
        events = ok_json(run(alarm, "alert", "events", "api-failures", "--json"))["events"]
        assert [(e["state"], e["delivery"]) for e in events] == [("test", "sent")]
        assert run(alarm, "alert", "delete", "api-failures").exit_code == 0
        assert ok_json(run(alarm, "alert", "list", "--json"))["rules"] == []
    finally:
        receiver.close()


def test_refusals_say_why(alarm: str) -> None:
    bad = run(
        alarm,
        "alert",
        "add",
        "x",
        "--kind",
        "failure_rate",
        "--server",
        "Shop.Api",
        "--webhook",
        "ftp://h/x",
    )
    assert bad.exit_code == 1 and "http:// or https://" in bad.stderr
    missing = run(alarm, "alert", "test", "nope")
    assert missing.exit_code == 1 and "no such rule" in missing.stderr
    dead = free_port()
    ok_json(
        run(
            alarm,
            "alert",
            "add",
            "d",
            "--kind",
            "node_lost",
            "--webhook",
            f"http://127.0.0.1:{dead}/",
            "--json",
        )
    )
    down = run(alarm, "alert", "test", "d")
    assert down.exit_code == 1 and "webhook" in down.stderr
    unreachable = run(f"tars.tarsalarm.AlarmObj@tcp -h 127.0.0.1 -p {free_port()}", "alert", "list")
    assert unreachable.exit_code == 1 and "cannot reach the alert service" in unreachable.stderr
