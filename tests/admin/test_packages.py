"""The package store through the admin registry: AdminExt ``addPatchPackage``,
``listPatchPackages``, ``deletePatchPackage``, ``setDefaultPatchPackage`` (TarsusAdmin.tars),
AdminReg ``deletePatchFile`` / ``getPatchPackage``, and a publish's prepare step staging the
package on PatchObj (``preparePatchFile``) and pruning old ones.

A real AdminRegistry over the ``store`` fixture (SQLite and MariaDB), called over real
sockets. PatchObj is ``FakePatchObj`` (admin_support.py: Patch + PatchExt with its files in a
dict, on a real port) so that its answers can be made to fail; the real PatchObj with the
admin registry is tested in tests/framework."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from admin_support import NODE, FakePatchObj, Harness

from tarsus.framework.admin import ADMIN_SERVANT
from tarsus.protocol.gen import AdminReg, NodeDescriptor, TarsusAdmin
from tarsus.testing import eventually

NODE2 = "10.0.0.8"
SUCCESS, FAILED = 3, 4


@pytest.fixture
def ext(admin: Harness) -> Any:
    """An AdminExtProxy on the admin registry's object."""
    return admin.comm.string_to_proxy(
        TarsusAdmin.AdminExtProxy, f"{ADMIN_SERVANT}@{admin.endpoint}"
    )


@pytest.fixture
def fake(admin: Harness) -> FakePatchObj:
    """The admin registry's package store (a FakePatchObj)."""
    assert admin.patchobj is not None
    return admin.patchobj


@pytest.fixture
def admin_settings(admin_settings: Any) -> Any:
    """Upstream's least ``patchHistory``, so that retention shows with a dozen packages."""
    return dataclasses.replace(admin_settings, patch_history=10)


async def upload(ext: Any, fake: FakePatchObj, name: str, data: bytes, **kw: str) -> int:
    """Upload ``name`` to the fake PatchObj and record it; the patch id."""
    md5 = fake.put("Demo", "Hello", name, data)
    ret, patch_id, result = await ext.addPatchPackage(
        "Demo", "Hello", name, md5, kw.get("comment", ""), kw.get("user", "alice")
    )
    assert ret == 0, result
    return int(patch_id)


async def test_add_then_list_with_size_and_where_deployed(
    admin: Harness, ext: Any, fake: FakePatchObj
) -> None:
    await admin.deploy()
    first = await upload(ext, fake, "Demo.Hello_cli_1.tgz", b"v1", comment="first")
    second = await upload(ext, fake, "Demo.Hello_cli_2.tgz", b"version 2", user="bob")
    await admin.store.servers.set_patch_result("Demo", "Hello", NODE, str(first), "alice")
    ret, packages, result = await ext.listPatchPackages("Demo", "Hello")
    assert (ret, result) == (0, "")
    assert [(p.id, p.tgz, p.size, p.deployedOn, p.uploadUser) for p in packages] == [
        (second, "Demo.Hello_cli_2.tgz", 9, [], "bob"),
        (first, "Demo.Hello_cli_1.tgz", 2, [NODE], "alice"),
    ]
    assert packages[1].comment == "first" and packages[1].uploadTime
    assert packages[1].md5 == fake.put("Demo", "Hello", "x.tgz", b"v1")
    ret, packages, _ = await ext.listPatchPackages("Demo", "Nothing")
    assert (ret, packages) == (0, [])


async def test_add_checks_the_file_on_the_package_store(
    admin: Harness, ext: Any, fake: FakePatchObj
) -> None:
    md5 = fake.put("Demo", "Hello", "a.tgz", b"data")
    ret, _, result = await ext.addPatchPackage("Demo", "Hello", "b.tgz", md5, "", "alice")
    assert ret == 1007 and "no file 'b.tgz'" in result
    ret, _, result = await ext.addPatchPackage("Demo", "Hello", "a.tgz", "f" * 32, "", "alice")
    assert ret == 1007 and md5 in result and "f" * 32 in result
    # uploaded for another server: not this one's
    ret, _, result = await ext.addPatchPackage("Demo", "Other", "a.tgz", md5, "", "alice")
    assert ret == 1007
    assert await admin.store.patches.list("Demo.Hello") == []


@pytest.mark.parametrize(
    ("app", "server", "tgz", "md5", "comment", "user", "why"),
    [
        ("De/mo", "Hello", "a.tgz", "0" * 32, "", "", "application"),
        ("Demo", "..", "a.tgz", "0" * 32, "", "", "server name"),
        ("Demo", "Hello", "../../etc/passwd", "0" * 32, "", "", "package file name"),
        ("Demo", "Hello", "/abs.tgz", "0" * 32, "", "", "package file name"),
        ("Demo", "Hello", "a.tgz", "0" * 31 + "g", "", "", "md5"),
        ("Demo", "Hello", "a.tgz", "0" * 32, "x" * 300, "", "comment"),
        ("Demo", "Hello", "a.tgz", "0" * 32, "", "u" * 31, "user"),
    ],
)
async def test_bad_input_is_1007_before_anything_happens(
    admin: Harness,
    ext: Any,
    fake: FakePatchObj,
    app: str,
    server: str,
    tgz: str,
    md5: str,
    comment: str,
    user: str,
    why: str,
) -> None:
    fake.down = True  # the package store is not even asked
    ret, patch_id, result = await ext.addPatchPackage(app, server, tgz, md5, comment, user)
    assert (ret, patch_id) == (1007, 0) and why in result
    assert await admin.store.patches.list(f"{app}.{server}") == []


async def test_package_store_down(admin: Harness, ext: Any, fake: FakePatchObj) -> None:
    patch_id = await upload(ext, fake, "a.tgz", b"data")
    fake.down = True
    # adding cannot check the file: refused, with why
    ret, _, result = await ext.addPatchPackage("Demo", "Hello", "a.tgz", "0" * 32, "", "")
    assert ret == -1 and "did not answer listUploads" in result
    # the list still answers, sizes unknown
    ret, packages, _ = await ext.listPatchPackages("Demo", "Hello")
    assert ret == 0 and [(p.id, p.size) for p in packages] == [(patch_id, -1)]
    # deleting removes the row, and says the file stayed
    ret, result = await ext.deletePatchPackage(patch_id, "alice")
    assert ret == 0 and "its file stays on the package store" in result
    assert await admin.store.patches.list("Demo.Hello") == []


async def test_delete_refuses_a_deployed_version(
    admin: Harness, ext: Any, fake: FakePatchObj
) -> None:
    await admin.deploy()
    running = await upload(ext, fake, "a.tgz", b"a")
    old = await upload(ext, fake, "b.tgz", b"b")
    await admin.store.servers.set_patch_result("Demo", "Hello", NODE, str(running), "alice")
    ret, result = await ext.deletePatchPackage(running, "alice")
    assert ret == 1004 and NODE in result
    assert "a.tgz" in fake.files[("Demo", "Hello")]
    assert await ext.deletePatchPackage(old, "alice") == (
        0,
        f"package {old} (b.tgz) of Demo.Hello deleted",
    )
    assert "b.tgz" not in fake.files[("Demo", "Hello")]
    assert [p.id for p in await admin.store.patches.list("Demo.Hello")] == [running]
    ret, result = await ext.deletePatchPackage(old, "alice")
    assert ret == 1009 and str(old) in result


async def test_set_default(admin: Harness, ext: Any, fake: FakePatchObj) -> None:
    a = await upload(ext, fake, "a.tgz", b"a")
    b = await upload(ext, fake, "b.tgz", b"b")
    assert (await ext.setDefaultPatchPackage(a, "alice"))[0] == 0
    assert (await ext.setDefaultPatchPackage(b, "alice"))[0] == 0
    _, packages, _ = await ext.listPatchPackages("Demo", "Hello")
    assert [(p.id, p.isDefault) for p in packages] == [(b, True), (a, False)]
    # AdminReg getPatchPackage: the newest default package of that type
    ret, pack = await admin.proxy.getPatchPackage("Demo", "Hello", 0, 1)
    assert ret == 0 and pack.id == b and pack.md5 == packages[0].md5
    assert (await admin.proxy.getPatchPackage("Demo", "Hello", 3, 1))[0] == -1
    assert (await ext.setDefaultPatchPackage(987654, "alice"))[0] == 1009


async def test_admin_reg_delete_patch_file(admin: Harness, fake: FakePatchObj) -> None:
    fake.put("Demo", "Hello", "a.tgz", b"a")
    assert await admin.proxy.deletePatchFile("Demo", "Hello", "a.tgz") == 0
    assert fake.deleted == [("Demo", "Hello", "a.tgz")]
    assert await admin.proxy.deletePatchFile("Demo", "Hello", "../Other/a.tgz") == 1007
    fake.down = True
    assert await admin.proxy.deletePatchFile("Demo", "Hello", "a.tgz") == -1
    assert fake.deleted == [("Demo", "Hello", "a.tgz")]


def _item(node: str, patch_id: int, **params: str) -> Any:
    return AdminReg.TaskItemReq(
        itemNo=f"i-{node}",
        application="Demo",
        serverName="Hello",
        nodeName=node,
        command="patch_tars",
        userName="alice",
        parameters={"patch_id": str(patch_id), **params},
    )


async def _finished(admin: Harness, no: str) -> Any:
    """The TaskRsp once the task is over."""

    async def done() -> Any:
        ret, rsp = await admin.proxy.getTaskRsp(no)
        assert ret == 0
        return rsp if all(i.status in (SUCCESS, FAILED) for i in rsp.taskItemRsp) else None

    rsp = await eventually(done, f"task {no} to finish")
    live = admin.registry.tasks.tasks.get(no)
    if live is not None:
        await eventually(lambda: live.finished, f"task {no} recorded as finished")
    return rsp


async def test_a_publish_stages_the_package_once_per_server(
    admin: Harness, ext: Any, fake: FakePatchObj
) -> None:
    await admin.deploy()
    await admin.deploy(node=NODE2)
    await admin.connect_node(NODE2, admin.node)
    patch_id = await upload(ext, fake, "a.tgz", b"a")
    req = AdminReg.TaskReq(
        taskItemReq=[_item(NODE, patch_id), _item(NODE2, patch_id)],
        taskNo="t-pub",
        serial=False,
        userName="alice",
    )
    assert await admin.proxy.addTaskReq(req) == 0
    rsp = await _finished(admin, "t-pub")
    assert [i.status for i in rsp.taskItemRsp] == [SUCCESS, SUCCESS]
    assert fake.staged == [("Demo", "Hello", "a.tgz")]
    reqs = [args[0] for args in admin.node.called("patchPro")]
    assert sorted(r.nodename for r in reqs) == [NODE, NODE2]
    assert {(r.version, r.md5, r.patchobj) for r in reqs} == {
        (str(patch_id), fake.put("Demo", "Hello", "x", b"a"), admin.registry.settings.patch_obj)
    }


async def test_a_package_that_cannot_be_staged_fails_the_task(
    admin: Harness, ext: Any, fake: FakePatchObj
) -> None:
    await admin.deploy()
    patch_id = await upload(ext, fake, "a.tgz", b"a")
    fake.fail["preparePatchFile"] = -2
    req = AdminReg.TaskReq(
        taskItemReq=[_item(NODE, patch_id)], taskNo="t-bad", serial=True, userName="alice"
    )
    assert await admin.proxy.addTaskReq(req) == 0
    rsp = await _finished(admin, "t-bad")
    assert [i.status for i in rsp.taskItemRsp] == [FAILED]
    assert "preparePatchFile Demo.Hello a.tgz failed (-2)" in rsp.taskItemRsp[0].executeLog
    assert admin.node.called("patchPro") == []
    # and the direct batchPatch says the same (1010)
    ret, result = await admin.proxy.batchPatch(
        NodeDescriptor.PatchRequest(
            appname="Demo", servername="Hello", nodename=NODE, version=str(patch_id), user="bob"
        )
    )
    assert ret == 1010 and "failed (-2)" in result
    fake.down = True
    ret, result = await admin.proxy.batchPatch(
        NodeDescriptor.PatchRequest(
            appname="Demo", servername="Hello", nodename=NODE, version=str(patch_id), user="bob"
        )
    )
    assert ret == 1010 and "did not answer" in result


async def test_batch_patch_by_version_stages_then_pushes(
    admin: Harness, ext: Any, fake: FakePatchObj
) -> None:
    await admin.deploy()
    patch_id = await upload(ext, fake, "a.tgz", b"a")
    req = NodeDescriptor.PatchRequest(
        appname="Demo", servername="Hello", nodename=NODE, version=str(patch_id), user="bob"
    )
    assert await admin.proxy.batchPatch(req) == (0, "patch queued")
    assert fake.staged == [("Demo", "Hello", "a.tgz")]
    assert (await admin.proxy.batchPatch(req.replace(version="0")))[0] == 1009
    # a patch id of another server is not this one's package
    md5 = fake.put("Demo", "Other", "o.tgz", b"o")
    ret, other, _ = await ext.addPatchPackage("Demo", "Other", "o.tgz", md5, "", "alice")
    assert ret == 0
    ret, result = await admin.proxy.batchPatch(req.replace(version=str(other)))
    assert ret == 1009 and "Demo.Other" in result
    assert fake.staged == [("Demo", "Hello", "a.tgz")]


async def test_retention_keeps_the_newest_the_deployed_and_the_default(
    admin: Harness, ext: Any, fake: FakePatchObj
) -> None:
    await admin.deploy()
    ids = [await upload(ext, fake, f"p{i:02}.tgz", f"v{i}".encode()) for i in range(10)]
    await admin.store.servers.set_patch_result("Demo", "Hello", NODE, str(ids[0]), "alice")
    assert (await ext.setDefaultPatchPackage(ids[1], "alice"))[0] == 0
    # four more: ids[0..3] fall out of the newest 10; 2 and 3 go, file and row
    more = [await upload(ext, fake, f"q{i}.tgz", f"w{i}".encode()) for i in range(4)]
    left = [p.id for p in await admin.store.patches.list("Demo.Hello")]
    assert left == [*reversed(more), *reversed(ids[4:]), ids[1], ids[0]]
    assert sorted(f for _, _, f in fake.deleted) == ["p02.tgz", "p03.tgz"]
    assert "p00.tgz" in fake.files[("Demo", "Hello")]
