"""``Application``: a Tars server process — its adapters, its client side, its lifecycle.

Two ways to build one:

- **From the node's config file** (how tarsnode starts every server: ``--config=FILE``)::

      app = Application.from_config("conf/Test.HelloServer.config.conf",
                                    {"Test.HelloServer.HelloObj": HelloImpl()})
      await app.serve_forever()

  or, in a script, ``Application.main({...})`` / ``run({...})``, which also read
  ``--config``, set up the logs and exit 0 after a graceful stop. Each adapter domain
  (``<Test.HelloServer.HelloObjAdapter>``) gives the endpoint and limits of the servant it
  names; ``local`` adds the ``AdminObj`` tarsnode manages the server through; ``node`` turns on
  heartbeats.
- **Programmatically** (tests, scripts): ``Application()`` then ``add_servant(servant, name,
  endpoint)``.

Stopping (SIGTERM, SIGINT, ``AdminF.shutdown`` or ``request_stop``): stop heartbeats, stop
accepting connections, close idle connections, let calls in flight finish until the drain
deadline (80 % of the node's ``deactivating-timeout``, so the node does not kill us first),
close what is left, run the ``on_destroy`` hooks, close the communicator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import tarsus
import tarsus.idl
import tarsus.protocol
from tarsus.conf import ConfigError, TCConfig, parse, parse_file
from tarsus.rpc import logs
from tarsus.rpc.admin import (
    ADMIN_ADAPTER,
    ADMIN_SERVANT,
    AdminCommands,
    AdminHandler,
    admin_servant,
)
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint, EndpointError, parse_proxy
from tarsus.rpc.errors import TarsError
from tarsus.rpc.keepalive import KeepAlive
from tarsus.rpc.servant import Servant
from tarsus.rpc.server import Adapter
from tarsus.rpc.stats import StatReporter

__all__ = [
    "AdapterConfig",
    "Application",
    "ClientConfig",
    "ConfigLoadError",
    "ServerConfig",
    "ServerConfigError",
    "run",
]

log = logging.getLogger("tarsus.rpc.application")

_SERVER = "/tars/application/server"
_CLIENT = "/tars/application/client"
#: Adapter limits when the config leaves them out (TarsCpp ``Application::createAdapter``).
DEFAULT_MAX_CONNS = 128
DEFAULT_QUEUE_CAP = 1024
DEFAULT_QUEUE_TIMEOUT_MS = 10000
#: TarsCpp raises a shorter queuetimeout to this.
MIN_QUEUE_TIMEOUT_MS = 3000
#: The admin adapter's limits (``BindAdapter::DEFAULT_*``).
ADMIN_MAX_CONNS = 1024
ADMIN_QUEUE_CAP = 10240
ADMIN_QUEUE_TIMEOUT_MS = 60000
#: ms tarsnode waits for a stopping server before it kills it (template value).
DEFAULT_DEACTIVATING_TIMEOUT_MS = 3000
#: Of that time, the share given to calls in flight; the rest is for closing and exiting.
DRAIN_SHARE = 0.8
#: Drain timeout of a programmatic application (no config).
DEFAULT_DRAIN_TIMEOUT = 5.0
#: How many backups ``add_config`` keeps (``<file>.1.bak`` … ``<file>.5.bak``), as TarsCpp.
CONFIG_BACKUPS = 5

#: A hook run while the application starts or after it stopped; may be async.
Hook = Callable[["Application"], Awaitable[None] | None]


class ServerConfigError(ConfigError):
    """The server config cannot be used: names the key (or servant) and the file."""


class ConfigLoadError(Exception):
    """``add_config`` could not obtain the file, from tarsconfig or locally. ``str()`` is the
    reply TarsCpp gives (``[fail] get remote config '<file>' error:...``)."""


# ------------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class AdapterConfig:
    """One ``<App.Server.XxxAdapter>`` domain."""

    name: str
    servant: str
    endpoint: Endpoint
    max_conns: int = DEFAULT_MAX_CONNS
    queue_cap: int = DEFAULT_QUEUE_CAP
    queue_timeout_ms: int = DEFAULT_QUEUE_TIMEOUT_MS
    protocol: str = "tars"
    #: read and shown, not used: calls run on the event loop
    threads: int = 1
    order: str = "allow,deny"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClientConfig:
    """``<tars><application><client>``: the settings of this server's own calls."""

    locator: str = ""
    sync_invoke_timeout: int = 3000
    async_invoke_timeout: int = 5000
    refresh_endpoint_interval: int = 60000
    stat: str = ""
    property: str = ""
    report_interval: int = 60000
    modulename: str = ""
    #: every key of the domain as written, for ``tars.viewstatus``
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerConfig:
    """What a Tars server reads from the config file its node writes (docs/rpc-server.md)."""

    app: str
    server: str
    adapters: tuple[AdapterConfig, ...] = ()
    client: ClientConfig = field(default_factory=ClientConfig)
    localip: str = ""
    nodename: str = ""
    #: the admin endpoint (``local``), None when the server has no AdminObj
    local: Endpoint | None = None
    #: the node's ServerObj (``tars.tarsnode.ServerObj@tcp -h ...``), "" when not under a node
    node: str = ""
    basepath: str = "."
    datapath: str = "."
    logpath: str = ""
    logsize: int = logs.DEFAULT_LOG_SIZE
    lognum: int = logs.DEFAULT_LOG_NUM
    log_level: str = "DEBUG"
    config: str = ""
    notify: str = ""
    log: str = ""
    deactivating_timeout_ms: int = DEFAULT_DEACTIVATING_TIMEOUT_MS
    #: keepAlive period (TarsGo's ``mainloopticker``, ms)
    heartbeat_interval_ms: int = 10000
    enableset: bool = False
    setdivision: str = ""
    #: the file the config came from ("<text>" when given as text)
    source: str = "<text>"
    #: every key of ``<server>`` as written, for ``tars.viewstatus``
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.app}.{self.server}"

    def adapter_for(self, servant: str) -> AdapterConfig | None:
        return next((a for a in self.adapters if a.servant == servant), None)

    @classmethod
    def load(cls, source: str | os.PathLike[str] | TCConfig) -> ServerConfig:
        """Read a config file, config text (anything containing ``<``) or a parsed config."""
        if isinstance(source, TCConfig):
            return cls.from_tcconfig(source)
        if isinstance(source, str) and "<" in source:
            return cls.from_tcconfig(parse(source, source="<text>"))
        path = os.fspath(source)
        try:
            tc = parse_file(path)
        except OSError as e:
            raise ServerConfigError(f"cannot read the config: {e.strerror}", source=path) from e
        return cls.from_tcconfig(tc, source=path)

    @classmethod
    def from_tcconfig(cls, tc: TCConfig, *, source: str = "<text>") -> ServerConfig:
        reader = _Reader(tc, source)
        app = reader.required(f"{_SERVER}<app>")
        server = reader.required(f"{_SERVER}<server>")
        localip = tc.get(f"{_SERVER}<localip>")
        prefix = f"{app}.{server}."
        adapters = []
        for name in tc.domains(_SERVER):
            path = f"{_SERVER}/{name}"
            servant = reader.required(f"{path}<servant>")
            if not servant.startswith(prefix) or len(servant) <= len(prefix):
                raise ServerConfigError(
                    f"servant {servant!r} of adapter {name} must start with {prefix!r}",
                    source=source,
                )
            endpoint = reader.endpoint(f"{path}<endpoint>", localip, required=True)
            assert endpoint is not None
            adapters.append(
                AdapterConfig(
                    name=name,
                    servant=servant,
                    endpoint=endpoint,
                    max_conns=reader.integer(f"{path}<maxconns>", DEFAULT_MAX_CONNS),
                    queue_cap=reader.integer(f"{path}<queuecap>", DEFAULT_QUEUE_CAP),
                    queue_timeout_ms=max(
                        MIN_QUEUE_TIMEOUT_MS,
                        reader.integer(f"{path}<queuetimeout>", DEFAULT_QUEUE_TIMEOUT_MS),
                    ),
                    protocol=tc.get(f"{path}<protocol>") or "tars",
                    threads=reader.integer(f"{path}<threads>", 1),
                    order=tc.get(f"{path}<order>") or "allow,deny",
                    allow=_split_list(tc.get(f"{path}<allow>")),
                    deny=_split_list(tc.get(f"{path}<deny>")),
                )
            )
        servants = [a.servant for a in adapters]
        for servant in servants:
            if servants.count(servant) > 1:
                raise ServerConfigError(
                    f"servant {servant!r} is named by more than one adapter", source=source
                )
        node = tc.get(f"{_SERVER}<node>")
        if node:
            reader.proxy(f"{_SERVER}<node>")
        locator = tc.get(f"{_CLIENT}<locator>")
        if locator and not reader.proxy(f"{_CLIENT}<locator>").direct:
            raise ServerConfigError(
                f"{_CLIENT}<locator> = {locator!r} must name the registry's endpoints "
                "(tars.tarsregistry.QueryObj@tcp -h ... -p ...)",
                source=source,
            )
        client = ClientConfig(
            locator=locator,
            sync_invoke_timeout=reader.integer(f"{_CLIENT}<sync-invoke-timeout>", 3000),
            async_invoke_timeout=reader.integer(f"{_CLIENT}<async-invoke-timeout>", 5000),
            refresh_endpoint_interval=reader.integer(
                f"{_CLIENT}<refresh-endpoint-interval>", 60000
            ),
            stat=tc.get(f"{_CLIENT}<stat>"),
            property=tc.get(f"{_CLIENT}<property>"),
            report_interval=reader.integer(f"{_CLIENT}<report-interval>", 60000),
            modulename=tc.get(f"{_CLIENT}<modulename>") or f"{app}.{server}",
            params=tc.params(_CLIENT),
        )
        log_level = tc.get(f"{_SERVER}<logLevel>") or "DEBUG"
        try:
            logs.parse_level(log_level)
        except ValueError as e:
            raise ServerConfigError(f"{_SERVER}<logLevel>: {e}", source=source) from None
        enableset = tc.get("/tars/application<enableset>").strip().lower() == "y"
        return cls(
            app=app,
            server=server,
            adapters=tuple(adapters),
            client=client,
            localip=localip,
            nodename=tc.get(f"{_SERVER}<nodename>") or localip,
            local=reader.endpoint(f"{_SERVER}<local>", localip),
            node=node,
            basepath=tc.get(f"{_SERVER}<basepath>") or ".",
            datapath=tc.get(f"{_SERVER}<datapath>") or ".",
            logpath=tc.get(f"{_SERVER}<logpath>"),
            logsize=reader.size(f"{_SERVER}<logsize>", logs.DEFAULT_LOG_SIZE),
            lognum=max(1, reader.integer(f"{_SERVER}<lognum>", logs.DEFAULT_LOG_NUM)),
            log_level=log_level.upper(),
            config=tc.get(f"{_SERVER}<config>"),
            notify=tc.get(f"{_SERVER}<notify>"),
            log=tc.get(f"{_SERVER}<log>"),
            deactivating_timeout_ms=reader.integer(
                f"{_SERVER}<deactivating-timeout>", DEFAULT_DEACTIVATING_TIMEOUT_MS
            ),
            heartbeat_interval_ms=max(1, reader.integer(f"{_SERVER}<mainloopticker>", 10000)),
            enableset=enableset,
            setdivision=tc.get("/tars/application<setdivision>") if enableset else "",
            source=source,
            params=tc.params(_SERVER),
        )


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace(";", ",").split(",") if part.strip())


class _Reader:
    """Typed reads from a TCConfig whose errors name the key and the file."""

    def __init__(self, tc: TCConfig, source: str) -> None:
        self.tc = tc
        self.source = source

    def fail(self, message: str) -> NoReturn:
        raise ServerConfigError(message, source=self.source)

    def required(self, path: str) -> str:
        value = self.tc.get(path).strip()
        if not value:
            self.fail(f"{path} is missing (a Tars node always writes it)")
        return value

    def integer(self, path: str, default: int) -> int:
        text = self.tc.get(path).strip()
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            self.fail(f"{path} = {text!r} is not a whole number")

    def size(self, path: str, default: int) -> int:
        text = self.tc.get(path).strip()
        if not text:
            return default
        try:
            return logs.parse_size(text)
        except ValueError as e:
            self.fail(f"{path}: {e}")

    def endpoint(self, path: str, localip: str, *, required: bool = False) -> Endpoint | None:
        text = self.required(path) if required else self.tc.get(path).strip()
        if not text:
            return None
        try:
            endpoint = Endpoint.parse(text)
        except EndpointError as e:
            self.fail(f"{path}: {e}")
        if endpoint.host == "localip" and localip:  # as TarsCpp
            endpoint = dataclasses.replace(endpoint, host=localip)
        return endpoint

    def proxy(self, path: str) -> Any:
        try:
            return parse_proxy(self.tc.get(path))
        except EndpointError as e:
            self.fail(f"{path}: {e}")


# ------------------------------------------------------------------------------- application


class Application:
    """Serve servants on their endpoints; report to the node; stop gracefully."""

    def __init__(
        self, communicator: Communicator | None = None, *, config: ServerConfig | None = None
    ) -> None:
        self.config = config
        self.adapters: list[Adapter] = []
        self.admin_adapter: Adapter | None = None
        self.communicator = communicator or Communicator()
        self.admin = AdminCommands(self)
        self.keepalive: KeepAlive | None = None
        self.stats: StatReporter | None = None
        #: the rolling log's level as last set (config ``logLevel`` or ``tars.setloglevel``)
        self.log_level = config.log_level if config is not None else "DEBUG"
        self.started = False
        self._initializers: list[Hook] = []
        self._destroyers: list[Hook] = []
        self._stopped = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        source: str | os.PathLike[str] | TCConfig | ServerConfig,
        servants: Mapping[str, Servant] | None = None,
        *,
        communicator: Communicator | None = None,
    ) -> Application:
        """An application as the node's config file describes it.

        ``source`` is a file, config text, a parsed ``TCConfig`` or a ``ServerConfig``;
        ``servants`` maps servant names (``App.Server.HelloObj``) to implementations (more can
        be bound with :meth:`add_servant_impl` before ``start``).
        """
        config = source if isinstance(source, ServerConfig) else ServerConfig.load(source)
        if communicator is None:
            client = config.client
            options: dict[str, Any] = {}
            if config.params.get("datapath"):
                options["cache_dir"] = Path(config.datapath)  # registry answers kept there
            try:
                communicator = Communicator(
                    client.locator or None,
                    timeout_ms=client.sync_invoke_timeout,
                    refresh_endpoint_interval_ms=client.refresh_endpoint_interval,
                    enableset=config.enableset,
                    setdivision=config.setdivision,
                    node_name=config.nodename,
                    **options,
                )
            except ValueError as e:
                raise ServerConfigError(f"{_CLIENT}: {e}", source=config.source) from e
        app = cls(communicator, config=config)
        for name, servant in (servants or {}).items():
            app.add_servant_impl(name, servant)
        return app

    def add_servant(
        self, servant: Servant, servant_name: str, endpoint: str | Endpoint, **options: Any
    ) -> Adapter:
        """Serve ``servant`` as ``servant_name`` on ``endpoint`` (options: see ``Adapter``)."""
        adapter = Adapter(servant, servant_name, endpoint, **options)
        self.adapters.append(adapter)
        return adapter

    def add_servant_impl(self, servant_name: str, servant: Servant) -> Adapter:
        """Bind the implementation of ``servant_name``; its adapter comes from the config."""
        config = self._require_config("add_servant_impl")
        spec = config.adapter_for(servant_name)
        if spec is None:
            known = ", ".join(a.servant for a in config.adapters) or "none"
            raise ServerConfigError(
                f"no adapter serves {servant_name!r} (servants in the config: {known}); add a "
                f"<{servant_name}Adapter> domain under {_SERVER} with servant={servant_name}",
                source=config.source,
            )
        if any(a.servant_name == servant_name for a in self.adapters):
            raise ValueError(f"{servant_name!r} already has an implementation")
        if spec.protocol != "tars":
            raise ServerConfigError(
                f"{_SERVER}/{spec.name}<protocol> = {spec.protocol!r}: only 'tars' is supported",
                source=config.source,
            )
        if spec.allow or spec.deny:
            log.warning("%s: allow/deny lists are not enforced by tarsus yet", spec.name)
        return self.add_servant(
            servant,
            servant_name,
            spec.endpoint,
            name=spec.name,
            max_conns=spec.max_conns,
            queue_cap=spec.queue_cap,
            queue_timeout_ms=spec.queue_timeout_ms,
        )

    def add_admin(self, endpoint: str | Endpoint) -> Adapter:
        """Serve ``AdminObj`` on ``endpoint`` (from a config, ``local`` does this)."""
        if self.admin_adapter is not None:
            raise ValueError("the admin object is already served")
        self.admin_adapter = Adapter(
            admin_servant(self),
            ADMIN_SERVANT,
            endpoint,
            name=ADMIN_ADAPTER,
            max_conns=ADMIN_MAX_CONNS,
            queue_cap=ADMIN_QUEUE_CAP,
            queue_timeout_ms=ADMIN_QUEUE_TIMEOUT_MS,
        )
        return self.admin_adapter

    def register_admin(self, name: str, handler: AdminHandler) -> None:
        """Add the admin command ``name``; ``handler(args)`` returns the reply (may be async)."""
        self.admin.register(name, handler)

    def on_initialize(self, hook: Hook) -> Hook:
        """Run ``hook(app)`` during ``start``, after the admin object is up and before the
        servants are (C++ ``initialize()``); the node gets keepActiving meanwhile."""
        self._initializers.append(hook)
        return hook

    def on_destroy(self, hook: Hook) -> Hook:
        """Run ``hook(app)`` when stopping, after the adapters closed (C++ ``destroyApp()``)."""
        self._destroyers.append(hook)
        return hook

    def all_adapters(self) -> list[Adapter]:
        """The servants' adapters, then the admin adapter."""
        admin = [self.admin_adapter] if self.admin_adapter is not None else []
        return [*self.adapters, *admin]

    def _require_config(self, what: str) -> ServerConfig:
        if self.config is None:
            raise RuntimeError(f"{what} needs an application built with Application.from_config")
        return self.config

    # -- running -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the admin object, run the initialize hooks, bind the servants, start the
        heartbeats. A port already in use (or a missing servant) raises, with nothing left
        listening."""
        if self.started:
            return
        config = self.config
        if config is not None:
            missing = [
                a
                for a in config.adapters
                if not any(s.servant_name == a.servant for s in self.adapters)
            ]
            if missing:
                names = ", ".join(f"{a.servant} (adapter {a.name})" for a in missing)
                raise ServerConfigError(
                    f"no implementation for {names}: pass it to from_config or add_servant_impl",
                    source=config.source,
                )
            if config.local is not None and self.admin_adapter is None:
                self.add_admin(config.local)
            if config.node:
                self.keepalive = KeepAlive(
                    self.communicator,
                    config.node,
                    config.app,
                    config.server,
                    lambda: [a.name for a in self.all_adapters()],
                    interval=config.heartbeat_interval_ms / 1000.0,
                )
        started: list[Adapter] = []
        try:
            # The admin object first: the node can manage the server while it initialises.
            if self.admin_adapter is not None:
                await self.admin_adapter.start()
                started.append(self.admin_adapter)
            if self.keepalive is not None:
                async with self.keepalive.activing():
                    await self._run_hooks(self._initializers)
            else:
                await self._run_hooks(self._initializers)
            if self._stopping is not None:
                return  # told to stop while initialising (SIGTERM, AdminF.shutdown)
            for adapter in self.adapters:
                await adapter.start()
                started.append(adapter)
        except BaseException:
            for adapter in started:
                await adapter.stop_accepting()
                await adapter.close()
            raise
        if self.keepalive is not None:
            self.keepalive.start(version=tarsus.__version__)
        if config is not None and config.client.stat:
            await self._start_stats(config)
        self.started = True
        if config is not None:
            log.info(
                "%s started (pid %d): %s",
                config.full_name,
                os.getpid(),
                ", ".join(f"{a.name} on {a.bound_endpoint}" for a in self.all_adapters()),
            )

    async def _start_stats(self, config: ServerConfig) -> None:
        """Call statistics to tarsstat, as every upstream server sends them. A stat object
        that cannot be resolved (no locator) turns reporting off instead of failing start."""
        try:
            stats = StatReporter(
                self.communicator,
                config.client.stat,
                config.client.modulename or config.full_name,
                report_interval_ms=config.client.report_interval,
            )
        except TarsError as e:
            log.warning("call statistics off: %s", e)
            return
        stats.attach_client(self.communicator)
        for adapter in self.all_adapters():
            stats.attach_server(adapter)
        await stats.start()
        self.stats = stats

    async def _run_hooks(self, hooks: Sequence[Hook]) -> None:
        for hook in hooks:
            result = hook(self)
            if inspect.isawaitable(result):
                await result

    @property
    def drain_timeout(self) -> float:
        """Seconds calls in flight get when stopping (from ``deactivating-timeout``)."""
        if self.config is None:
            return DEFAULT_DRAIN_TIMEOUT
        return self.config.deactivating_timeout_ms / 1000.0 * DRAIN_SHARE

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop accepting, let in-flight calls finish (up to ``drain_timeout`` s, default
        :attr:`drain_timeout`), close. Calling it again waits for the same stop."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(
                self._stop(self.drain_timeout if drain_timeout is None else drain_timeout)
            )
        await asyncio.shield(self._stopping)

    def request_stop(self) -> None:
        """Start a graceful stop without waiting for it (signal handlers, ``AdminF.shutdown``)."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(
                self._stop(self.drain_timeout), name="tarsus-stop"
            )

    @property
    def stopping(self) -> bool:
        return self._stopping is not None

    async def _stop(self, drain_timeout: float) -> None:
        deadline = time.monotonic() + drain_timeout
        log.info("stopping: draining calls in flight for up to %.1fs", drain_timeout)
        if self.keepalive is not None:
            await self.keepalive.stop()
        adapters = self.all_adapters()
        stats, self.stats = self.stats, None
        for adapter in adapters:
            await adapter.stop_accepting()
        closing: set[Any] = set()
        while True:
            await asyncio.sleep(0)  # let replies already queued reach their sockets
            for adapter in adapters:
                for conn in list(adapter.connections):
                    if conn.pending == 0 and conn not in closing and conn.transport is not None:
                        closing.add(conn)
                        conn.transport.close()  # graceful: what is buffered is still sent
            running = {task for adapter in adapters for task in adapter.tasks}
            remaining = deadline - time.monotonic()
            if not running or remaining <= 0:
                break
            await asyncio.wait(running, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        for adapter in adapters:
            if adapter.tasks:
                log.warning(
                    "%s: %d calls still running after %.1fs, cancelling",
                    adapter.name,
                    len(adapter.tasks),
                    drain_timeout,
                )
        # Give gracefully closed connections a moment to flush before the rest are cut.
        for _ in range(50):
            if not any(conn in adapter.connections for adapter in adapters for conn in closing):
                break
            await asyncio.sleep(0.01)
        for adapter in adapters:
            await adapter.close()
        try:
            await self._run_hooks(self._destroyers)
        except Exception:
            log.exception("an on_destroy hook failed")
        if stats is not None:
            await stats.stop()  # one last report
        await self.communicator.close()
        self.started = False
        self._stopped.set()
        log.info("stopped")

    async def serve_forever(self) -> None:
        """Start, then run until SIGTERM/SIGINT, ``AdminF.shutdown`` or ``request_stop``,
        and the graceful stop that follows, are over."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
        try:
            if not self.started and not self._stopped.is_set():
                # A stop while starting (say, initialize hangs) cancels the start.
                starting = asyncio.ensure_future(self.start())
                stopped = asyncio.ensure_future(self._stopped.wait())
                await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                if not starting.done():
                    starting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await starting
                else:
                    starting.result()  # a failed start raises here
            await self._stopped.wait()
            if self._stopping is not None:
                await self._stopping
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.warning("%s: stopping", sig.name)
        self.request_stop()

    # -- business configuration from tarsconfig ---------------------------------------------

    async def add_config(self, filename: str, *, app_only: bool = False) -> str:
        """Pull ``filename`` from tarsconfig into ``basepath`` (C++ ``addConfig``,
        ``tars.loadconfig``); returns TarsCpp's report (``[succ] get remote config:...``).

        The file is written beside the old one and renamed over it; a changed file pushes the
        old one to ``<file>.1.bak`` (up to 5 kept). When tarsconfig fails but a local copy
        exists, the local copy is kept and the report starts with ``[fail]``; with no copy at
        all, ConfigLoadError is raised.
        """
        config = self._require_config("add_config")
        if not filename or Path(filename).name != filename or filename in (".", ".."):
            raise ConfigLoadError(
                f"[fail] get remote config '{filename}' error:a config file name cannot "
                "contain a directory"
            )
        target = Path(config.basepath) / filename
        error = ""
        content: str | None = None
        if not config.config:
            error = f"no config service: {_SERVER}<config> is not set in {config.source}"
        else:
            try:
                content = await self._fetch_config(config, filename, app_only)
            except Exception as e:
                error = str(e)
        if content is None:
            if target.is_file():
                return f"[fail] get remote config:{filename}fail,use the local config: {target}"
            raise ConfigLoadError(f"[fail] get remote config '{filename}' error:{error}")
        fresh = target.with_name(f"{filename}.{int(time.time())}")
        fresh.parent.mkdir(parents=True, exist_ok=True)
        fresh.write_text(content, encoding="utf-8", errors="surrogateescape")
        old = target.read_bytes() if target.is_file() else None
        if old is not None and old != fresh.read_bytes():
            for i in range(CONFIG_BACKUPS - 1, 0, -1):
                older = target.with_name(f"{filename}.{i}.bak")
                if older.exists():
                    older.replace(target.with_name(f"{filename}.{i + 1}.bak"))
            target.replace(target.with_name(f"{filename}.1.bak"))
        fresh.replace(target)
        log.info("config %s loaded into %s", filename, target)
        return f"[succ] get remote config:{filename}"

    async def _fetch_config(self, config: ServerConfig, filename: str, app_only: bool) -> str:
        tars = tarsus.idl.load(tarsus.protocol.path("ConfigF.tars")).tars
        proxy = self.communicator.string_to_proxy(tars.ConfigProxy, config.config)
        server = "" if app_only else config.server
        failure = "no answer"
        for _ in range(2):  # two tries, as TarsCpp
            try:
                if config.setdivision:
                    info = tars.ConfigInfo(
                        appname=config.app,
                        servername=server,
                        filename=filename,
                        bAppOnly=app_only,
                        setdivision=config.setdivision,
                    )
                    ret, text = await proxy.loadConfigByInfo(info)
                else:
                    ret, text = await proxy.loadConfig(config.app, server, filename)
            except Exception as e:
                failure = str(e)
                continue
            if ret != 0 or not text:
                raise ConfigLoadError(f"remote config file is empty:{filename} (ret {ret})")
            return str(text)
        raise ConfigLoadError(failure)

    # -- what tars.viewstatus shows ---------------------------------------------------------

    def client_settings(self) -> dict[str, str]:
        if self.config is None:
            comm = self.communicator
            return {"locator": comm.locator or "", "sync-invoke-timeout": str(comm.timeout_ms)}
        client = self.config.client
        settings = {
            "locator": client.locator,
            "sync-invoke-timeout": str(client.sync_invoke_timeout),
            "async-invoke-timeout": str(client.async_invoke_timeout),
            "refresh-endpoint-interval": str(client.refresh_endpoint_interval),
            "stat": client.stat,
            "property": client.property,
            "report-interval": str(client.report_interval),
            "modulename": client.modulename,
            "enableset": "y" if self.config.enableset else "n",
            "setdivision": self.config.setdivision,
        }
        for key, value in client.params.items():
            settings.setdefault(key, value)
        return settings

    def server_settings(self) -> dict[str, str]:
        config = self.config
        if config is None:
            return {"LogLevel(loglevel)": self.log_level}
        active = logs.active()
        settings = {
            "Application(app)": config.app,
            "ServerName(server)": config.server,
            "NodeName(nodename)": config.nodename,
            "BasePath(basepath)": config.basepath,
            "DataPath(datapath)": config.datapath,
            "LocalIp(localip)": config.localip,
            "Local(local)": str(config.local) if config.local else "",
            "LogPath(logpath)": config.logpath,
            "LogSize(logsize)": str(config.logsize),
            "LogNum(lognum)": str(config.lognum),
            "LogLevel(loglevel)": self.log_level,
            "Log(log)": config.log,
            "Node(node)": config.node,
            "Config(config)": config.config,
            "Notify(notify)": config.notify,
            "DeactivatingTimeout(deactivating-timeout)": f"{config.deactivating_timeout_ms}ms",
            "ConfigFile": config.source,
            "Pid": str(os.getpid()),
            "TarsusVersion": tarsus.__version__,
            "RollLog": str(active.roll_path) if active and active.roll_path else "stderr",
        }
        if self.keepalive is not None:
            settings["KeepAlive(sent/failed)"] = f"{self.keepalive.sent}/{self.keepalive.failed}"
        return settings

    # -- scripts -----------------------------------------------------------------------------

    def setup_logs(self) -> logs.ServerLog:
        """Send the process's logs to ``<logpath>/<App>/<Server>/<App>.<Server>.log`` as the
        config says (stderr without a logpath)."""
        config = self._require_config("setup_logs")
        return logs.setup(
            config.app,
            config.server,
            config.logpath or None,
            max_bytes=config.logsize,
            log_num=config.lognum,
            level=config.log_level,
        )

    @classmethod
    def main(
        cls,
        servants: Mapping[str, Servant] | None = None,
        *,
        argv: Sequence[str] | None = None,
        initialize: Hook | None = None,
    ) -> int:
        """Run a server the way tarsnode starts one: ``prog --config=FILE``.

        Reads the config, sets up the logs, binds ``servants`` by name, runs ``initialize``
        (register admin commands, load configs, bind more servants...), serves until SIGTERM,
        SIGINT or ``AdminF.shutdown``, stops gracefully. Returns the exit status: 0 after a
        graceful stop, 1 when the config or start-up fails (the reason goes to stderr and the
        log), 2 for bad arguments.
        """
        parser = argparse.ArgumentParser(description="A Tars server (tarsus).")
        parser.add_argument("--config", required=True, help="the config file the node wrote")
        args, _unknown = parser.parse_known_args(argv)
        try:
            app = cls.from_config(args.config)
        except (ConfigError, ValueError) as e:
            print(f"cannot start: {e}", file=sys.stderr)
            return 1
        server_log = app.setup_logs()
        try:
            return asyncio.run(app._main(servants or {}, initialize))
        finally:
            server_log.close()

    async def _main(self, servants: Mapping[str, Servant], initialize: Hook | None) -> int:
        try:
            for name, servant in servants.items():
                self.add_servant_impl(name, servant)
            if initialize is not None:
                self.on_initialize(initialize)
            await self.serve_forever()
        except (ConfigError, ValueError, OSError) as e:
            log.error("cannot start: %s", e)
            print(f"cannot start: {e}", file=sys.stderr)
            await self.communicator.close()
            return 1
        except Exception as e:  # an initialize hook failed: exit, as TarsCpp does
            log.exception("cannot start")
            print(f"cannot start: {type(e).__name__}: {e}", file=sys.stderr)
            await self.communicator.close()
            return 1
        return 0


def run(
    servants: Mapping[str, Servant] | None = None,
    *,
    argv: Sequence[str] | None = None,
    initialize: Hook | None = None,
) -> NoReturn:
    """``sys.exit(Application.main(...))``: the last line of a server script."""
    sys.exit(Application.main(servants, argv=argv, initialize=initialize))
