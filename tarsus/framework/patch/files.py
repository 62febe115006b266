"""The package store's files: uploads received in chunks, packages staged for nodes, reads.

Plain logic over two directories (no RPC here; :mod:`tarsus.framework.patch.servant` is the
thin ``Patch`` servant over it). Upstream's layout (TarsFramework ``PatchImp``)::

    <upload_directory>/<App>/<Server>/<file>                 what upload() received
    <directory>/TARSBatchPatching/<App>/<Server>/<App>.<Server>.tgz   what prepare() staged

Beside each stored file a hidden sidecar ``.<file>.md5`` keeps its md5, checked again when the
file is staged and served in listings. Files being written are hidden too (``.<file>.part``
while an upload is in progress, ``.<file>.<random>.tmp`` while a package is staged) and take
their name by an atomic rename once complete: a half-written file is never listed, never
downloadable, and a node downloading a staged package never reads a half-copied one. Hidden
names are refused as input, so no caller reaches the sidecars.

Every name a caller gives is checked: applications and servers as :mod:`tarsus.names`,
file names as :func:`tarsus.names.check_package_file` (never starting with a dot: hidden
names are the store's own), and paths to list or download must stay inside
``directory`` (no ``..``, no hidden part, no symlink leading out). Sizes are capped (a chunk,
a file, and the disk reserve). File work runs in threads, so many transfers at once never
hold the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import shutil
import stat
import uuid
import weakref
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from tarsus.framework.patch.settings import PatchSettings
from tarsus.names import InvalidName, check_application, check_package_file, check_server_name

__all__ = [
    "BATCH_PATCHING",
    "PackageFiles",
    "PatchCode",
    "PatchError",
    "StoredFile",
    "staged_path",
]

log = logging.getLogger("tarsus.framework.patch")

#: The directory under ``directory`` that staged packages live in (upstream's name).
BATCH_PATCHING = "TARSBatchPatching"
#: A path given to listFileInfo/download may be this long at most.
MAX_PATH = 1024
_MD5 = re.compile(r"[0-9a-f]{32}")
_COPY_BLOCK = 1024 * 1024


class PatchCode(IntEnum):
    """Return codes of ``Patch`` (upstream's 0 / 1 / -1 / -3; the others are ours)."""

    #: done (upload: chunk stored; listFileInfo: a directory; download: data returned)
    OK = 0
    #: upload: this name with this md5 is stored already; listFileInfo: a file;
    #: download: end of file
    DONE = 1
    #: a name, path, md5 or position a caller may not use
    INVALID = -1
    #: no such file or directory
    NOT_FOUND = -2
    #: the md5 does not match (upload: of what was received; prepare: of the stored upload)
    MD5_MISMATCH = -3
    #: a chunk above the chunk cap, or a file above the file size cap
    TOO_BIG = -4
    #: writing it would leave less than the disk reserve free
    NO_SPACE = -5
    #: a chunk that is not the first, with no upload of that file in progress
    NOT_STARTED = -6
    #: the store's disk failed (the reason is logged)
    IO_ERROR = -7


class PatchError(Exception):
    """A refused request: :attr:`code` is what the servant answers, the message says why."""

    def __init__(self, code: PatchCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file as ``listFileInfo``/``listUploads`` show it."""

    #: relative to the listed directory (a file listed alone: its name)
    path: str
    size: int
    executable: bool
    #: hex md5 ("" when unknown: a file put there by hand, in a directory listing)
    md5: str


def staged_path(app: str, server: str) -> str:
    """Where ``prepare`` stages ``app``.``server``'s package, relative to ``directory``: the
    path a node downloads (upstream tarsnode ``CommandPatch``)."""
    return f"/{BATCH_PATCHING}/{app}/{server}/{app}.{server}.tgz"


def _check_file_name(name: object) -> str:
    """The package file name rule the admin registry and its store apply to
    ``t_server_patchs.tgz`` too (:func:`tarsus.names.check_package_file`)."""
    try:
        return check_package_file(name)
    except InvalidName as e:
        raise PatchError(PatchCode.INVALID, str(e)) from None


def _check_names(app: str, server: str) -> None:
    try:
        check_application(app)
        check_server_name(server)
    except InvalidName as e:
        raise PatchError(PatchCode.INVALID, str(e)) from None


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.md5")


def _part(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(_COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="ascii")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _known_md5(path: Path) -> str:
    """The md5 kept beside ``path`` ("" when none is)."""
    try:
        text = _sidecar(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return text if _MD5.fullmatch(text) else ""


def _stored_md5(path: Path) -> str:
    """The md5 of the stored file ``path``: its sidecar's, else computed and kept."""
    known = _known_md5(path)
    if not known:
        known = _file_md5(path)
        _write_atomically(_sidecar(path), known + "\n")
    return known


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _fmt(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


class PackageFiles:
    """The store's files (see the module doc). Methods raise :class:`PatchError`."""

    def __init__(self, settings: PatchSettings) -> None:
        self.settings = settings
        self.directory = Path(settings.directory)
        self.upload_directory = Path(settings.upload_directory)
        #: one lock per file being written: chunks of one upload, or stagings of one package,
        #: never interleave
        self._locks: weakref.WeakValueDictionary[Path, asyncio.Lock] = weakref.WeakValueDictionary()

    def make_directories(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.upload_directory.mkdir(parents=True, exist_ok=True)

    def _lock(self, path: Path) -> asyncio.Lock:
        lock = self._locks.get(path)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[path] = lock
        return lock

    def upload_path(self, app: str, server: str, name: str) -> Path:
        """Where ``upload`` keeps ``name`` of ``app``.``server`` (names checked)."""
        _check_names(app, server)
        return self.upload_directory / app / server / _check_file_name(name)

    # ------------------------------------------------------------------ upload

    async def upload(
        self, app: str, server: str, name: str, md5: str, first: bool, last: bool, data: bytes
    ) -> PatchCode:
        """One chunk of ``name``: the first truncates, the others append (to the hidden part
        file); the last checks the md5 of the whole and gives the file its name. Returns
        :attr:`PatchCode.DONE` when ``name`` with this md5 is stored already, else
        :attr:`PatchCode.OK`."""
        target = self.upload_path(app, server, name)
        md5 = md5.strip().lower() if isinstance(md5, str) else ""
        if not _MD5.fullmatch(md5):
            raise PatchError(PatchCode.INVALID, f"{name}: {md5[:40]!r} is not a hex md5")
        if len(data) > self.settings.max_chunk:
            raise PatchError(
                PatchCode.TOO_BIG,
                f"{name}: a chunk of {_fmt(len(data))} is above the store's chunk cap "
                f"({_fmt(self.settings.max_chunk)})",
            )
        async with self._lock(target):
            return await asyncio.to_thread(self._upload, target, md5, first, last, data)

    def _upload(self, target: Path, md5: str, first: bool, last: bool, data: bytes) -> PatchCode:
        part = _part(target)
        try:
            if target.is_file() and _stored_md5(target) == md5:
                if first:
                    part.unlink(missing_ok=True)
                return PatchCode.DONE
            if first:
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
            else:
                try:
                    written = part.stat().st_size
                except FileNotFoundError:
                    raise PatchError(
                        PatchCode.NOT_STARTED,
                        f"{target.name}: a chunk after the first, with no upload in progress",
                    ) from None
            if written + len(data) > self.settings.max_file_size:
                part.unlink(missing_ok=True)
                raise PatchError(
                    PatchCode.TOO_BIG,
                    f"{target.name}: more than the store's file size cap "
                    f"({_fmt(self.settings.max_file_size)}); upload dropped",
                )
            self._check_disk(target.parent, len(data), f"{target.name}: upload dropped", part)
            with open(part, "wb" if first else "ab") as f:
                f.write(data)
                if last:
                    f.flush()
                    os.fsync(f.fileno())
            if not last:
                return PatchCode.OK
            got = _file_md5(part)
            if got != md5:
                part.unlink(missing_ok=True)
                raise PatchError(
                    PatchCode.MD5_MISMATCH,
                    f"{target.name}: received data has md5 {got}, the uploader said {md5}; "
                    "upload dropped",
                )
            _sidecar(target).unlink(missing_ok=True)
            os.replace(part, target)
            _write_atomically(_sidecar(target), md5 + "\n")
            log.info("stored %s (%d bytes, md5 %s)", target, target.stat().st_size, md5)
            return PatchCode.OK
        except OSError as e:
            part.unlink(missing_ok=True)
            raise self._io_error(f"upload of {target.name}", e) from None

    def _check_disk(self, where: Path, needed: int, what: str, drop: Path | None = None) -> None:
        free = shutil.disk_usage(where).free
        if free - needed < self.settings.disk_reserve:
            if drop is not None:
                drop.unlink(missing_ok=True)
            raise PatchError(
                PatchCode.NO_SPACE,
                f"{what}: {_fmt(needed)} more would leave less than the store's disk reserve "
                f"({_fmt(self.settings.disk_reserve)}) free ({_fmt(free)} free)",
            )

    @staticmethod
    def _io_error(what: str, e: OSError) -> PatchError:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return PatchError(PatchCode.NO_SPACE, f"{what}: the disk is full: {e.strerror}")
        log.error("%s: %s", what, e)
        return PatchError(PatchCode.IO_ERROR, f"{what}: {e.strerror or e}")

    # ------------------------------------------------------------------ uploads

    async def uploads(self, app: str, server: str) -> list[StoredFile]:
        """The files uploaded for ``app``.``server``, md5 always set (``listUploads``)."""
        _check_names(app, server)
        return await asyncio.to_thread(self._uploads, self.upload_directory / app / server)

    def _uploads(self, where: Path) -> list[StoredFile]:
        out = []
        try:
            entries = sorted(os.scandir(where), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self._io_error(f"listing {where.name}", e) from None
        for entry in entries:
            if _is_hidden(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            path = Path(entry.path)
            st = entry.stat(follow_symlinks=False)
            try:
                md5 = _stored_md5(path)
            except OSError as e:
                log.warning("cannot read %s: %s", path, e)
                continue
            out.append(StoredFile(entry.name, st.st_size, bool(st.st_mode & 0o111), md5))
        return out

    async def delete(self, app: str, server: str, name: str) -> None:
        """``deletePatchFile``: remove the uploaded ``name`` (gone already: done too)."""
        target = self.upload_path(app, server, name)
        async with self._lock(target):
            try:
                await asyncio.to_thread(self._delete, target)
            except OSError as e:
                raise self._io_error(f"deleting {name}", e) from None

    @staticmethod
    def _delete(target: Path) -> None:
        target.unlink(missing_ok=True)
        _sidecar(target).unlink(missing_ok=True)
        log.info("deleted %s", target)

    # ------------------------------------------------------------------ staging

    async def prepare(self, app: str, server: str, name: str) -> str:
        """``preparePatchFile``: copy the uploaded ``name`` to :func:`staged_path`, its md5
        checked against the one kept at upload, atomically. Returns the staged path."""
        source = self.upload_path(app, server, name)
        relative = staged_path(app, server)
        dest = self.directory / relative.lstrip("/")
        async with self._lock(dest):
            await asyncio.to_thread(self._prepare, source, dest)
        return relative

    def _prepare(self, source: Path, dest: Path) -> None:
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            try:
                size = source.stat().st_size
            except FileNotFoundError:
                raise PatchError(
                    PatchCode.NOT_FOUND, f"no uploaded file {source.name} for this server"
                ) from None
            expected = _stored_md5(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._check_disk(dest.parent, size, f"staging {source.name}")
            digest = hashlib.md5(usedforsecurity=False)
            with open(source, "rb") as src, open(tmp, "wb") as out:
                while block := src.read(_COPY_BLOCK):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            got = digest.hexdigest()
            if got != expected:
                raise PatchError(
                    PatchCode.MD5_MISMATCH,
                    f"the uploaded {source.name} is damaged: its md5 is {got}, it was "
                    f"{expected} when uploaded",
                )
            os.replace(tmp, dest)
            _write_atomically(_sidecar(dest), got + "\n")
            log.info("staged %s as %s (md5 %s)", source, dest, got)
        except OSError as e:
            raise self._io_error(f"staging {source.name}", e) from None
        finally:
            tmp.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading

    def _resolve(self, path: str) -> Path:
        """``path`` (relative to ``directory``, a leading ``/`` allowed) as a real path inside
        it; INVALID otherwise."""
        if not isinstance(path, str) or len(path) > MAX_PATH or "\0" in path:
            raise PatchError(PatchCode.INVALID, "invalid path")
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        if any(p == ".." or _is_hidden(p) for p in parts):
            raise PatchError(PatchCode.INVALID, f"invalid path {path[:80]!r}")
        root = self.directory.resolve()
        real = root.joinpath(*parts).resolve()
        if real != root and not real.is_relative_to(root):
            raise PatchError(PatchCode.INVALID, f"{path[:80]!r} leads outside the store")
        return real

    async def list_info(self, path: str) -> tuple[PatchCode, list[StoredFile]]:
        """``listFileInfo``: a directory → (OK, every regular file below it, paths relative
        to it); a file → (DONE, [the file, named by its base name])."""
        return await asyncio.to_thread(self._list_info, path)

    def _list_info(self, asked: str) -> tuple[PatchCode, list[StoredFile]]:
        real = self._resolve(asked)
        try:
            st = real.stat()
        except FileNotFoundError:
            raise PatchError(PatchCode.NOT_FOUND, f"no {asked[:80]!r} in the store") from None
        except OSError as e:
            raise self._io_error(f"listing {asked[:80]!r}", e) from None
        if stat.S_ISREG(st.st_mode):
            return PatchCode.DONE, [
                StoredFile(real.name, st.st_size, bool(st.st_mode & 0o111), _known_md5(real))
            ]
        if not stat.S_ISDIR(st.st_mode):
            raise PatchError(PatchCode.NOT_FOUND, f"{asked[:80]!r} is neither file nor directory")
        out = []
        for top, dirs, files in os.walk(real):
            dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
            for name in sorted(files):
                if _is_hidden(name):
                    continue
                file = Path(top, name)
                try:
                    fst = file.lstat()
                except OSError:
                    continue
                if not stat.S_ISREG(fst.st_mode):
                    continue  # no symlinks: they could lead out
                rel = file.relative_to(real).as_posix()
                out.append(
                    StoredFile(rel, fst.st_size, bool(fst.st_mode & 0o111), _known_md5(file))
                )
        return PatchCode.OK, out

    async def read(self, path: str, pos: int) -> tuple[PatchCode, bytes]:
        """``download``: up to ``chunk_size`` bytes of the file at ``pos``: (OK, data), or
        (DONE, b"") at or past its end."""
        if pos < 0:
            raise PatchError(PatchCode.INVALID, f"negative position {pos}")
        return await asyncio.to_thread(self._read, path, pos)

    def _read(self, asked: str, pos: int) -> tuple[PatchCode, bytes]:
        real = self._resolve(asked)  # here: resolving a path is file system calls too
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise PatchError(PatchCode.NOT_FOUND, f"no file {asked[:80]!r} in the store") from None
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EISDIR):
                raise PatchError(PatchCode.NOT_FOUND, f"{asked[:80]!r} is not a file") from None
            raise self._io_error(f"reading {asked[:80]!r}", e) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PatchError(PatchCode.NOT_FOUND, f"{asked[:80]!r} is not a file")
            if pos >= st.st_size:
                return PatchCode.DONE, b""
            return PatchCode.OK, os.pread(fd, min(self.settings.chunk_size, st.st_size - pos), pos)
        except OSError as e:
            raise self._io_error(f"reading {asked[:80]!r}", e) from None
        finally:
            os.close(fd)
