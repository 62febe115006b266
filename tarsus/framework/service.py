"""One shape for every framework service (the registry, the admin registry, and those to come).

Upstream, every framework service is an ordinary Tars server of application ``tars``
(``tars.tarsregistry``, ``tars.tarsAdminRegistry``, ...): a node starts it with
``<bin> --config=<file>`` from the config it generated, like any business server
(TarsFramework ``deploy/tars-install.sh``; ``RegistryServer::initialize``). Here a framework
service is:

* a :class:`ServiceSpec`: its server name, its servants with upstream's object names and
  ports, and the module whose ``main`` runs it;
* a :class:`FrameworkService` subclass holding the plain logic, built by
  :meth:`~FrameworkService.from_config` from the service's TC_Config (and the store named in
  it), whose :meth:`~FrameworkService.servants` are thin adapters over that logic, and whose
  background work is :class:`~tarsus.rpc.periodic.Periodic` loops in
  :attr:`~FrameworkService.loops`, started and stopped with the service;
* :func:`host`, which serves it in an :class:`~tarsus.rpc.application.Application` (all the
  services in one process for ``tarsus up``, or one per process);
* ``python -m tarsus.framework.<service> --config=FILE`` (:func:`main`): the service as a
  process of its own under a node agent (``tarsus up --processes``).

docs/architecture.md shows a new service written in this shape.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self, TypeVar
from urllib.parse import quote

from tarsus.conf import ConfigError, TCConfig, parse_file
from tarsus.rpc.periodic import Periodic

if TYPE_CHECKING:
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.notify import RemoteNotify
    from tarsus.rpc.servant import Servant
    from tarsus.rpc.server import Adapter
    from tarsus.store.engine import Store

__all__ = [
    "FRAMEWORK_APP",
    "FrameworkService",
    "ServiceSpec",
    "host",
    "main",
    "require_store",
    "store_url",
]

log = logging.getLogger("tarsus.framework.service")

_S = TypeVar("_S", bound="FrameworkService")

#: The application every framework service belongs to (upstream's ``tars``).
FRAMEWORK_APP = "tars"


@dataclass(frozen=True)
class ServiceSpec:
    """What the platform knows of a framework service before it runs."""

    #: the server name under application ``tars`` (``tarsregistry``)
    name: str
    #: ``(object, port)`` of each servant, upstream's names and default ports
    servants: tuple[tuple[str, int], ...]
    #: the module ``python -m`` runs (its ``main`` calls :func:`main`)
    module: str
    #: whether it keeps its state in the store (``/tars/db``); one that does not (the package
    #: store, ``tars.tarspatch``) starts without a database and gets ``store=None``
    uses_store: bool = True

    @property
    def server_id(self) -> str:
        return f"{FRAMEWORK_APP}.{self.name}"

    def endpoints(self, host: str, ports: Mapping[str, int] | None = None) -> dict[str, str]:
        """Each servant's endpoint on ``host`` (``ports`` overrides the defaults)."""
        ports = ports or {}
        return {
            servant: f"tcp -h {host} -p {ports.get(servant, port)} -t 60000"
            for servant, port in self.servants
        }

    def launcher(self) -> str:
        """A Python file that runs the service as ``python -m`` would; what a node executes
        (``exe_path``) for it. Upstream installs a binary per service the same way."""
        return (
            f'"""{self.server_id}: written by `tarsus up --processes` for the node to run."""\n'
            "import runpy\n\n"
            f'runpy.run_module("{self.module}", run_name="__main__", alter_sys=True)\n'
        )


class FrameworkService(abc.ABC):
    """A framework service: plain logic, servants over it, loops started and stopped with it.

    Subclasses set :attr:`spec`, build themselves in :meth:`from_config`, return their
    servants from :meth:`servants` and append their loops to :attr:`loops`; override
    :meth:`start` / :meth:`stop` for work beyond the loops (calling ``super()``).
    """

    spec: ClassVar[ServiceSpec]

    def __init__(self) -> None:
        #: the servants' adapters in :meth:`servants` order, once served (:func:`host`)
        self.adapters: list[Adapter] = []
        #: background loops, started by :meth:`start` in this order, stopped in reverse
        self.loops: list[Periodic] = []
        #: where the service's own events go (tars.tarsnotify; docs/notify.md): set by
        #: :func:`host` from the application's config (``/tars/application/server<notify>``)
        #: or by whoever builds it; None reports nothing
        self.notifier: RemoteNotify | None = None
        #: called when the service can no longer do its work and its process should stop
        #: (then the node starts it again): set by :func:`host` to the application's stop
        self.on_failure: Callable[[], None] | None = None

    @classmethod
    @abc.abstractmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        """The service as its TC_Config (written by a node) describes it. ``store`` is None
        only for a service whose spec says it uses none (:func:`require_store`)."""

    @abc.abstractmethod
    def servants(self) -> Mapping[str, Servant]:
        """Servant name -> implementation: thin adapters over the service's logic."""

    @property
    def listening(self) -> bool:
        """Every served servant accepts calls (true when none is served: a service used
        without :func:`host`, in tools and tests)."""
        return all(a.accepting for a in self.adapters)

    def report(
        self, message: str, *, application: str = "", server: str = "", node: str = ""
    ) -> None:
        """An event for ``t_server_notifys`` (level from the marker in ``message``), about
        this service or, with ``application``/``server``/``node``, about another server;
        never blocks (:class:`~tarsus.rpc.notify.RemoteNotify`)."""
        if self.notifier is not None:
            self.notifier.report(message, application=application, server=server, node=node)

    async def start(self) -> None:
        for loop in self.loops:
            loop.start()

    async def stop(self) -> None:
        for loop in reversed(self.loops):
            await loop.stop()


def host(app: Application, service: _S, endpoints: Mapping[str, str] | None = None) -> _S:
    """Serve ``service`` in ``app``: its servants on ``endpoints`` (servant -> endpoint), or
    on the adapters of ``app``'s config when None; :meth:`~FrameworkService.start` runs in
    ``app``'s initialize hook (so the servants listen once it is done) and
    :meth:`~FrameworkService.stop` in its destroy hook. A service without a
    :attr:`~FrameworkService.notifier` reports its events to the ``notify`` object of
    ``app``'s config, when it names one; its :attr:`~FrameworkService.on_failure` stops
    ``app``."""
    if service.notifier is None and app.config is not None and app.config.notify:
        service.notifier = app.notifier  # closed with the application
    if service.on_failure is None:
        service.on_failure = app.request_stop
    for name, servant in service.servants().items():
        if endpoints is None:
            adapter = app.add_servant_impl(name, servant)
        else:
            adapter = app.add_servant(servant, name, endpoints[name], name=f"{name}Adapter")
        service.adapters.append(adapter)

    async def start(_app: Application) -> None:
        await service.start()

    async def stop(_app: Application) -> None:
        await service.stop()

    app.on_initialize(start)
    app.on_destroy(stop)
    return service


# ------------------------------------------------------------------ the store's address


def store_url(tc: TCConfig) -> str:
    """The store a framework service's config names.

    ``/tars/db<url>`` (ours: any URL :func:`~tarsus.store.open_store` takes), else upstream's
    ``/tars/db`` keys ``dbhost``, ``dbport``, ``dbuser``, ``dbpass``, ``dbname`` (MySQL, as
    TarsFramework's ``tars.tarsregistry.config.conf`` writes them)."""
    url = tc.get("/tars/db<url>", "").strip()
    if url:
        return url
    host = tc.get("/tars/db<dbhost>", "").strip()
    if not host:
        raise ConfigError("no store configured: set /tars/db<url> (or upstream's dbhost...)")
    user = quote(tc.get("/tars/db<dbuser>", "").strip(), safe="")
    password = quote(tc.get("/tars/db<dbpass>", ""), safe="")
    port = tc.get("/tars/db<dbport>", "3306").strip() or "3306"
    name = tc.get("/tars/db<dbname>", "db_tars").strip() or "db_tars"
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"mysql://{credentials}{host}:{port}/{name}"


def require_store(spec: ServiceSpec, store: Store | None) -> Store:
    """``store``, for a service that cannot run without one."""
    if store is None:
        raise ConfigError(f"{spec.server_id} keeps its state in the store: none was given")
    return store


# ------------------------------------------------------------------ one service, one process


def main(cls: type[FrameworkService], argv: Sequence[str] | None = None) -> int:
    """Run ``cls`` as its own process the way a node starts it: ``--config=FILE``.

    Returns 0 after a graceful stop (SIGTERM, SIGINT, ``AdminF.shutdown``), 1 when the
    config, the store or start-up fails (the reason on stderr and in the log), 2 for bad
    arguments."""
    from tarsus.rpc.application import Application, ServerConfig

    parser = argparse.ArgumentParser(
        prog=f"python -m {cls.spec.module}", description=f"{cls.spec.server_id} (tarsus)"
    )
    parser.add_argument("--config", required=True, help="the config file the node wrote")
    args, _unknown = parser.parse_known_args(argv)
    try:
        tc = parse_file(args.config)
        config = ServerConfig.from_tcconfig(tc, source=args.config)
        url = store_url(tc) if cls.spec.uses_store else None
        app = Application.from_config(config)
    except (ConfigError, OSError, ValueError) as e:
        print(f"cannot start {cls.spec.server_id}: {e}", file=sys.stderr)
        return 1
    server_log = app.setup_logs()
    try:
        return asyncio.run(_serve(cls, app, tc, config, url))
    finally:
        server_log.close()


async def _serve(
    cls: type[FrameworkService],
    app: Application,
    tc: TCConfig,
    config: ServerConfig,
    url: str | None,
) -> int:
    from tarsus.store import StoreError, open_store

    try:
        store = None if url is None else await open_store(url)
    except (StoreError, OSError) as e:
        log.error("cannot open the store: %s", e)
        print(f"cannot start {cls.spec.server_id}: the store: {e}", file=sys.stderr)
        await app.communicator.close()
        return 1
    try:
        host(app, cls.from_config(tc, config, store))
        await app.serve_forever()
    except (ConfigError, ValueError, OSError) as e:
        log.error("cannot start: %s", e)
        print(f"cannot start {cls.spec.server_id}: {e}", file=sys.stderr)
        await app.communicator.close()
        return 1
    finally:
        if store is not None:
            await store.close()
    return 0
