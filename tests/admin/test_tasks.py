"""Tasks (addTaskReq / getTaskRsp / getTaskHistory / setTaskItemInfo) over a real socket:
serial, parallel and elegant runs, item statuses and logs, and the t_task rows that outlive
the admin registry (docs/admin.md)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path
from typing import Any

import pytest
from admin_support import NODE, Active, Harness, ScriptedNode
from sqlalchemy import insert, select

from tarsus.framework.admin import AdminRegistry
from tarsus.framework.admin.channel import NodeChannels
from tarsus.framework.admin.tasks import derive_status
from tarsus.protocol.gen import AdminReg, NodeDescriptor, QueryF
from tarsus.store.schema import t_server_patchs, t_task, t_task_item
from tarsus.testing import eventually, free_port, serve

NOT_START, PREPARE, RUNNING, SUCCESS, FAILED, CANCEL, PAUSE_FLOW = range(7)
T_SUCCESS, T_FAILED, T_CANCEL, T_PARIAL = 3, 4, 5, 6


def item(server: str, command: str, node: str = NODE, **params: str) -> Any:
    return AdminReg.TaskItemReq(
        itemNo=f"{server}-{command}-{node}",
        application="Demo",
        serverName=server,
        nodeName=node,
        command=command,
        userName="alice",
        parameters=dict(params),
    )


def task(no: str, items: list[Any], *, serial: bool = False, **kw: Any) -> Any:
    return AdminReg.TaskReq(taskItemReq=items, taskNo=no, serial=serial, userName="alice", **kw)


async def finished(admin: Harness, no: str) -> Any:
    """The TaskRsp once no item is left to run."""
    rsp: Any = None

    async def done() -> bool:
        nonlocal rsp
        ret, rsp = await admin.proxy.getTaskRsp(no)
        assert ret == 0
        return all(i.status in (SUCCESS, FAILED, CANCEL) for i in rsp.taskItemRsp)

    await eventually(done, f"task {no} to finish")
    # the items read as done a moment before the engine has written them all and recorded the
    # task as finished
    live = admin.registry.tasks.tasks.get(no)
    if live is not None:
        await eventually(lambda: live.finished, f"task {no} recorded as finished")
    return rsp


def statuses(rsp: Any) -> list[int]:
    return [int(i.status) for i in rsp.taskItemRsp]


async def test_serial_task_stops_at_the_first_failure(admin: Harness) -> None:
    await admin.deploy(server="A")
    await admin.deploy(server="B", node="10.9.9.9")  # a node that is not connected
    await admin.deploy(server="C")
    items = [item("A", "start"), item("B", "start", node="10.9.9.9"), item("C", "start")]
    assert await admin.proxy.addTaskReq(task("t-serial", items, serial=True)) == 0
    rsp = await finished(admin, "t-serial")
    assert statuses(rsp) == [SUCCESS, FAILED, CANCEL]
    assert rsp.status == T_PARIAL
    a, b, c = rsp.taskItemRsp
    assert a.executeLog == "Demo.A started" and a.startTime and a.endTime
    assert "not connected" in b.executeLog and b.statusInfo == "EM_I_FAILED"
    assert c.startTime == "" and c.endTime != ""
    assert admin.node.called("startServer") == [("Demo", "A")]


async def test_parallel_task_runs_at_most_five_items_at_once(admin: Harness) -> None:
    names = [f"S{i}" for i in range(7)]
    for name in names:
        await admin.deploy(server=name)
    admin.node.delay = 0.3
    assert await admin.proxy.addTaskReq(task("t-par", [item(n, "start") for n in names])) == 0
    rsp = await finished(admin, "t-par")
    assert statuses(rsp) == [SUCCESS] * 7 and rsp.status == T_SUCCESS
    assert admin.node.running_max == 5


async def test_a_task_in_batches_runs_each_batch_after_the_previous_one(admin: Harness) -> None:
    names = ["S0", "S1", "S2", "S3", "S4"]
    for name in names:
        await admin.deploy(server=name)
    await admin.deploy(server="Bad", node="10.9.9.9")  # a node that is not connected
    started_before: dict[str, list[str]] = {}
    arrived = {name: asyncio.Event() for name in names}
    side_by_side: set[str] = set()

    async def on_command(func: str, args: Any) -> None:
        if func == "startServer":
            server = args[1]
            started_before[server] = sorted(s for _, s in admin.node.states)
            arrived[server].set()
            partner = {"S0": "S1", "S1": "S0"}.get(server)
            if partner is not None:
                # the first batch's two run side by side: each waits (10 s at most) for the
                # other to be pushed before it goes on (no batch after it may start meanwhile)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived[partner].wait(), 10)
                if arrived[partner].is_set():
                    side_by_side.add(server)

    admin.node.on_command = on_command
    admin.node.delay = 0.05
    # batches: [S0, S1], [S2, S3], [S4]; then the same with a failure in the second batch
    req = task("t-batches", [item(n, "start") for n in names], eachNum=2)
    assert await admin.proxy.addTaskReq(req) == 0
    rsp = await finished(admin, "t-batches")
    assert statuses(rsp) == [SUCCESS] * 5 and rsp.status == T_SUCCESS
    # S2 started only once both of the first batch had started, the slow S0 too
    assert {"S0", "S1"} <= set(started_before["S2"])
    assert {"S0", "S1", "S2", "S3"} <= set(started_before["S4"])
    assert side_by_side == {"S0", "S1"} and admin.node.running_max <= 2

    admin.node.states.clear()
    items = [item("S0", "stop"), item("Bad", "start", node="10.9.9.9"), item("S1", "stop")]
    items.append(item("S2", "stop"))
    assert await admin.proxy.addTaskReq(task("t-batch-fail", items, eachNum=2)) == 0
    rsp = await finished(admin, "t-batch-fail")
    # the failed batch ends (its other item ran), the batch after it is cancelled
    assert statuses(rsp) == [SUCCESS, FAILED, CANCEL, CANCEL]
    assert rsp.taskItemRsp[2].startTime == ""
    assert ("Demo", "S1") not in admin.node.called("stopServer")


async def test_each_num_of_one_or_none_keeps_a_parallel_task_parallel(admin: Harness) -> None:
    """What TarsWeb sends for a common task: eachNum 1 (or 0 when unset), serial or not."""
    for name in ("A", "B", "C"):
        await admin.deploy(server=name)
    await admin.deploy(server="Bad", node="10.9.9.9")
    items = [item("Bad", "start", node="10.9.9.9"), item("A", "start"), item("B", "start")]
    for no, each in (("t-each1", 1), ("t-each0", 0)):
        assert await admin.proxy.addTaskReq(task(no, items, eachNum=each)) == 0
        # parallel: a failure cancels nothing
        assert statuses(await finished(admin, no)) == [FAILED, SUCCESS, SUCCESS]
    # serial with a batch size is serial (TarsWeb's publish sends serial=true, eachnum=1)
    items = [item("A", "stop"), item("Bad", "start", node="10.9.9.9"), item("C", "start")]
    assert await admin.proxy.addTaskReq(task("t-ser", items, serial=True, eachNum=3)) == 0
    assert statuses(await finished(admin, "t-ser")) == [SUCCESS, FAILED, CANCEL]


async def test_elegant_task_closes_traffic_around_each_batch(admin: Harness) -> None:
    other = ScriptedNode()
    await admin.connect_node("10.0.0.8", other)
    async with (
        serve(QueryF.QueryFServant(), "Demo.Hello.HelloObj") as one,
        serve(QueryF.QueryFServant(), "Demo.Hello.HelloObj") as two,
    ):
        # the instances' servants answer tars_ping: the task waits for that before it opens
        # their traffic again
        await admin.deploy(node=NODE, host="127.0.0.1", port=_port_of(one))
        await admin.deploy(node="10.0.0.8", host="127.0.0.1", port=_port_of(two))
        seen: list[tuple[str, str, dict[str, str]]] = []

        async def flows() -> dict[str, str]:
            return {r.node_name: r.flow_state for r in await admin.store.servers.list("Demo")}

        def watch(node: str) -> Any:
            async def on_command(func: str, args: Any) -> None:
                seen.append((node, func, await flows()))

            return on_command

        admin.node.on_command = watch(NODE)
        other.on_command = watch("10.0.0.8")
        items = [item("Hello", "restart"), item("Hello", "restart", node="10.0.0.8")]
        req = task("t-elegant", items, isElegant=True, eachNum=1)
        assert await admin.proxy.addTaskReq(req) == 0
        rsp = await finished(admin, "t-elegant")
    assert statuses(rsp) == [SUCCESS, SUCCESS], [i.executeLog for i in rsp.taskItemRsp]
    # while one node restarts, its traffic is off and the other node's is on; it is asked
    # whether the restarted instance is Active before its traffic opens
    assert [(n, f) for n, f, _ in seen] == [
        (NODE, "stopServer"),
        (NODE, "startServer"),
        (NODE, "getStateInfo"),
        ("10.0.0.8", "stopServer"),
        ("10.0.0.8", "startServer"),
        ("10.0.0.8", "getStateInfo"),
    ]
    assert seen[0][2] == seen[2][2] == {NODE: "inactive", "10.0.0.8": "active"}
    assert seen[3][2] == seen[5][2] == {NODE: "active", "10.0.0.8": "inactive"}
    assert await flows() == {NODE: "active", "10.0.0.8": "active"}
    assert "answers (pid 4001)" in rsp.taskItemRsp[0].executeLog
    assert rsp.taskItemRsp[0].executeLog.endswith("traffic open again")


async def test_a_lossless_instance_that_does_not_answer_keeps_its_traffic_off(
    admin: Harness,
) -> None:
    other = ScriptedNode()
    await admin.connect_node("10.0.0.8", other)
    # nothing listens on the first instance's port: restarted, it never answers
    await admin.deploy(node=NODE, host="127.0.0.1", port=free_port())
    await admin.deploy(node="10.0.0.8", host="127.0.0.1", port=free_port())
    items = [item("Hello", "restart"), item("Hello", "restart", node="10.0.0.8")]
    assert await admin.proxy.addTaskReq(task("t-mute", items, isElegant=True, eachNum=1)) == 0
    rsp = await finished(admin, "t-mute")
    assert statuses(rsp) == [FAILED, CANCEL]
    text = rsp.taskItemRsp[0].executeLog
    assert "did not answer within 1 s" in text and "tars_ping" in text
    assert "its traffic stays off" in text
    assert "its traffic stays off" in rsp.executeLog  # the task's log says it too
    flows = {r.node_name: r.flow_state for r in await admin.store.servers.list("Demo")}
    assert flows == {NODE: "inactive", "10.0.0.8": "active"}
    assert other.called("stopServer") == []  # the next batch was not touched


async def test_a_failed_lossless_patch_gives_the_old_version_its_traffic_back(
    admin: Harness, tmp_path: Path
) -> None:
    package = tmp_path / "Hello.tgz"
    package.write_bytes(b"pkg")
    admin.node.patch_succeeds = False
    admin.node.states[("Demo", "Hello")] = (Active, 321)  # the old version runs
    async with serve(QueryF.QueryFServant(), "Demo.Hello.HelloObj") as old:
        await admin.deploy(node=NODE, host="127.0.0.1", port=_port_of(old))
        await admin.deploy(server="Other")
        items = [item("Hello", "patch_tars", filepath=str(package)), item("Other", "restart")]
        assert await admin.proxy.addTaskReq(task("t-pf", items, isElegant=True, eachNum=1)) == 0
        rsp = await finished(admin, "t-pf")
    assert statuses(rsp) == [FAILED, CANCEL]
    text = rsp.taskItemRsp[0].executeLog
    assert "md5 mismatch" in text and "answers (pid 321)" in text, text
    assert admin.node.called("stopServer") == []
    flows = {r.server_name: r.flow_state for r in await admin.store.servers.list("Demo")}
    assert flows == {"Hello": "active", "Other": "active"}


def _port_of(served: Any) -> int:
    return int(served.endpoint.split(" -p ")[1].split()[0])


async def test_a_newer_elegant_task_cancels_what_the_older_has_not_started(
    admin: Harness,
) -> None:
    async with serve(QueryF.QueryFServant(), "Demo.Hello.HelloObj") as served:
        await admin.deploy(server="Hello", host="127.0.0.1", port=_port_of(served))
        admin.node.delay = 0.3
        first = [item("Hello", "restart"), item("Hello", "stop")]
        assert await admin.proxy.addTaskReq(task("t-old", first, isElegant=True, eachNum=1)) == 0
        await eventually(lambda: admin.node.calls, "the first call to the node")
        # a common task does not cancel it
        assert await admin.proxy.addTaskReq(task("t-common", [item("Hello", "reboot")])) == 0
        second = task("t-new", [item("Hello", "start")], isElegant=True, eachNum=1)
        assert await admin.proxy.addTaskReq(second) == 0
        old = await finished(admin, "t-old")
        assert statuses(old) == [SUCCESS, CANCEL]
        assert statuses(await finished(admin, "t-new")) == [SUCCESS]


async def test_unknown_command_fails_the_item(admin: Harness) -> None:
    assert await admin.proxy.addTaskReq(task("t-bad", [item("Hello", "reboot")])) == 0
    rsp = await finished(admin, "t-bad")
    assert statuses(rsp) == [FAILED]
    assert rsp.taskItemRsp[0].executeLog == "command not support!"


async def test_a_crashing_item_fails_alone(admin: Harness, monkeypatch: Any) -> None:
    await admin.deploy(server="A")
    await admin.deploy(server="B")
    real_start = admin.registry.lifecycle.start

    async def start(app: str, server: str, node: str) -> Any:
        if server == "A":
            raise RuntimeError("disk on fire")
        return await real_start(app, server, node)

    monkeypatch.setattr(admin.registry.lifecycle, "start", start)
    assert (
        await admin.proxy.addTaskReq(task("t-crash", [item("A", "start"), item("B", "start")])) == 0
    )
    rsp = await finished(admin, "t-crash")
    assert statuses(rsp) == [FAILED, SUCCESS]
    assert "internal error: RuntimeError: disk on fire" in rsp.taskItemRsp[0].executeLog
    # the engine goes on
    assert await admin.proxy.addTaskReq(task("t-after", [item("B", "stop")])) == 0
    assert statuses(await finished(admin, "t-after")) == [SUCCESS]


async def test_every_task_is_stored_and_read_back_by_a_fresh_admin_registry(
    admin: Harness,
) -> None:
    await admin.deploy(server="A")
    req = task("t-stored", [item("A", "start"), item("A", "stop")], serial=True)
    assert await admin.proxy.addTaskReq(req) == 0
    live = await finished(admin, "t-stored")
    async with admin.store.connect() as conn:
        assert (
            await conn.scalar(select(t_task.c.user_name).where(t_task.c.task_no == "t-stored"))
            == "alice"
        )
        rows = (
            await conn.execute(
                select(t_task_item.c.command, t_task_item.c.status, t_task_item.c.log)
                .where(t_task_item.c.task_no == "t-stored")
                .order_by(t_task_item.c.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("start", SUCCESS, "Demo.A started"),
        ("stop", SUCCESS, "Demo.A stopped"),
    ]
    fresh = AdminRegistry(admin.store, NodeChannels())
    assert fresh.tasks.get("t-stored") is None  # not in its memory...
    ret, stored = await fresh.servant.getTaskRsp("t-stored")  # ...but in the database
    assert ret == 0 and stored.status == T_SUCCESS and stored.serial
    assert [(i.req.command, i.status, i.executeLog) for i in stored.taskItemRsp] == [
        (i.req.command, i.status, i.executeLog) for i in live.taskItemRsp
    ]
    assert [i.startTime for i in stored.taskItemRsp] == [i.startTime for i in live.taskItemRsp]
    assert stored.createTime == live.createTime
    ret, _ = await fresh.servant.getTaskRsp("t-nope")
    assert ret == -1


async def test_expired_tasks_are_read_from_the_database(admin: Harness) -> None:
    await admin.deploy(server="A")
    assert await admin.proxy.addTaskReq(task("t-exp", [item("A", "start")])) == 0
    await finished(admin, "t-exp")
    engine = admin.registry.tasks
    # its items are done before its runner is (it still writes the last of them)
    await eventually(lambda: engine.tasks["t-exp"].finished, "t-exp's runner to end")
    assert engine.sweep(now=0.0) == []  # not yet
    assert engine.sweep(now=1e12) == ["t-exp"]
    ret, rsp = await admin.proxy.getTaskRsp("t-exp")
    assert ret == 0 and statuses(rsp) == [SUCCESS]


async def test_task_history_newest_first(admin: Harness, clock: Any) -> None:
    await admin.deploy(server="A")
    for no in ("t-h1", "t-h2"):
        assert await admin.proxy.addTaskReq(task(no, [item("A", "restart")])) == 0
        await finished(admin, no)
        clock.advance(60)
    assert await admin.proxy.addTaskReq(task("t-h3", [item("A", "stop")])) == 0
    await finished(admin, "t-h3")
    ret, history = await admin.proxy.getTaskHistory("Demo", "A", "restart")
    assert ret == 0
    assert [t.taskNo for t in history] == ["t-h2", "t-h1"]
    assert all(t.status == T_SUCCESS and t.userName == "alice" for t in history)
    assert await admin.proxy.getTaskHistory("Demo", "Nope", "restart") == (0, [])


async def test_set_task_item_info(admin: Harness) -> None:
    assert await admin.proxy.addTaskReq(task("t-info", [item("X", "reboot")])) == 0
    await finished(admin, "t-info")
    info = {"status": "3", "log": "fixed by hand", "end_time": "2024-05-01 10:00:00"}
    assert await admin.proxy.setTaskItemInfo("X-reboot-10.0.0.7", info) == 0
    ret, rsp = await admin.proxy.getTaskRsp("t-info")
    assert ret == 0 and statuses(rsp) == [SUCCESS]
    assert rsp.taskItemRsp[0].executeLog == "fixed by hand"
    async with admin.store.connect() as conn:
        status, log, end = (
            await conn.execute(
                select(t_task_item.c.status, t_task_item.c.log, t_task_item.c.end_time).where(
                    t_task_item.c.item_no == "X-reboot-10.0.0.7"
                )
            )
        ).one()
    assert (status, log, str(end)) == (3, "fixed by hand", "2024-05-01 10:00:00")
    assert await admin.proxy.setTaskItemInfo("X-reboot-10.0.0.7", {"status": "9"}) == 1007
    assert await admin.proxy.setTaskItemInfo("X-reboot-10.0.0.7", {"end_time": "soon"}) == 1007


async def test_bad_task_requests(admin: Harness) -> None:
    assert await admin.proxy.addTaskReq(task("t-empty", [])) == 1007
    assert await admin.proxy.addTaskReq(task("", [item("A", "start")])) == 1007
    assert await admin.proxy.addTaskReq(task("t-dup", [item("A", "reboot")])) == 0
    assert await admin.proxy.addTaskReq(task("t-dup", [item("A", "reboot")])) == 1005
    too_long = item("A" * 60, "start")
    assert await admin.proxy.addTaskReq(task("t-long", [too_long])) == 1007


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


async def test_patch_task_from_a_local_package(admin: Harness, tmp_path: Path) -> None:
    await admin.deploy(server="Hello")
    package = tmp_path / "Hello.tgz"
    package.write_bytes(b"not really a tarball")
    items = [item("Hello", "patch_tars", filepath=str(package))]
    assert await admin.proxy.addTaskReq(task("t-patch", items, serial=True)) == 0
    rsp = await finished(admin, "t-patch")
    assert statuses(rsp) == [SUCCESS], rsp.taskItemRsp[0].executeLog
    assert rsp.taskItemRsp[0].percent == 100
    ((req,),) = admin.node.called("patchPro")
    assert req.filepath == str(package) and req.md5 == _md5(package)
    assert req.servertype == "tars_python"
    assert req.patchobj == admin.registry.settings.patch_obj  # the package store's object
    # patch_tars restarts the instance afterwards
    assert [f for f, _ in admin.node.calls][-2:] == ["stopServer", "startServer"]


async def test_standby_instances_are_patched_but_not_restarted(
    admin: Harness, tmp_path: Path
) -> None:
    await admin.deploy(server="Hello")
    package = tmp_path / "Hello.tgz"
    package.write_bytes(b"pkg")
    items = [item("Hello", "grace_patch_tars", filepath=str(package), bak_flag="1")]
    assert await admin.proxy.addTaskReq(task("t-bak", items)) == 0
    assert statuses(await finished(admin, "t-bak")) == [SUCCESS]
    assert admin.node.called("stopServer") == admin.node.called("notifyServer") == []


async def test_failed_patch(admin: Harness, tmp_path: Path) -> None:
    await admin.deploy(server="Hello")
    package = tmp_path / "Hello.tgz"
    package.write_bytes(b"pkg")
    admin.node.patch_succeeds = False
    items = [item("Hello", "patch_tars", filepath=str(package))]
    assert await admin.proxy.addTaskReq(task("t-pfail", items)) == 0
    rsp = await finished(admin, "t-pfail")
    assert statuses(rsp) == [FAILED] and "md5 mismatch" in rsp.taskItemRsp[0].executeLog
    assert admin.node.called("stopServer") == []


async def test_patch_by_package_id(admin: Harness) -> None:
    await admin.deploy(server="Hello")
    assert admin.patchobj is not None
    admin.patchobj.put("Demo", "Hello", "Demo.Hello_1.tgz", b"pkg")
    async with admin.store.begin() as conn:
        result = await conn.execute(
            insert(t_server_patchs).values(
                server="Demo.Hello", tgz="Demo.Hello_1.tgz", md5="0" * 32, group_id=""
            )
        )
        patch_id = str(result.inserted_primary_key[0])
    items = [
        item("Hello", "grace_patch_tars", patch_id=patch_id),
        item("Hello", "patch_tars", patch_id="999999"),
    ]
    # one unknown package fails the whole task before anything runs
    assert await admin.proxy.addTaskReq(task("t-missing", items)) == 0
    rsp = await finished(admin, "t-missing")
    assert statuses(rsp) == [FAILED, FAILED]
    assert "patchId:999999" in rsp.taskItemRsp[1].executeLog
    assert admin.node.called("patchPro") == []
    assert await admin.proxy.addTaskReq(task("t-byid", items[:1])) == 0
    rsp = await finished(admin, "t-byid")
    assert statuses(rsp) == [SUCCESS], rsp.taskItemRsp[0].executeLog
    ((req,),) = admin.node.called("patchPro")
    assert (req.version, req.md5) == (patch_id, "0" * 32)
    # staged on the package store for the nodes to download, by each task's prepare step
    assert admin.patchobj.staged == [("Demo", "Hello", "Demo.Hello_1.tgz")] * 2
    assert admin.node.called("notifyServer") == [("Demo", "Hello", "tars.gracerestart")]
    async with admin.store.connect() as conn:
        publish, user = (
            await conn.execute(
                select(t_server_patchs.c.publish, t_server_patchs.c.publish_user).where(
                    t_server_patchs.c.id == int(patch_id)
                )
            )
        ).one()
    assert (publish, user) == (1, "alice")


async def test_batch_patch_and_patch_percent_rpcs(admin: Harness, tmp_path: Path) -> None:
    await admin.deploy(server="Hello")
    package = tmp_path / "Hello.tgz"
    package.write_bytes(b"pkg")
    req = NodeDescriptor.PatchRequest(
        appname="Demo", servername="Hello", nodename=NODE, user="bob", filepath=str(package)
    )
    assert await admin.proxy.batchPatch(req) == (0, "patch queued")
    ret, info = await admin.proxy.getPatchPercent("Demo", "Hello", NODE)
    assert ret == 0 and info.iPercent == 50 and info.bPatching
    ret, info = await admin.proxy.getPatchPercent("Demo", "Hello", NODE)
    assert ret == 0 and info.iPercent == 100 and info.bSucc
    ret, result = await admin.proxy.batchPatch(req.replace(filepath="", version="424242"))
    assert ret == 1009 and "424242" in result
    ret, info = await admin.proxy.getPatchPercent("Demo", "Hello", "10.9.9.9")
    assert ret == 1001 and "not connected" in info.sResult


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([NOT_START, NOT_START], 0),
        ([PREPARE], 1),
        ([RUNNING, PAUSE_FLOW], 2),
        ([SUCCESS, SUCCESS], 3),
        ([FAILED], 4),
        ([CANCEL, CANCEL], 5),
        ([SUCCESS, FAILED], 6),
        ([RUNNING, SUCCESS], 6),
    ],
)
def test_task_status_is_derived_from_its_items(items: list[int], expected: int) -> None:
    assert derive_status(items) == expected
