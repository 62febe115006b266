"""``PatchImp``: the ``tars.tarspatch.PatchObj`` servant (upstream ``PatchImp``): every function
of ``Patch.tars`` and, beside them on the same object, our ``tarsus.PatchExt.listUploads``
(``TarsusPatch.tars``; its name is new, so upstream clients see no change).

A thin translation to :class:`~tarsus.framework.patch.files.PackageFiles`: a refused request
answers its :class:`~tarsus.framework.patch.files.PatchCode` (the reason in the log, and in
``result`` for ``preparePatchFile``); nothing a caller sends ends the process.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from tarsus.framework.patch.files import PatchCode, PatchError, StoredFile
from tarsus.protocol.gen import Patch, TarsusPatch
from tarsus.rpc.servant import served_together

if TYPE_CHECKING:
    from tarsus.codec.operation import Operation
    from tarsus.framework.patch.files import PackageFiles

__all__ = ["PatchImp"]

log = logging.getLogger("tarsus.framework.patch")


def _info(f: StoredFile) -> Patch.FileInfo:
    return Patch.FileInfo(path=f.path, size=f.size, canExec=f.executable, md5=f.md5)


def _refused(what: str, e: PatchError) -> int:
    log.warning("%s refused (%d): %s", what, int(e.code), e.message)
    return int(e.code)


def _failed(what: str) -> int:
    log.exception("%s failed", what)
    return int(PatchCode.IO_ERROR)


class PatchImp(Patch.PatchServant):
    """The package store's servant over ``files``."""

    _tars_ops_: ClassVar[dict[str, Operation]] = served_together(
        Patch.PatchServant, TarsusPatch.PatchExtServant
    )

    def __init__(self, files: PackageFiles) -> None:
        self.files = files

    async def listFileInfo(self, path: str) -> tuple[int, list[Patch.FileInfo]]:
        try:
            code, found = await self.files.list_info(path)
        except PatchError as e:
            return _refused(f"listFileInfo {path[:80]!r}", e), []
        except Exception:
            return _failed(f"listFileInfo {path[:80]!r}"), []
        return int(code), [_info(f) for f in found]

    async def download(self, file: str, pos: int) -> tuple[int, bytes]:
        try:
            code, data = await self.files.read(file, pos)
        except PatchError as e:
            return _refused(f"download {file[:80]!r}", e), b""
        except Exception:
            return _failed(f"download {file[:80]!r}"), b""
        return int(code), data

    async def preparePatchFile(self, app: str, serverName: str, patchFile: str) -> tuple[int, str]:
        try:
            staged = await self.files.prepare(app, serverName, patchFile)
        except PatchError as e:
            return _refused(f"preparePatchFile {app}.{serverName} {patchFile[:80]!r}", e), e.message
        except Exception as e:
            return _failed(f"preparePatchFile {patchFile[:80]!r}"), f"{type(e).__name__}: {e}"
        return int(PatchCode.OK), staged

    async def deletePatchFile(self, app: str, serverName: str, patchFile: str) -> int:
        try:
            await self.files.delete(app, serverName, patchFile)
        except PatchError as e:
            return _refused(f"deletePatchFile {app}.{serverName} {patchFile[:80]!r}", e)
        except Exception:
            return _failed(f"deletePatchFile {patchFile[:80]!r}")
        return int(PatchCode.OK)

    async def upload(self, app: str, serverName: str, content: Patch.FileContent) -> int:
        try:
            code = await self.files.upload(
                app,
                serverName,
                content.name,
                content.md5,
                content.firstChunk,
                content.lastChunk,
                content.content,
            )
        except PatchError as e:
            return _refused(f"upload {app}.{serverName} {content.name[:80]!r}", e)
        except Exception:
            return _failed(f"upload {content.name[:80]!r}")
        return int(code)

    async def listUploads(
        self, application: str, serverName: str
    ) -> tuple[int, list[Patch.FileInfo]]:
        try:
            found = await self.files.uploads(application, serverName)
        except PatchError as e:
            return _refused(f"listUploads {application}.{serverName}", e), []
        except Exception:
            return _failed(f"listUploads {application}.{serverName}"), []
        return int(PatchCode.OK), [_info(f) for f in found]
