"""The admin registry's package store with the real ``tars.tarspatch.PatchObj``
(``tarsus.framework.patch``, files in ``tmp_path``) instead of the fake: upload with
``Patch.upload``, record with AdminExt, publish (the prepare step stages the file where nodes
download it), delete; and a package the way upstream TarsWeb stores one (the file written
into PatchObj's upload directory, the row inserted by TarsWeb itself) read and published."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import NODE, Harness
from sqlalchemy import insert

from tarsus.framework.admin import ADMIN_SERVANT
from tarsus.framework.patch import PatchSettings, add_patch
from tarsus.protocol.gen import AdminReg, Patch, TarsusAdmin
from tarsus.rpc.application import Application
from tarsus.store.schema import t_server_patchs
from tarsus.testing import eventually

SUCCESS, FAILED = 3, 4
STAGED = "/TARSBatchPatching/Demo/Hello/Demo.Hello.tgz"


@pytest.fixture
async def patchobj(tmp_path: Path) -> AsyncIterator[tuple[Any, str]]:
    """The real PatchObj on an ephemeral port (replaces admin_support's fake)."""
    app = Application()
    service = add_patch(
        app, PatchSettings.under(tmp_path / "patchs"), endpoint="tcp -h 127.0.0.1 -p 0 -t 60000"
    )
    await app.start()
    try:
        yield None, f"tars.tarspatch.PatchObj@{service.adapters[0].bound_endpoint}"
    finally:
        await app.stop(drain_timeout=1.0)


@pytest.fixture
def ext(admin: Harness) -> Any:
    return admin.comm.string_to_proxy(
        TarsusAdmin.AdminExtProxy, f"{ADMIN_SERVANT}@{admin.endpoint}"
    )


@pytest.fixture
def patch(admin: Harness) -> Any:
    return admin.comm.string_to_proxy(Patch.PatchProxy, admin.registry.settings.patch_obj)


async def _publish(admin: Harness, no: str, patch_id: int) -> Any:
    item = AdminReg.TaskItemReq(
        itemNo=f"{no}-1",
        application="Demo",
        serverName="Hello",
        nodeName=NODE,
        command="patch_tars",
        userName="alice",
        parameters={"patch_id": str(patch_id)},
    )
    req = AdminReg.TaskReq(taskItemReq=[item], taskNo=no, serial=True, userName="alice")
    assert await admin.proxy.addTaskReq(req) == 0

    async def done() -> Any:
        _, rsp = await admin.proxy.getTaskRsp(no)
        return rsp if all(i.status in (SUCCESS, FAILED) for i in rsp.taskItemRsp) else None

    return await eventually(done, f"task {no} to finish")


async def test_upload_record_publish_delete(
    admin: Harness, ext: Any, patch: Any, tmp_path: Path
) -> None:
    await admin.deploy()
    data = b"a release package" * 1000
    md5 = hashlib.md5(data).hexdigest()
    name = "Demo.Hello_cli_1700000000000.tgz"
    content = Patch.FileContent(md5=md5, name=name, firstChunk=True, lastChunk=True, content=data)
    assert await patch.upload("Demo", "Hello", content) == 0
    ret, patch_id, result = await ext.addPatchPackage("Demo", "Hello", name, md5, "v1", "alice")
    assert ret == 0, result
    ret, packages, _ = await ext.listPatchPackages("Demo", "Hello")
    assert ret == 0 and [(p.id, p.size, p.md5) for p in packages] == [(patch_id, len(data), md5)]
    # a wrong md5 is refused by the real store's listing too
    ret, _, result = await ext.addPatchPackage("Demo", "Hello", name, "0" * 32, "", "alice")
    assert ret == 1007 and md5 in result

    rsp = await _publish(admin, "t-real", patch_id)
    assert [i.status for i in rsp.taskItemRsp] == [SUCCESS], rsp.taskItemRsp[0].executeLog
    ret, files = await patch.listFileInfo(STAGED)
    assert ret == 1 and files[0].size == len(data) and files[0].md5 == md5
    ((req,),) = admin.node.called("patchPro")
    assert (req.version, req.md5) == (str(patch_id), md5)

    await admin.store.servers.set_patch_result("Demo", "Hello", NODE, str(patch_id), "alice")
    assert (await ext.deletePatchPackage(patch_id, "alice"))[0] == 1004
    await admin.store.servers.set_patch_result("Demo", "Hello", NODE, "", "alice")
    assert (await ext.deletePatchPackage(patch_id, "alice"))[0] == 0
    assert not (tmp_path / "patchs" / "tars.upload" / "Demo" / "Hello" / name).exists()


async def test_a_package_stored_as_upstream_tarsweb_stores_it(
    admin: Harness, ext: Any, patch: Any, tmp_path: Path
) -> None:
    """TarsWeb (not k8s) moves the uploaded file into its ``pkgUploadPath``/App/Server (our
    PatchObj's upload directory when configured alike) and inserts the row itself."""
    await admin.deploy()
    data = b"built by make tar" * 100
    name = "Demo.Hello_suse_1700000000001.tgz"
    where = tmp_path / "patchs" / "tars.upload" / "Demo" / "Hello"
    where.mkdir(parents=True)
    (where / name).write_bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    async with admin.store.begin() as conn:
        result = await conn.execute(
            insert(t_server_patchs).values(
                server="Demo.Hello",
                tgz=name,
                md5=md5,
                update_text="from the web",
                upload_user="admin",
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        patch_id = int(key[0])
    ret, packages, _ = await ext.listPatchPackages("Demo", "Hello")
    assert ret == 0
    (package,) = packages
    assert (package.id, package.size, package.comment, package.uploadUser) == (
        patch_id,
        len(data),
        "from the web",
        "admin",
    )
    rsp = await _publish(admin, "t-web", patch_id)
    assert [i.status for i in rsp.taskItemRsp] == [SUCCESS], rsp.taskItemRsp[0].executeLog
    ret, files = await patch.listFileInfo(STAGED)
    assert ret == 1 and files[0].md5 == md5
