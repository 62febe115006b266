"""``Communicator``: where proxies come from.

A communicator holds the client settings (locator, timeouts, shielding policy, set) and one
``ObjectProxy`` per servant name, shared by every proxy to it, so connections are shared too.

    comm = Communicator()
    hello = comm.string_to_proxy(HelloProxy, "Test.HelloServer.HelloObj@tcp -h 127.0.0.1 -p 18601")
    ret, greeting = await hello.sayHello("bob")

With a locator, bare names are resolved through the registry (``tarsus.rpc.locator``)::

    comm = Communicator("tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890")
    hello = comm.string_to_proxy(HelloProxy, "Test.HelloServer.HelloObj")
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from tarsus.codec.constants import TARSVERSION
from tarsus.rpc.client import CallRecord, ObjectProxy
from tarsus.rpc.endpoint import parse_proxy
from tarsus.rpc.errors import NoEndpointError
from tarsus.rpc.health import ShieldPolicy
from tarsus.rpc.locator import (
    CACHE_FILE_NAME,
    EndpointCache,
    EndpointManager,
    Locator,
    QueryMethod,
    RefreshSchedule,
    RegistryObjectProxy,
    check_set_division,
    default_cache_dir,
)
from tarsus.rpc.proxy import ServantProxy
from tarsus.rpc.security import ServantSecurity

P = TypeVar("P", bound=ServantProxy)


class _Default(enum.Enum):
    TOKEN = "default"


#: ``cache_dir`` default: ``$TARSUS_CACHE_DIR``, else ``~/.cache/tarsus`` (see
#: :func:`tarsus.rpc.locator.default_cache_dir`).
DEFAULT_CACHE_DIR: _Default = _Default.TOKEN


class Communicator:
    """Client settings and the object proxies made with them.

    - *locator*: the registry's QueryObj with its endpoints
      (``tars.tarsregistry.QueryObj@tcp -h H -p 17890``); needed for bare object names.
    - *timeout_ms*: default call timeout (C++ ``sync-invoke-timeout``);
      *connect_timeout_ms*: TCP connect timeout.
    - *shield_policy*: dead-node shielding thresholds (``tarsus.rpc.health``).
    - *refresh_endpoint_interval_ms*: how often registry answers are refreshed (default
      60000, at least 5000 as in C++); *refresh_schedule* replaces the whole schedule
      (retry intervals too, no floor; meant for tests).
    - *enableset*, *setdivision*: set mode; bare names are then resolved with
      ``findObjectByIdInSameSet(name, setdivision)``.
    - *query_method*: the QueryF call used outside set mode (default
      ``findObjectByIdInSameGroup``, as upstream clients; see ``tarsus.rpc.locator``).
    - *node_name*: this machine's node name, sent as ``node_name`` in the context of registry
      lookups (as TarsCpp servers do), so the registry places us in the right IDC group.
    - *cache_dir*: where registry answers are cached (``endpoints.json``); ``None`` disables
      the cache.
    - *security*: by object name, the access keys (endpoints with ``-e 1``) and TLS files
      (``ssl`` endpoints) of calls to it, as a client config's object domains give them
      (``tarsus.rpc.security``, docs/security.md).
    """

    def __init__(
        self,
        locator: str | None = None,
        *,
        timeout_ms: int = 3000,
        connect_timeout_ms: int = 1500,
        shield_policy: ShieldPolicy | None = None,
        refresh_endpoint_interval_ms: int | None = None,
        refresh_schedule: RefreshSchedule | None = None,
        enableset: bool = False,
        setdivision: str = "",
        query_method: QueryMethod = "findObjectByIdInSameGroup",
        node_name: str = "",
        cache_dir: str | os.PathLike[str] | _Default | None = DEFAULT_CACHE_DIR,
        security: Mapping[str, ServantSecurity] | None = None,
    ) -> None:
        self.locator = locator
        self.security = dict(security or {})
        self.timeout_ms = timeout_ms
        self.connect_timeout_ms = connect_timeout_ms
        self.shield_policy = shield_policy or ShieldPolicy()
        if refresh_schedule is not None and refresh_endpoint_interval_ms is not None:
            raise ValueError("pass refresh_endpoint_interval_ms or refresh_schedule, not both")
        if refresh_schedule is None:
            refresh_schedule = RefreshSchedule.from_interval_ms(
                60_000 if refresh_endpoint_interval_ms is None else refresh_endpoint_interval_ms
            )
        self.refresh_schedule = refresh_schedule
        self.enableset = enableset
        self.setdivision = check_set_division(setdivision) if enableset else setdivision
        self.query_method: QueryMethod = query_method
        self.node_name = node_name
        if isinstance(cache_dir, _Default):
            self.cache_dir: Path | None = default_cache_dir()
        else:
            self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._objects: dict[tuple[str, int], ObjectProxy] = {}
        self._locator: Locator | None = None
        self._managers: list[EndpointManager] = []
        #: called with a CallRecord after every two-way call through this communicator
        self.observers: list[Callable[[CallRecord], None]] = []
        if locator is not None:
            self._check_locator(locator)

    def string_to_proxy(self, proxy_cls: type[P], name: str, *, version: int = TARSVERSION) -> P:
        """A proxy for ``Obj@endpoints`` (direct) or a bare ``Obj`` (through the locator)."""
        return proxy_cls(self.object_proxy(name, version=version))

    def object_proxy(self, name: str, *, version: int = TARSVERSION) -> ObjectProxy:
        key = (name, version)
        obj = self._objects.get(key)
        if obj is None:
            target = parse_proxy(name)
            options: dict[str, Any] = {
                "timeout_ms": self.timeout_ms,
                "connect_timeout_ms": self.connect_timeout_ms,
                "version": version,
                "policy": self.shield_policy,
                "observers": self.observers,
                "security": self.security.get(target.obj_name),
            }
            if target.endpoints:
                obj = ObjectProxy(target.obj_name, target.endpoints, **options)
            else:
                if self.locator is None:
                    raise NoEndpointError(
                        message=f"{name!r} names no endpoint and no locator is configured"
                    )
                located = RegistryObjectProxy(target.obj_name, self._get_locator(), **options)
                self._managers.append(located.manager)
                obj = located
            self._objects[key] = obj
        return obj

    @property
    def registry(self) -> Locator:
        """The registries of the locator: ``registry.ask(lambda query: query.findObjectById(
        name))`` runs one ``QueryF`` call, hedged across them (``Locator.ask``)."""
        if self.locator is None:
            raise NoEndpointError(message="no locator is configured")
        return self._get_locator()

    @property
    def endpoint_cache(self) -> EndpointCache | None:
        """The on-disk cache of registry answers (None without locator or with caching off)."""
        return self._get_locator().cache if self.locator is not None else None

    def _get_locator(self) -> Locator:
        if self._locator is None:
            assert self.locator is not None
            cache = None
            if self.cache_dir is not None:
                cache = EndpointCache(self.cache_dir / CACHE_FILE_NAME)
            # One proxy per registry: the locator hedges lookups across them.
            target = parse_proxy(self.locator)
            self._locator = Locator(
                self.locator,
                [self.object_proxy(f"{target.obj_name}@{ep}") for ep in target.endpoints],
                schedule=self.refresh_schedule,
                query_method=self.query_method,
                set_division=self.setdivision if self.enableset else None,
                cache=cache,
                node_name=self.node_name,
            )
        return self._locator

    @staticmethod
    def _check_locator(locator: str) -> None:
        if not parse_proxy(locator).direct:
            raise ValueError(
                f"locator {locator!r} must name the registry's endpoints, e.g. "
                "'tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890'"
            )

    async def close(self) -> None:
        """Stop registry refreshes, close connections, write pending cache entries."""
        managers, self._managers = self._managers, []
        for manager in managers:
            await manager.stop()
        for obj in self._objects.values():
            obj.close()
        self._objects.clear()
        if self._locator is not None and self._locator.cache is not None:
            await self._locator.cache.flush()
        self._locator = None

    async def __aenter__(self) -> Communicator:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
