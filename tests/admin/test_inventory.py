"""The database-only AdminReg methods over a real socket: inventory, templates with
inheritance, insertServerConf/insertAdapterConf validation, config files, framework health."""

from __future__ import annotations

import logging

import pytest
from admin_support import NODE, Harness
from sqlalchemy import insert

from tarsus.framework.admin import ADMIN_SERVANT, AdminError, ErrCode
from tarsus.protocol.gen import AdminReg
from tarsus.store import AdapterSpec, ServerSpec
from tarsus.store.schema import t_server_group_rule

PARENT = "<tars>\n<application>\na=1\nb=2\n</application>\n</tars>\n"
CHILD = "<tars>\n<application>\nb=3\nc=4\n</application>\n</tars>\n"


def conf(**fields: object) -> object:
    values: dict[str, object] = {
        "application": "Demo",
        "serverName": "Conf",
        "nodeName": NODE,
        "serverType": "tars_cpp",
        "profile": "tars.default",
        "exePath": "/usr/local/app/Demo.Conf/bin/Conf",
    }
    values.update(fields)
    return AdminReg.ServerConf(**values)


def adapter(**fields: object) -> object:
    values: dict[str, object] = {
        "adapterName": "Demo.Conf.ConfObjAdapter",
        "servant": "Demo.Conf.ConfObj",
        "endpoint": f"tcp -h {NODE} -p 20100 -t 60000",
    }
    values.update(fields)
    return AdminReg.AdapterConf(**values)


async def test_profile_template_with_inheritance(admin: Harness) -> None:
    await admin.store.templates.upsert("test.parent", "", PARENT)
    await admin.store.templates.upsert("test.child", "test.parent", CHILD)
    ret, text, desc = await admin.proxy.getProfileTemplate("test.child")
    assert ret == 0
    assert desc == "(test.parent:OK)(test.child:OK)"
    lines = {line.strip() for line in text.splitlines()}
    assert {"a=1", "b=3", "c=4"} <= lines and "b=2" not in lines


async def test_missing_profile_template(admin: Harness) -> None:
    ret, text, desc = await admin.proxy.getProfileTemplate("test.nope")
    assert (ret, text, desc) == (-1, "", "(test.nope:template not found)")


async def test_server_profile_is_its_template_under_its_private_profile(admin: Harness) -> None:
    await admin.store.templates.upsert("test.parent", "", PARENT)
    await admin.store.templates.upsert("test.child", "test.parent", CHILD)
    private = "<tars>\n<application>\nc=5\n</application>\n</tars>\n"
    await admin.registry.deploy(
        ServerSpec("Demo", "Hello", NODE, "tars_cpp", "test.child", profile=private), []
    )
    ret, text, _ = await admin.proxy.getServerProfileTemplate("Demo", "Hello", NODE)
    assert ret == 0
    lines = {line.strip() for line in text.splitlines()}
    assert {"a=1", "b=3", "c=5"} <= lines
    ret, text, desc = await admin.proxy.getServerProfileTemplate("Demo", "Nope", NODE)
    assert ret == 1003 and text == "" and "not deployed" in desc


async def test_insert_server_conf_then_adapters(admin: Harness) -> None:
    assert await admin.proxy.insertServerConf(conf(), False) == 0
    row = await admin.store.servers.get("Demo", "Conf", NODE)
    assert row is not None
    # as upstream: the profile field names the template; settingState defaults to active
    assert (row.template_name, row.setting_state, row.server_type) == (
        "tars.default",
        "active",
        "tars_cpp",
    )
    assert await admin.proxy.insertAdapterConf("Demo", "Conf", NODE, adapter(), False) == 0
    second = adapter(
        adapterName="Demo.Conf.AdminObjAdapter",
        servant="Demo.Conf.AdminObj",
        endpoint=f"tcp -h {NODE} -p 20101 -t 60000",
    )
    assert await admin.proxy.insertAdapterConf("Demo", "Conf", NODE, second, False) == 0
    names = [a.adapter_name for a in await admin.store.servers.adapters("Demo", "Conf", NODE)]
    assert names == ["Demo.Conf.AdminObjAdapter", "Demo.Conf.ConfObjAdapter"]
    # an existing adapter is replaced only when asked
    moved = adapter(endpoint=f"tcp -h {NODE} -p 20102 -t 60000")
    assert await admin.proxy.insertAdapterConf("Demo", "Conf", NODE, moved, False) == 1007
    assert await admin.proxy.insertAdapterConf("Demo", "Conf", NODE, moved, True) == 0
    adapters = {a.adapter_name: a for a in await admin.store.servers.adapters("Demo", "Conf", NODE)}
    assert adapters["Demo.Conf.ConfObjAdapter"].endpoint.endswith("-p 20102 -t 60000")
    # replacing the server row keeps its servants
    assert await admin.proxy.insertServerConf(conf(exePath="/opt/Conf"), True) == 0
    assert len(await admin.store.servers.adapters("Demo", "Conf", NODE)) == 2
    row = await admin.store.servers.get("Demo", "Conf", NODE)
    assert row is not None and row.exe_path == "/opt/Conf"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"application": "De mo"}, "application 'De mo'"),
        ({"serverType": ""}, "serverType"),
        ({"serverType": "cobol"}, "server_type"),
        ({"profile": "no.such.template"}, "no.such.template"),
        ({"settingState": "paused"}, "settingState"),
    ],
)
async def test_bad_server_conf_is_1007_with_the_reason(
    admin: Harness, caplog: pytest.LogCaptureFixture, fields: dict[str, object], reason: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="tarsus.framework.admin"):
        assert await admin.proxy.insertServerConf(conf(**fields), False) == 1007
    assert reason in caplog.text
    # the reason is the same text the Python API raises
    with pytest.raises(AdminError) as err:
        await admin.registry.inventory.insert_server_conf(conf(**fields), False)
    assert err.value.code == ErrCode.EM_TARS_PARAMETER_ERR and reason in err.value.message


async def test_bad_adapter_conf_is_1007(admin: Harness) -> None:
    assert await admin.proxy.insertAdapterConf("Demo", "Conf", NODE, adapter(), False) == 1007
    assert await admin.proxy.insertServerConf(conf(), False) == 0
    bad_endpoint = adapter(endpoint="tcp -h")
    assert await admin.proxy.insertAdapterConf("Demo", "Conf", NODE, bad_endpoint, False) == 1007
    await admin.registry.deploy(
        ServerSpec("Demo", "Other", NODE),
        [AdapterSpec("Demo.Other.OtherObj", f"tcp -h {NODE} -p 20100 -t 60000")],
    )
    with pytest.raises(AdminError, match=r"already used by server Demo\.Other"):
        await admin.registry.inventory.insert_adapter_conf("Demo", "Conf", NODE, adapter(), False)


async def test_deploy_is_one_transaction(admin: Harness) -> None:
    """A bad servant leaves nothing behind."""
    with pytest.raises(AdminError) as err:
        await admin.registry.deploy(
            ServerSpec("Demo", "Hello", NODE),
            [
                AdapterSpec("Demo.Hello.AObj", f"tcp -h {NODE} -p 20001 -t 60000"),
                AdapterSpec("Demo.Hello.BObj", "not an endpoint"),
            ],
        )
    assert err.value.code == 1007 and "Demo.Hello.BObj" in err.value.message
    assert await admin.store.servers.get("Demo", "Hello", NODE) is None
    row = await admin.deploy()
    assert row.setting_state == "inactive" and row.present_state == "inactive"


async def test_config_files(admin: Harness) -> None:
    p = admin.proxy
    assert await p.insertConfigFile("Demo.Conf", "app.conf", "x=1", "", 2, False) == 0
    assert await p.insertConfigFile("Demo.Conf", "app.conf", "x=2", "", 2, False) == 1007
    assert await p.insertConfigFile("Demo.Conf", "app.conf", "x=2", "", 2, True) == 0
    ret, config_id = await p.getConfigFileId("Demo.Conf", "app.conf", "", 2)
    assert ret == 0 and config_id > 0
    assert await p.getConfigFileId("Demo.Conf", "nope.conf", "", 2) == (1007, 0)
    assert await p.insertHistoryConfigFile(config_id, "first", "x=1", False) == 0
    assert await p.insertHistoryConfigFile(config_id + 999, "x", "x=1", False) == 1007
    assert await p.insertConfigFile("Demo.Conf", "node.conf", "y=1", "", 3, False) == 1007
    assert await p.insertConfigFile("Demo.Conf", "node.conf", "y=1", NODE, 3, False) == 0
    assert await p.insertConfigFile("Demo.Conf", "x.conf", "y=1", "", 7, False) == 1007


async def test_inventory_reads(admin: Harness) -> None:
    await admin.deploy()
    await admin.deploy(server="World")
    await admin.deploy(app="Other", server="Hello", node="10.0.0.8")
    p = admin.proxy
    assert await p.getAllApplicationNames() == (["Demo", "Other"], "")
    ids, _ = await p.getAllServerIds()
    assert ["Demo.Hello_10.0.0.7", "inactive", "inactive", "tars_python"] in ids
    assert len(ids) == 3
    assert await p.hasServer("Demo", "World") == (0, True)
    assert await p.hasServer("Demo", "Nope") == (0, False)
    ret, tree = await p.getServerTree()
    assert ret == 0 and {(t.application, t.server_name) for t in tree} == {
        ("Demo", "Hello"),
        ("Demo", "World"),
        ("Other", "Hello"),
    }
    ret, rows = await p.getServerNameList([AdminReg.ApplicationServerName("Demo", "World")])
    assert ret == 0 and len(rows) == 1
    assert rows[0]["server_name"] == "World" and rows[0]["node_name"] == NODE
    assert rows[0]["posttime"] != "" and rows[0]["setting_state"] == "inactive"
    assert await p.getClientIp() == (0, "127.0.0.1")
    assert await p.getVersion() == (0, "3.0.17")


async def test_nodes(admin: Harness) -> None:
    await admin.store.nodes.register(
        "10.0.0.8", "tars.tarsnode.NodeObj@tcp -h 10.0.0.8 -p 19385", "10.0.0.8", 19385, "/d",
        0.1, 0.2, 0.3, "3.0.17",
    )  # fmt: skip
    assert await admin.proxy.getAllNodeNames() == (["10.0.0.8"], "")
    assert await admin.proxy.getNodeVesion("10.0.0.8") == (0, "3.0.17", "")
    ret, version, result = await admin.proxy.getNodeVesion("10.0.0.99")
    assert ret == -1 and version == "" and "10.0.0.99" in result


async def test_framework_servers_and_check_server(admin: Harness) -> None:
    await admin.registry.deploy(
        ServerSpec("tars", "tarsAdminRegistry", NODE, server_type="tars_cpp"),
        [AdapterSpec(ADMIN_SERVANT, admin.endpoint)],
    )
    ret, servers = await admin.proxy.getServers()
    assert ret == 0
    (fw,) = [s for s in servers if s.serverName == "tarsAdminRegistry"]
    assert fw.objName == f"{ADMIN_SERVANT}@{admin.endpoint}"
    assert await admin.proxy.checkServer(fw) == 0
    dead = AdminReg.FrameworkServer("tarsstat", NODE, "tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p 1")
    assert await admin.proxy.checkServer(dead) == -1
    assert await admin.proxy.checkServer(AdminReg.FrameworkServer("tarsnode", NODE, "")) == 0
    assert (
        await admin.proxy.checkServer(AdminReg.FrameworkServer("tarsnode", "10.9.9.9", "")) == 1001
    )


async def test_group_id(admin: Harness) -> None:
    async with admin.store.begin() as conn:
        await conn.execute(
            insert(t_server_group_rule),
            [
                {
                    "group_id": 1,
                    "ip_order": "allow_denny",
                    "allow_ip_rule": "10.1.*.*|10.2.0.1",
                    "denny_ip_rule": "",
                    "group_name": "sz",
                },
                {
                    "group_id": 2,
                    "ip_order": "denny_allow",
                    "allow_ip_rule": "10.*.*.*",
                    "denny_ip_rule": "10.3.0.*",
                    "group_name": "sh",
                },
            ],
        )
    assert await admin.proxy.getGroupId("10.1.5.6") == (1, 1, "")
    assert await admin.proxy.getGroupId("10.2.0.1") == (1, 1, "")
    assert await admin.proxy.getGroupId("10.4.0.1") == (2, 2, "")
    ret, gid, result = await admin.proxy.getGroupId("10.3.0.9")
    assert (ret, gid) == (-1, -1) and "10.3.0.9" in result


async def test_what_tarsus_does_not_do_says_so(admin: Harness) -> None:
    p = admin.proxy
    assert await p.hasAdminAuth("alice") == (-1, False)
    assert await p.hasDevAuth("Demo", "Hello", "alice") == (-1, False)
    assert await p.checkTicket("t") == (-1, "")
    ret, lines = await p.forceDockerLogin(NODE)
    assert ret == -1 and "not supported" in lines[0]
    assert await p.dockerPull("1") == -1
    assert await p.registerPlugin(AdminReg.PluginConf(name="x")) == -1
