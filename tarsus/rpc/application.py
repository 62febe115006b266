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
close what is left, run the ``on_destroy`` hooks, send the last reports (stats, remote log,
notify, properties: side by side, within what is left of the ``deactivating-timeout``, so a
framework that is away does not hold the stop until the node kills the process), close the
communicator.

Its parts live beside it: the config file is read by ``tarsus.rpc.server_config``, business
config files come from tarsconfig through ``tarsus.rpc.remote_config``, and each adapter drains
its own calls and connections (``Adapter.drain`` in ``tarsus.rpc.server``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import tarsus
from tarsus.codec.constants import SERVER_ADMIN_OBJ
from tarsus.conf import ConfigError, TCConfig
from tarsus.rpc import logs, remote_config, remote_log, runtime
from tarsus.rpc.adapter_properties import AdapterProperties
from tarsus.rpc.admin import (
    ADMIN_ADAPTER,
    AdminCommands,
    AdminHandler,
    admin_servant,
)
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.errors import TarsError
from tarsus.rpc.keepalive import KeepAlive
from tarsus.rpc.notify import RemoteNotify
from tarsus.rpc.property import Policy, Property, PropertyReporter
from tarsus.rpc.remote_config import ConfigLoadError
from tarsus.rpc.remote_log import RemoteLog
from tarsus.rpc.servant import Servant
from tarsus.rpc.server import Adapter
from tarsus.rpc.server_config import (
    CLIENT_DOMAIN,
    SERVER_DOMAIN,
    AdapterConfig,
    ClientConfig,
    ServerConfig,
    ServerConfigError,
)
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

#: The admin adapter's limits (``BindAdapter::DEFAULT_*``).
ADMIN_MAX_CONNS = 1024
ADMIN_QUEUE_CAP = 10240
ADMIN_QUEUE_TIMEOUT_MS = 60000
#: Of that time, the share given to calls in flight; the rest is for closing and exiting.
DRAIN_SHARE = 0.8
#: Drain timeout of a programmatic application (no config).
DEFAULT_DRAIN_TIMEOUT = 5.0
#: Seconds the last reports (stats, remote log, notify, properties) get at least when stopping:
#: sent side by side within what is left of the stop's time (``deactivating-timeout``), and
#: dropped past it; a framework that is away must not hold a stopping server until the node
#: kills it.
FINAL_REPORTS_MIN = 0.5

#: A hook run while the application starts or after it stopped; may be async.
Hook = Callable[["Application"], Awaitable[None] | None]
#: ``hook(filename, path)``: a config file tarsconfig pushed (``tars.loadconfig``) is in place.
ConfigHook = Callable[[str, Path], Awaitable[None] | None]


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
        #: the remote logger (config ``<log>``: tars.tarslog.LogObj), once started
        self.remote_log: RemoteLog | None = None
        self._notifier: RemoteNotify | None = None
        #: reports to tarsproperty (config ``<client><property>``), once started
        self.properties: PropertyReporter | None = None
        self.adapter_properties: AdapterProperties | None = None
        self._business_properties: dict[str, Property] = {}
        #: the rolling log's level as last set (config ``logLevel`` or ``tars.setloglevel``)
        self.log_level = config.log_level if config is not None else "DEBUG"
        self.started = False
        #: once started, freeze what start-up allocated and collect less often
        #: (:func:`tarsus.rpc.runtime.tune_gc`); :meth:`main` turns it on, as it owns the process
        self.tune_gc = False
        self._initializers: list[Hook] = []
        self._destroyers: list[Hook] = []
        self._config_hooks: list[ConfigHook] = []
        self._stopped = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None

    @property
    def notifier(self) -> RemoteNotify:
        """This server's alarms and events to the ``notify`` object of its config (upstream
        ``TarsRemoteNotify``; without one, notifications are dropped). tarsus.rpc.notify."""
        if self._notifier is None:
            c = self.config
            self._notifier = RemoteNotify(
                self.communicator,
                c.notify if c is not None else "",
                application=c.app if c is not None else "",
                server=c.server if c is not None else "",
                node=(c.nodename or c.localip) if c is not None else "",
                set_id=c.setdivision if c is not None else "",
            )
        return self._notifier

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
                    security=client.objects,
                    **options,
                )
            except ValueError as e:
                raise ServerConfigError(f"{CLIENT_DOMAIN}: {e}", source=config.source) from e
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
                f"<{servant_name}Adapter> domain under {SERVER_DOMAIN} with servant={servant_name}",
                source=config.source,
            )
        if any(a.servant_name == servant_name for a in self.adapters):
            raise ValueError(f"{servant_name!r} already has an implementation")
        if spec.protocol != "tars":
            raise ServerConfigError(
                f"{SERVER_DOMAIN}/{spec.name}<protocol> = {spec.protocol!r}: "
                "only 'tars' is supported",
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
            security=spec.security,
        )

    def add_admin(self, endpoint: str | Endpoint) -> Adapter:
        """Serve ``AdminObj`` on ``endpoint`` (from a config, ``local`` does this)."""
        if self.admin_adapter is not None:
            raise ValueError("the admin object is already served")
        self.admin_adapter = Adapter(
            admin_servant(self),
            SERVER_ADMIN_OBJ,
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
            if self.tune_gc:  # start-up is over: its one full collection before calls come
                runtime.tune_gc()
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
        if config is not None and config.log:
            self._start_remote_log(config)
        if config is not None and config.client.property:
            await self._start_properties(config)
        self.started = True
        if config is not None:
            log.info(
                "%s started (pid %d, %s loop): %s",
                config.full_name,
                os.getpid(),
                runtime.loop_name(asyncio.get_running_loop()),
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

    def _start_remote_log(self, config: ServerConfig) -> None:
        """Day logs and dyed records to tarslog, as upstream's remote logger (docs/logs.md)."""
        try:
            remote = RemoteLog(
                self.communicator,
                config.app,
                config.server,
                log_obj=config.log,
                set_division=config.setdivision,
            )
        except TarsError as e:
            log.warning("remote log off: %s", e)
            return
        remote_log.install(remote)
        remote.start()
        self.remote_log = remote

    async def _start_properties(self, config: ServerConfig) -> None:
        """Properties to tarsproperty: the adapters' queue, connection rate and queue
        timeouts (as TarsCpp servers report them) and the business properties made with
        :meth:`property`. A property object that cannot be resolved turns reporting off."""
        try:
            reporter = PropertyReporter(
                self.communicator,
                config.client.property,
                config.client.modulename or config.full_name,
                report_interval_ms=config.client.report_interval,
            )
        except TarsError as e:
            log.warning("properties off: %s", e)
            return
        for prop in self._business_properties.values():
            reporter.add(prop)
        sampler = AdapterProperties(reporter, self.adapters)
        sampler.start()
        await reporter.start()
        self.properties = reporter
        self.adapter_properties = sampler

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
        started = time.monotonic()
        deadline = started + drain_timeout
        log.info("stopping: draining calls in flight for up to %.1fs", drain_timeout)
        if self.keepalive is not None:
            await self.keepalive.stop()
        adapters = self.all_adapters()
        stats, self.stats = self.stats, None
        remote, self.remote_log = self.remote_log, None
        props, self.properties = self.properties, None
        sampler, self.adapter_properties = self.adapter_properties, None
        if sampler is not None:
            await sampler.stop()
        await asyncio.gather(*(adapter.drain(deadline) for adapter in adapters))
        for adapter in adapters:
            await adapter.close()
        try:
            await self._run_hooks(self._destroyers)
        except Exception:
            log.exception("an on_destroy hook failed")
        if remote is not None:
            remote_log.uninstall(remote)
        # one last report each (what is queued), side by side, in the time the stop has left
        last: list[Awaitable[None]] = [
            sender
            for sender in (
                stats.stop() if stats is not None else None,
                remote.stop() if remote is not None else None,
                self._notifier.close() if self._notifier is not None else None,
                props.stop() if props is not None else None,
            )
            if sender is not None
        ]
        if last:
            left = started + drain_timeout / DRAIN_SHARE * 0.95 - time.monotonic()
            await _within(last, max(FINAL_REPORTS_MIN, left))
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
        ``tars.loadconfig``); see :func:`tarsus.rpc.remote_config.add_config`. The outcome
        goes to :attr:`notifier` as TarsCpp's (``[succ] get remote config:...``, normal; a
        ``[fail] ...``, the local copy kept or none at all, error)."""
        config = self._require_config("add_config")
        try:
            reply = await remote_config.add_config(
                self.communicator, config, filename, app_only=app_only
            )
        except ConfigLoadError as e:
            self.notifier.report(str(e))
            raise
        self.notifier.report(reply)
        return reply

    def on_config_pushed(self, hook: ConfigHook) -> ConfigHook:
        """Run ``hook(filename, path)`` each time ``tars.loadconfig <file>`` (an operator's
        push, ``tarsus config push``) put a fresh copy of a file in ``basepath``: reread it
        there. Not run when the config service failed and the local copy was kept. A hook
        that raises is logged and named in the command's reply; the file stays."""
        self._config_hooks.append(hook)
        return hook

    async def load_pushed_config(self, filename: str) -> str:
        """``tars.loadconfig <file>``: :meth:`add_config`, then the :meth:`on_config_pushed`
        hooks when the file was fetched; returns the command's reply."""
        try:
            reply = await self.add_config(filename)
        except ConfigLoadError as e:
            log.warning("tars.loadconfig %s: %s", filename, e)
            return str(e)
        if not reply.startswith("[succ]"):
            return reply
        path = Path(self._require_config("add_config").basepath) / filename
        for hook in self._config_hooks:
            try:
                result = hook(filename, path)
                if inspect.isawaitable(result):
                    await result
            except Exception as e:
                log.exception("config hook %r for %s failed", hook, filename)
                reply += f"; [fail] callback {getattr(hook, '__name__', hook)}: {e}"
        return reply

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
        SIGINT or ``AdminF.shutdown``, stops gracefully. Runs on uvloop when it is installed
        (``TARSUS_LOOP`` chooses; :mod:`tarsus.rpc.runtime`) and tunes the garbage collector
        once serving. Returns the exit status: 0 after a
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
        try:
            loop = runtime.chosen_loop()
        except ValueError as e:
            print(f"cannot start: {e}", file=sys.stderr)
            return 1
        server_log = app.setup_logs()
        app.tune_gc = True
        try:
            return runtime.run(app._main(servants or {}, initialize), loop)
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

    # -- business properties (defined last: the name shadows the builtin in the class) --

    def property(self, name: str, *policies: Policy) -> Property:
        """A business property, reported to tarsproperty every report interval with each of
        its policies (C++ ``createPropertyReport``)::

            orders = app.property("orders", Sum(), Count())
            latency = app.property("dbLatency", Avg(), Max(), Distr([5, 10, 50, 100]))
            orders.report(3)

        Made once: asking again for a name returns the first property (its policies are
        kept; none need be given). Usable before :meth:`start`; without a property service in
        the config the samples are kept but never sent. ``report`` may be called from any
        thread. Policies: ``Sum``, ``Count``, ``Avg``, ``Max``, ``Min``, ``Distr`` from
        :mod:`tarsus.rpc.property` (docs/stats.md).
        """
        prop = self._business_properties.get(name)
        if prop is None:
            prop = Property(name, policies)
            self._business_properties[name] = prop
            if self.properties is not None:
                prop = self.properties.add(prop)
        return prop


def run(
    servants: Mapping[str, Servant] | None = None,
    *,
    argv: Sequence[str] | None = None,
    initialize: Hook | None = None,
) -> NoReturn:
    """``sys.exit(Application.main(...))``: the last line of a server script."""
    sys.exit(Application.main(servants, argv=argv, initialize=initialize))


async def _within(senders: Sequence[Awaitable[None]], timeout: float) -> None:
    """Run ``senders`` side by side; those not done within ``timeout`` s are cancelled (what
    they had not sent is dropped, and said)."""
    tasks = [asyncio.ensure_future(sender) for sender in senders]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        log.warning(
            "stopping: %d of the last reports to the framework not sent within %.1fs: dropped",
            len(pending),
            timeout,
        )
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning("stopping: a last report failed: %s", task.exception())
