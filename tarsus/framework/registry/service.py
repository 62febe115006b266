"""The registry service: the route cache kept in step with the database, and node reports.

:class:`Registry` owns the store, the :class:`~tarsus.framework.registry.routes.RouteCache`
and the background loops (upstream `ReapThread` and `CheckNodeThread`; docs/registry.md):

* start: a full route load, retried every ``init_retry_interval`` until the database answers
  (a registry without routes is no use; upstream does the same);
* every ``load_interval``: own ``t_registry_info`` heartbeat, then an incremental load (a full
  one every ``full_load_interval``, with the group rules); every ``registry_timeout``: other
  registries without heartbeat marked inactive;
* every ``node_sweep_interval``: nodes silent for ``node_timeout`` (and their servers) marked
  inactive, in the database *and* at once in the route cache;
* every ``flush_interval``: queued ``keepAlive`` and ``reportVersion`` calls written, one
  statement for all keepAlives.

The database going away never stops lookups: every failure keeps the last snapshot, is logged
once per outage, and the loops retry on their schedule.

It is a :class:`~tarsus.framework.service.FrameworkService` (docs/architecture.md, "one
service shape"): :func:`~tarsus.framework.service.host` — or :func:`add_registry` with explicit
endpoints — serves ``tars.tarsregistry.QueryObj`` and ``tars.tarsregistry.RegistryObj`` from an
:class:`~tarsus.rpc.application.Application` and ties the loops to it: they start in the
application's ``on_initialize`` hook (so the servants listen only once routes are loaded) and
stop in its ``on_destroy`` hook. ``python -m tarsus.framework.registry --config=FILE`` runs it
as a process of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Self

from tarsus.conf import ConfigError, ConfigValues, TCConfig, parse
from tarsus.framework.outage import DB_ERRORS, DatabaseOutage
from tarsus.framework.registry.routes import (
    INACTIVE,
    REGISTRY_KEY,
    CompiledServers,
    GroupIndex,
    RouteCache,
    RouteRow,
    RouteSnapshot,
    StatusKey,
    compile_rows,
    cxx_atoi,
)
from tarsus.framework.registry.settings import (
    QUERY_PORT,
    QUERY_SERVANT,
    REGISTRY_PORT,
    REGISTRY_SERVANT,
    RegistrySettings,
)
from tarsus.framework.service import FrameworkService, ServiceSpec, host, require_store
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.errors import Ret, TarsError
from tarsus.rpc.periodic import Periodic
from tarsus.store import routes as db
from tarsus.store.errors import InvalidInput, NotFound
from tarsus.store.nodes import REGISTER_CONFLICT

if TYPE_CHECKING:
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store
    from tarsus.store.rows import AdapterRow, ServerRow

__all__ = ["PRESENT_STATE_OF", "REGISTRY_SPEC", "Registry", "add_registry", "present_state_of"]

log = logging.getLogger("tarsus.registry")

#: ``tars.tarsregistry``: upstream's objects and ports (TarsFramework
#: ``deploy/framework/conf/tarsregistry``).
REGISTRY_SPEC: Final = ServiceSpec(
    name="tarsregistry",
    servants=((QUERY_SERVANT, QUERY_PORT), (REGISTRY_SERVANT, REGISTRY_PORT)),
    module="tarsus.framework.registry",
)

#: ``tars.ServerState`` number -> the ``present_state`` value stored. ``Destroying`` has no
#: column value upstream (MySQL refuses it); it is stored as ``destroyed``.
PRESENT_STATE_OF: Final[Mapping[int, str]] = {
    0: "inactive",
    1: "activating",
    2: "active",
    3: "deactivating",
    4: "destroyed",
    5: "destroyed",
}
#: Rows compiled in a worker thread above this many (the event loop keeps answering lookups).
_THREAD_ROWS = 200
#: Loads bigger than this freeze their routes out of the cyclic GC's sight (see _gc_paused).
_FREEZE_ROWS = 2000
#: keepAlive/reportVersion entries kept while the database is down (one per node/instance).
_QUEUE_LIMIT = 200_000
#: Seconds a load may take before it is abandoned (the old routes stay).
_LOAD_TIMEOUT = 120.0
#: Seconds to wait for our own servants to listen before the first heartbeat.
_BIND_WAIT = 30.0


def present_state_of(state: int) -> str:
    """The stored ``present_state`` of a reported ``tars.ServerState`` (unknown: inactive, as
    tarsnode's own default)."""
    return PRESENT_STATE_OF.get(int(state), "inactive")


class Registry(FrameworkService):
    """The registry of one process: routes, node reports, and the loops keeping them fresh.

    Start with :meth:`start` (returns once the first full load succeeded), stop with
    :meth:`stop`; :func:`~tarsus.framework.service.host` does both through an application's
    hooks. Lookups read :attr:`snapshot`. Its :attr:`adapters` (QueryObj first) are what goes
    into ``t_registry_info``.
    """

    spec = REGISTRY_SPEC

    def __init__(self, store: Store, settings: RegistrySettings | None = None) -> None:
        super().__init__()
        self.store = store
        self.settings = settings or RegistrySettings()
        self.cache = RouteCache()
        #: node name -> peer of its last ``reportNode`` (kept, as upstream, for the record)
        self.reported_nodes: dict[str, tuple[str, int] | None] = {}
        self.loads = 0
        self._outage = DatabaseOutage(log, self.report, consequence="lookups go on from memory")
        self._keepalives: dict[str, tuple[float, float, float]] = {}
        self._versions: dict[StatusKey, str] = {}
        self._load_lock = asyncio.Lock()
        self._started = False
        self._reload_pending = False
        self._background: set[asyncio.Task[None]] = set()
        self._last_full = -float("inf")
        self._last_expiry = -float("inf")
        self._last_ok_load: datetime | None = None
        # In-memory state changes, replayed over loads whose query began before them.
        self._seq = 0
        self._recent: list[tuple[int, dict[StatusKey, tuple[str, int]]]] = []
        #: the pid last stored for each instance by a node's report: a batch entry whose
        #: state is unchanged but whose pid is new is written (upstream skips it, leaving a
        #: restarted server's old pid in the database; TarsFramework
        #: ``RegistryImp::updateServerBatch``; docs/registry.md)
        self._pids: dict[StatusKey, int] = {}
        s = self.settings
        self.loops = [
            # every 50 ms until our servants listen and are announced, then load_interval
            Periodic(
                "tarsus-registry-reap",
                lambda: s.load_interval if self._announced else 0.05,
                self._reap_tick,
                run_first=True,
                on_error=self._failed,
            ),
            Periodic(
                "tarsus-registry-sweep",
                s.node_sweep_interval,
                self.sweep_nodes,
                on_error=self._failed,
            ),
            Periodic("tarsus-registry-flush", s.flush_interval, self.flush, on_error=self._failed),
        ]
        self._announced = False
        self._bind_deadline = 0.0

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        """Settings from upstream's ``tars.tarsregistry`` keys (:meth:`RegistrySettings.
        from_tcconfig`); the address advertised for servants on ``0.0.0.0`` is ``localip``.

        Our own ``/tars/tarsus<nodeTimeout>`` and ``<nodeTimeoutInterval>`` (seconds, without
        upstream's 15 s floor; ``tarsus up --node-timeout`` writes them) win over upstream's
        ``/tars/reap`` keys, so both layouts of ``tarsus up`` time nodes out alike."""
        settings = RegistrySettings.from_tcconfig(tc)
        values = ConfigValues(tc)
        settings = dataclasses.replace(
            settings,
            node_timeout=values.number("/tars/tarsus<nodeTimeout>", settings.node_timeout),
            node_sweep_interval=values.number(
                "/tars/tarsus<nodeTimeoutInterval>", settings.node_sweep_interval
            ),
            advertise_host=settings.advertise_host or config.localip or None,
        )
        return cls(require_store(cls.spec, store), settings)

    def servants(self) -> dict[str, Servant]:
        from tarsus.framework.registry.query_obj import QueryImp
        from tarsus.framework.registry.registry_obj import RegistryImp

        return {QUERY_SERVANT: QueryImp(self), REGISTRY_SERVANT: RegistryImp(self)}

    @property
    def snapshot(self) -> RouteSnapshot:
        """The routes now (replaced whole by loads; never changes under a reader)."""
        return self.cache.snapshot

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every route (retrying until the database answers), then start the loops."""
        if self._started:
            return
        self._started = True
        while True:
            try:
                await self.load(full=True)
                break
            except DB_ERRORS as e:
                self._outage.failed("initial route load", e)
                await asyncio.sleep(self.settings.init_retry_interval)
        self._outage.since_ok = time.monotonic()
        self._announced = False
        self._bind_deadline = time.monotonic() + _BIND_WAIT
        if self.adapters and all(a.endpoint.port for a in self.adapters):
            # Our ports are fixed: announce them now, just before we listen, so that nobody
            # who reaches us finds our own objects missing (a node started together with us
            # asks for RegistryObj at once, and would keep that empty answer until its next
            # refresh). With port 0 the port is known once we listen: the reap loop does it.
            try:
                await self._write_heartbeat()
                await self.load(full=False)
                self._announced = True
            except DB_ERRORS as e:
                self._outage.failed("first heartbeat", e)
        await super().start()
        log.info(
            "registry started: %d servants, %d instances routed",
            len(self.snapshot),
            self.snapshot.instance_count,
        )

    async def stop(self) -> None:
        """Stop the loops and write what is still queued (best effort)."""
        await super().stop()
        if self._started:
            with contextlib.suppress(*DB_ERRORS):
                await asyncio.wait_for(self.flush(), timeout=5.0)
        self._started = False

    def _failed(self, e: Exception) -> None:
        """A loop's round failed: a database outage is logged once, a bug every time."""
        if isinstance(e, DB_ERRORS):
            self._outage.failed("registry loop", e)
        else:
            log.error("registry loop failed", exc_info=e)

    async def _reap_tick(self) -> None:
        """The reap loop: first, once our servants listen, announce them and load them into
        the routes (clients and nodes look them up right away); then :meth:`reap`."""
        if self._announced:
            await self.reap()
            return
        if not self.listening:
            if time.monotonic() < self._bind_deadline:
                return
            log.warning(
                "our servants do not listen after %.0fs; announcing them at the next tick",
                _BIND_WAIT,
            )
            self._announced = True
            return
        self._announced = True
        await self.heartbeat()
        await self.load(full=False)

    # -- routes ----------------------------------------------------------------------------------

    async def load(self, *, full: bool) -> None:
        """One route load from the database; the snapshot is replaced when it is complete.

        Raises the database's error (the old snapshot stays)."""
        async with self._load_lock:
            with _gc_paused() as big:
                # bounded: collection is paused meanwhile, and a hung query must not stall
                # every later load
                await asyncio.wait_for(self._load(full, big), _LOAD_TIMEOUT)

    async def _load(self, full: bool, big: list[bool]) -> None:
        seq0 = self._seq
        if full:
            rules = await db.load_group_rules(self.store)
            priorities = await db.load_group_priorities(self.store)
            result = await db.load_routes(self.store)
            groups = GroupIndex(rules, priorities)
        else:
            result = await db.load_routes(self.store, since=self._since())
            groups = self.snapshot.groups
        if self.settings.recover_protect and result.rows:
            rate = await db.node_inactive_rate(self.store)
            if rate > self.settings.recover_protect_rate:
                log.warning(
                    "route load refused: %d%% of nodes are inactive (recoverProtectRate "
                    "%d%%); keeping the routes in memory",
                    rate,
                    self.settings.recover_protect_rate,
                )
                return
        if full:
            compiled, snapshot = await self._build(result.rows, groups)
            self.cache.install_full(compiled, snapshot)
            self._last_full = time.monotonic()
        else:
            compiled = await self._compile(result.rows, groups)
            assert result.changed is not None
            # t_registry_info is reread whole by every load: its rows are replaced too
            self.cache.install_servers(compiled, result.changed | {REGISTRY_KEY})
        self._replay_after(seq0)
        self._last_ok_load = result.started
        self.loads += 1
        self._outage.ok()
        big.append(len(result.rows) > _FREEZE_ROWS and self.settings.gc_freeze)
        log.debug(
            "%s route load: %d rows, %d servants",
            "full" if full else "incremental",
            len(result.rows),
            len(self.snapshot),
        )

    async def _compile(self, rows: list[RouteRow], groups: GroupIndex) -> CompiledServers:
        previous = self.snapshot
        if len(rows) > _THREAD_ROWS:
            return await asyncio.to_thread(compile_rows, rows, groups, previous)
        return compile_rows(rows, groups, previous)

    async def _build(
        self, rows: list[RouteRow], groups: GroupIndex
    ) -> tuple[CompiledServers, RouteSnapshot]:
        previous = self.snapshot

        def build() -> tuple[CompiledServers, RouteSnapshot]:
            compiled = compile_rows(rows, groups, previous)
            return compiled, RouteSnapshot.from_compiled(compiled, previous=previous)

        if len(rows) > _THREAD_ROWS:
            return await asyncio.to_thread(build)
        return build()

    def _since(self) -> datetime:
        window = self.store.clock() - timedelta(seconds=self.settings.least_changed_time)
        if self._last_ok_load is not None:
            # a missed tick (or an outage) must not lose changes: overlap the last good load
            return min(window, self._last_ok_load - timedelta(seconds=1))
        return window

    async def reap(self) -> None:
        """One tick of upstream's ReapThread: heartbeat, load, expire other registries."""
        s = self.settings
        if not s.heartbeat_off:
            await self.heartbeat()
        now = time.monotonic()
        await self.load(full=now - self._last_full >= s.full_load_interval)
        if now - self._last_expiry >= s.registry_timeout:
            self._last_expiry = now
            changed = await db.expire_registries(self.store, s.registry_timeout)
            if changed:
                log.warning("%d registry rows without heartbeat marked inactive", changed)

    # -- own rows in t_registry_info --------------------------------------------------------------

    def own_servants(self) -> list[tuple[str, str]]:
        """``(servant, endpoint)`` of our adapters as clients should reach them."""
        out = []
        for adapter in self.adapters:
            ep = adapter.bound_endpoint
            if ep.host in ("0.0.0.0", "::", "*"):
                ep = dataclasses.replace(ep, host=self.settings.advertise_host or _local_ip())
            out.append((adapter.servant_name, str(ep)))
        return out

    @property
    def locator_id(self) -> str:
        """``host:port`` of our QueryObj (upstream's ``t_registry_info.locator_id``)."""
        own = self.own_servants()
        query = next((ep for name, ep in own if name == QUERY_SERVANT), own[0][1] if own else "")
        if not query:
            return ""
        parsed = Endpoint.parse(query)
        return f"{parsed.host}:{parsed.port}"

    async def heartbeat(self) -> None:
        """Upsert our servants into ``t_registry_info`` (unless ``heartbeat_off``)."""
        if self.settings.heartbeat_off or not self.adapters:
            return
        if not self.listening:
            return  # not listening yet (port unknown), or stopping
        await self._write_heartbeat()

    async def _write_heartbeat(self) -> None:
        if self.settings.heartbeat_off or not self.adapters:
            return
        await db.heartbeat_registry(
            self.store, self.locator_id, self.own_servants(), self.settings.tars_version
        )

    # -- in-memory state changes ------------------------------------------------------------------

    def _apply_states(self, changes: dict[StatusKey, tuple[str, int]]) -> None:
        """What we wrote ourselves goes into the routes now, not at the next load."""
        if not changes:
            return
        self._seq += 1
        self._recent.append((self._seq, changes))
        self._apply(changes)

    def _apply(self, changes: Mapping[StatusKey, tuple[str, int]]) -> None:
        self.cache.set_present_states({key: state for key, (state, _) in changes.items()})
        status = self.cache.status
        for key, (_, number) in changes.items():
            status[key] = number

    def _replay_after(self, seq0: int) -> None:
        later = [(seq, changes) for seq, changes in self._recent if seq > seq0]
        for _, changes in later:
            self._apply(changes)
        self._recent = later

    # -- node-facing operations (RegistryObj) ------------------------------------------------------

    async def register_node(
        self,
        node_name: str,
        node_obj: str,
        endpoint_ip: str,
        endpoint_port: int,
        data_dir: str,
        load: tuple[float, float, float],
        version: str,
        *,
        node_obj_default: str = "",
    ) -> int:
        """``registerNode``: 0, 1 (an active node of that name has another node_obj), 2 (the
        database failed), -1 (bad input). ``node_obj_default`` is stored when ``node_obj`` is
        empty (see :meth:`tarsus.store.Nodes.register`)."""
        try:
            ret = await self.store.nodes.register(
                node_name,
                node_obj,
                endpoint_ip,
                endpoint_port,
                data_dir,
                *load,
                version,
                node_obj_default=node_obj_default,
            )
        except InvalidInput as e:
            log.warning("registerNode %r refused: %s", node_name, e)
            return -1
        except DB_ERRORS as e:
            self._outage.failed("registerNode", e)
            return 2
        self._outage.ok()
        if ret == REGISTER_CONFLICT:
            log.error("registerNode %r refused: another active node has that name", node_name)
        else:
            log.info("node %s registered (%s:%s)", node_name, endpoint_ip, endpoint_port)
        return ret

    def keep_alive(self, node_name: str, load: tuple[float, float, float]) -> None:
        """``keepAlive``: queued; written by the next :meth:`flush`."""
        queue = self._keepalives
        if node_name in queue or len(queue) < _QUEUE_LIMIT:
            queue[node_name] = load
        else:
            log.warning("keepAlive queue full (%d): dropping %r", len(queue), node_name)

    def report_version(self, app: str, server: str, node: str, version: str) -> None:
        """``reportVersion``: queued; written by the next :meth:`flush`."""
        key = (app, server, node)
        if key in self._versions or len(self._versions) < _QUEUE_LIMIT:
            self._versions[key] = version

    async def flush(self) -> None:
        """Write queued keepAlives (one statement) and versions. What fails stays queued."""
        beats, self._keepalives = self._keepalives, {}
        if beats:
            try:
                await self.store.nodes.keepalive_many(
                    [(name, *load) for name, load in beats.items()]
                )
            except BaseException:
                for name, load in beats.items():  # newer beats arrived meanwhile win
                    self._keepalives.setdefault(name, load)
                raise
            self._outage.ok()
        versions, self._versions = self._versions, {}
        for i, ((app, server, node), version) in enumerate(versions.items()):
            try:
                await self.store.servers.set_tars_version(app, server, node, version)
            except InvalidInput as e:
                log.warning("reportVersion of %s.%s on %s ignored: %s", app, server, node, e)
            except BaseException:
                for key, value in list(versions.items())[i:]:
                    self._versions.setdefault(key, value)
                raise

    async def update_server(self, node: str, app: str, server: str, state: int, pid: int) -> int:
        """``updateServer`` (node name first, as tarsnode sends it): 0, or -1 when the
        database failed."""
        present = present_state_of(state)
        try:
            await self.store.servers.update_present(node, app, server, present, pid)
        except DB_ERRORS as e:
            self._outage.failed("updateServer", e)
            return -1
        self._outage.ok()
        key = (app, server, node)
        self._pids[key] = int(pid)
        was = self.cache.status.get(key)
        self._apply_states({key: (present, int(state))})
        if present == "active" and was != int(state):
            # A server coming up was usually just started by the admin registry, which set
            # its setting_state in the database: reread its rows now rather than at the next
            # load tick, so it takes calls the moment it is up.
            self._reload_soon()
        return 0

    def _reload_soon(self) -> None:
        """One incremental load in the background (at most one waiting at a time)."""
        if self._reload_pending or not self._started:
            return
        self._reload_pending = True

        async def reload() -> None:
            try:
                await self.load(full=False)
            except DB_ERRORS as e:
                self._outage.failed("route reload", e)
            finally:
                self._reload_pending = False

        task = asyncio.get_running_loop().create_task(reload(), name="tarsus-registry-reload")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def update_server_batch(self, reports: Iterable[tuple[str, str, str, int, int]]) -> int:
        """``updateServerBatch`` of ``(node, app, server, state, pid)``: reports equal to the
        status map (state, and the pid last stored) are skipped; the rest written in chunks.
        0, or -1 when the database failed."""
        status, pids = self.cache.status, self._pids
        todo: dict[StatusKey, tuple[str, int, int]] = {}
        for node, app, server, state, pid in reports:
            key = (app, server, node)
            if status.get(key) == int(state) and pids.get(key) == int(pid):
                todo.pop(key, None)
                continue
            todo[key] = (present_state_of(state), int(state), int(pid))
        if not todo:
            return 0
        try:
            await self.store.servers.update_present_many(
                [
                    (node, app, server, present, pid)
                    for (app, server, node), (present, _, pid) in todo.items()
                ]
            )
        except DB_ERRORS as e:
            self._outage.failed("updateServerBatch", e)
            return -1
        self._outage.ok()
        pids.update((key, pid) for key, (_, _, pid) in todo.items())
        self._apply_states({key: (present, n) for key, (present, n, _) in todo.items()})
        return 0

    async def destroy_node(self, node_name: str) -> int:
        """``destroyNode``: the node and its servers inactive. Always 0, as upstream."""
        try:
            await self.store.nodes.destroy(node_name)
        except NotFound:
            pass
        except DB_ERRORS as e:
            self._outage.failed("destroyNode", e)
            return 0
        self._outage.ok()
        self._mark_nodes_inactive([node_name])
        log.warning("node %s destroyed: its servers are inactive", node_name)
        return 0

    def _mark_nodes_inactive(self, node_names: Sequence[str]) -> None:
        keys = self.snapshot.nodes_instances(node_names)
        self._keepalives_drop(node_names)
        self._apply_states({key: ("inactive", INACTIVE) for key in keys})

    def _keepalives_drop(self, node_names: Sequence[str]) -> None:
        for name in node_names:
            self._keepalives.pop(name, None)

    async def sweep_nodes(self) -> list[str]:
        """Mark nodes silent for ``node_timeout`` dead (with their servers); returns them.

        Skipped until ``node_timeout`` has passed since the registry started or the database
        came back: nodes could not beat meanwhile."""
        if self._outage.down_since is not None:
            return []
        if time.monotonic() - self._outage.since_ok < self.settings.node_timeout:
            return []
        if self._keepalives:
            await self.flush()  # beats already received count
        dead = await self.store.nodes.sweep_dead(self.settings.node_timeout)
        self._outage.ok()
        if dead:
            log.warning(
                "nodes without keepAlive for %.0fs, now inactive with their servers: %s",
                self.settings.node_timeout,
                ", ".join(dead),
            )
            self._mark_nodes_inactive(dead)
        return dead

    async def patch_result(self, app: str, server: str, node: str, version: str, user: str) -> int:
        """``updatePatchResult``: 0, or -1 when the database failed."""
        try:
            await self.store.servers.set_patch_result(app, server, node, version, user)
        except InvalidInput as e:
            log.warning("updatePatchResult of %s.%s on %s refused: %s", app, server, node, e)
            return -1
        except DB_ERRORS as e:
            self._outage.failed("updatePatchResult", e)
            return -1
        return 0

    async def node_template(self, node_name: str) -> str:
        """``getNodeTemplate``: the node's template, else ``default_node_template``, else
        ``tars.default``, resolved; "" if none exists."""
        try:
            return await self._node_template(node_name)
        except DB_ERRORS as e:
            self._outage.failed("getNodeTemplate", e)
            raise TarsError(Ret.SERVER_UNKNOWN_ERR, f"registry database unavailable: {e}") from e

    async def _node_template(self, node_name: str) -> str:
        node = await self.store.nodes.get(node_name)
        names = [node.template_name] if node is not None and node.template_name else []
        names += [self.settings.default_node_template, "tars.default"]
        for name in names:
            try:
                return await self.store.templates.resolve(name)
            except NotFound:
                continue
        log.error("getNodeTemplate %s: none of the templates %s exists", node_name, names)
        return ""

    async def servers_of(self, app: str, server: str, node: str) -> list[ServerView]:
        """``getServers``: the instances of ``node`` (all of them when app and server are
        empty), with their profiles resolved."""
        # A failure is an error, never an empty list: a node must not read "no servers".
        try:
            views = []
            for row, adapters in await db.node_servers(self.store, node, app, server):
                views.append(ServerView(row, adapters, await self._profile(row)))
        except DB_ERRORS as e:
            self._outage.failed("getServers", e)
            raise TarsError(Ret.SERVER_UNKNOWN_ERR, f"registry database unavailable: {e}") from e
        return views

    async def _profile(self, row: ServerRow) -> str:
        try:
            return await self.store.templates.server_profile(row)
        except NotFound as e:
            # upstream: a missing template reads as empty; the private profile still applies
            log.error("getServers: %s", e)
            try:
                return parse(row.profile, source="private profile").tostr()
            except ConfigError:
                return ""
        except InvalidInput as e:
            log.error("getServers: %s; sending the template without it", e)
            try:
                return await self.store.templates.resolve(row.template_name)
            except NotFound:
                return ""


@dataclasses.dataclass(frozen=True, slots=True)
class ServerView:
    """What ``getServers`` needs of one instance."""

    row: ServerRow
    adapters: list[AdapterRow]
    profile: str

    @property
    def async_thread_num(self) -> int:
        """max(``async_thread_num``, 3 — 0 for ``tars_nodejs``), unless the private profile
        sets ``/tars/application/client<asyncthread>``."""
        default = 0 if self.row.server_type == "tars_nodejs" else 3
        number = max(self.row.async_thread_num, default)
        try:
            private = parse(self.row.profile, source="private profile")
            text = private.get("/tars/application/client<asyncthread>", "")
        except ConfigError:
            text = ""
        if text:
            return cxx_atoi(text.strip())
        return number

    @property
    def set_id(self) -> str:
        row = self.row
        if row.enable_set.lower() == "y":
            return f"{row.set_name}.{row.set_area}.{row.set_group}"
        return ""


@contextlib.contextmanager
def _gc_paused() -> Iterator[list[bool]]:
    """No cyclic garbage collection while a load allocates its (long-lived) routes; if the
    block appends True, freeze what exists into the permanent generation afterwards.

    A load of 100,000 instances allocates about half a million objects that live until the
    next load. Collected as they are made, they set off full collections that stop the event
    loop for 0.1-0.3 s each; frozen, later collections do not scan them again. (Frozen
    objects are still freed when the next snapshot replaces them: they hold no cycles.)
    """
    was_enabled = gc.isenabled()
    gc.disable()
    freeze: list[bool] = []
    try:
        yield freeze
    finally:
        if any(freeze):
            gc.freeze()
        if was_enabled:
            gc.enable()


def _local_ip() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))
        return str(s.getsockname()[0])
    return "127.0.0.1"


def add_registry(
    app: Application,
    store: Store,
    *,
    query_endpoint: str,
    registry_endpoint: str,
    settings: RegistrySettings | None = None,
) -> Registry:
    """Serve ``tars.tarsregistry.QueryObj`` and ``tars.tarsregistry.RegistryObj`` from ``app``
    on the given endpoints (:func:`~tarsus.framework.service.host` with explicit endpoints).

    The registry's loads start in ``app``'s ``on_initialize`` hook — ``app.start()`` returns
    once the routes are loaded and the servants listen — and stop in its ``on_destroy`` hook.
    """
    endpoints = {QUERY_SERVANT: query_endpoint, REGISTRY_SERVANT: registry_endpoint}
    return host(app, Registry(store, settings), endpoints)
