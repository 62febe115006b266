"""Packages downloaded from the package store (``tars.tarspatch.PatchObj``), as upstream's
tarsnode fetches what it installs (TarsFramework ``CommandPatch``, ``PatchClient``).

For a ``PatchRequest`` without ``filepath`` the node downloads
``/TARSBatchPatching/<app>/<group or server>/<app>.<group or server>.tgz`` (:func:`batch_path`)
from ``PatchRequest.patchobj``, found through the registry like any object:

1. the local copy ``<download dir>/BatchPatchingLoad/<app>.<srv>/<file>`` is used when its md5
   is the one asked for (a second node-local install, a retry): nothing is downloaded;
2. ``listFileInfo`` must answer 1 (a file) and gives the size; the disk must hold it with the
   node's ``disk_reserve`` to spare;
3. ``download(path, pos)`` in chunks, appended to a hidden part file; each chunk is tried
   again on a failed call (a broken connection, the store restarting) for up to
   ``retry_for`` seconds, and a download that failed as a whole *resumes* from the part file
   at its next attempt (the part file remembers the md5 it belongs to);
4. the md5 of the whole is checked against the request's: a mismatch removes the file and
   fails the install with both md5s named; else the part file becomes the local copy.

Downloads of one file are taken one at a time (upstream's per-file lock).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import logging
import os
import shutil
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from tarsus.names import InvalidName, check_application, check_server_name
from tarsus.package import PackageError, md5_of
from tarsus.protocol.gen import Patch
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import TarsError

__all__ = ["PatchObjSource", "batch_path"]

log = logging.getLogger("tarsus.framework.node.download")

Progress = Callable[[int], None]
R = TypeVar("R")

#: A call to the store may take this long (upstream: PatchObj timeout 60 s).
CALL_TIMEOUT_MS = 60_000
#: How long one chunk is retried after failed calls, and the wait between tries.
RETRY_FOR = 60.0
RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0)
#: Chunk requests in flight at once: enough to keep the store and the connection busy while
#: a chunk is written and hashed (4 x upstream's 1 MiB chunk in memory at most).
WINDOW = 4

_locks: weakref.WeakValueDictionary[Path, asyncio.Lock] = weakref.WeakValueDictionary()


def batch_path(app: str, server: str) -> str:
    """What a node downloads for ``app``.``server`` (the store's staged package)."""
    return f"/TARSBatchPatching/{app}/{server}/{app}.{server}.tgz"


def _lock(path: Path) -> asyncio.Lock:
    lock = _locks.get(path)
    if lock is None:
        lock = asyncio.Lock()
        _locks[path] = lock
    return lock


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


class PatchObjSource:
    """A :class:`~tarsus.framework.node.package.PackageSource` over a package store: ``fetch``
    takes a store path (:func:`batch_path`) and returns the verified local copy."""

    def __init__(
        self,
        communicator: Communicator,
        patch_obj: str,
        *,
        md5: str,
        download_dir: Path,
        disk_reserve: int,
        retry_for: float = RETRY_FOR,
        window: int = WINDOW,
    ) -> None:
        self.communicator = communicator
        self.patch_obj = patch_obj
        self.md5 = md5.strip().lower()
        self.download_dir = Path(download_dir)
        self.disk_reserve = disk_reserve
        self.retry_for = retry_for
        self.window = max(1, window)

    def local_path(self, location: str) -> Path:
        """Where ``location`` is kept on this node (names checked: they become paths)."""
        parts = location.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "TARSBatchPatching":
            raise PackageError(f"not a package store path: {location[:120]!r}")
        _, app, server, name = parts
        try:
            check_application(app)
            check_server_name(server)
        except InvalidName as e:
            raise PackageError(str(e)) from None
        if name != f"{app}.{server}.tgz":
            raise PackageError(f"not a package store path: {location[:120]!r}")
        return self.download_dir / "BatchPatchingLoad" / f"{app}.{server}" / name

    async def fetch(self, location: str, workdir: Path, progress: Progress | None = None) -> Path:
        report = progress or (lambda _percent: None)
        if not self.patch_obj:
            raise PackageError("the request names no package store (PatchRequest.patchobj)")
        if not self.md5:
            raise PackageError("the request has no md5 to check the download against")
        local = self.local_path(location)
        async with _lock(local):
            if local.is_file() and await asyncio.to_thread(md5_of, local) == self.md5:
                log.info("%s: the local copy has md5 %s: not downloaded", local, self.md5)
                report(100)
                return local
            await self._download(location, local, report)
        return local

    # ------------------------------------------------------------------ downloading

    def _proxy(self) -> Patch.PatchProxy:
        return self.communicator.string_to_proxy(Patch.PatchProxy, self.patch_obj).with_options(
            timeout_ms=CALL_TIMEOUT_MS
        )

    async def _download(self, location: str, local: Path, report: Progress) -> None:
        patch = self._proxy()
        code, files = await self._retried(
            f"listFileInfo {location}", functools.partial(patch.listFileInfo, location)
        )
        if code != 1 or len(files) != 1:
            raise PackageError(
                f"the package store has no file {location} ({self.patch_obj} listFileInfo "
                f"answered {code}): was the package prepared for this server?"
            )
        info = files[0]
        size = info.size
        if info.md5 and info.md5.lower() != self.md5:
            raise PackageError(
                f"the package store holds {location} with md5 {info.md5}, the request asks for "
                f"{self.md5}: another version was prepared since; publish again"
            )
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(f".{local.name}.part")
        owner = local.with_name(f".{local.name}.part.md5")
        pos, digest = await asyncio.to_thread(self._resume_point, part, owner, size)
        free = shutil.disk_usage(local.parent).free
        if free - (size - pos) < self.disk_reserve:
            raise PackageError(
                f"not enough disk space to download {local.name} ({_size(size)}): "
                f"{_size(free)} free on the disk of {local.parent} and "
                f"{_size(self.disk_reserve)} must stay free (the node's disk_reserve)"
            )
        if pos:
            log.info("%s: resuming the download at %d of %d bytes", local.name, pos, size)
        started = time.monotonic()
        with open(part, "ab") as out:
            await self._receive(patch, location, out, digest, pos, size, report)
        got = digest.hexdigest()
        if got != self.md5:
            part.unlink(missing_ok=True)
            owner.unlink(missing_ok=True)
            raise PackageError(
                f"md5 mismatch for {location} downloaded from {self.patch_obj}: got {got}, "
                f"expected {self.md5}; the file was removed and nothing installed"
            )
        os.replace(part, local)
        owner.unlink(missing_ok=True)
        elapsed = time.monotonic() - started
        log.info("%s: downloaded %d bytes in %.2f s", local.name, size, elapsed)

    async def _receive(
        self,
        patch: Patch.PatchProxy,
        location: str,
        out: BinaryIO,
        digest: Any,
        pos: int,
        size: int,
        report: Progress,
    ) -> None:
        """Bytes ``pos``..``size`` of ``location`` appended to ``out`` (and to ``digest``).

        The first answer tells the store's chunk size; from then on up to :attr:`window`
        requests are in flight at the positions that follow (the size is known), and answers
        are written in the order asked. An answer of another length drops the requests in
        flight (asked at positions that no longer follow) and asks again from where the file
        ends, so whatever chunk size a store answers with (upstream's ``size=``), the bytes
        land where they belong.
        """
        inflight: deque[asyncio.Task[tuple[int, bytes]]] = deque()
        chunk = 0  # the store's chunk size: unknown until the first answer
        ask = pos  # where the next request reads
        try:
            while pos < size:
                while ask < size and len(inflight) < (self.window if chunk else 1):
                    call = functools.partial(patch.download, location, ask)
                    what = f"download {location} at {ask}"
                    inflight.append(asyncio.ensure_future(self._retried(what, call)))
                    ask += chunk or size
                code, data = await inflight.popleft()
                if code == 1:
                    raise PackageError(
                        f"{location} ended at {pos} of the {size} bytes listed: it was prepared "
                        "again during the download; publish again"
                    )
                if code != 0 or not data:
                    raise PackageError(
                        f"{self.patch_obj} download {location} at {pos} answered {code}"
                    )
                if pos + len(data) > size:
                    raise PackageError(
                        f"{location} grew past the {size} bytes listed: it was prepared again "
                        "during the download; publish again"
                    )
                if len(data) != chunk:  # the first answer, or the store's chunk size changed:
                    chunk = len(data)  # what is in flight was asked at other positions
                    _cancel(inflight)
                    ask = pos + chunk
                # the disk write and the md5 side by side (both leave the GIL)
                await asyncio.gather(
                    asyncio.to_thread(out.write, data), asyncio.to_thread(digest.update, data)
                )
                pos += len(data)
                report(pos * 100 // size)
        finally:
            _cancel(inflight)
        report(100)

    def _resume_point(self, part: Path, owner: Path, size: int) -> tuple[int, Any]:
        """Bytes of ``part`` to keep (what an earlier try of this same package, by md5, got)
        and the md5 state over them."""
        digest = hashlib.md5(usedforsecurity=False)
        try:
            same = owner.read_text(encoding="ascii").strip() == self.md5
            have = part.stat().st_size
        except (OSError, UnicodeDecodeError):
            same, have = False, 0
        if same and 0 < have <= size:
            with open(part, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
            return have, digest
        part.unlink(missing_ok=True)
        owner.write_text(self.md5 + "\n", encoding="ascii")
        return 0, digest

    async def _retried(self, what: str, call: Callable[[], Awaitable[R]]) -> R:
        """``call()``, tried again after a failed call (the store unreachable, restarting, a
        timeout) for up to :attr:`retry_for` seconds."""
        deadline = time.monotonic() + self.retry_for
        for attempt in itertools.count():
            try:
                return await call()
            except TarsError as e:
                if time.monotonic() >= deadline:
                    raise PackageError(
                        f"{what}: {self.patch_obj} did not answer for {self.retry_for:g} s: {e}"
                    ) from None
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                log.warning("%s failed (%s); trying again in %.1f s", what, e, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _cancel(tasks: deque[asyncio.Task[tuple[int, bytes]]]) -> None:
    for task in tasks:
        task.cancel()
    tasks.clear()
