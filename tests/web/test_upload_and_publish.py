"""``POST /api/upload_and_publish`` through real uvicorn on a free port, called with the real
``curl`` in upstream's documented form; the admin registry and the package store are stand-ins
served over Tars RPC on free ports (they record what they were asked, and the package store keeps
what was uploaded), so what the web sends the framework is checked, not only what it answers.

What a ``make <Server>-upload`` user would notice: the text answer and its status, refusals
that say why with a 4xx and store nothing, and a token without which nothing happens.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tarsus.codec.operation import Operation
from tarsus.framework.admin.tasks import derive_status
from tarsus.protocol.gen import AdminReg, Patch, TarsusAdmin
from tarsus.testing import Served, serve
from tarsus.web.server import WebServer
from tarsus.web.settings import WebSettings

T = AdminReg.EMTaskStatus
I = AdminReg.EMTaskItemStatus  # noqa: E741


# ------------------------------------------------------------------------ the stand-ins


@dataclass
class Instance:
    id: int
    node: str
    setting_state: str = "active"


class FakeAdmin(AdminReg.AdminRegServant, TarsusAdmin.AdminExtServant):
    """AdminReg and AdminExt on one object, as the admin registry serves them."""

    _tars_ops_: ClassVar[dict[str, Operation]] = {
        **AdminReg.AdminRegServant._tars_ops_,
        **TarsusAdmin.AdminExtServant._tars_ops_,
    }

    def __init__(self) -> None:
        self.instances: dict[tuple[str, str], list[Instance]] = {}
        self.packages: list[tuple[str, str, str, str, str, str]] = []
        self.tasks: dict[str, AdminReg.TaskReq] = {}
        #: (code, reason) addPatchPackage refuses with, as when its database is down
        self.refuse_packages: tuple[int, str] | None = None
        #: what every task ends as
        self.outcome = T.EM_T_SUCCESS
        self.polls = 0

    async def getServerNameList(
        self, fullServerName: list[AdminReg.ApplicationServerName]
    ) -> tuple[int, list[dict[str, str]]]:
        rows = []
        for name in fullServerName:
            for inst in self.instances.get((name.application, name.serverName), []):
                rows.append(
                    {
                        "id": str(inst.id),
                        "application": name.application,
                        "server_name": name.serverName,
                        "node_name": inst.node,
                        "setting_state": inst.setting_state,
                        "present_state": "active",
                    }
                )
        return 0, rows

    async def addPatchPackage(
        self, application: str, serverName: str, tgz: str, md5: str, comment: str, user: str
    ) -> tuple[int, int, str]:
        if self.refuse_packages is not None:
            code, reason = self.refuse_packages
            return code, 0, reason
        self.packages.append((application, serverName, tgz, md5, comment, user))
        return 0, len(self.packages), ""

    async def addTaskReq(self, taskReq: AdminReg.TaskReq) -> int:
        self.tasks[taskReq.taskNo] = taskReq
        return 0

    async def getTaskRsp(self, taskNo: str) -> tuple[int, AdminReg.TaskRsp]:
        req = self.tasks.get(taskNo)
        if req is None:
            return -1, AdminReg.TaskRsp()
        self.polls += 1
        # serial, as the engine runs it: "prepare" at the first look, then one more node
        # ended at each look; meanwhile the task is "partly done" (EM_T_PARIAL), not finished
        item_status = I.EM_I_SUCCESS if self.outcome == T.EM_T_SUCCESS else I.EM_I_FAILED
        items = []
        for n, item in enumerate(req.taskItemReq):
            done = self.polls >= n + 2
            status = item_status if done else I.EM_I_PREPARE
            log = ("patched" if status == I.EM_I_SUCCESS else "install failed") if done else ""
            items.append(
                AdminReg.TaskItemRsp(
                    req=item, status=status, statusInfo=status.name, executeLog=log
                )
            )
        task_status = derive_status(i.status for i in items)
        return 0, AdminReg.TaskRsp(
            taskItemRsp=items, taskNo=taskNo, serial=True, status=task_status
        )


@dataclass
class FakePatch(Patch.PatchServant):
    """Keeps every uploaded file, checks the md5 on the last chunk as tarspatch does."""

    files: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    chunks: int = 0
    _partial: dict[tuple[str, str, str], bytearray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    async def upload(self, app: str, serverName: str, content: Patch.FileContent) -> int:
        key = (app, serverName, content.name)
        self.chunks += 1
        if content.firstChunk:
            self._partial[key] = bytearray()
        self._partial[key] += content.content
        if content.lastChunk:
            data = bytes(self._partial.pop(key))
            if hashlib.md5(data).hexdigest() != content.md5:
                return -3
            self.files[key] = data
        return 0

    async def deletePatchFile(self, app: str, serverName: str, patchFile: str) -> int:
        self.files.pop((app, serverName, patchFile), None)
        return 0


# ------------------------------------------------------------------------ the setting


def make_package(server: str = "HelloServer", size: int = 1000, manifest: str = "") -> bytes:
    """A ``.tgz`` in upstream's layout (``<Server>/<Server>``), ``size`` bytes of payload that
    gzip cannot shrink."""
    buf = io.BytesIO()
    payload = random.Random(size).randbytes(size)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = {f"{server}/{server}": payload}
        if manifest:
            members[f"{server}/tarsus.toml"] = manifest.encode()
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Web:
    server: WebServer
    admin: FakeAdmin
    patch: FakePatch
    tmp: Path

    @property
    def token(self) -> str:
        return self.server.token

    def incoming(self) -> list[Path]:
        return list(self.server.settings.incoming_dir.iterdir())

    async def curl(
        self, *form: str, ticket: str | None = None, path: str = "/api/upload_and_publish"
    ) -> tuple[int, str]:
        """``curl URL?ticket=T -Fk=v ...`` as upstream documents it: (HTTP status, body)."""
        url = f"{self.server.url}{path}"
        if ticket is not None:
            url += f"?ticket={ticket}"
        args = ["curl", "-sS", "-o", "-", "-w", "\n@@%{http_code}", url]
        for item in form:
            args += ["-F", item]
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        text, _, code = out.decode().rpartition("\n@@")
        assert code.isdigit(), f"curl failed: {err.decode()}"
        return int(code), text

    def package_file(self, data: bytes, name: str = "HelloServer.tgz") -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    admin, patch = FakeAdmin(), FakePatch()
    admin.instances[("Test", "HelloServer")] = [
        Instance(7, "10.0.0.2"),
        Instance(5, "10.0.0.1"),
        Instance(9, "10.0.0.3", "inactive"),
    ]
    served_admin: Served
    async with (
        serve(admin, "tars.tarsAdminRegistry.AdminRegObj") as served_admin,
        serve(patch, "tars.tarspatch.PatchObj") as served_patch,
    ):
        settings = WebSettings(
            data_dir=tmp_path / "data",
            port=0,
            locator=None,  # type: ignore[arg-type]  # direct endpoints below
            admin=served_admin.proxy_string,
            patch=served_patch.proxy_string,
            max_upload=256 * 1024,
            poll_interval=0.05,
            publish_wait=30,
        )
        async with WebServer(settings) as server:
            yield Web(server, admin, patch, tmp_path)


def form(pkg: Path, **fields: str) -> list[str]:
    base = {"application": "Test", "module_name": "HelloServer", "comment": "from make upload"}
    base.update(fields)
    return [f"suse=@{pkg}", *(f"{k}={v}" for k, v in base.items())]


# ------------------------------------------------------------------------ the tests


async def test_the_documented_curl_form_stores_publishes_and_answers_in_text(web: Web) -> None:
    data = make_package(size=150_000)
    pkg = web.package_file(data)
    status, text = await web.curl(*form(pkg), ticket=web.token)
    assert status == 200, text
    # stored on the package store under upstream's name, whole, in 1 MiB chunks (one here)
    ((app, server, name),) = web.patch.files
    assert (app, server) == ("Test", "HelloServer")
    assert name.startswith("Test.HelloServer_suse_") and name.endswith(".tgz")
    assert web.patch.files[(app, server, name)] == data
    md5 = hashlib.md5(data).hexdigest()
    assert web.admin.packages == [
        ("Test", "HelloServer", name, md5, "from make upload", "web-token")
    ]
    # one serial patch_tars task over the active instances, naming the patch id, with the
    # parameters upstream's web sends (restart: bak_flag 0; the comment)
    ((task_no, task),) = web.admin.tasks.items()
    assert task.serial
    params = {"patch_id": "1", "bak_flag": "0", "update_text": "from make upload", "group_name": ""}
    assert [(i.nodeName, i.command, i.parameters) for i in task.taskItemReq] == [
        ("10.0.0.1", "patch_tars", params),
        ("10.0.0.2", "patch_tars", params),
    ]
    # the text: which server ids, the task number, one line per node, the outcome
    assert f"package {name} stored: patch id 1, md5 {md5}, {len(data)} bytes" in text
    assert "patch serverId: 5, node_name: 10.0.0.1\npatch serverId: 7, node_name: 10.0.0.2\n" in (
        text
    )
    assert "10.0.0.3" not in text
    assert f"task no:  [{task_no}]" in text
    assert "10.0.0.1 EM_I_SUCCESS patched\n10.0.0.2 EM_I_SUCCESS patched\n" in text
    assert text.endswith("task status: EM_T_SUCCESS\n")
    assert web.incoming() == []  # the received file is gone


async def test_an_upload_the_admin_registry_cannot_record_is_deleted_again(web: Web) -> None:
    web.admin.refuse_packages = (-1, "addPatchPackage: database: cannot connect to database")
    status, text = await web.curl(*form(web.package_file(make_package())), ticket=web.token)
    assert status >= 500 and "cannot connect to database" in text, (status, text)
    assert web.patch.files == {}  # no row would ever name it: the file is gone too
    assert web.admin.tasks == {}


async def test_restart_1_also_publishes_to_inactive_instances(web: Web) -> None:
    pkg = web.package_file(make_package())
    status, text = await web.curl(*form(pkg, restart="1"), ticket=web.token)
    assert status == 200, text
    ((_, task),) = web.admin.tasks.items()
    assert [i.nodeName for i in task.taskItemReq] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert "patch serverId: 9, node_name: 10.0.0.3" in text


async def test_a_failed_publish_says_so_per_node_with_status_500(web: Web) -> None:
    web.admin.outcome = T.EM_T_FAILED
    status, text = await web.curl(*form(web.package_file(make_package())), ticket=web.token)
    assert status == 500
    assert "10.0.0.1 EM_I_FAILED install failed" in text
    assert text.endswith("task status: EM_T_FAILED\n")


async def test_the_bearer_header_is_taken_as_well(web: Web) -> None:
    pkg = web.package_file(make_package())
    status, _ = await web.curl(*form(pkg), ticket=None)
    assert status == 401
    args = ["-H", f"Authorization: Bearer {web.token}"]
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args,
        *(x for f in form(pkg) for x in ("-F", f)),
        f"{web.server.url}/api/upload_and_publish",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert out == b"200"


@pytest.mark.parametrize(
    ("ticket", "status", "says"),
    [
        (None, 401, "authentication required"),
        ("", 401, "authentication required"),
        ("wrong", 403, "not valid"),
        ("%C3%A9t%C3%A9", 403, "not valid"),
    ],
)
async def test_without_the_token_nothing_is_received_or_stored(
    web: Web, ticket: str | None, status: int, says: str
) -> None:
    got, text = await web.curl(*form(web.package_file(make_package())), ticket=ticket)
    assert got == status and says in text, text
    assert web.patch.files == {} and web.admin.packages == [] and web.admin.tasks == {}


async def test_a_rotated_token_replaces_the_old_one_at_once(web: Web) -> None:
    from tarsus.web.token import write_new_token

    old = web.token
    new = write_new_token(web.server.settings.token_file)
    pkg = web.package_file(make_package())
    assert (await web.curl(*form(pkg), ticket=old))[0] == 403
    assert (await web.curl(*form(pkg), ticket=new))[0] == 200


def _tgz_with(
    name: str, data: bytes = b"x", *, kind: bytes = tarfile.REGTYPE, link: str = ""
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fields", "package", "status", "says"),
    [
        ({"application": ""}, make_package(), 400, "missing field(s): application"),
        ({"module_name": "../etc"}, make_package(), 400, "server name '../etc' may only use"),
        ({"application": "Te st"}, make_package(), 400, "application 'Te st' may only use"),
        ({"restart": "yes"}, make_package(), 400, "restart must be 1 or 0"),
        ({"md5": "0" * 32}, make_package(), 400, "md5 mismatch"),
        ({"comment": "c" * 1001}, make_package(), 400, "comment is 1001 characters"),
        ({}, b"just some text\n", 400, "not a gzip file"),
        ({}, make_package()[:-200], 400, "not a readable .tgz"),
        ({}, _tgz_with("../../evil"), 400, "contains '..'"),
        ({}, _tgz_with("/etc/passwd"), 400, "absolute path"),
        ({}, _tgz_with("a/link", kind=tarfile.SYMTYPE, link="../../x"), 400, "leads outside"),
        (
            {},
            make_package(manifest='[package]\nname = "Test.OtherServer"\nentry = "s.py"\n'),
            400,
            "names Test.OtherServer, not Test.HelloServer",
        ),
        ({"module_name": "NotDeployed"}, make_package(), 404, "not deployed on any node"),
    ],
)
async def test_bad_input_is_refused_with_the_reason_and_nothing_stored(
    web: Web, fields: dict[str, str], package: bytes, status: int, says: str
) -> None:
    got, text = await web.curl(*form(web.package_file(package), **fields), ticket=web.token)
    assert got == status and says in text, (got, text)
    assert web.patch.files == {} and web.admin.packages == [] and web.admin.tasks == {}
    assert web.incoming() == []


async def test_no_active_instance_is_409_unless_restart_1(web: Web) -> None:
    web.admin.instances[("Test", "HelloServer")] = [Instance(9, "10.0.0.3", "inactive")]
    pkg = web.package_file(make_package())
    status, text = await web.curl(*form(pkg), ticket=web.token)
    assert status == 409 and "no active instance" in text and "restart=1" in text
    assert web.patch.files == {}
    assert (await web.curl(*form(pkg, restart="1"), ticket=web.token))[0] == 200


async def test_form_shape_errors(web: Web) -> None:
    pkg = web.package_file(make_package())
    # no file at all
    got, text = await web.curl("application=Test", "module_name=HelloServer", ticket=web.token)
    assert got == 400 and "no package: send it as suse=@X.tgz" in text
    # the file under another field name
    got, text = await web.curl(
        f"file=@{pkg}", "application=Test", "module_name=HelloServer", ticket=web.token
    )
    assert got == 400 and "unexpected file field 'file'" in text
    # two files
    got, text = await web.curl(*form(pkg), f"suse=@{pkg}", ticket=web.token)
    assert got == 400 and ("only one file" in text or "given twice" in text)
    # not multipart at all
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-o", "-", "-w", "\n@@%{http_code}", "-d", "application=Test",
        f"{web.server.url}/api/upload_and_publish?ticket={web.token}",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert out.decode().endswith("@@415") and "multipart/form-data" in out.decode()
    assert web.patch.files == {} and web.incoming() == []


async def test_an_oversized_package_is_413_and_nothing_is_kept(web: Web) -> None:
    """Refused from its Content-Length, before the body is read."""
    big = web.package_file(make_package(size=600 * 1024))  # the limit here is 256 KiB
    status, text = await web.curl(*form(big), ticket=web.token)
    assert status == 413 and "the upload is" in text and "limit of 262144 bytes" in text, text
    assert web.patch.files == {} and web.incoming() == []


async def test_an_oversized_body_without_a_length_is_cut_while_streaming(web: Web) -> None:
    """Chunked transfer (no Content-Length): the limit applies as the bytes arrive."""
    big = web.package_file(make_package(size=400 * 1024))
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-o", "-", "-w", "\n@@%{http_code}", "-H", "Transfer-Encoding: chunked",
        *(x for f in form(big) for x in ("-F", f)),
        f"{web.server.url}/api/upload_and_publish?ticket={web.token}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    text = out.decode()
    assert text.endswith("@@413") and "larger than the limit of 262144 bytes" in text, text
    assert web.patch.files == {} and web.incoming() == []


async def test_the_framework_down_is_503_with_the_reason(tmp_path: Path) -> None:
    settings = WebSettings(
        data_dir=tmp_path / "data",
        port=0,
        admin="tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p 1 -t 3000",
        patch="tars.tarspatch.PatchObj@tcp -h 127.0.0.1 -p 1 -t 3000",
        rpc_timeout_ms=2000,
    )
    async with WebServer(settings) as server:
        web = Web(server, FakeAdmin(), FakePatch(), tmp_path)
        status, text = await web.curl(*form(web.package_file(make_package())), ticket=web.token)
    assert status == 503 and "the admin registry cannot be reached" in text, text


async def test_the_token_file_is_private_and_kept_across_starts(tmp_path: Path) -> None:
    settings = WebSettings(data_dir=tmp_path / "data", port=0)
    async with WebServer(settings) as first:
        token = first.token
    assert settings.token_file.stat().st_mode & 0o777 == 0o600
    assert len(token) >= 40
    async with WebServer(settings) as second:
        assert second.token == token


async def test_a_taken_port_is_an_oserror_at_start(web: Web) -> None:
    settings = WebSettings(data_dir=web.tmp / "other", port=web.server.port)
    with pytest.raises(OSError):
        await WebServer(settings).start()


async def test_openapi_describes_the_upload(web: Web) -> None:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", f"{web.server.url}/openapi.json", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    import json

    doc: dict[str, Any] = json.loads(out)
    op = doc["paths"]["/api/upload_and_publish"]["post"]
    schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["suse", "application", "module_name"]
