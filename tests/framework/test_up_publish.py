"""Publishing by patch id through the package store under ``tarsus up``: the package is
uploaded to ``tars.tarspatch.PatchObj`` and staged, a ``t_server_patchs`` row names it, the
admin registry's ``batchPatch`` sends the node only the patch id and md5, the node downloads
and installs it, and the restarted server answers with the new version's code.

Uses upstream's fixed ports (17890, 17891, 12000, 18793, 19386, 18601): run it in a network
namespace of its own when others may use them (docs/testing.md).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert
from up_support import LOCATOR, ROOT, call_hello

from tarsus.package import pack_directory
from tarsus.patching import wait_patch
from tarsus.protocol.gen import AdminReg, NodeDescriptor, Patch
from tarsus.rpc.communicator import Communicator
from tarsus.store import open_store
from tarsus.store.schema import t_server_patchs
from tarsus.testing import TarsusUp, eventually

ADMIN = "tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p 12000"


@pytest.mark.slow
async def test_publish_by_patch_id_through_the_package_store(tmp_path: Path) -> None:
    data_dir = tmp_path / ".tarsus"
    with TarsusUp("--data-dir", str(data_dir), log=tmp_path / "up.log", cwd=ROOT, timeout=120):
        # a new version of the example: another greeting
        src = tmp_path / "hello2"
        shutil.copytree(ROOT / "examples" / "hello", src)
        server_py = src / "server.py"
        server_py.write_text(server_py.read_text().replace("from Python", "from version 2"))
        data = pack_directory(src, tmp_path / "pkg", "hello").read_bytes()
        md5 = hashlib.md5(data).hexdigest()
        name = "Test.HelloServer_cli_1700000000000.tgz"

        async with Communicator(LOCATOR, cache_dir=None) as comm:
            patch = comm.string_to_proxy(Patch.PatchProxy, "tars.tarspatch.PatchObj")
            content = Patch.FileContent(
                md5=md5, name=name, firstChunk=True, lastChunk=True, content=data
            )
            assert await patch.upload("Test", "HelloServer", content) == 0
            code, _ = await patch.preparePatchFile("Test", "HelloServer", name)
            assert code == 0

            store = await open_store(None, data_dir=data_dir)
            try:
                async with store.begin() as conn:
                    done = await conn.execute(
                        insert(t_server_patchs).values(
                            server="Test.HelloServer",
                            version="2",
                            tgz=name,
                            md5=md5,
                            upload_time=datetime.now(),
                            upload_user="test",
                            group_id="",
                        )
                    )
                    patch_id = str(done.inserted_primary_key[0])
            finally:
                await store.close()

            admin = comm.string_to_proxy(AdminReg.AdminRegProxy, ADMIN).with_options(
                timeout_ms=30000
            )
            req = NodeDescriptor.PatchRequest(
                appname="Test",
                servername="HelloServer",
                nodename="127.0.0.1",
                version=patch_id,
                user="test",
            )
            ret, result = await admin.batchPatch(req)
            assert ret == 0, result
            judged, _code, _info = await wait_patch(
                lambda: admin.getPatchPercent("Test", "HelloServer", "127.0.0.1"),
                timeout=120,
                interval=0.2,
            )
            assert judged.succeeded, judged.reason
            ret, result = await admin.restartServer("Test", "HelloServer", "127.0.0.1")
            assert ret == 0, result

        async def new_version_answers() -> bool:
            done = call_hello()
            return done.returncode == 0 and "from version 2" in json.loads(done.stdout).get(
                "greeting", ""
            )

        await eventually(new_version_answers, "the new version to answer", timeout=60)
