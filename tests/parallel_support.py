"""Running the suite in parallel worker processes (pytest-xdist; docs/testing.md, "In parallel").

``scripts/test`` runs ``pytest -n N`` (``--dist loadscope`` in pyproject.toml);
``tests/conftest.py`` applies this module so that nobody has to ask for it:

* every test module is one unit of work (:class:`ModuleScheduling`, :func:`group_of`): its
  module-scoped fixtures (a framework, a platform) start once, on the worker that runs the
  module; modules whose source says ``pytest.mark.xdist_group("name")`` share a worker;
* the modules that run ``tarsus up`` on upstream's fixed ports (17890, 12000, ..., TarsWeb's
  3000) are marked ``fixed_ports`` (:func:`mark_fixed_ports`: those whose source calls
  :class:`tarsus.testing.TarsusUp`, whose default is those ports; others say
  ``pytestmark = pytest.mark.fixed_ports``). Their tests run on a loopback of the process's
  own (:class:`PrivateLoopback`, a network namespace; MariaDB relayed into it), so two workers,
  or another run on the machine, never meet on those ports. Without root they are one group,
  :data:`FIXED_PORTS`, run one after another on the machine's loopback.

:func:`heaviest_first` orders the units so that the long ones start first (a long unit
started last makes the whole run wait for it). And each run keeps its temporary files to
itself (:func:`run_directory`): pytest's own ``/tmp/pytest-of-<user>/`` keeps the last three
runs of *any* process of that user, so a run started beside ours deleted our files under us.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

#: The group of the modules that use upstream's fixed ports on 127.0.0.1.
FIXED_PORTS = "fixed-ports"
#: How a test weighs when the units are ordered: a ``slow`` one takes 3 s or more, a MariaDB
#: variant makes and drops a database; most others take a fraction of a second.
WEIGHTS = {"slow": 20, "mariadb": 2}
#: Earlier runs' directories kept for a look after the fact (as pytest keeps three).
KEEP_RUNS = 3


_NAMED_GROUP = re.compile(r"""xdist_group\(\s*(?:name\s*=\s*)?["']([^"']+)["']""")
_FIXED_PORTS_SOURCE = ("TarsusUp(", "mark.fixed_ports")


@functools.cache
def _source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def uses_fixed_ports(path: Path) -> bool:
    """Whether the test module at ``path`` runs ``tarsus up`` on upstream's fixed ports: it
    calls ``TarsusUp(`` or is marked ``fixed_ports``."""
    return any(sign in _source(path) for sign in _FIXED_PORTS_SOURCE)


def group_of(path: Path, *, own_loopback: bool) -> str:
    """The unit of work of the test module at ``path`` (see the module's docstring)."""
    named = _NAMED_GROUP.search(_source(path))
    if named:
        return named.group(1)
    if uses_fixed_ports(path) and not own_loopback:
        return FIXED_PORTS
    return str(path)


def mark_fixed_ports(items: list[pytest.Item]) -> None:
    """Mark ``fixed_ports`` the tests of every module that :func:`uses_fixed_ports`."""
    for item in items:
        if uses_fixed_ports(item.path):
            item.add_marker(pytest.mark.fixed_ports)


class ModuleScheduling(LoadScopeScheduling):
    """xdist's ``loadscope`` with :func:`group_of` as the scope: whole modules to a worker,
    modules of one named group to the same one. (xdist's ``loadgroup`` cannot do it under
    pytest 9: it renames test ids, which pytest 9 no longer lets a plugin do.)"""

    def __init__(self, config: pytest.Config, log: Any = None, *, own_loopback: bool) -> None:
        super().__init__(config, log)
        self._root = Path(config.rootpath)
        self._own_loopback = own_loopback

    def _split_scope(self, nodeid: str) -> str:
        module = self._root / nodeid.split("::", 1)[0]
        return group_of(module, own_loopback=self._own_loopback)


def heaviest_first(items: list[pytest.Item], *, own_loopback: bool) -> None:
    """Reorder ``items`` in place: whole units, the heaviest first, each unit's tests (and so
    each module's) in their collected order. The run's order is the one the workers
    collected."""
    weight: dict[str, int] = defaultdict(int)
    first: dict[str, int] = {}
    groups = [group_of(item.path, own_loopback=own_loopback) for item in items]
    for index, (item, group) in enumerate(zip(items, groups, strict=True)):
        first.setdefault(group, index)
        weight[group] += 1 + sum(w for m, w in WEIGHTS.items() if item.get_closest_marker(m))
    order = {
        id(item): (-weight[g], first[g], i)
        for i, (item, g) in enumerate(zip(items, groups, strict=True))
    }
    items.sort(key=lambda item: order[id(item)])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_directory() -> tuple[Path, Path]:
    """Directories of this run's own, ``<tmp>/tarsus-<uid>/<pid>`` (pytest's basetemp; the
    workers' are below it) and ``<pid>.cache`` beside it (the ``TARSUS_CACHE_DIR`` of every
    test and every process they start). Short, as paths under it must fit upstream's columns
    (an ``exe_path`` of at most 128 characters). Those of earlier runs whose process is gone
    are removed but the newest :data:`KEEP_RUNS`; those of running runs never are."""
    root = Path(tempfile.gettempdir()) / f"tarsus-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    finished = []
    for old in root.iterdir():
        with contextlib.suppress(ValueError):
            if not old.name.endswith(".cache") and not _alive(int(old.name)):
                finished.append(old)
    finished.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in finished[KEEP_RUNS:]:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(old.with_name(f"{old.name}.cache"), ignore_errors=True)
    run = root / str(os.getpid())
    cache = run.with_name(f"{run.name}.cache")
    for stale in (run, cache):  # a finished run's whose pid came round again
        shutil.rmtree(stale, ignore_errors=True)
    return run, cache


# -- a loopback of the worker's own for the fixed-port tests --------------------------------

_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class PrivateLoopback:
    """A network namespace of this process's own (``ip netns add``), which the main thread
    enters for the tests marked ``fixed_ports`` (:meth:`enter`) and leaves for the others
    (:meth:`leave`): in it 17890, 12000, 3000... are free whatever else the machine (another
    worker, another run) has on them, and everything the test starts (``tarsus up``, TarsWeb)
    runs there too. Only the calling thread moves; threads and processes it starts inside
    inherit the namespace.

    MariaDB (``forward``: host, port on the machine's loopback) is relayed into it: a listener
    on the same address inside, whose connections a thread that stays outside carries on to
    the real server.
    """

    def __init__(self, name: str, forward: tuple[str, int] | None) -> None:
        self.name = name
        self._forward = forward
        self._outside = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self._inside: int | None = None
        self.entered = False

    @staticmethod
    def unavailable_reason() -> str | None:
        if os.geteuid() != 0:
            return "a network namespace needs root"
        if shutil.which("ip") is None:
            return "iproute2 ('ip') is not installed"
        return None

    def _create(self) -> int:
        prefix = self.name.rstrip("0123456789")
        with contextlib.suppress(OSError):  # those of killed runs (named after their pid)
            for stale in Path("/run/netns").glob(f"{prefix}*"):
                pid = stale.name.removeprefix(prefix)
                if pid.isdigit() and not _alive(int(pid)):
                    subprocess.run(["ip", "netns", "del", stale.name], capture_output=True)
        for argv in (["netns", "add", self.name], ["-n", self.name, "link", "set", "lo", "up"]):
            done = subprocess.run(["ip", *argv], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"ip {' '.join(argv)}: {done.stderr.strip()}")
        inside = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        if self._forward is not None:
            _setns(inside)
            try:  # the listener belongs to the namespace it was made in
                listener = socket.create_server(self._forward)
            finally:
                _setns(self._outside)
            relay = threading.Thread(
                target=_relay, args=(listener, self._forward), name="mariadb-relay", daemon=True
            )
            relay.start()  # made outside, it connects outside
        return inside

    def enter(self) -> None:
        if self.entered:
            return
        if self._inside is None:
            self._inside = self._create()
        _setns(self._inside)
        self.entered = True

    def leave(self) -> None:
        if self.entered:
            _setns(self._outside)
            self.entered = False

    def close(self) -> None:
        self.leave()
        if self._inside is not None:
            os.close(self._inside)
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        os.close(self._outside)


def _relay(listener: socket.socket, target: tuple[str, int]) -> None:
    def pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def carry(conn: socket.socket) -> None:
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
        back.start()
        pipe(conn, upstream)
        back.join()
        conn.close()
        upstream.close()

    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=carry, args=(conn,), daemon=True).start()
