"""The package store as the CLI uses it: ``tars.tarspatch.PatchObj`` and its rows.

A package reaches the store in two steps, as upstream's web console sends it (TarsWeb
``upload_patch_package``; docs/release.md): the file goes to
``tars.tarspatch.PatchObj`` with upstream's ``Patch.upload`` in 1 MiB chunks, named
``<App>.<Server>_cli_<epoch ms>.tgz`` (the web's field is ``suse``, ours ``cli``), the md5 of
the whole file with every chunk (checked by the store on the last one; the HTTP app uploads
with the same code, :mod:`tarsus.release`); then the admin
registry records it (``tarsus.AdminExt.addPatchPackage``, a ``t_server_patchs`` row) and
answers its patch id, which a publish names. The CLI never reads the database.

Where the store is: ``--patch PROXY``, else ``$TARSUS_PATCH``, else on the admin registry's
host at upstream's port 18793 (``tars.tarspatch.PatchObj@tcp -h <admin host> -p 18793``), or
resolved through the locator when the admin registry is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from tarsus.cli.admin_client import (
    AdminAddress,
    AdminClient,
    CommandFailed,
    UsageError,
    object_beside_admin,
    refused,
)
from tarsus.codec.constants import PATCH_OBJ, PATCH_PORT
from tarsus.package import Package
from tarsus.release import CHUNK_SIZE, UploadRefused, upload_name, upload_package

log = logging.getLogger("tarsus.cli.patch_store")

__all__ = [
    "PATCH_ENV",
    "PATCH_OBJ",
    "PATCH_PORT",
    "PatchOption",
    "PatchStore",
    "PatchUnavailable",
    "StoredUpload",
    "patch_address",
    "store_package",
]

PATCH_ENV = "TARSUS_PATCH"
#: the name of our uploads: ``<App>.<Server>_cli_<epoch ms>.tgz`` (upstream's web: ``suse``)
UPLOAD_FIELD = "cli"
#: files larger than this get a progress bar while they upload
PROGRESS_FROM_BYTES = 4 * CHUNK_SIZE

PatchOption = Annotated[
    str | None,
    typer.Option(
        "--patch",
        metavar="PROXY",
        help=(
            f"the package store, '{PATCH_OBJ}@tcp -h HOST -p {PATCH_PORT}' "
            f"(default ${PATCH_ENV}, else the admin registry's host, port {PATCH_PORT})"
        ),
        show_default=False,
    ),
]


class PatchUnavailable(CommandFailed):
    """The package store could not be reached (or is not a package store): nothing stored."""


def patch_address(patch: str | None, admin: AdminAddress) -> str:
    """The package store's proxy string: ``--patch``, ``$TARSUS_PATCH``, else beside the
    admin registry (its host, port 18793), else through the locator."""
    return object_beside_admin(
        patch, admin, obj=PATCH_OBJ, port=PATCH_PORT, option="--patch", env=PATCH_ENV
    )


@dataclass(frozen=True)
class StoredUpload:
    """A package uploaded and recorded: its patch id and what the store holds."""

    id: int
    server: str
    tgz: str
    md5: str
    size: int
    source: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "server": self.server,
            "tgz": self.tgz,
            "md5": self.md5,
            "size": self.size,
            "source": self.source,
        }


class PatchStore:
    """Blocking calls to ``tars.tarspatch.PatchObj`` on the command's communicator."""

    def __init__(self, client: AdminClient, proxy: str) -> None:
        from tarsus.protocol.gen import Patch

        self.proxy_string = proxy
        self._comm = client.communicator()
        self._patch = self._comm.string_to_proxy(Patch.PatchProxy, proxy)

    def ping(self, timeout_ms: int = 1500) -> None:
        """``tars_ping`` the store: :class:`PatchUnavailable` when nothing answers there."""
        from tarsus.codec.constants import TARS_PING
        from tarsus.rpc.errors import TarsError
        from tarsus.rpc.proxy import CallOptions

        comm = self._comm

        async def ping() -> None:
            obj = comm.communicator.object_proxy(self.proxy_string)
            await obj.invoke_raw(TARS_PING, b"", CallOptions(timeout_ms=timeout_ms))

        try:
            comm.run(ping())
        except TarsError as e:
            raise self._failure("tars_ping", e) from None

    def _call(self, method: str, *args: Any) -> Any:
        from tarsus.rpc.errors import TarsError

        try:
            return getattr(self._patch, method)(*args)
        except TarsError as e:
            raise self._failure(method, e) from None

    def _failure(self, method: str, e: Any) -> CommandFailed:
        from tarsus.rpc.errors import ConnectError, InvokeTimeout, NoEndpointError, Ret

        where = self.proxy_string
        if isinstance(e, (ConnectError, NoEndpointError)):
            return PatchUnavailable(
                f"cannot reach the package store {where}: {e.message or 'connect failed'} "
                f"(is it running? --patch or ${PATCH_ENV} says where)",
                e.code,
            )
        if e.code in (Ret.SERVER_NO_SERVANT, Ret.SERVER_NO_FUNC):
            return PatchUnavailable(
                f"{where} is not a package store ({method}: {e.message})", e.code
            )
        if isinstance(e, InvokeTimeout):
            return CommandFailed(
                f"the package store {where} did not answer {method} in time", e.code
            )
        return CommandFailed(f"the package store {where} failed on {method}: {e.message}", e.code)

    def upload(
        self,
        app: str,
        server: str,
        path: Path,
        name: str,
        md5: str,
        on_chunk: Callable[[int], None] | None = None,
    ) -> None:
        """``Patch.upload`` the file in 1 MiB chunks (:func:`tarsus.release.upload_package`);
        ``on_chunk(bytes)`` after each. An empty file is refused here (the store would keep
        nothing useful)."""
        from tarsus.rpc.errors import TarsError

        if path.stat().st_size == 0:
            raise UsageError(f"the package {path} is empty")
        upload = upload_package(
            self._patch.async_proxy, app, server, path, name=name, md5=md5, on_chunk=on_chunk
        )
        try:
            self._comm.run(upload)
        except TarsError as e:
            raise self._failure("upload", e) from None
        except UploadRefused as e:
            raise CommandFailed(
                f"uploading {path.name} to the package store as {name} failed: {e.reason}",
                e.code or None,
            ) from None

    def discard(self, app: str, server: str, name: str) -> None:
        """``Patch.deletePatchFile`` of an upload that could not be recorded; a failure is
        only logged (the command reports why the upload was not recorded)."""
        try:
            code = self._call("deletePatchFile", app, server, name)
        except CommandFailed as e:
            log.warning("could not delete the unrecorded upload %s: %s", name, e)
            return
        if code != 0:
            log.warning(
                "could not delete the unrecorded upload %s: the store answered %d", name, code
            )


def store_package(
    client: AdminClient,
    store: PatchStore,
    err_console: Any,
    app: str,
    server: str,
    package: Package,
    *,
    comment: str,
    user: str,
    show_progress: bool,
) -> StoredUpload:
    """Upload ``package`` to the store, then record it (``addPatchPackage``): its patch id."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    name = upload_name(app, server, UPLOAD_FIELD)
    size = package.archive.stat().st_size
    progress = Progress(
        TextColumn("uploading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        disable=not show_progress or size < PROGRESS_FROM_BYTES,
        transient=True,
    )
    with progress:
        bar = progress.add_task(package.archive.name, total=size)
        store.upload(
            app,
            server,
            package.archive,
            name,
            package.md5,
            lambda n: progress.advance(bar, n),
        )
    ret, patch_id, result = client.call_ext(
        "addPatchPackage", app, server, name, package.md5, comment, user
    )
    if ret != 0:
        # Refused, so no row names the file and nothing else would ever delete it. (Not on a
        # call that failed: the row may have been written before the answer was lost.)
        store.discard(app, server, name)
        raise refused(f"recording {name} in the package store of {app}.{server}", ret, result)
    source = str(package.packed_from or package.archive)
    return StoredUpload(int(patch_id), f"{app}.{server}", name, package.md5, size, source)
