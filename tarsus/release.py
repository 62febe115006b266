"""What a client sends to release a package: the upload to the package store, the publish task.

Upstream's web console releases in two calls to the framework (TarsWeb
``PatchController.upload_patch_package`` then ``add_task``; docs/release.md): the file goes to
``tars.tarspatch.PatchObj`` with ``Patch.upload`` in 1 MiB chunks, named
``<App>.<Server>_<field>_<epoch ms>.tgz``, the md5 of the whole file with every chunk; then
``AdminReg.addTaskReq`` runs a ``patch_tars`` item per node, whose parameters name the package
(``patch_id``), whether to restart (``bak_flag``), the comment (``update_text``) and the
group (``group_name``).

Our two clients send exactly that, through this module: the CLI (``tarsus package upload``,
``tarsus server publish``: field ``cli``) and the HTTP app's ``POST /api/upload_and_publish``
(field ``suse``, upstream's form field).

- :func:`upload_name` names an upload; :func:`upload_package` sends it (async; the CLI runs it
  on its blocking communicator's loop); a refusal is :class:`UploadRefused`, a call that fails
  is the RPC runtime's ``TarsError``, for the caller to word;
- :func:`patch_task` builds the publish ``TaskReq``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tarsus.protocol.gen import AdminReg, Patch

__all__ = [
    "CHUNK_SIZE",
    "UPLOAD_ALREADY_STORED",
    "UPLOAD_MD5_MISMATCH",
    "UPLOAD_OK",
    "UploadRefused",
    "patch_task",
    "upload_name",
    "upload_package",
]

#: bytes per ``Patch.upload`` call, as upstream's web sends them
CHUNK_SIZE = 1 << 20

#: ``Patch.upload``'s answers an uploader acts on (upstream ``PatchImp::upload``; the others,
#: docs/release.md, are refusals): the chunk is taken (on the last one: the file is stored)
UPLOAD_OK = 0
#: that name with that md5 is stored already: the uploader may stop
UPLOAD_ALREADY_STORED = 1
#: the md5 of what the store received differs: nothing was kept
UPLOAD_MD5_MISMATCH = -3


class UploadRefused(Exception):
    """The package store refused the upload (:attr:`code`, its answer) or the file changed
    while it was read (:attr:`code` 0); :attr:`reason` says which."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def upload_name(app: str, server: str, field: str, now_ms: int | None = None) -> str:
    """``<App>.<Server>_<field>_<epoch ms>.tgz``, upstream's web's name for an upload (its
    field is ``suse``); ``now_ms`` defaults to now."""
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    return f"{app}.{server}_{field}_{now_ms}.tgz"


async def upload_package(
    patch: Patch.PatchProxy,
    app: str,
    server: str,
    path: Path,
    *,
    name: str,
    md5: str,
    on_chunk: Callable[[int], None] | None = None,
) -> None:
    """``Patch.upload`` the file at ``path`` as ``name`` in :data:`CHUNK_SIZE` chunks, each with
    the whole file's ``md5`` (the store checks it on the last one); ``on_chunk(bytes)`` after
    each chunk is taken. Returns once the store holds the file (or said it did already)."""
    size = path.stat().st_size
    sent = 0
    with path.open("rb") as f:
        while True:
            chunk = await asyncio.to_thread(f.read, CHUNK_SIZE)
            first, last = sent == 0, sent + len(chunk) >= size
            content = Patch.FileContent(
                md5=md5, name=name, firstChunk=first, lastChunk=last, content=chunk
            )
            code = int(await patch.upload(app, server, content))
            sent += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
            if code == UPLOAD_ALREADY_STORED or (code == UPLOAD_OK and last):
                return
            if code == UPLOAD_MD5_MISMATCH:
                raise UploadRefused(
                    code,
                    f"the store computed another md5 than {md5} (the file changed while it "
                    "was read, or was damaged on the way); nothing was stored",
                )
            if code != UPLOAD_OK:
                raise UploadRefused(code, f"the store answered {code}")
            if not chunk:  # the file shrank while it was read
                raise UploadRefused(0, f"{path} shrank while it was read")


def patch_task(
    app: str,
    server: str,
    nodes: Sequence[str],
    package: Mapping[str, str],
    *,
    user: str,
    comment: str = "",
    restart: bool = True,
    serial: bool = True,
    each: int = 1,
    lossless: bool = False,
    task_no: str | None = None,
) -> AdminReg.TaskReq:
    """The ``TaskReq`` of one publish to ``nodes`` (upstream web ``add_task``, command
    ``patch_tars``). ``package`` names what to install: ``{"patch_id": ID}`` (a package of
    the store), or our ``{"filepath": PATH, "md5": MD5}``; ``restart=False`` installs without
    restarting (``bak_flag=1``). ``serial``, ``each`` (``eachNum``: batches of K) and
    ``lossless`` (``isElegant``) say how the admin registry's task engine runs the items."""
    task_no = task_no or uuid.uuid4().hex
    parameters = {
        **package,
        "bak_flag": "0" if restart else "1",
        "update_text": comment,
        "group_name": "",
    }
    items = [
        AdminReg.TaskItemReq(
            taskNo=task_no,
            itemNo=uuid.uuid4().hex,
            application=app,
            serverName=server,
            nodeName=node,
            command="patch_tars",
            userName=user,
            parameters=dict(parameters),
        )
        for node in nodes
    ]
    return AdminReg.TaskReq(
        taskItemReq=items,
        taskNo=task_no,
        serial=serial,
        userName=user,
        isElegant=lossless,
        eachNum=each,
    )
