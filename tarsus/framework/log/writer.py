"""``LogWriter``: remote log lines to their files on writer threads, never on the event loop.

The servant hands each batch over (:meth:`LogWriter.submit`) and returns; a writer thread
(upstream: ``logthread``, 10 threads) appends it to its file. One log's batches always go to
the same thread, so its lines stay in the order they arrived. Bounds, so a flood or a hostile
caller costs a counter, not the process:

* bytes waiting for the disk (``max_pending``): a batch that does not fit is dropped and
  counted (``dropped_lines``), the caller is never made to wait;
* open files (``max_open`` over all threads): the least recently written is closed first, so
  a caller inventing thousands of file names costs opens, not descriptors;
* one line (``max_line``): longer ones are cut (upstream's trace lines are at most 1 MB).

As ``TC_RollByTime``, an open file is reopened every 10 s, so a log rotated or deleted by
an operator is recreated rather than written into the void.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tarsus.framework.log.layout import LogTarget

__all__ = ["LogWriter", "WriterCounts"]

log = logging.getLogger("tarsus.framework.log")

#: Seconds an open file is used before it is reopened (``TC_RollByTime::roll``: 10 s).
REOPEN_AFTER = 10.0
_WARN_EVERY = 60.0


@dataclass
class WriterCounts:
    """What the writer did since it started (``tarsus log`` and tests read them)."""

    received_lines: int = 0
    written_lines: int = 0
    #: refused because ``max_pending`` bytes were already waiting
    dropped_lines: int = 0
    #: lost to a failed open or write (disk full, permissions)
    failed_lines: int = 0


@dataclass
class _Batch:
    target: LogTarget
    prefix: str
    lines: list[str]
    size: int
    received: float = field(default_factory=time.time)


class _Handles:
    """One thread's open files, least recently used first."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.files: collections.OrderedDict[Path, tuple[BinaryIO, float]] = (
            collections.OrderedDict()
        )

    def get(self, path: Path, now: float) -> BinaryIO:
        entry = self.files.get(path)
        if entry is not None:
            handle, opened = entry
            if now - opened <= REOPEN_AFTER and now >= opened:
                self.files.move_to_end(path)
                return handle
            self.close(path)
        while len(self.files) >= self.limit:
            self.close(next(iter(self.files)))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        handle = os.fdopen(fd, "ab", buffering=256 * 1024)
        self.files[path] = (handle, now)
        return handle

    def close(self, path: Path) -> None:
        handle, _ = self.files.pop(path)
        try:
            handle.close()
        except OSError as e:
            log.warning("closing %s: %s", path, e)

    def flush(self) -> None:
        for path, (handle, _) in list(self.files.items()):
            try:
                handle.flush()
            except OSError as e:
                log.warning("writing %s: %s", path, e)
                self.close(path)

    def close_all(self) -> None:
        for path in list(self.files):
            self.close(path)


class LogWriter:
    """Appends batches of lines under ``root`` on ``threads`` writer threads."""

    def __init__(
        self,
        root: Path,
        *,
        threads: int = 2,
        max_pending: int = 64 * 1024 * 1024,
        max_open: int = 256,
        max_line: int = 1024 * 1024,
    ) -> None:
        self.root = root
        self.max_pending = max_pending
        self.max_line = max_line
        self.counts = WriterCounts()
        self._threads = max(1, threads)
        self._queues: list[queue.Queue[_Batch | None]] = [
            queue.Queue() for _ in range(self._threads)
        ]
        self._handles = [_Handles(max(1, max_open // self._threads)) for _ in self._queues]
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._pending = 0
        self._last_warning = float("-inf")

    @property
    def pending_bytes(self) -> int:
        return self._pending

    @property
    def open_files(self) -> int:
        return sum(len(h.files) for h in self._handles)

    def start(self) -> None:
        if self._workers:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        for i, (q, handles) in enumerate(zip(self._queues, self._handles, strict=True)):
            worker = threading.Thread(
                target=self._run, args=(q, handles), name=f"tarsus-log-writer-{i}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        """Write out what is queued, close every file, end the threads."""
        for q in self._queues:
            q.put(None)
        for worker in self._workers:
            worker.join()
        self._workers.clear()

    def flush(self) -> None:
        """Wait until every batch submitted so far is in its file (blocking)."""
        for q in self._queues:
            q.join()

    def submit(self, target: LogTarget, peer: str, lines: list[str]) -> bool:
        """Queue ``lines`` for ``target``, each after ``peer`` and the target's separator
        (``peer`` empty: the lines as sent). False when they were dropped (no room)."""
        size = sum(map(len, lines)) + len(lines) * (len(peer) + 2)
        with self._lock:
            self.counts.received_lines += len(lines)
            if self._pending + size > self.max_pending:
                self.counts.dropped_lines += len(lines)
                self._warn(
                    "%d lines for %s dropped: %d bytes already wait for the disk",
                    len(lines),
                    target.prefix,
                    self._pending,
                )
                return False
            self._pending += size
        prefix = f"{peer}{target.separator}" if peer else ""
        shard = zlib.crc32(str(target.prefix).encode("utf-8", "surrogateescape"))
        self._queues[shard % self._threads].put(_Batch(target, prefix, lines, size))
        return True

    # -- the writer threads --------------------------------------------------------------

    def _run(self, q: queue.Queue[_Batch | None], handles: _Handles) -> None:
        try:
            while True:
                item = q.get()
                if item is None:
                    q.task_done()
                    return
                batches = [item]
                while len(batches) < 512:
                    try:
                        more = q.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        q.put(None)  # seen again after this round
                        q.task_done()
                        break
                    batches.append(more)
                self._write(batches, handles)
                for _ in batches:
                    q.task_done()
        finally:
            handles.close_all()

    def _write(self, batches: list[_Batch], handles: _Handles) -> None:
        now = time.time()
        written = failed = released = 0
        for batch in batches:
            released += batch.size
            path = self.root / batch.target.relative_path(batch.received)
            try:
                handles.get(path, now).write(self._encode(batch))
                written += len(batch.lines)
            except OSError as e:
                failed += len(batch.lines)
                self._warn("%d lines for %s lost: %s", len(batch.lines), path, e)
                if path in handles.files:
                    handles.close(path)
        handles.flush()
        with self._lock:
            self._pending -= released
            self.counts.written_lines += written
            self.counts.failed_lines += failed

    def _encode(self, batch: _Batch) -> bytes:
        limit, prefix = self.max_line, batch.prefix
        parts = []
        for line in batch.lines:
            if len(line) > limit:
                line = line[:limit] + "\n"
            elif not line.endswith("\n"):
                line += "\n"
            parts.append(prefix + line if prefix else line)
        return "".join(parts).encode("utf-8", "surrogateescape")

    def _warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            log.warning(message + " (not logged again for %ds)", *args, int(_WARN_EVERY))
        else:
            log.debug(message, *args)
