"""Issue 9 §2 at deploy: the admin registry refuses paths that would lead a node out of its own
directories, with the reason (1007), before anything is stored."""

from __future__ import annotations

import pytest
from admin_support import NODE, Harness
from test_inventory import conf as inventory_conf

from tarsus.framework.admin import AdminError, ErrCode

DATA = "/srv/tars/node"


def conf(**fields: object) -> object:
    """test_inventory's ServerConf, without its exePath unless given."""
    return inventory_conf(**{"exePath": "", **fields})


async def register(admin: Harness, data_dir: str) -> None:
    await admin.store.nodes.register(
        NODE, f"tars.tarsnode.NodeObj@tcp -h {NODE} -p 19385", NODE, 19385, data_dir,
        0.1, 0.2, 0.3, "3.0.17",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"basePath": "/home/x"}, f"basePath /home/x is outside the node's directories ({DATA})"),
        ({"basePath": DATA}, f"basePath {DATA} is outside"),
        ({"exePath": "/bin/sh"}, "exePath /bin/sh is outside"),
        ({"basePath": f"{DATA}/data/../../../etc"}, "must not contain '..'"),
        ({"exePath": "../../bin/sh"}, "must not contain '..'"),
        ({"startScript": "/tmp/e"}, "startScript /tmp/e must lie inside the server's package"),
        (
            {"basePath": f"{DATA}/data/Demo.Conf", "startScript": "/usr/bin/env"},
            f"must lie inside the server's package ({DATA}/data/Demo.Conf/bin)",
        ),
        ({"stopScript": "x\0y"}, "contains a NUL character"),
    ],
)  # fmt: skip
async def test_paths_outside_the_node_are_refused_with_the_reason(
    admin: Harness, fields: dict[str, object], reason: str
) -> None:
    await register(admin, DATA)
    assert await admin.proxy.insertServerConf(conf(**fields), False) == 1007
    with pytest.raises(AdminError) as err:
        await admin.registry.inventory.insert_server_conf(conf(**fields), False)
    assert err.value.code == ErrCode.EM_TARS_PARAMETER_ERR and reason in err.value.message
    assert await admin.store.servers.get("Demo", "Conf", NODE) is None


async def test_paths_inside_the_node_are_stored(admin: Harness) -> None:
    await register(admin, DATA)
    good = conf(
        basePath=f"{DATA}/data/Demo.Conf/",
        exePath=f"{DATA}/data/Demo.Conf/bin/Conf",
        startScript="start.sh",
        stopScript=f"{DATA}/data/Demo.Conf/bin/stop.sh",
    )
    assert await admin.proxy.insertServerConf(good, False) == 0
    row = await admin.store.servers.get("Demo", "Conf", NODE)
    assert row is not None and row.start_script_path == "start.sh"


async def test_a_node_that_never_registered_gets_the_checks_that_need_no_data_dir(
    admin: Harness,
) -> None:
    assert await admin.proxy.insertServerConf(conf(exePath="/opt/Conf"), False) == 0
    assert await admin.proxy.insertServerConf(conf(basePath="/opt/../etc"), True) == 1007
    assert (
        await admin.proxy.insertServerConf(conf(startScript="/tmp/x.sh", exePath="/opt/P"), True)
        == 1007
    )
