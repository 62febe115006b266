"""``ProcessHandle``: one OS process the node supervises, and how it learns that it exited.

Two kinds:

- **children** the node started (:meth:`ProcessHandle.spawn`): a new session (so a Ctrl-C
  in the node's terminal does not reach them, and the whole group can be killed), stdout
  and stderr appended to the server's log file, cwd the server's log directory;
- **adopted** processes (:meth:`ProcessHandle.adopt`): still running from before a node
  restart. Known by pid, start time *and* command line, so a recycled pid is never mistaken
  for the server. Which processes the node may adopt at all is the supervisor's decision
  (docs/node.md, "Which processes the node believes").

Exits are noticed at once where the kernel can tell (a pidfd becomes readable when the
process ends, children and adopted processes alike); elsewhere the process is polled. Either
way :attr:`ProcessHandle.exited` is set and the ``on_exit`` callback runs.

Nothing here kills a process on its own: dropping a handle (the node exiting) leaves the
process running, which is what lets the node restart without restarting its services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil  # type: ignore[import-untyped]

__all__ = ["CREATE_TIME_TOLERANCE", "ProcessHandle", "process_cmdline", "process_create_time"]

log = logging.getLogger("tarsus.framework.node.process")

#: Children the node let go of while they run (:meth:`ProcessHandle.release`): kept here so
#: that ``Popen`` does not warn about them, and polled (reaped) at every spawn.
_RELEASED: list[subprocess.Popen[bytes]] = []

#: Seconds two readings of a process's start time may differ and still be the same process.
#: psutil derives it from the boot time, which moves when the wall clock is stepped.
CREATE_TIME_TOLERANCE = 1.0


def process_create_time(pid: int) -> float | None:
    """When ``pid`` started (epoch seconds), or None if there is no such live process."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except (psutil.Error, OSError):
        return None


def process_cmdline(pid: int) -> tuple[str, ...] | None:
    """The command line of the live process ``pid`` (the node's own user's processes only),
    or None if there is no such process or it belongs to another user."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.uids().real != os.getuid():
                return None
            return tuple(proc.cmdline())
    except (psutil.Error, OSError):
        return None


class ProcessHandle:
    """A supervised process: ``pid``, ``create_time``, and whether it is still running."""

    def __init__(
        self,
        pid: int,
        create_time: float,
        *,
        popen: subprocess.Popen[bytes] | None = None,
        session_leader: bool = False,
    ) -> None:
        self.pid = pid
        self.create_time = create_time
        self.popen = popen
        #: True when the process leads its own process group (we started it with setsid)
        self.session_leader = session_leader
        self.returncode: int | None = None
        self.exited = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def adopted(self) -> bool:
        return self.popen is None

    # -- making one --------------------------------------------------------------------------

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_file: Path,
    ) -> ProcessHandle:
        """Start ``argv`` in a new session; raises OSError when it cannot be started."""
        _RELEASED[:] = [p for p in _RELEASED if p.poll() is None]
        log_file.parent.mkdir(parents=True, exist_ok=True)
        cwd.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as out:
            popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        create_time = process_create_time(popen.pid)
        if create_time is None:  # gone already (a zombie): keep a time so it is not reused
            create_time = 0.0
        return cls(popen.pid, create_time, popen=popen, session_leader=True)

    @classmethod
    def adopt(cls, pid: int, create_time: float | None = None) -> ProcessHandle | None:
        """A handle on the running process ``pid``, or None if it is not running or (when
        ``create_time`` is given) is another process that got the same pid. The node's own
        process and its parent are never adopted."""
        if pid <= 0 or pid in (os.getpid(), os.getppid()):
            return None
        actual = process_create_time(pid)
        if actual is None:
            return None
        if create_time is not None and abs(actual - create_time) > CREATE_TIME_TOLERANCE:
            return None
        try:
            leader = os.getpgid(pid) == pid
        except OSError:
            return None
        return cls(pid, actual, session_leader=leader)

    # -- state -------------------------------------------------------------------------------

    def cmdline(self) -> tuple[str, ...]:
        """The process's command line now (after any ``exec`` of a start script); () when it
        cannot be read."""
        return process_cmdline(self.pid) or ()

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is this process or one of its descendants (a start script that
        runs the server as its child)."""
        if pid == self.pid:
            return True
        if pid <= 0 or not self.alive():
            return False
        try:  # up the parents of pid (cheap), not down the whole process table
            return any(parent.pid == self.pid for parent in psutil.Process(pid).parents())
        except (psutil.Error, OSError):
            return False

    def alive(self) -> bool:
        """Whether the process is still running (a zombie is not)."""
        if self.returncode is not None:
            return False
        if self.popen is not None:
            code = self.popen.poll()
            if code is None:
                return True
            self.returncode = code
            return False
        actual = process_create_time(self.pid)
        if actual is not None and abs(actual - self.create_time) <= CREATE_TIME_TOLERANCE:
            return True
        self._reap()
        return False

    def _reap(self) -> None:
        """An adopted process may still be our child (the node restarted in-process): reap it
        so it does not stay a zombie."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)

    def describe_exit(self) -> str:
        code = self.returncode
        if code is None:
            return "exited"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        return f"exited with status {code}"

    # -- watching ----------------------------------------------------------------------------

    def watch(self, on_exit: Callable[[ProcessHandle], None], poll_interval: float) -> None:
        """Call ``on_exit(self)`` (once) when the process ends."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._watch(on_exit, poll_interval), name=f"tarsus-node-watch-{self.pid}"
            )

    async def _watch(self, on_exit: Callable[[ProcessHandle], None], poll_interval: float) -> None:
        try:
            await self._wait_exit(poll_interval)
        except asyncio.CancelledError:
            raise
        except Exception:  # never lose the exit: fall back to polling
            log.exception("watching pid %d failed; polling instead", self.pid)
            while self.alive():
                await asyncio.sleep(poll_interval)
        self.exited.set()
        try:
            on_exit(self)
        except Exception:
            log.exception("exit handler for pid %d failed", self.pid)

    async def _wait_exit(self, poll_interval: float) -> None:
        pidfd = self._pidfd()
        if pidfd is None:
            while self.alive():
                await asyncio.sleep(poll_interval)
            return
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        try:
            loop.add_reader(pidfd, readable.set)
            try:
                while self.alive():
                    with contextlib.suppress(TimeoutError):
                        # readable means it ended; the timeout is only a safety net
                        async with asyncio.timeout(30.0):
                            await readable.wait()
                    if readable.is_set():
                        readable.clear()
                        if self.alive():  # readable yet running: never spin on it
                            await asyncio.sleep(poll_interval)
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)

    def _pidfd(self) -> int | None:
        opener = getattr(os, "pidfd_open", None)
        if opener is None:
            return None
        try:
            fd: int = opener(self.pid)
        except OSError:
            return None
        # The pid may have been recycled between the last check and pidfd_open.
        if not self.alive():
            os.close(fd)
            return None
        return fd

    async def wait_exited(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the process to end; True if it did. Polls as well
        (every 100 ms, as upstream) in case the watcher is not running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.alive():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.1)):
                    await self.exited.wait()
        return True

    def stop_watching(self) -> None:
        """Stop watching (the node is exiting); the process itself is left alone."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def release(self) -> None:
        """Stop watching and let the process run on without us (the node is exiting)."""
        self.stop_watching()
        if self.popen is not None and self.popen.poll() is None:
            _RELEASED.append(self.popen)
        self.popen = None

    # -- signals -----------------------------------------------------------------------------

    def signal(self, sig: signal.Signals, *, group: bool = True) -> bool:
        """Send ``sig`` to the process (its whole group when it leads one); False if it is
        no longer there."""
        if not self.alive():
            return False
        try:
            if group and self.session_leader:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError as e:
            log.warning("cannot send %s to pid %d: %s", sig.name, self.pid, e)
            return False
        return True

    def __repr__(self) -> str:
        kind = "adopted" if self.adopted else "child"
        return f"<ProcessHandle pid={self.pid} {kind}>"
