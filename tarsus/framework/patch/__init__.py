"""The package store (upstream ``tarspatch``): ``tars.tarspatch.PatchObj``, port 18793.

The console and the CLI upload release packages to it in chunks (``Patch.upload``); the admin
registry stages one for a publish (``preparePatchFile``), and nodes download it
(``listFileInfo``, ``download``) to install it. Beside upstream's ``Patch`` the object serves our
``tarsus.PatchExt.listUploads`` (what was uploaded, with md5). See ``docs/release.md``.

- :func:`add_patch` serves it in an :class:`~tarsus.rpc.application.Application`;
- :class:`PatchService` is the framework service, :class:`PackageFiles` its plain logic;
- :class:`PatchSettings` says where the files go and how much they may take.
"""

from tarsus.framework.patch.files import (
    BATCH_PATCHING,
    PackageFiles,
    PatchCode,
    PatchError,
    StoredFile,
    staged_path,
)
from tarsus.framework.patch.service import PATCH_SPEC, PatchService, add_patch
from tarsus.framework.patch.settings import PatchSettings

__all__ = [
    "BATCH_PATCHING",
    "PATCH_SPEC",
    "PackageFiles",
    "PatchCode",
    "PatchError",
    "PatchService",
    "PatchSettings",
    "StoredFile",
    "add_patch",
    "staged_path",
]
