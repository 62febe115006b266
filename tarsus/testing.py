"""Test your servants without a cluster: real servers on free ports, real proxies, real sockets.

    async with serve(MyHello(), "Test.HelloServer.HelloObj") as served:
        hello = served.proxy(HelloProxy)
        assert await hello.sayHello("x") == (0, "hello x")

* :func:`serve` — a servant in-process on a free port, for the duration of a block;
* :class:`ServerThread` — the same on an event loop of its own in a daemon thread, for callers
  that block (a ``SyncCommunicator``, the ``tarsus`` CLI run as a subprocess);
  :class:`LoopThread` is that loop, for anything else a blocking test needs served;
* :func:`free_port` / :func:`free_ports` — ports to hand to a server in another process;
  :func:`port_is_free` — whether nothing listens on a given (fixed) port;
* :func:`patch_store_process` — the package store (``tars.tarspatch``) as a process of its
  own, for release tooling that uploads to it or downloads from it;
* :class:`TarsusUp` — ``tarsus up`` in a process of its own until Ctrl-C, as a user runs it;
  :func:`services_of` — the processes its node runs;
* :func:`eventually` / :func:`eventually_sync` — wait for a condition with a deadline, failing
  with a message that names what was awaited (never a bare ``sleep``).

The guide: docs/testing.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import psutil  # type: ignore[import-untyped]

from tarsus.rpc.application import Application

if TYPE_CHECKING:
    from tarsus.framework.allinone import Ports
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.proxy import ServantProxy
from tarsus.rpc.servant import Servant
from tarsus.rpc.server import Adapter

if TYPE_CHECKING:
    from tarsus.framework.allinone import Ports

P = TypeVar("P", bound=ServantProxy)
T = TypeVar("T")

#: How long :func:`eventually` waits by default. Generous on purpose: the deadline only bounds
#: a failure, and a loaded two-core machine takes seconds to start a Python server.
WAIT = 60.0
#: How often :func:`eventually` checks by default.
INTERVAL = 0.02


# ---------------------------------------------------------------------------------------------
# a servant on a free port


class Served:
    """A servant being served by :func:`serve` or :class:`ServerThread`."""

    def __init__(self, app: Application, adapter: Adapter, communicator: Communicator) -> None:
        self.app = app
        self.adapter = adapter
        self.communicator = communicator

    @property
    def endpoint(self) -> str:
        return str(self.adapter.bound_endpoint)

    @property
    def proxy_string(self) -> str:
        return f"{self.adapter.servant_name}@{self.endpoint}"

    def proxy(self, proxy_cls: type[P], *, version: int = 1) -> P:
        return self.communicator.string_to_proxy(proxy_cls, self.proxy_string, version=version)


@asynccontextmanager
async def serve(
    servant: Servant,
    servant_name: str = "Test.TestServer.TestObj",
    *,
    host: str = "127.0.0.1",
    **adapter_options: Any,
) -> AsyncIterator[Served]:
    """Serve ``servant`` on ``host`` at a free port for the duration of the block."""
    app = Application()
    adapter = app.add_servant(
        servant, servant_name, f"tcp -h {host} -p 0 -t 60000", **adapter_options
    )
    await app.start()
    comm = Communicator()
    try:
        yield Served(app, adapter, comm)
    finally:
        await comm.close()
        await app.stop(drain_timeout=1.0)


class LoopThread:
    """An asyncio event loop running in a daemon thread until :meth:`close`.

    Blocking test code uses it to keep async servers running beside it::

        with LoopThread() as loop:
            store = loop.run(open_store(url))
    """

    def __init__(self, name: str = "tarsus-testing-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, aw: Awaitable[T], timeout: float = WAIT) -> T:
        """Run ``aw`` on the loop, wait for it (at most ``timeout`` s) and return its result."""

        async def wrapped() -> T:
            return await aw

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=timeout)

    def close(self) -> None:
        """Stop the loop and its thread; what still runs on it is abandoned."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ServerThread:
    """:func:`serve` on a :class:`LoopThread`, for callers that block or run in another process.

        with ServerThread(MyHello(), "Test.HelloServer.HelloObj") as server:
            subprocess.run(["tarsus", "call", server.proxy_string, ...])

    ``server.run(coro)`` runs a coroutine on the server's loop (to look at or change the
    servant's state from the test).
    """

    def __init__(
        self,
        servant: Servant,
        servant_name: str = "Test.TestServer.TestObj",
        *,
        host: str = "127.0.0.1",
        **adapter_options: Any,
    ) -> None:
        self._loop = LoopThread(f"tarsus-testing-{servant_name}")
        self._cm: AbstractAsyncContextManager[Served] = serve(
            servant, servant_name, host=host, **adapter_options
        )
        try:
            self.served: Served = self._loop.run(self._cm.__aenter__())
        except BaseException:
            self._loop.close()
            raise

    @property
    def endpoint(self) -> str:
        return self.served.endpoint

    @property
    def proxy_string(self) -> str:
        return self.served.proxy_string

    def run(self, aw: Awaitable[T], timeout: float = WAIT) -> T:
        """Run ``aw`` on the server's loop and return its result."""
        return self._loop.run(aw, timeout)

    def stop(self) -> None:
        """Stop serving (connections drained for up to a second) and end the thread."""
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._cm.__aexit__(None, None, None))
        finally:
            self._loop.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# free ports

#: Where :func:`free_ports` looks: below the kernel's ephemeral range (Linux: 32768-60999), so an
#: outgoing connection cannot take a port between the test choosing it and a server binding it,
#: and above the framework's well-known ports (12000, 17890, 17891, 18601, 18793, 19386).
PORT_RANGE = range(20000, 30000)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` different ports of ``host`` that nothing listens on, to hand to other processes.

    They are free when chosen; a server started afterwards binds them (a port another program
    takes meanwhile gives that server a clear "address already in use"). A server in this
    process binds port 0 instead (:func:`serve` does).
    """
    ports: list[int] = []
    with ExitStack() as held:  # held until all are chosen, so they differ
        for port in random.sample(PORT_RANGE, len(PORT_RANGE)):
            if len(ports) == n:
                break
            sock = held.enter_context(socket.socket())
            try:
                sock.bind((host, port))
            except OSError:
                continue
            ports.append(port)
    if len(ports) < n:
        raise RuntimeError(f"only {len(ports)} of {n} ports free in {PORT_RANGE} on {host}")
    return ports


def framework_ports(**given: int) -> Ports:
    """:class:`~tarsus.framework.allinone.Ports` with every framework service on a free port
    (``given`` ones as they are), for a framework beside others on this machine: the defaults
    are upstream's fixed ports, which one ``tarsus up`` at a time may hold.

        ports = framework_ports()
        settings = AllInOneSettings(data_dir=tmp, ports=ports, run_node=False)
    """

    from tarsus.framework.allinone import Ports

    names = [f.name for f in dataclasses.fields(Ports) if f.name not in given]
    return Ports(**dict(zip(names, free_ports(len(names)), strict=True)), **given)


def free_port(host: str = "127.0.0.1") -> int:
    """A port of ``host`` that nothing listens on (see :func:`free_ports`)."""
    return free_ports(1, host)[0]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing accepts connections on ``port`` of ``host``: before a test starts
    something on a fixed port (upstream's 17890, 12000...), and after it stopped it."""
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


# ---------------------------------------------------------------------------------------------
# waiting for a condition


def _failure(
    what: str, timeout: float, last: object, describe: Callable[[], str] | None = None
) -> AssertionError:
    message = f"never happened within {timeout:g} s: {what} (last check: {last!r})"
    if describe is not None:
        message += "\n" + describe()
    return AssertionError(message)


@overload
async def eventually(
    check: Callable[[], Coroutine[Any, Any, T]],
    what: str,
    *,
    timeout: float = ...,
    interval: float = ...,
    ignoring: type[Exception] | tuple[type[Exception], ...] = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    what: str,
    *,
    timeout: float = ...,
    interval: float = ...,
    ignoring: type[Exception] | tuple[type[Exception], ...] = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    what: str,
    *,
    timeout: float = WAIT,
    interval: float = INTERVAL,
    ignoring: type[Exception] | tuple[type[Exception], ...] = (),
) -> Any:
    """Call ``check()`` (plain or async) every ``interval`` s until it returns something truthy,
    and return that. After ``timeout`` s raise ``AssertionError`` naming ``what`` was awaited
    and the last value seen. Exceptions of the ``ignoring`` types count as "not yet"; any
    other propagates at once.

        await eventually(lambda: node.state == "active", "the node to report Active")
        rows = await eventually(store.servers.list, "a server row", ignoring=StoreUnavailable)
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            last = check()
            if inspect.isawaitable(last):
                last = await last
        except ignoring as e:
            last = e
        else:
            if last:
                return last
        if loop.time() >= deadline:
            raise _failure(what, timeout, last)
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T],
    what: str,
    *,
    timeout: float = WAIT,
    interval: float = INTERVAL,
    ignoring: type[Exception] | tuple[type[Exception], ...] = (),
    describe: Callable[[], str] | None = None,
) -> T:
    """:func:`eventually` for code without an event loop: ``check`` is a plain callable and the
    wait blocks the thread. On failure the message ends with ``describe()`` if given (a
    process's log, say).

        eventually_sync(lambda: "is up" in log.read_text(), "the up line", describe=log.read_text)
    """
    deadline = time.monotonic() + timeout
    while True:
        last: object
        try:
            value = check()
        except ignoring as e:
            last = e
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, last, describe)
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# tarsus up in a process of its own

#: What ``tarsus up`` prints once everything answers (tarsus/cli/up.py).
UP_LINE = " is up"
#: The fixed ports ``tarsus up`` listens on, upstream's: the registry's QueryObj and
#: RegistryObj, the admin registry's AdminRegObj, the package store's PatchObj, the node's
#: ServerObj, the example Hello; and the HTTP app's 3000 (upstream TarsWeb's).
FRAMEWORK_PORTS = (
    17890, 17891, 12000, 18793, 19386, 18601, 3000,
    18193, 18993, 18293, 18493, 18593, 18393, 18693, 18893,
)  # fmt: skip


class TarsusUp:
    """``tarsus up ARGS`` as a user runs it: a process of its own, its output appended to
    ``log``; the constructor returns once it printed that it is up. :meth:`stop` is Ctrl-C.

        with TarsusUp("--data-dir", str(tmp_path / "data"), log=tmp_path / "up.log") as up:
            subprocess.run(["tarsus", "call", ...])
        assert up.returncode == 0, up.log_text()

    It needs the framework's fixed ports (:data:`FRAMEWORK_PORTS`, or ``ports``): if one is
    taken it fails at once (``AssertionError``) rather than start a second framework beside
    another. A failure to come up (the process exits, or ``timeout`` s pass) kills the process
    and raises ``AssertionError`` with the log.
    """

    def __init__(
        self,
        *args: str,
        log: Path,
        cwd: Path | None = None,
        timeout: float = WAIT,
        ports: tuple[int, ...] = FRAMEWORK_PORTS,
    ) -> None:
        busy = [port for port in ports if not port_is_free(port)]
        if busy:
            raise AssertionError(
                f"ports {busy} are taken: another Tars framework runs here; stop it first"
            )
        self.log = log
        ups_before = self.log_text().count(UP_LINE)
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tarsus", "up", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
            )

        def up() -> bool:
            if self.log_text().count(UP_LINE) > ups_before:
                return True
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"tarsus up exited ({self.proc.returncode}):\n{self.log_text()}"
                )
            return False

        try:
            eventually_sync(
                up, "tarsus up to come up", timeout=timeout, interval=0.1, describe=self.log_text
            )
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    @property
    def returncode(self) -> int | None:
        """The exit status once it stopped, else None."""
        return self.proc.returncode

    def log_text(self) -> str:
        """What it printed so far (the whole log file)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = WAIT) -> int:
        """Ctrl-C (SIGINT) and wait for it to exit; return its exit status. If it has not
        exited within ``timeout`` s it is killed and ``AssertionError`` raised with the log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"tarsus up did not stop on Ctrl-C within {timeout:g} s:\n{self.log_text()}"
                ) from None
        return self.proc.returncode

    def __enter__(self) -> TarsusUp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def patch_store_process(
    root: Path,
    port: int,
    *,
    chunk_size: str | None = None,
    disk_reserve: str | None = None,
    stdout: int | None = None,
) -> subprocess.Popen[bytes]:
    """The package store, ``tars.tarspatch.PatchObj``, as a process of its own on
    ``127.0.0.1:port``, run as a node runs it (``python -m tarsus.framework.patch
    --config=FILE``) from a config written under ``root``: its files go to ``root/patchs/tars``
    (staged) and ``root/patchs/tars.upload`` (uploads), upstream's ``directory`` and
    ``uploadDirectory``. ``chunk_size`` is upstream's ``size`` (a download chunk, ``64K``),
    ``disk_reserve`` our ``<tarsus>diskReserve``. With ``stdout`` (``subprocess.PIPE``) its
    output and errors go there. The caller waits until it answers, and ends it."""
    ours = f"  <tarsus>\n    diskReserve = {disk_reserve}\n  </tarsus>\n" if disk_reserve else ""
    size = f"  size = {chunk_size}\n" if chunk_size else ""
    conf = root / "tars.tarspatch.config.conf"
    conf.write_text(
        f"""<tars>
  directory = {root / "patchs" / "tars"}
  uploadDirectory = {root / "patchs" / "tars.upload"}
{size}{ours}  <application>
    <server>
      app=tars
      server=tarspatch
      localip=127.0.0.1
      logpath={root / "log"}
      <tars.tarspatch.PatchObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=tars.tarspatch.PatchObj
      </tars.tarspatch.PatchObjAdapter>
    </server>
  </application>
</tars>
"""
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tarsus.framework.patch", f"--config={conf}"],
        stdout=stdout,
        stderr=None if stdout is None else subprocess.STDOUT,
    )


#: Starts a process: ``(argv, log)`` -> the process, its output appended to ``log``.
Launcher = Callable[[list[str], Path], "subprocess.Popen[bytes]"]


def launch_logged(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``argv``, its output appended to ``log``: :class:`PrivateMariaDB`'s default
    :data:`Launcher` (wrap it to add a prefix, such as ``taskset -c 1``)."""
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


class PrivateMariaDB:
    """A ``mariadbd`` of a test's (or a bench's) own, never the machine's shared server: its
    files under ``root``, listening on ``host:port``, started by ``launch`` (a network
    namespace's ``popen``, ``taskset``...), ``root@'%'`` without a password as the shared test
    server has. Needs Debian's ``mariadb-server`` (:meth:`unavailable_reason`).

    :meth:`install` creates the data directory and starts it; :meth:`kill` (SIGKILL, a crash)
    and :meth:`start` again; :meth:`stop` (a clean shutdown) at the end."""

    INSTALL_DB = "mariadb-install-db"
    MARIADBD = "/usr/sbin/mariadbd"

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        launch: Launcher = launch_logged,
        options: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.host = host
        self.port = free_port() if port is None else port
        self.launch = launch
        self.options = options
        self.data = root / "data"
        self.socket = root / "mysqld.sock"
        self.log = root / "mariadbd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why a private MariaDB cannot be run here (None when it can)."""
        if shutil.which(cls.INSTALL_DB) is None or not os.access(cls.MARIADBD, os.X_OK):
            return "mariadb-server is not installed (apt-get install mariadb-server)"
        return None

    def url(self, database: str = "") -> str:
        return f"mysql://root@{self.host}:{self.port}/{database}".rstrip("/")

    def install(self, timeout: float = 120.0) -> None:
        """Create the data directory, start, and let ``root`` in from anywhere."""
        self.root.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                self.INSTALL_DB, "--no-defaults", f"--datadir={self.data}", "--user=root",
                "--auth-root-authentication-method=normal", "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{self.INSTALL_DB} failed: {done.stdout}{done.stderr}")
        self.start(timeout)
        self.sql("CREATE USER 'root'@'%'; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION")

    def start(self, timeout: float = 60.0) -> None:
        """Start on the existing data directory and wait until it answers."""
        self.proc = self.launch(
            [
                self.MARIADBD, "--no-defaults", f"--datadir={self.data}", "--user=root",
                f"--bind-address={self.host}", f"--port={self.port}", f"--socket={self.socket}",
                f"--pid-file={self.root / 'mysqld.pid'}", "--skip-name-resolve",
                "--skip-log-bin", "--max-connections=500", *self.options,
            ],
            self.log,
        )  # fmt: skip
        eventually_sync(
            self.answers,
            "the private MariaDB to answer",
            timeout=timeout,
            describe=lambda: self.log.read_text()[-2000:],
        )

    def answers(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited: {self.log.read_text()[-2000:]}")
        done = subprocess.run(
            ["mariadb-admin", "--no-defaults", f"--socket={self.socket}", "-uroot", "ping"],
            capture_output=True,
        )
        return done.returncode == 0

    def sql(self, statements: str) -> str:
        """Run ``statements`` as root over the socket; their output, tab-separated."""
        done = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-e",
             statements],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return done.stdout

    def kill(self) -> None:
        """SIGKILL: the database is gone at once, mid-transaction if one was running."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), if it runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


def services_of(data_dir: Path, marker: str = "") -> list[psutil.Process]:
    """The processes the node of ``tarsus up --data-dir DATA_DIR`` runs (each is started with
    a ``--config=`` file under the data directory, tarsus/framework/node), only those with
    ``marker`` in their command line if given. Empty once ``tarsus up`` stopped cleanly."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline: list[str] = proc.info["cmdline"] or []
        configs = [part for part in cmdline if part.startswith("--config=")]
        if any(str(data_dir) in part for part in configs) and (
            not marker or any(marker in part for part in cmdline)
        ):
            found.append(proc)
    return found


__all__ = [
    "FRAMEWORK_PORTS",
    "INTERVAL",
    "PORT_RANGE",
    "UP_LINE",
    "WAIT",
    "LoopThread",
    "PrivateMariaDB",
    "Served",
    "ServerThread",
    "TarsusUp",
    "eventually",
    "eventually_sync",
    "framework_ports",
    "free_port",
    "free_ports",
    "launch_logged",
    "patch_store_process",
    "port_is_free",
    "serve",
    "services_of",
]
