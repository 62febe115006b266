"""The console's monitoring against the real framework services (one ``AllInOne`` with its
node, on free ports, SQLite): call statistics and properties reported to StatObj and
PropertyObj come back through the query services as both days' numbers and charts; log files
on the node and on tars.tarslog are listed, tailed and searched (a catastrophic regular
expression is stopped by the node, not left to hang); notifications sent to NotifyObj are
paged and filtered; alert rules are added, edited, tested and deleted, audited. Every
operation: hostile input is a 400 and a user of another application a 403, nothing changed."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_support import ADMIN_PASSWORD, PASSWORD

from tarsus.codec.constants import NOTIFY_OBJ, PROPERTY_OBJ, STAT_OBJ
from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.ops.access import Actor
from tarsus.ops.platform import Platform
from tarsus.ops.users import create_user
from tarsus.protocol.gen import NotifyF, PropertyF, StatF
from tarsus.rpc.communicator import Communicator
from tarsus.testing import LoopThread, eventually_sync, framework_ports, free_port
from tarsus.web.server import WebServer
from tarsus.web.settings import WebSettings

#: the server the numbers are about, and a user who may only look at it
APP, SERVER = "Demo", "Hello"
USERS = {"dev_demo": [("developer", "Demo.Hello")], "op_other": [("operator", "Other")]}


class Platformed:
    def __init__(self, tmp: Path) -> None:
        self.loop = LoopThread("console-monitor")
        self.settings = AllInOneSettings(
            data_dir=tmp / "fw", ports=framework_ports(), run_node=True, stat_window=1
        )
        self.framework = AllInOne(self.settings)
        self.loop.run(self.framework.start(), timeout=120)
        assert self.framework.store is not None
        self.store = self.framework.store
        password_file = tmp / "admin-password"
        password_file.write_text(ADMIN_PASSWORD + "\n")
        self.web = WebServer(
            WebSettings(
                data_dir=tmp / "web",
                port=0,
                locator=self.settings.locator,
                admin_password_file=password_file,
                rpc_timeout_ms=10000,
            ),
            store=self.store,
        )
        self.loop.run(self.web.start())
        self.comm = Communicator(self.settings.locator, cache_dir=None)
        self.loop.run(self._seed())

    async def _seed(self) -> None:
        for uid, grants in USERS.items():
            await create_user(Platform(self.store), Actor.local("test"), uid, PASSWORD, grants)

    def login(self, uid: str) -> httpx.Client:
        c = httpx.Client(base_url=self.web.url, timeout=60, follow_redirects=False)
        password = ADMIN_PASSWORD if uid == "admin" else PASSWORD
        r = c.post("/api/v1/session", json={"uid": uid, "password": password})
        assert r.status_code == 201, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf"]
        return c

    def audit(self, action: str) -> list[dict[str, Any]]:
        with closing(self.login("admin")) as admin:
            r = admin.get("/api/v1/audit", params={"action": action})
            assert r.status_code == 200, r.text
            return list(r.json()["items"])

    def close(self) -> None:
        self.loop.run(self.comm.close())
        self.loop.run(self.web.stop())
        self.loop.run(self.framework.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platformed]:
    p = Platformed(tmp_path_factory.mktemp("monitor"))
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def admin(platform: Platformed) -> Iterator[httpx.Client]:
    with closing(platform.login("admin")) as c:
        yield c


@pytest.fixture(scope="module")
def other(platform: Platformed) -> Iterator[httpx.Client]:
    with closing(platform.login("op_other")) as c:
        yield c


def _refused(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, r.text[:300]
    message = r.json()["error"]
    for w in words:
        assert w in message, message


def test_call_statistics_and_properties_come_back_with_both_days(
    platform: Platformed, admin: httpx.Client, other: httpx.Client
) -> None:
    async def report() -> None:
        stat = platform.comm.string_to_proxy(StatF.StatFProxy, STAT_OBJ)

        def head_of(interface: str) -> StatF.StatMicMsgHead:
            return StatF.StatMicMsgHead(
                masterName="Demo.Caller", slaveName="Demo.Hello", interfaceName=interface,
                masterIp="10.1.0.1", slaveIp="10.1.0.2", slavePort=9000, returnValue=0,
            )  # fmt: skip

        head, other_if = head_of("sayHello"), head_of("sayBye")
        body = StatF.StatMicMsgBody(
            count=90, timeoutCount=4, execCount=6, intervalCount={100: 90},
            totalRspTime=900, maxRspTime=20, minRspTime=5,
        )  # fmt: skip
        small = StatF.StatMicMsgBody(
            count=10, timeoutCount=0, execCount=0, intervalCount={100: 10},
            totalRspTime=50, maxRspTime=9, minRspTime=1,
        )  # fmt: skip
        await stat.reportMicMsg({head: body, other_if: small}, True)
        prop = platform.comm.string_to_proxy(PropertyF.PropertyFProxy, PROPERTY_OBJ)
        phead = PropertyF.StatPropMsgHead(
            moduleName="Demo.Hello", ip="10.1.0.2", propertyName="queue"
        )
        await prop.reportPropMsg(
            {phead: PropertyF.StatPropMsgBody([PropertyF.StatPropInfo("Sum", "42")])}
        )

    platform.loop.run(report())
    today = dt.date.today()
    url = f"/api/v1/servers/{APP}/{SERVER}/stats"

    def has_calls() -> bool:
        return bool(admin.get(url).json()["series"])

    eventually_sync(has_calls, "the stat window to be written", timeout=60)
    doc = admin.get(url, params={"group_by": "interface_name"}).json()
    assert doc["date"] == today.isoformat()
    assert doc["compare"] == (today - dt.timedelta(days=1)).isoformat()
    rows = {r["key"]: r for r in doc["rows"]}
    hello = rows["sayHello"]
    assert hello["today"] == {
        "calls": 100, "succ": 90, "timeout": 4, "error": 6,
        "avg_ms": 10.0, "failure_rate": 6.0, "timeout_rate": 4.0,
    }  # fmt: skip
    assert hello["compare"]["calls"] == 0 and hello["swing"] is None
    assert rows["sayBye"]["today"]["calls"] == 10
    assert list(rows) == ["sayHello", "sayBye"]  # busiest first
    assert sum(p["today"]["calls"] for p in doc["series"]) == 110
    assert all(re.fullmatch(r"\d\d:\d\d", p["key"]) for p in doc["series"])
    # the same day compared with itself: no swing
    same = admin.get(url, params={"compare": today.isoformat(), "group_by": "master_name"})
    row = same.json()["rows"][0]
    assert row["key"] == "Demo.Caller" and row["swing"] == 0.0
    # a filter narrows it
    only = admin.get(url, params={"interface": "sayBye", "group_by": "interface_name"}).json()
    assert [r["key"] for r in only["rows"]] == ["sayBye"]
    # the page: a table of the same numbers and the chart's data, the chart library local
    page = admin.get(f"/monitor/{APP}/{SERVER}/stats", params={"group_by": "interface_name"})
    assert page.status_code == 200
    assert "sayHello" in page.text and "6.0 %" in page.text and "/static/uplot.min.js" in page.text
    assert 'id="stat-charts-data"' in page.text and "http" not in page.text.split("<main", 1)[1]
    assert admin.get("/static/uplot.min.js").status_code == 200

    # properties
    purl = f"/api/v1/servers/{APP}/{SERVER}/properties"
    eventually_sync(lambda: bool(admin.get(purl).json()["rows"]), "the property window", timeout=60)
    pdoc = admin.get(purl).json()
    assert pdoc["rows"] == [{"key": "queue (Sum)", "today": 42.0, "compare": None}]
    assert pdoc["charts"][0]["name"] == "queue (Sum)"
    assert admin.get(f"/monitor/{APP}/{SERVER}/properties").status_code == 200

    # hostile input: a clear 400 naming the field
    for params, word in (
        ({"date": "2026-02-30"}, "date"),
        ({"date": "'; DROP TABLE t_server_conf; --"}, "date"),
        ({"compare": "yesterday"}, "compare"),
        ({"start": "25:00"}, "start"),
        ({"start": "12:00", "end": "11:00"}, "after"),
        ({"group_by": "succ_count"}, "group_by"),
        ({"group_by": "slave_name) UNION SELECT"}, "group_by"),
        ({"interface": "x' OR '1'='1"}, "interface"),
        ({"caller": "%"}, "caller"),
    ):
        _refused(admin.get(url, params=params), 400, word)
    _refused(admin.get(purl, params={"group_by": "value"}), 400, "group_by")
    _refused(other.get(url), 403)
    _refused(other.get(purl), 403)
    with closing(platform.login("dev_demo")) as dev:
        assert dev.get(url).status_code == 200  # a developer of the server may look
        _refused(dev.get("/api/v1/servers/Demo/Other/stats"), 403)


def test_log_files_on_the_node_and_remote_are_listed_tailed_and_searched(
    platform: Platformed, admin: httpx.Client, other: httpx.Client
) -> None:
    node_logs = platform.settings.node_dir / "app_log" / "tars" / "tarsnotify"
    node_logs.mkdir(parents=True, exist_ok=True)
    lines = [f"line {i} {'ERROR' if i % 10 == 0 else 'info'} <b>x</b>" for i in range(1, 301)]
    (node_logs / "tars.tarsnotify_20260105.log").write_text("\n".join(lines) + "\n")
    (node_logs / "evil.log").write_text("a" * 40 + "\n")
    remote = platform.settings.remote_log_dir / APP / SERVER
    remote.mkdir(parents=True, exist_ok=True)
    (remote / "Demo.Hello_20260105.log").write_text("remote one\nremote two\n")

    files = admin.get("/api/v1/servers/tars/tarsnotify/logs").json()
    assert "tars.tarsnotify_20260105.log" in files["local"]["127.0.0.1"]
    assert admin.get(f"/api/v1/servers/{APP}/{SERVER}/logs").json()["remote"] == [
        "Hello/Demo.Hello_20260105.log"
    ]
    data = "/api/v1/servers/tars/tarsnotify/logs/data"
    day = "tars.tarsnotify_20260105.log"
    text = admin.get(data, params={"file": day, "lines": 5}).json()["text"]
    assert text.splitlines() == lines[-5:]
    found = admin.get(data, params={"file": day, "q": "error", "ignore_case": True, "lines": 3})
    assert found.json()["text"].splitlines() == [f"{n}:{lines[n - 1]}" for n in (280, 290, 300)]
    # a search is text, never a command: shell syntax finds nothing and runs nothing
    r = admin.get(data, params={"file": day, "q": "x'; rm -rf / #"})
    assert r.status_code == 200 and r.json()["text"] == ""
    # a catastrophic regular expression is stopped on the node; the node keeps answering
    r = admin.get(data, params={"file": "evil.log", "q": "(a+)+b", "regex": True})
    assert r.status_code in (200, 502), r.text
    assert admin.get(data, params={"file": day, "lines": 1}).json()["text"] == lines[-1] + "\n"
    remote_text = admin.get(
        f"/api/v1/servers/{APP}/{SERVER}/logs/data",
        params={"file": "Hello/Demo.Hello_20260105.log", "remote": True},
    ).json()["text"]
    assert remote_text == "remote one\nremote two\n"
    # hostile input
    for params, word in (
        ({"file": "../../../etc/passwd"}, "file"),
        ({"file": "/etc/passwd"}, "file"),
        ({"file": day, "lines": 0}, "lines"),
        ({"file": day, "lines": 10**9}, "lines"),
        ({"file": day, "q": "(unclosed", "regex": True}, "regular expression"),
        ({"file": day, "q": "a\nb"}, "control"),
    ):
        _refused(admin.get(data, params=params), 400, word)
    _refused(admin.get(data, params={"file": day, "node": "10.9.9.9"}), 404, "not deployed")
    _refused(other.get(data, params={"file": day}), 403)
    # the page, and following: the poll answers the viewer again, escaped, until its bound
    page = admin.get("/monitor/tars/tarsnotify/logs", params={"file": day, "follow": True})
    assert page.status_code == 200
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    assert 'hx-trigger="every 2s"' in page.text
    tail = "/monitor/tars/tarsnotify/logs/tail"
    poll = admin.get(tail, params={"file": day, "polls": 3}, headers={"HX-Request": "true"})
    assert "polls=4" in poll.text and "line 300" in poll.text
    last = admin.get(tail, params={"file": day, "polls": 149}, headers={"HX-Request": "true"})
    assert "hx-trigger" not in last.text.split("Resume")[0] and "Resume" in last.text


def test_notifications_are_paged_and_filtered_by_level(
    platform: Platformed, admin: httpx.Client, other: httpx.Client
) -> None:
    async def send() -> None:
        notify = platform.comm.string_to_proxy(NotifyF.NotifyProxy, NOTIFY_OBJ)
        for i in range(7):
            await notify.reportServer("Demo.Hello", "1", f"[alarm] disk {i} full <script>")
        await notify.notifyServer("Demo.Hello", NotifyF.NOTIFYLEVEL.NOTIFYWARN, "slow bank")
        await notify.reportServer("Demo.Hello", "1", "restarted")

    platform.loop.run(send())
    url = f"/api/v1/servers/{APP}/{SERVER}/notifications"
    eventually_sync(lambda: admin.get(url).json()["total"] >= 9, "the notifications", timeout=30)
    page = admin.get(url, params={"size": 3}).json()
    assert page["total"] == 9 and page["pages"] == 3 and len(page["items"]) == 3
    assert page["items"][0]["message"] == "restarted"  # newest first
    alarms = admin.get(url, params={"level": "alarm", "size": 5, "page": 2}).json()
    assert alarms["total"] == 7 and len(alarms["items"]) == 2
    assert {i["level"] for i in alarms["items"]} == {"alarm"}
    warn = admin.get(url, params={"level": "warn"}).json()["items"]
    assert [i["message"] for i in warn] == ["slow bank"]
    assert admin.get(url, params={"q": "disk 3"}).json()["total"] == 1
    _refused(admin.get(url, params={"level": "critical"}), 400, "level")
    _refused(admin.get(url, params={"size": 100000}), 400, "size")
    _refused(other.get(url), 403)
    html = admin.get(f"/monitor/{APP}/{SERVER}/notifications", params={"level": "alarm"}).text
    assert "disk 6 full &lt;script&gt;" in html and "<script>" not in html.split("<main")[1]


def test_alert_rules_are_created_edited_tested_and_deleted_and_audited(
    platform: Platformed, admin: httpx.Client, other: httpx.Client
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: the test fails to send
    rule = {
        "name": "hello-failures", "kind": "failure_rate", "application": APP,
        "server": SERVER, "threshold": 5, "windows": 2, "webhook": closed,
    }  # fmt: skip
    r = admin.post("/api/v1/alerts/rules", json=rule)
    assert r.status_code == 201, r.text
    assert r.json()["threshold"] == 5 and r.json()["id"] > 0
    _refused(admin.post("/api/v1/alerts/rules", json=rule), 409, "exists")
    # another application's operator may neither add nor change nor delete it
    before = admin.get(f"/api/v1/servers/{APP}/{SERVER}/alerts/rules").json()
    _refused(other.post("/api/v1/alerts/rules", json={**rule, "name": "x"}), 403)
    _refused(other.put("/api/v1/alerts/rules/hello-failures", json={**rule, "threshold": 1}), 403)
    _refused(
        other.put("/api/v1/alerts/rules/hello-failures", json={**rule, "application": "Other"}), 403
    )
    _refused(other.delete("/api/v1/alerts/rules/hello-failures"), 403)
    _refused(other.get(f"/api/v1/servers/{APP}/{SERVER}/alerts/rules"), 403)
    _refused(other.get("/api/v1/alerts/rules"), 403)
    assert admin.get(f"/api/v1/servers/{APP}/{SERVER}/alerts/rules").json() == before
    # bad rules: the service's reason, as a 400
    for bad, word in (
        ({"kind": "cpu"}, "kind"),
        ({"webhook": "file:///etc/passwd"}, "webhook"),
        ({"threshold": 500}, "percentage"),
        ({"windows": 0}, "windows"),
        ({"name": "bad name!"}, "name"),
    ):
        _refused(admin.post("/api/v1/alerts/rules", json={**rule, **bad}), 400, word)
    # edit keeps the id
    r = admin.put("/api/v1/alerts/rules/hello-failures", json={**rule, "threshold": 7.5})
    assert r.status_code == 200, r.text
    rules = admin.get("/api/v1/alerts/rules", params={"q": "hello"}).json()["items"]
    assert [(x["name"], x["threshold"], x["id"]) for x in rules] == [
        ("hello-failures", 7.5, before["items"][0]["id"])
    ]
    _refused(admin.put("/api/v1/alerts/rules/nope", json=rule), 404)
    # test: the webhook is down, and the answer says so; an event is recorded
    _refused(admin.post("/api/v1/alerts/rules/hello-failures/test"), 502, "webhook")
    events = admin.get(f"/api/v1/servers/{APP}/{SERVER}/alerts/events").json()["items"]
    assert events[0]["state"] == "test" and events[0]["delivery"] == "failed"
    page = admin.get(f"/monitor/{APP}/{SERVER}/alerts", params={"edit": "hello-failures"})
    assert page.status_code == 200 and 'value="7.5"' in page.text
    # the page's forms: add one for the whole application, then delete it
    form = {
        "csrf_token": admin.headers["X-CSRF-Token"], "name": "demo-down", "kind": "server_down",
        "scope": "application", "webhook": closed, "enabled": "1", "threshold": "0",
    }  # fmt: skip
    r = admin.post(f"/monitor/{APP}/{SERVER}/alerts", data=form)
    assert r.status_code == 303, r.text
    listed = admin.get(f"/api/v1/servers/{APP}/{SERVER}/alerts/rules").json()["items"]
    assert {(x["name"], x["server"]) for x in listed} == {
        ("hello-failures", SERVER),
        ("demo-down", ""),
    }
    r = admin.post(f"/monitor/{APP}/{SERVER}/alerts", data={**form, "kind": "nonsense"})
    assert r.status_code == 400 and "kind" in r.text
    r = admin.post(f"/monitor/{APP}/{SERVER}/alerts/demo-down/delete", data=form)
    assert r.status_code == 303
    assert admin.delete("/api/v1/alerts/rules/hello-failures").status_code == 204
    assert admin.get("/api/v1/alerts/rules").json()["items"] == []
    actions = [a["action"] for a in platform.audit("alert.")]
    for action in ("alert.create", "alert.update", "alert.test", "alert.delete"):
        assert action in actions
    update = next(a for a in platform.audit("alert.update"))
    assert "7.5" in str(update["after"]) and "5" in str(update["before"])
