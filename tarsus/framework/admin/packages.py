"""The package store as the admin registry serves it: ``t_server_patchs`` rows (``store.patches``)
kept in step with the files on ``tars.tarspatch.PatchObj``.

* AdminExt (``TarsusAdmin.tars``): :meth:`Packages.add` records a package already uploaded with
  ``Patch.upload`` once ``PatchExt.listUploads`` shows that file with that md5;
  :meth:`Packages.list` gives the rows with their size on the package store and the nodes that
  run each; :meth:`Packages.delete` refuses a deployed version, then removes the row and its
  file; :meth:`Packages.set_default`.
* A publish's prepare step (upstream ``AdminRegistryImp::prepareFile`` / ``batchPatch``,
  docs/release.md): :meth:`Packages.prepare` reads the package of a patch id, has PatchObj
  stage it (``Patch.preparePatchFile``) for nodes to download, then applies the retention
  policy (:meth:`Packages.prune`: ``patch_history`` per server, never a deployed one nor the
  default; the pruned files are deleted from PatchObj).
* AdminReg's own ``deletePatchFile`` and ``getPatchPackage``.

Every call to PatchObj uses the admin registry's communicator, object ``settings.patch_obj``
and timeout ``settings.batchpatch_node_timeout``. Expected failures raise
:class:`~tarsus.framework.admin.errors.AdminError` with upstream's codes: 1007 bad input, 1009 no
such package, 1004 deployed, 1010 the package could not be staged, -1 PatchObj unreachable.
"""

from __future__ import annotations

import builtins
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tarsus.framework.admin.errors import AdminError, ErrCode
from tarsus.names import InvalidName, check_application, check_package_file, check_server_name
from tarsus.protocol.gen import AdminReg, Patch, TarsusAdmin, TarsusPatch
from tarsus.rpc.errors import TarsError
from tarsus.store.errors import Conflict, InvalidInput, NotFound
from tarsus.store.patches import check_package, parse_patch_id

if TYPE_CHECKING:
    from tarsus.framework.admin.settings import AdminSettings
    from tarsus.rpc.communicator import Communicator
    from tarsus.store.engine import Store
    from tarsus.store.rows import PatchRow

__all__ = ["NO_PACKAGE", "Packages", "PatchObjUnavailable", "Prepared", "package_row"]

log = logging.getLogger("tarsus.framework.admin.packages")

_TIME = "%Y-%m-%d %H:%M:%S"
#: a task's prepare step naming no package (upstream's words)
NO_PACKAGE = "load patch info from database error, patchId:"


class PatchObjUnavailable(AdminError):
    """PatchObj could not be called (not running, not routed, timed out); -1."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrCode.EM_TARS_UNKNOWN_ERR, message)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A package staged on PatchObj for a publish: its row's file and md5."""

    patch_id: int
    tgz: str
    md5: str


def _names(app: str, server: str) -> str:
    """``App.Server`` after checking both names (1007 otherwise)."""
    try:
        check_application(app)
        check_server_name(server)
    except InvalidName as e:
        raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, str(e)) from None
    return f"{app}.{server}"


async def package_row(store: Store, patch_id: str, missing: str) -> PatchRow:
    """The ``t_server_patchs`` row of ``patch_id`` (text, as a task item's ``patch_id`` or a
    ``PatchRequest.version`` carries it); 1009 saying ``missing`` if there is none."""
    key = parse_patch_id(patch_id)
    row = None if key is None else await store.patches.get(key)
    if row is None:
        raise AdminError(ErrCode.EM_TARS_GET_PATCH_FILE_ERR, missing)
    return row


def _time(value: datetime | None) -> str:
    return "" if value is None else value.strftime(_TIME)


class Packages:
    """``t_server_patchs`` and the package store's files, together."""

    def __init__(self, store: Store, communicator: Communicator, settings: AdminSettings) -> None:
        self.store = store
        self.communicator = communicator
        self.settings = settings

    # ------------------------------------------------------------------ PatchObj
    def _timeout_ms(self) -> int:
        return max(1, int(self.settings.batchpatch_node_timeout * 1000))

    def _patch(self) -> Patch.PatchProxy:
        proxy = self.communicator.string_to_proxy(Patch.PatchProxy, self.settings.patch_obj)
        return proxy.with_options(timeout_ms=self._timeout_ms())

    def _ext(self) -> TarsusPatch.PatchExtProxy:
        proxy = self.communicator.string_to_proxy(
            TarsusPatch.PatchExtProxy, self.settings.patch_obj
        )
        return proxy.with_options(timeout_ms=self._timeout_ms())

    def _unreachable(self, func: str, e: Exception) -> PatchObjUnavailable:
        return PatchObjUnavailable(
            f"the package store {self.settings.patch_obj} did not answer {func}: "
            f"{type(e).__name__}: {e}"
        )

    async def uploads(self, app: str, server: str) -> dict[str, Patch.FileInfo]:
        """The files uploaded for ``app.server`` on PatchObj, by name (``listUploads``)."""
        try:
            ret, files = await self._ext().listUploads(app, server)
        except (TarsError, ValueError, OSError) as e:
            raise self._unreachable("listUploads", e) from None
        if ret != 0:
            raise PatchObjUnavailable(
                f"the package store {self.settings.patch_obj} refused listUploads of "
                f"{app}.{server} ({ret})"
            )
        return {f.path: f for f in files}

    async def delete_file(self, app: str, server: str, tgz: str) -> int:
        """``Patch.deletePatchFile``: PatchObj's answer (0 done), after checking the names
        (1007). AdminReg ``deletePatchFile`` answers this."""
        _names(app, server)
        try:
            check_package_file(tgz)
        except InvalidName as e:
            raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, str(e)) from None
        try:
            return int(await self._patch().deletePatchFile(app, server, tgz))
        except (TarsError, ValueError, OSError) as e:
            raise self._unreachable("deletePatchFile", e) from None

    # ------------------------------------------------------------------ AdminExt
    async def add(self, app: str, server: str, tgz: str, md5: str, comment: str, user: str) -> int:
        """``addPatchPackage``: the new patch id. The file must be on PatchObj with this md5
        (1007 with what differs); then the row is inserted and old packages pruned."""
        full = _names(app, server)
        try:
            check_package(full, tgz, md5, comment=comment, user=user)
        except InvalidInput as e:
            raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, str(e)) from None
        stored = (await self.uploads(app, server)).get(tgz)
        if stored is None:
            raise AdminError(
                ErrCode.EM_TARS_PARAMETER_ERR,
                f"the package store has no file {tgz!r} uploaded for {full}; upload it first "
                f"(Patch.upload, tarsus package upload)",
            )
        if (stored.md5 or "").lower() != md5.lower():
            raise AdminError(
                ErrCode.EM_TARS_PARAMETER_ERR,
                f"{tgz!r} of {full} on the package store has md5 {stored.md5 or '(none)'}, "
                f"not {md5.lower()}",
            )
        try:
            patch_id = await self.store.patches.add(full, tgz, md5, comment=comment, user=user)
        except InvalidInput as e:
            raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, str(e)) from None
        log.info("package %d of %s: %s (%s) added by %r", patch_id, full, tgz, md5, user)
        await self.prune(app, server)
        return patch_id

    async def list(self, app: str, server: str) -> builtins.list[TarsusAdmin.StoredPackage]:
        """``listPatchPackages``: newest first. ``size`` is -1 for a file PatchObj does not
        have, or for every file while PatchObj cannot be reached (the list still answers)."""
        full = _names(app, server)
        rows = await self.store.patches.list(full)
        deployed = await self.store.patches.deployed(full)
        sizes: dict[str, int] = {}
        try:
            sizes = {name: int(f.size) for name, f in (await self.uploads(app, server)).items()}
        except PatchObjUnavailable as e:
            log.warning("listPatchPackages %s: sizes unknown: %s", full, e.message)
        return [
            TarsusAdmin.StoredPackage(
                id=row.id,
                server=row.server,
                tgz=row.tgz,
                md5=row.md5,
                comment=row.update_text,
                uploadUser=row.upload_user,
                uploadTime=_time(row.upload_time or row.posttime),
                isDefault=bool(row.default_version),
                size=sizes.get(row.tgz, -1),
                deployedOn=list(deployed.get(row.id, [])),
                publishTime=_time(row.publish_time),
                publishUser=row.publish_user,
            )
            for row in rows
        ]

    async def delete(self, patch_id: int, user: str) -> str:
        """``deletePatchPackage``: 1009 for no such package, 1004 while an instance runs it;
        else the row goes, then its file (a file PatchObj could not remove is said in the
        answer, the row stays deleted)."""
        try:
            row = await self.store.patches.delete(patch_id)
        except NotFound as e:
            raise AdminError(ErrCode.EM_TARS_GET_PATCH_FILE_ERR, str(e)) from None
        except Conflict as e:
            raise AdminError(ErrCode.EM_TARS_SERVICE_STATE_ERR, str(e)) from None
        log.info("package %d of %s (%s) deleted by %r", row.id, row.server, row.tgz, user)
        return f"package {row.id} ({row.tgz}) of {row.server} deleted" + await self._remove(row)

    async def set_default(self, patch_id: int, user: str) -> str:
        """``setDefaultPatchPackage``: 1009 for no such package."""
        try:
            row = await self.store.patches.set_default(patch_id, user[:30])
        except NotFound as e:
            raise AdminError(ErrCode.EM_TARS_GET_PATCH_FILE_ERR, str(e)) from None
        log.info("package %d is the default of %s (by %r)", row.id, row.server, user)
        return f"package {row.id} ({row.tgz}) is the default of {row.server}"

    async def default_package(
        self, app: str, server: str, package_type: int, default_version: int
    ) -> AdminReg.PatchPackage:
        """AdminReg ``getPatchPackage``: id and md5 of the newest package of ``app.server``
        with that package type and default flag; -1 if there is none (upstream
        ``DbProxy::getPatchPackage``)."""
        full = _names(app, server)
        row = await self.store.patches.find(full, package_type, default_version)
        if row is None:
            raise AdminError(
                ErrCode.EM_TARS_UNKNOWN_ERR,
                f"{full} has no package of type {package_type} with default_version "
                f"{default_version}",
            )
        return AdminReg.PatchPackage(id=row.id, md5=row.md5)

    # ------------------------------------------------------------------ publishing
    async def prepare(self, app: str, server: str, patch_id: str, group: str = "") -> Prepared:
        """A publish's prepare step: the package of ``patch_id`` (1009 if there is none, or
        it is not ``app.server``'s) is staged on PatchObj for ``app`` and ``group`` or
        ``server`` (``preparePatchFile``; 1010 with the reason when that fails), then old
        packages of the server are pruned."""
        full = _names(app, server)
        row = await package_row(self.store, patch_id, NO_PACKAGE + patch_id)
        if row.server != full:
            raise AdminError(
                ErrCode.EM_TARS_GET_PATCH_FILE_ERR,
                f"package {row.id} is one of {row.server}, not of {full}",
            )
        target = group or server
        try:
            check_server_name(target)
            check_package_file(row.tgz)
        except InvalidName as e:
            raise AdminError(
                ErrCode.EM_TARS_PREPARE_ERR, f"package {row.id} cannot be staged: {e}"
            ) from None
        try:
            ret, result = await self._patch().preparePatchFile(app, target, row.tgz)
        except (TarsError, ValueError, OSError) as e:
            raise AdminError(
                ErrCode.EM_TARS_PREPARE_ERR,
                f"preparePatchFile {app}.{target} {row.tgz}: the package store "
                f"{self.settings.patch_obj} did not answer: {type(e).__name__}: {e}",
            ) from None
        if ret != 0:
            raise AdminError(
                ErrCode.EM_TARS_PREPARE_ERR,
                f"preparePatchFile {app}.{target} {row.tgz} failed ({ret}): {result}",
            )
        log.info("package %d (%s) staged for %s.%s", row.id, row.tgz, app, target)
        await self.prune(app, server)
        return Prepared(row.id, row.tgz, row.md5)

    async def prune(self, app: str, server: str) -> int:
        """Retention: delete the rows beyond ``settings.patch_history`` of ``app.server``
        (never a deployed one, nor the default) and their files; how many. Failures are
        logged: retention never fails the operation that triggered it."""
        full = f"{app}.{server}"
        try:
            rows = await self.store.patches.prune(full, self.settings.patch_history)
        except Exception as e:
            log.warning("pruning the packages of %s failed: %s", full, e)
            return 0
        for row in rows:
            log.info("package %d (%s) of %s pruned", row.id, row.tgz, full)
            note = await self._remove(row)
            if note:
                log.warning("package %d of %s%s", row.id, full, note)
        return len(rows)

    async def _remove(self, row: PatchRow) -> str:
        """Delete the file of a row already deleted; "" or what went wrong, as a clause."""
        app, _, server = row.server.partition(".")
        try:
            ret = await self.delete_file(app, server, row.tgz)
        except AdminError as e:
            return f"; its file stays on the package store: {e.message}"
        if ret != 0:
            return f"; its file stays on the package store (deletePatchFile answered {ret})"
        return ""
