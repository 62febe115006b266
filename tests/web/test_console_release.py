"""Publish and config files through the console's API and pages, against the real framework:
the registry, admin registry, package store, config center and a node agent of
:class:`~tarsus.framework.allinone.AllInOne` on free ports (SQLite), the console on real
uvicorn over the same store. The server published is a shell script run by the node
(``not_tars``); a second instance is on a node that does not exist, so a canary leaves it
untouched and a publish there fails as it would.

What an operator notices: an upload stored with its md5 (refused when damaged or not a
package), a publish task followed to its end, the version each instance runs, a canary
that touches only its nodes, a rollback to the version before, history, a package refused
deletion while it runs; config files edited with a reason, diffed, restored, merged as an
instance sees them, pushed with each instance's answer. And users who may not do these are
refused with nothing changed.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tarsus.framework.admin import AdminSettings
from tarsus.framework.admin.inventory import Inventory
from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.store.servers import ServerSpec
from tarsus.testing import LoopThread, eventually_sync, framework_ports
from tarsus.web.server import WebServer
from tarsus.web.settings import WebSettings

APP, SERVER = "Test", "Sleeper"
NODE, GHOST = "127.0.0.1", "127.0.0.2"
ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "a-long-enough-password"
API = f"/api/v1/servers/{APP}/{SERVER}"


def _package(version: str) -> bytes:
    script = f"#!/bin/sh\n# {version}\nexec sleep 600\n".encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{SERVER}/{SERVER}")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    return out.getvalue()


class Site:
    def __init__(self, root: Path) -> None:
        self.loop = LoopThread("console-release")
        fw = AllInOneSettings(
            data_dir=root / "fw",
            ports=framework_ports(),
            admin=AdminSettings(patch_poll_interval=0.05, ready_poll_interval=0.1),
        )
        self.framework = AllInOne(fw)
        self.loop.run(self.framework.start())
        store = self.framework.store
        assert store is not None
        self.store = store
        for node in (NODE, GHOST):
            spec = ServerSpec(APP, SERVER, node, server_type="not_tars")
            self.loop.run(Inventory(store).deploy(spec, [], user="test"))
        password_file = root / "admin-password"
        password_file.write_text(ADMIN_PASSWORD + "\n")
        self.settings = WebSettings(
            data_dir=root / "web", port=0, locator=fw.locator, admin_password_file=password_file,
            rpc_timeout_ms=20000,
        )  # fmt: skip
        self.web = WebServer(self.settings, store=store)
        self.loop.run(self.web.start())
        self.url = self.web.url
        with closing(self.login("admin")) as admin:
            for uid, roles in {
                "dev": [["developer", APP]],
                "other": [["operator", "Other"]],
                "editor": [["developer", APP], ["config_edit", f"{APP}.{SERVER}"]],
            }.items():
                r = admin.post(
                    "/api/v1/users", json={"uid": uid, "password": PASSWORD, "roles": roles}
                )
                assert r.status_code == 201, r.text

    def close(self) -> None:
        try:
            self.loop.run(self.web.stop())
        finally:
            self.loop.run(self.framework.stop())
            self.loop.close()

    def login(self, uid: str) -> httpx.Client:
        c = httpx.Client(base_url=self.url, follow_redirects=False, timeout=60)
        password = ADMIN_PASSWORD if uid == "admin" else PASSWORD
        r = c.post("/api/v1/session", json={"uid": uid, "password": password})
        assert r.status_code == 201, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf"]
        return c

    def versions(self) -> dict[str, str]:
        """node -> the version its instance runs, as the store has it."""

        async def read() -> dict[str, str]:
            rows = await self.store.servers.list(APP, SERVER)
            return {r.node_name: r.patch_version or "" for r in rows}

        return self.loop.run(read())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = Site(tmp_path_factory.mktemp("release"))
    try:
        yield s
    finally:
        s.close()


def _upload(c: httpx.Client, data: bytes, **fields: str) -> httpx.Response:
    return c.post(
        API + "/packages",
        data=fields,
        files={"suse": (f"{SERVER}.tgz", data, "application/gzip")},
    )


def _finished(c: httpx.Client, task: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        r = c.get(f"{API}/tasks/{task}")
        assert r.status_code == 200, r.text
        found.update(r.json())
        return bool(found["finished"])

    eventually_sync(done, f"task {task} to finish", timeout=60, interval=0.2)
    return found


def _audit(c: httpx.Client, action: str) -> list[dict[str, Any]]:
    r = c.get("/api/v1/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_upload_publish_canary_rollback_and_history(site: Site) -> None:
    v1, v2 = _package("v1"), _package("v2")
    with closing(site.login("admin")) as admin, closing(site.login("dev")) as dev:
        # refused uploads store nothing
        assert _upload(dev, v1).status_code == 403
        r = _upload(admin, v1, md5="0" * 32)
        assert r.status_code == 400 and "md5 mismatch" in r.json()["error"]
        r = _upload(admin, b"not a tarball at all")
        assert r.status_code == 400 and "package refused" in r.json()["error"]
        r = admin.post(API + "/packages", content=b"x", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        assert admin.get(API + "/packages").json()["total"] == 0

        r = _upload(admin, v1, comment="first", md5=hashlib.md5(v1).hexdigest())
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["md5"] == hashlib.md5(v1).hexdigest() and first["size"] == len(v1)
        # the page's upload (htmx) answers the package list
        r = admin.post(
            f"/release/{APP}/{SERVER}/upload",
            data={"comment": "second"},
            files={"suse": (f"{SERVER}.tgz", v2, "application/gzip")},
            headers={"HX-Request": "true"},
        )
        assert r.status_code == 200, r.text
        assert "second" in r.text and 'class="package"' in r.text
        listed = admin.get(API + "/packages").json()
        assert listed["total"] == 2 and listed["items"][0]["comment"] == "second"
        second = listed["items"][0]

        # a developer may look but not publish; another application's operator not even look
        body = {"version": first["id"], "nodes": [NODE]}
        assert dev.post(API + "/publish", json=body).status_code == 403
        with closing(site.login("other")) as other:
            assert other.get(API + "/packages").status_code == 403
            assert other.post(API + "/publish", json=body).status_code == 403
        assert site.versions() == {NODE: "", GHOST: ""}

        # bad input is named
        r = admin.post(API + "/publish", json={"version": 999, "nodes": [NODE]})
        assert r.status_code == 404 and "no package 999" in r.json()["error"]
        r = admin.post(API + "/publish", json={"version": first["id"], "nodes": ["10.1.1.1"]})
        assert r.status_code == 400 and "not deployed on node 10.1.1.1" in r.json()["error"]
        r = admin.post(API + "/publish", json={"version": first["id"], "canary": 2})
        assert r.status_code == 400 and "canary" in r.json()["error"]

        # publish v1 to the real node, followed to its end
        r = admin.post(API + "/publish", json={**body, "comment": "go"})
        assert r.status_code == 202, r.text
        task = r.json()["tasks"][0]["task"]
        done = _finished(admin, task)
        assert done["status"] == "done", done
        assert [(i["node"], i["status"]) for i in done["items"]] == [(NODE, "done")]
        assert site.versions()[NODE] == str(first["id"])

        # the page shows the task in place, and its fragment stops polling once done
        page = admin.get(f"/release/{APP}/{SERVER}", params={"task": task})
        assert page.status_code == 200 and 'data-finished="yes"' in page.text
        frag = admin.get(f"/tasks/{task}", headers={"HX-Request": "true"})
        assert frag.status_code == 200 and "every 2s" not in frag.text and NODE in frag.text
        # a task of this server is not shown through another
        assert admin.get(f"/api/v1/servers/{APP}/Other/tasks/{task}").status_code == 404

        # canary: v2 to the first node only; the ghost node is left as it was
        r = admin.post(
            API + "/publish",
            json={"version": second["id"], "nodes": [NODE, GHOST], "canary": 1},
        )
        assert r.status_code == 202, r.text
        started = r.json()
        assert started["tasks"][0]["nodes"] == [NODE] and started["rest"] == [GHOST]
        assert _finished(admin, started["tasks"][0]["task"])["status"] == "done"
        assert site.versions() == {NODE: str(second["id"]), GHOST: ""}
        # the page offers the rest
        page = admin.get(
            f"/release/{APP}/{SERVER}",
            params={"task": started["tasks"][0]["task"], "rest": GHOST, "version": second["id"]},
        )
        assert "Publish to the rest" in page.text
        # the running version may not be deleted
        r = admin.delete(f"{API}/packages/{second['id']}")
        assert r.status_code == 409 and NODE in r.json()["error"]

        # rollback: the node's previous version, from the history
        r = admin.post(API + "/rollback", json={"nodes": [NODE]})
        assert r.status_code == 202, r.text
        rb = r.json()["rollbacks"]
        assert [x["version"] for x in rb] == [first["id"]]
        assert _finished(admin, rb[0]["tasks"][0]["task"])["status"] == "done"
        assert site.versions()[NODE] == str(first["id"])
        # with no earlier publish there, a rollback says so
        r = admin.post(API + "/rollback", json={"nodes": [GHOST]})
        assert r.status_code == 409 and "no earlier version" in r.json()["error"]

        history = admin.get(API + "/publishes").json()
        assert history["total"] == 3
        assert [t["items"][0]["node"] for t in history["items"]] == [NODE] * 3

        # default, and delete of the one no longer running
        assert admin.put(f"{API}/packages/{first['id']}/default").status_code == 200
        r = admin.delete(f"{API}/packages/{second['id']}")
        assert r.status_code == 200, r.text
        listed = admin.get(API + "/packages").json()["items"]
        assert [(p["id"], p["default"], p["deployed_on"]) for p in listed] == [
            (first["id"], True, [NODE])
        ]

        page = admin.get(f"/release/{APP}/{SERVER}")
        assert page.status_code == 200 and "first" in page.text and "Roll back" in page.text
        actions = {a["action"] for a in _audit(admin, "release.")}
        assert actions == {
            "release.upload", "release.publish", "release.rollback", "release.set_default",
            "release.delete_package",
        }  # fmt: skip


def test_config_edit_diff_restore_merged_and_push(site: Site) -> None:
    cfgs = f"{API}/configs"
    with closing(site.login("admin")) as admin, closing(site.login("editor")) as editor:
        with closing(site.login("dev")) as dev:
            r = dev.post(cfgs, json={"name": "sleeper.conf", "content": "<a>\nx=1\n</a>\n"})
            assert r.status_code == 403
        r = admin.post(cfgs, json={"name": "../etc/passwd", "content": ""})
        assert r.status_code == 400 and "not a config file name" in r.json()["error"]
        r = admin.post(
            cfgs, json={"name": "common.conf", "level": "app", "content": "<c>\nregion=eu\n</c>\n"}
        )
        assert r.status_code == 201, r.text
        r = editor.post(
            cfgs, json={"name": "sleeper.conf", "content": "<a>\nx=1\n</a>\n", "reason": "first"}
        )
        assert r.status_code == 201, r.text
        file_id = r.json()["id"]
        listed = admin.get(cfgs).json()["items"]
        assert {(f["level"], f["name"], f["node"]) for f in listed} >= {
            ("app", "common.conf", ""), ("server", "sleeper.conf", ""),
            ("node", "sleeper.conf", NODE), ("node", "sleeper.conf", GHOST),
        }  # fmt: skip
        common = next(f for f in listed if f["name"] == "common.conf")
        # an application file belongs to the application: a server's editor may not change it
        r = editor.put(f"{cfgs}/{common['id']}", json={"content": "", "reason": "no"})
        assert r.status_code == 403

        r = editor.put(f"{cfgs}/{file_id}", json={"content": "<a>\nx=2\n</a>\n", "reason": " "})
        assert r.status_code == 400 and "reason" in r.json()["error"]
        r = editor.put(f"{cfgs}/{file_id}", json={"content": "<a>\nx=2\n</a>\n", "reason": "more"})
        assert r.status_code == 200 and r.json()["content"] == "<a>\nx=2\n</a>\n"
        versions = admin.get(f"{cfgs}/{file_id}/history").json()["items"]
        assert [v["reason"] for v in versions] == ["more", "first"]
        old = versions[1]["id"]

        d = admin.get(f"{cfgs}/{file_id}/diff", params={"old": old}).json()
        assert "-x=1" in d["unified"] and "+x=2" in d["unified"] and not d["same"]
        assert ("changed", 2, "x=1", 2, "x=2") in [tuple(row) for row in d["rows"]]
        page = admin.get(f"/configs/{APP}/{SERVER}/{file_id}/diff", params={"old": old})
        assert page.status_code == 200 and 'class="diff-changed"' in page.text

        # a version of another file is not this file's
        r = admin.post(f"{cfgs}/{common['id']}/history/{old}/restore", json={})
        assert r.status_code == 404
        with closing(site.login("dev")) as dev:
            assert dev.post(f"{cfgs}/{file_id}/history/{old}/restore", json={}).status_code == 403
        assert admin.get(f"{cfgs}/{file_id}").json()["content"] == "<a>\nx=2\n</a>\n"
        r = editor.post(f"{cfgs}/{file_id}/history/{old}/restore", json={"reason": "back"})
        assert r.status_code == 200 and r.json()["content"] == "<a>\nx=1\n</a>\n"

        merged = admin.get(f"{cfgs}/merged", params={"name": "sleeper.conf", "node": NODE}).json()
        assert "x=1" in merged["content"] and merged["node"] == NODE
        page = admin.get(f"/configs/{APP}/{SERVER}", params={"name": "sleeper.conf", "node": NODE})
        assert page.status_code == 200 and "x=1" in page.text and "common.conf" in page.text

        # push: config_push is its own permission; each instance answers for itself
        r = editor.post(f"{cfgs}/{file_id}/push", json={"nodes": [NODE]})
        assert r.status_code == 403
        r = admin.post(f"{cfgs}/{file_id}/push", json={"nodes": [NODE, GHOST]})
        assert r.status_code == 200, r.text
        answers = {a["node"]: a for a in r.json()["instances"]}
        assert set(answers) == {NODE, GHOST}
        # a shell script takes no admin command, and the ghost node has no agent: both say why
        assert not answers[GHOST]["ok"] and answers[GHOST]["answer"]
        assert answers[NODE]["answer"]
        page = admin.post(f"/configs/{APP}/{SERVER}/{file_id}/push", data={"node": NODE})
        assert page.status_code == 200 and "push-" in page.text

        # the page's edit form (no JavaScript: a plain form post with the CSRF field)
        html = admin.get(f"/configs/{APP}/{SERVER}/{file_id}").text
        csrf = re.search(r'name="csrf_token" value="([^"]*)"', html)
        assert csrf
        plain = httpx.Client(base_url=site.url, cookies=admin.cookies, follow_redirects=False)
        with plain:
            r = plain.post(
                f"/configs/{APP}/{SERVER}/{file_id}",
                data={"csrf_token": csrf.group(1), "content": "<a>\nx=3\n</a>\n", "reason": "form"},
            )
            assert r.status_code == 303, r.text
        assert admin.get(f"{cfgs}/{file_id}").json()["content"] == "<a>\nx=3\n</a>\n"

        r = admin.delete(f"{cfgs}/{file_id}")
        assert r.status_code == 204
        assert admin.get(f"{cfgs}/{file_id}").status_code == 404
        actions = [a["action"] for a in _audit(admin, "config.")]
        assert {
            "config.add",
            "config.edit",
            "config.restore",
            "config.push",
            "config.delete",
        } <= set(actions)
