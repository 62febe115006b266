"""Lifecycle RPCs over a real socket: what each writes to t_server_conf, what it pushes to the
node, and the return codes of every failure (docs/admin.md)."""

from __future__ import annotations

from admin_support import NODE, Active, Harness
from sqlalchemy import update

from tarsus.framework.admin import ErrCode
from tarsus.protocol.gen import QueryF, TarsusAdmin
from tarsus.store.schema import t_server_conf
from tarsus.testing import eventually, serve


async def test_start_sets_setting_state_active_and_starts_on_the_node(admin: Harness) -> None:
    await admin.deploy()
    ret, result = await admin.proxy.startServer("Demo", "Hello", NODE)
    assert (ret, result) == (0, "Demo.Hello started")
    row = await admin.store.servers.get("Demo", "Hello", NODE)
    assert row is not None and row.setting_state == "active"
    assert admin.node.called("startServer") == [("Demo", "Hello")]


async def test_stop_sets_setting_state_inactive_and_stops_on_the_node(admin: Harness) -> None:
    await admin.deploy()
    await admin.proxy.startServer("Demo", "Hello", NODE)
    ret, result = await admin.proxy.stopServer("Demo", "Hello", NODE)
    assert (ret, result) == (0, "Demo.Hello stopped")
    row = await admin.store.servers.get("Demo", "Hello", NODE)
    assert row is not None and row.setting_state == "inactive"


async def test_restart_stops_then_starts_and_leaves_the_server_active(admin: Harness) -> None:
    await admin.deploy()
    ret, result = await admin.proxy.restartServer("Demo", "Hello", NODE)
    assert (ret, result) == (0, "Demo.Hello started")
    assert [f for f, _ in admin.node.calls] == ["stopServer", "startServer"]
    row = await admin.store.servers.get("Demo", "Hello", NODE)
    assert row is not None and row.setting_state == "active"


async def test_restart_does_not_start_when_the_stop_failed(admin: Harness) -> None:
    await admin.deploy()
    admin.node.fail["stopServer"] = (1004, "server is patching")
    ret, result = await admin.proxy.restartServer("Demo", "Hello", NODE)
    assert ret == 1004 and "server is patching" in result
    assert admin.node.called("startServer") == []


async def test_node_failure_code_and_text_come_back(admin: Harness) -> None:
    await admin.deploy()
    admin.node.fail["startServer"] = (-1, "exe not found: /bin/Hello")
    assert await admin.proxy.startServer("Demo", "Hello", NODE) == (
        -1,
        "exe not found: /bin/Hello",
    )


async def test_node_not_connected_is_1001(admin: Harness) -> None:
    await admin.deploy(node="10.9.9.9")
    ret, result = await admin.proxy.startServer("Demo", "Hello", "10.9.9.9")
    assert ret == ErrCode.EM_TARS_NODE_NOT_REGISTRY_ERR == 1001
    assert "10.9.9.9" in result and "not connected" in result
    # the desired state was recorded all the same: the node starts it when it comes back
    row = await admin.store.servers.get("Demo", "Hello", "10.9.9.9")
    assert row is not None and row.setting_state == "active"


async def test_node_that_does_not_answer_is_1002(admin: Harness) -> None:
    await admin.deploy()
    admin.node.hang.add("stopServer")
    ret, result = await admin.proxy.stopServer("Demo", "Hello", NODE)
    assert ret == ErrCode.EM_TARS_CALL_NODE_TIMEOUT_ERR == 1002
    assert "did not answer" in result


async def test_instance_not_deployed_is_1003(admin: Harness) -> None:
    for call in (admin.proxy.startServer, admin.proxy.stopServer, admin.proxy.restartServer):
        ret, result = await call("Demo", "Nope", NODE)
        assert ret == ErrCode.EM_TARS_LOAD_SERVICE_DESC_ERR == 1003
        assert "Demo.Nope" in result and "not deployed" in result
    assert admin.node.calls == []


async def test_the_admin_registry_does_not_stop_itself(admin: Harness) -> None:
    ret, result = await admin.proxy.stopServer("tars", "tarsAdminRegistry", NODE)
    assert ret == ErrCode.EM_TARS_CAN_NOT_EXECUTE == 1011
    assert "can not stop tars.tarsAdminRegistry" in result


async def test_notify_returns_what_the_server_answered(admin: Harness) -> None:
    ret, result = await admin.proxy.notifyServer("Demo", "Hello", NODE, "tars.viewstatus")
    assert (ret, result) == (0, "[notify ok] tars.viewstatus")
    assert admin.node.called("notifyServer") == [("Demo", "Hello", "tars.viewstatus")]


async def test_load_and_destroy(admin: Harness) -> None:
    await admin.deploy()
    assert await admin.proxy.loadServer("Demo", "Hello", NODE) == (0, "loaded")
    await admin.proxy.startServer("Demo", "Hello", NODE)
    assert await admin.proxy.destroyServer("Demo", "Hello", NODE) == (0, "destroyed")
    row = await admin.store.servers.get("Demo", "Hello", NODE)
    assert row is not None and row.setting_state == "inactive"


async def test_server_state_joins_the_registry_and_the_node(admin: Harness) -> None:
    await admin.deploy()
    await admin.proxy.startServer("Demo", "Hello", NODE)
    await admin.store.servers.update_present(NODE, "Demo", "Hello", "active", 4001)
    ret, state, result = await admin.proxy.getServerState("Demo", "Hello", NODE)
    assert ret == 0 and result == "state ok"
    assert state.settingStateInReg == "active"
    assert state.presentStateInReg == "active"
    assert state.presentStateInNode == "Active"
    assert state.processId == 4001


async def test_server_state_of_an_unknown_instance_is_1003(admin: Harness) -> None:
    ret, _state, result = await admin.proxy.getServerState("Demo", "Nope", NODE)
    assert ret == 1003 and "no config" in result


async def test_undeploy_is_refused_while_the_instance_runs(admin: Harness) -> None:
    await admin.deploy()
    await admin.proxy.startServer("Demo", "Hello", NODE)
    ret, log = await admin.proxy.undeploy("Demo", "Hello", NODE, "alice")
    assert ret == ErrCode.EM_TARS_SERVICE_STATE_ERR == 1004
    assert "stop it first" in log and "Active" in log
    assert await admin.store.servers.get("Demo", "Hello", NODE) is not None
    assert admin.node.called("stopServer") == []  # upstream would have stopped it


async def test_undeploy_of_a_stopped_instance_deletes_its_rows(admin: Harness) -> None:
    await admin.deploy()
    ret, log = await admin.proxy.undeploy("Demo", "Hello", NODE, "alice")
    assert ret == 0, log
    assert await admin.store.servers.get("Demo", "Hello", NODE) is None
    assert await admin.store.servers.adapters("Demo", "Hello", NODE) == []


async def test_undeploy_with_the_node_gone_trusts_the_registry(admin: Harness) -> None:
    await admin.deploy(node="10.9.9.9")
    await admin.store.servers.update_present("10.9.9.9", "Demo", "Hello", "active", 77)
    ret, log = await admin.proxy.undeploy("Demo", "Hello", "10.9.9.9", "alice")
    assert ret == 1004 and "last saw it active" in log
    await admin.store.servers.update_present("10.9.9.9", "Demo", "Hello", "inactive", 0)
    ret, log = await admin.proxy.undeploy("Demo", "Hello", "10.9.9.9", "alice")
    assert ret == 0, log


async def test_uninstall_needs_a_stopped_instance_then_destroys_it(admin: Harness) -> None:
    await admin.deploy()
    await admin.proxy.startServer("Demo", "Hello", NODE)
    ret, result = await admin.proxy.uninstallServer("Demo", "Hello", NODE)
    assert ret == 1004 and "Active" in result
    await admin.proxy.stopServer("Demo", "Hello", NODE)
    ret, result = await admin.proxy.uninstallServer("Demo", "Hello", NODE)
    assert ret == 0, result
    assert admin.node.called("destroyServer") == [("Demo", "Hello")]
    assert await admin.store.servers.get("Demo", "Hello", NODE) is None


async def test_flow_state(admin: Harness) -> None:
    await admin.deploy()
    assert await admin.proxy.updateServerFlowState("Demo", "Hello", [NODE], False) == 0
    row = await admin.store.servers.get("Demo", "Hello", NODE)
    assert row is not None and row.flow_state == "inactive"
    assert await admin.proxy.updateServerFlowState("Demo", "Hello", [NODE], True) == 0
    row = await admin.store.servers.get("Demo", "Hello", NODE)
    assert row is not None and row.flow_state == "active"
    assert await admin.proxy.updateServerFlowState("Demo", "Hello", [], True) == 1007


async def test_node_tools(admin: Harness) -> None:
    assert await admin.proxy.pingNode(NODE) == (True, "ping succ")
    ok, result = await admin.proxy.pingNode("10.9.9.9")
    assert not ok and "not connected" in result
    assert await admin.proxy.getLogFileList("Demo", "Hello", NODE) == (
        0,
        ["Demo.Hello.log", "stdout.log"],
    )
    assert await admin.proxy.getLogData("Demo", "Hello", NODE, "a.log", "tail -2") == (
        0,
        "a.log: tail -2\nline 1\n",
    )
    assert await admin.proxy.getNodeLoad("Demo", "Hello", NODE, 42) == (0, "load of 42")
    ret, files = await admin.proxy.getLogFileList("Demo", "Hello", "remote")
    assert ret == 1007 and files == []
    assert await admin.proxy.shutdownNode(NODE) == (0, "shutting down")
    await eventually(lambda: "10.0.0.7" in admin.channels.heartbeats(), "a heartbeat from the node")
    ret, beats = await admin.proxy.getNodeList([NODE, "10.9.9.9"])
    assert ret == 0 and beats[NODE] != "" and beats["10.9.9.9"] == ""


async def test_tars_dns_servers_are_not_asked_of_a_node(admin: Harness) -> None:
    """Upstream's special case: a ``tars_dns`` instance has no process; its state is the
    database's. (Our store does not deploy that type, so the row is changed by hand, as an
    upstream tool would have written it.)"""
    await admin.deploy(node="10.9.9.9")
    async with admin.store.begin() as conn:
        await conn.execute(update(t_server_conf).values(server_type="tars_dns"))
    assert await admin.proxy.startServer("Demo", "Hello", "10.9.9.9") == (0, "")
    row = await admin.store.servers.get("Demo", "Hello", "10.9.9.9")
    assert row is not None and (row.setting_state, row.present_state) == ("active", "active")
    ret, state, _ = await admin.proxy.getServerState("Demo", "Hello", "10.9.9.9")
    assert ret == 0 and state.presentStateInNode == "active"
    assert await admin.proxy.stopServer("Demo", "Hello", "10.9.9.9") == (0, "")
    row = await admin.store.servers.get("Demo", "Hello", "10.9.9.9")
    assert row is not None and (row.setting_state, row.present_state) == ("inactive", "inactive")


async def test_check_server_answers_says_what_is_missing(admin: Harness) -> None:
    """AdminExt.checkServerAnswers: the lossless task's check, asked once (a canary polls it)."""
    ext = admin.comm.string_to_proxy(
        TarsusAdmin.AdminExtProxy, f"tars.tarsAdminRegistry.AdminRegObj@{admin.endpoint}"
    )
    ret, result = await ext.checkServerAnswers("Demo", "Nope", NODE)
    assert ret == ErrCode.EM_TARS_LOAD_SERVICE_DESC_ERR and "not deployed" in result

    admin.node.states[("Demo", "Hello")] = (Active, 321)
    async with serve(QueryF.QueryFServant(), "Demo.Hello.HelloObj") as running:
        port = int(running.endpoint.split(" -p ")[1].split()[0])
        await admin.deploy(node=NODE, host="127.0.0.1", port=port)
        assert await ext.checkServerAnswers("Demo", "Hello", NODE) == (
            0,
            f"'Demo.Hello_{NODE}' answers (pid 321)",
        )
    # Active on its node, but nothing listens on its servant's port any more
    ret, result = await ext.checkServerAnswers("Demo", "Hello", NODE)
    assert ret == ErrCode.EM_TARS_SERVICE_STATE_ERR
    assert "Demo.Hello.HelloObj" in result and "tars_ping" in result

    await admin.deploy(node="10.9.9.9")
    ret, result = await ext.checkServerAnswers("Demo", "Hello", "10.9.9.9")
    assert ret == ErrCode.EM_TARS_SERVICE_STATE_ERR and "not connected" in result
