"""The operate pages and their API against a real platform: the framework services, two node
agents running the example Hello, the console over the same store. Deploy and expand, start /
stop / restart as tasks followed to the end, admin commands with each instance's answer,
undeploy refused while active, templates with their chain and merged view, the node list and
the "add a node" command. Every refusal leaves nothing changed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest
from operate_support import NODES, OperatePlatform

from tarsus.testing import eventually_sync

SERVER = "Test.HelloServer"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatePlatform]:
    p = OperatePlatform(tmp_path_factory.mktemp("operate"))
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def admin(platform: OperatePlatform) -> Iterator[httpx.Client]:
    with closing(platform.login("admin")) as c:
        yield c


def _instances(c: httpx.Client) -> dict[str, dict[str, Any]]:
    r = c.get("/api/v1/instances", params={"application": "Test", "server_name": "HelloServer"})
    assert r.status_code == 200, r.text
    return {i["node_name"]: i for i in r.json()["items"]}


def _follow(c: httpx.Client, task_no: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def finished() -> bool:
        r = c.get(f"/api/v1/tasks/{task_no}")
        assert r.status_code == 200, r.text
        seen.update(r.json())
        return bool(seen["finished"])

    eventually_sync(finished, f"task {task_no} to finish", timeout=120, describe=lambda: str(seen))
    return seen


def _audit(c: httpx.Client, action: str) -> list[dict[str, Any]]:
    r = c.get("/api/v1/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_nodes_listed_alive_with_heartbeat_and_the_add_command(
    platform: OperatePlatform, admin: httpx.Client
) -> None:
    r = admin.get("/api/v1/nodes")
    assert r.status_code == 200, r.text
    listed = {n["name"]: n for n in r.json()["items"]}
    assert set(NODES) <= set(listed)
    for node in NODES:
        assert listed[node]["alive"] and listed[node]["last_heartbeat"], listed[node]
    assert admin.get("/api/v1/nodes", params={"q": "127.0.0.2"}).json()["total"] == 1

    page = admin.get("/nodes").text
    assert all(n in page for n in NODES) and 'hx-trigger="every 5s"' in page
    command = admin.get("/api/v1/install-command").json()["command"]
    assert command == f"curl -fsS {platform.url}/install/node.sh | sh"
    add = admin.get("/nodes/add")
    assert add.status_code == 200 and command in add.text and 'hx-trigger="every 2s"' in add.text
    detail = admin.get("/nodes/127.0.0.1")
    assert detail.status_code == 200 and "127.0.0.1" in detail.text
    assert admin.get("/api/v1/nodes/10.255.0.9").status_code == 404

    with closing(platform.login("op_other")) as other:
        for path in ("/api/v1/nodes", "/api/v1/install-command", "/nodes/add", "/nodes"):
            assert other.get(path).status_code == 403, path


def test_deploy_expand_start_command_stop_undeploy_hello(
    platform: OperatePlatform, admin: httpx.Client
) -> None:
    port = platform.hello_port
    body: dict[str, Any] = {
        "application": "Test",
        "server_name": "HelloServer",
        "nodes": ["127.0.0.1"],
        "objs": [{"name": "HelloObj", "port": port}],
    }
    # bad input: named, nothing deployed
    for wrong, words in (
        ({"objs": []}, "at least one obj"),
        ({"nodes": ["10.255.0.9"]}, "not registered"),
        ({"server_type": "cobol"}, "type must be one of"),
        ({"template": "no.such.template"}, "no template"),
        ({"run_type": "container"}, "needs an image"),
        ({"objs": [{"name": "Hello Obj", "port": port}]}, "letters, digits"),
        ({"objs": [{"name": "HelloObj", "port": 70000}]}, "port must be"),
    ):
        r = admin.post("/api/v1/servers", json={**body, **wrong})
        assert r.status_code == 400 and words in r.json()["error"], (wrong, r.text)
    with closing(platform.login("op_other")) as other:
        r = other.post("/api/v1/servers", json=body)
        assert r.status_code == 403 and "may not operate on Test" in r.json()["error"]
    assert _instances(admin) == {}

    r = admin.post("/api/v1/servers", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["deployed"][0]["servants"] == {
        "Test.HelloServer.HelloObj": f"tcp -h 127.0.0.1 -p {port} -t 60000"
    }
    assert admin.post("/api/v1/servers", json=body).status_code == 400  # already deployed

    # expand onto the second node, through the page's form
    page = admin.get("/servers/Test/HelloServer")
    assert page.status_code == 200 and "127.0.0.1" in page.text
    r = admin.post(
        "/servers/Test/HelloServer/expand",
        data={"source_node": "127.0.0.1", "nodes": "127.0.0.2", "ports": "same"},
    )
    assert r.status_code == 200 and "Deployed on" in r.text, r.text[-2000:]
    instances = _instances(admin)
    assert set(instances) == set(NODES)
    assert all(i["setting_state"] == "inactive" for i in instances.values())
    assert [a["target"] for a in _audit(admin, "server.deploy")] == [SERVER, SERVER]

    # publish Hello to both (the script API; installs, and starts them: restart=1)
    token = platform.token()
    with open(platform.package, "rb") as pkg:
        r = httpx.post(
            f"{platform.url}/api/upload_and_publish",
            params={"ticket": token},
            data={"application": "Test", "module_name": "HelloServer", "restart": "1"},
            files={"suse": ("hello.tgz", pkg, "application/gzip")},
            timeout=180,
        )
    # one serial task over both nodes: it answers once both ended, not when the first did
    # (the task is "partly done", EM_T_PARIAL, in between)
    assert r.status_code == 200 and r.text.endswith("task status: EM_T_SUCCESS\n"), r.text
    published = re.search(r"task no:  \[(\w+)\]", r.text)
    assert published, r.text
    task = _follow(admin, published.group(1))
    assert task["finished"] and task["serial"], task
    assert [(i["status"], i["command"]) for i in task["items"]] == [("done", "patch_tars")] * 2
    # the one task page shows a publish as it shows a stop (below): version, the server's pages
    page = admin.get(f"/tasks/{published.group(1)}").text
    assert "patch_tars · v" in page and "/release/Test/HelloServer" in page
    assert 'data-finished="yes"' in page and "hx-trigger" not in page
    assert admin.get("/api/v1/tasks/" + "0" * 32).status_code == 404  # no such task
    for hostile in ("not a task", "%3Cscript%3E", "f" * 65):
        assert admin.get(f"/api/v1/tasks/{hostile}").status_code == 400, hostile

    # stop both as one task, from the page: follow it, live
    r = admin.post("/servers/Test/HelloServer/task", data={"command": "stop", "node": list(NODES)})
    assert r.status_code == 303, r.text
    task_path = r.headers["location"]
    task_no = task_path.rsplit("/", 1)[1]
    live = admin.get(task_path)
    assert live.status_code == 200 and task_no in live.text
    task = _follow(admin, task_no)
    assert [i["status"] for i in task["items"]] == ["done", "done"], task
    assert {i["node"] for i in task["items"]} == set(NODES)
    done_page = admin.get(task_path).text
    assert "hx-trigger" not in done_page and 'data-finished="yes"' in done_page
    assert all(i["setting_state"] == "inactive" for i in _instances(admin).values())

    # start both (API), then they answer an admin command each
    with closing(platform.login("dev_test")) as dev:  # a developer only looks
        r = dev.post(
            "/api/v1/tasks", json={"command": "start", "instances": [f"{SERVER}@127.0.0.1"]}
        )
        assert r.status_code == 403, r.text
        assert dev.get(f"/api/v1/tasks/{task_no}").status_code == 200  # and may follow it
    with closing(platform.login("op_other")) as other:
        assert other.get(f"/api/v1/tasks/{task_no}").status_code == 403
    r = admin.post(
        "/api/v1/tasks",
        json={"command": "start", "instances": [f"{SERVER}@{n}" for n in NODES]},
    )
    assert r.status_code == 201, r.text
    task = _follow(admin, r.json()["task_no"])
    assert [i["status"] for i in task["items"]] == ["done", "done"], task

    def active() -> bool:
        return all(i["present_state"] == "active" for i in _instances(admin).values())

    eventually_sync(active, "both instances active", timeout=60)
    r = admin.post(
        "/api/v1/notify",
        json={"instances": [f"{SERVER}@{n}" for n in NODES], "kind": "viewstatus"},
    )
    assert r.status_code == 200, r.text
    answers = r.json()["answers"]
    assert [a["ok"] for a in answers] == [True, True], answers
    assert r.json()["command"] == "tars.viewstatus"
    r = admin.post(
        "/servers/Test/HelloServer/notify",
        data={"kind": "setloglevel", "argument": "debug", "node": ["127.0.0.1"]},
    )
    assert r.status_code == 200 and "tars.setloglevel DEBUG" in r.text, r.text[-2000:]
    for wrong in (
        {"kind": "setloglevel", "argument": "LOUD"},
        {"kind": "loadconfig", "argument": "../../etc/passwd"},
        {"kind": "custom", "argument": "two\nlines"},
        {"kind": "reboot"},
    ):
        r = admin.post("/api/v1/notify", json={"instances": [f"{SERVER}@127.0.0.1"], **wrong})
        assert r.status_code == 400, (wrong, r.text)
    r = admin.post(
        "/api/v1/notify", json={"instances": ["Test.Nope@127.0.0.1"], "kind": "viewstatus"}
    )
    assert r.status_code == 404

    # undeploy: refused while active, with the reason; the page asks for the name first
    r = admin.delete("/api/v1/instances/Test/HelloServer/127.0.0.2")
    assert r.status_code == 409 and "stop it first" in r.json()["error"]
    confirm = admin.get("/servers/Test/HelloServer/127.0.0.2/undeploy")
    assert confirm.status_code == 200 and "stop it first" in confirm.text
    r = admin.post("/servers/Test/HelloServer/127.0.0.2/undeploy", data={"confirm": "yes"})
    assert r.status_code == 400
    assert set(_instances(admin)) == set(NODES)

    r = admin.post("/api/v1/tasks", json={"command": "stop", "instances": [f"{SERVER}@127.0.0.2"]})
    assert _follow(admin, r.json()["task_no"])["items"][0]["status"] == "done"
    r = admin.post(
        "/servers/Test/HelloServer/127.0.0.2/undeploy",
        data={"confirm": f"{SERVER}@127.0.0.2"},
    )
    assert r.status_code == 303, r.text
    assert set(_instances(admin)) == {"127.0.0.1"}
    undeployed = _audit(admin, "server.undeploy")
    assert undeployed[0]["target"] == f"{SERVER}@127.0.0.2" and undeployed[0]["uid"] == "admin"
    assert {a["action"] for a in _audit(admin, "server.")} >= {
        "server.deploy",
        "server.start",
        "server.stop",
        "server.notify",
        "server.undeploy",
    }


def test_deploy_with_automatic_ports_and_a_container(admin: httpx.Client) -> None:
    body = {
        "application": "Test",
        "server_name": "AutoServer",
        "nodes": list(NODES),
        "objs": [{"name": "AObj"}, {"name": "BObj", "threads": 2}],
        "run_type": "container",
        "image": "localhost/tarsus-python:test",
    }
    r = admin.post("/api/v1/servers", json=body)
    assert r.status_code == 201, r.text
    for d in r.json()["deployed"]:
        ports = [int(re.search(r"-p (\d+)", e).group(1)) for e in d["servants"].values()]  # type: ignore[union-attr]
        assert len(set(ports)) == 2 and min(ports) >= 10000, d
    for node in NODES:
        r = admin.delete(f"/api/v1/instances/Test/AutoServer/{node}")
        assert r.status_code == 200, r.text


def test_templates_chain_merged_view_and_changes(
    platform: OperatePlatform, admin: httpx.Client
) -> None:
    profile = (
        "<tars>\n  <application>\n    <server>\n      logLevel=DEBUG\n"
        "    </server>\n  </application>\n</tars>\n"
    )
    r = admin.put(
        "/api/v1/templates/Test.debug",
        json={"parent": "tars.tarspython.default", "profile": profile},
    )
    assert r.status_code == 200, r.text
    got = admin.get("/api/v1/templates/Test.debug").json()
    assert got["chain"][:2] == ["Test.debug", "tars.tarspython.default"]
    assert "logLevel=DEBUG" in got["merged"] and "logLevel" in got["profile"]
    assert len(got["merged"]) > len(got["profile"])  # the parents' values joined in
    page = admin.get("/templates/Test.debug")
    assert page.status_code == 200 and "Merged with its parents" in page.text
    listed = admin.get("/api/v1/templates", params={"q": "Test."}).json()
    assert [t["name"] for t in listed["items"]] == ["Test.debug"]
    assert "Test.debug" in admin.get("/templates").text

    # refusals, named, nothing changed
    r = admin.put("/api/v1/templates/Test.debug", json={"parent": "no.such", "profile": profile})
    assert r.status_code == 400, r.text
    r = admin.put("/api/v1/templates/tars.default", json={"parent": "", "profile": profile})
    assert r.status_code == 400 and "built in" in r.json()["error"], r.text
    r = admin.put("/api/v1/templates/bad name!", json={"profile": profile})
    assert r.status_code == 400
    r = admin.delete("/api/v1/templates/tars.tarspython.default")
    assert r.status_code == 409, r.text
    with closing(platform.login("op_other")) as other:
        assert other.put("/api/v1/templates/Test.debug", json={"profile": ""}).status_code == 403
        assert other.get("/api/v1/templates").status_code == 403
    assert admin.get("/api/v1/templates/Test.debug").json()["profile"] == profile

    # deployable with it, deletable once nothing uses it
    r = admin.post("/templates/Test.debug/delete")
    assert r.status_code == 303, r.text
    assert admin.get("/api/v1/templates/Test.debug").status_code == 404
    assert {a["action"] for a in _audit(admin, "template.")} == {
        "template.create",
        "template.delete",
    }
