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
* every ``flush_interval``: queued ``keepAlive`` and ``reportVersion`` calls written, the
  keepAlives in short statements paced over half the interval (see :meth:`Registry.flush`).

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
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, cast

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
    Steps,
    compile_steps,
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

_T = TypeVar("_T")

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
#: Seconds of a load's work between two turns of the event loop (lookups wait at most about
#: this long for a load; docs/registry.md, "Latency").
_LOAD_SLICE = 0.0004
#: Rows released between two looks at the clock (see _release).
_RELEASE_STEP = 256
#: Loads bigger than this freeze their routes out of the cyclic GC's sight (see _gc_paused).
_FREEZE_ROWS = 2000
#: keepAlives written per statement (and transaction) by a flush: each one a short stretch of
#: work for the event loop and the database server (bench/registry.py; docs/registry.md)
_FLUSH_CHUNK = 100
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
        self._flush_lock = asyncio.Lock()
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
            Periodic(
                "tarsus-registry-flush", s.flush_interval, self._flush_tick, on_error=self._failed
            ),
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
            with _gc_paused(full) as big:
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
        retired: list[Any] = []
        if full:
            compiled, snapshot = await self._build(result.rows, groups)
            # what the new routes replace, freed below a part at a time (not in this step;
            # so are the tables of the snapshot an incremental load replaces)
            retired = [*self.cache.snapshot.parts(), *self.cache.status.parts()]
            self.cache.install_full(compiled, snapshot)
            self._last_full = time.monotonic()
        else:
            compiled = await self._compile(result.rows, groups)
            assert result.changed is not None
            retired = self.cache.snapshot.parts()
            # t_registry_info is reread whole by every load: its rows are replaced too
            await _in_slices(
                self.cache.install_servers_steps(compiled, result.changed | {REGISTRY_KEY})
            )
        self._replay_after(seq0)
        self._last_ok_load = result.started
        self.loads += 1
        self._outage.ok()
        count = len(result.rows)
        big.append(count > _FREEZE_ROWS and self.settings.gc_freeze)
        log.debug(
            "%s route load: %d rows, %d servants",
            "full" if full else "incremental",
            count,
            len(self.snapshot),
        )
        # The rows read are garbage now (the routes keep those of the last load when equal):
        # freed in slices, not 100,000 at once when this coroutine returns.
        await _release(result.rows)
        await _release(retired, step=1)

    async def _compile(self, rows: list[RouteRow], groups: GroupIndex) -> CompiledServers:
        return await _in_slices(compile_steps(rows, groups, self.snapshot, self.cache.status))

    async def _build(
        self, rows: list[RouteRow], groups: GroupIndex
    ) -> tuple[CompiledServers, RouteSnapshot]:
        previous = self.snapshot
        compiled = await _in_slices(compile_steps(rows, groups, previous, self.cache.status))
        snapshot = await _in_slices(RouteSnapshot.from_compiled_steps(compiled, previous=previous))
        return compiled, snapshot

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

    async def _flush_tick(self) -> None:
        """The flush loop's round: :meth:`flush`, its writes spread over half an interval."""
        await self.flush(spread=self.settings.flush_interval / 2)

    async def flush(self, *, spread: float = 0.0) -> None:
        """Write queued keepAlives and versions. What fails stays queued.

        The keepAlives go in statements of :data:`_FLUSH_CHUNK` nodes, each its own short
        transaction; with ``spread``, they are paced over that many seconds. A registry of
        10,000 nodes has 1,000 of them a second to write: in one burst, the event loop (the
        driver's work) and the database server would each be busy a few milliseconds at a
        time, and the lookups arriving meanwhile would wait that long (docs/registry.md,
        "Latency")."""
        async with self._flush_lock:
            await self._flush_beats(spread)
            await self._flush_versions()

    async def _flush_beats(self, spread: float) -> None:
        beats, self._keepalives = self._keepalives, {}
        if not beats:
            return
        rows = [(name, *load) for name, load in beats.items()]
        chunks = range(0, len(rows), _FLUSH_CHUNK)
        step = spread / len(chunks)
        start = time.monotonic()
        for i, at in enumerate(chunks):
            try:
                if i and step:
                    await asyncio.sleep(max(0.0, start + i * step - time.monotonic()))
                await self.store.nodes.keepalive_many(rows[at : at + _FLUSH_CHUNK])
            except BaseException:
                for name, *load in rows[at:]:  # newer beats arrived meanwhile win
                    self._keepalives.setdefault(name, (load[0], load[1], load[2]))
                raise
            self._outage.ok()

    async def _flush_versions(self) -> None:
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
        # beats already received count, those a paced flush is writing too (it holds the lock)
        await self.flush()
        dead = await self.store.nodes.sweep_dead(self.settings.node_timeout)
        self._outage.ok()
        if dead:
            log.warning(
                "nodes without keepAlive for %.0fs, now inactive with their servers: %s",
                self.settings.node_timeout,
                ", ".join(dead),
            )
            self._mark_nodes_inactive(dead)
            for name in dead:  # one event per loss, seen under the node's own tars.tarsnode
                self.report(
                    f"[alarm] node {name} lost: no keepAlive for "
                    f"{self.settings.node_timeout:.0f}s; its servers are marked inactive",
                    application="tars",
                    server="tarsnode",
                    node=name,
                )
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
            images: dict[int, tuple[str, str]] = {}
            for row, adapters in await db.node_servers(self.store, node, app, server):
                image = await self._base_image(row, images)
                views.append(ServerView(row, adapters, await self._profile(row), *image))
        except DB_ERRORS as e:
            self._outage.failed("getServers", e)
            raise TarsError(Ret.SERVER_UNKNOWN_ERR, f"registry database unavailable: {e}") from e
        return views

    async def _base_image(
        self, row: ServerRow, known: dict[int, tuple[str, str]]
    ) -> tuple[str, str]:
        """The base image (reference, sha) of a server run in a container (upstream's
        ``getServers`` joins ``t_base_image``); ("", "") for a process."""
        image_id = row.base_image_id or 0
        if not image_id:
            return "", ""
        if image_id not in known:
            found = await self.store.images.get(image_id)
            known[image_id] = (found.image, found.sha) if found is not None else ("", "")
        return known[image_id]

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
    #: ``t_base_image`` of the server's ``base_image_id``: its image and sha
    base_image: str = ""
    base_image_sha: str = ""

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
def _gc_paused(pause: bool = True) -> Iterator[list[bool]]:
    """No cyclic garbage collection (if ``pause``) while a load allocates its (long-lived)
    routes; if the block appends True, freeze what exists into the permanent generation
    afterwards. Incremental loads do not pause it: the objects a paused collector leaves
    behind are all scanned by its next collection, at once.

    A load of 100,000 instances allocates about half a million objects that live until the
    next load. Collected as they are made, they set off full collections that stop the event
    loop for 0.1-0.3 s each; frozen, later collections do not scan them again. (Frozen
    objects are still freed when the next snapshot replaces them: they hold no cycles.)
    """
    was_enabled = gc.isenabled()
    if pause:
        gc.disable()
    freeze: list[bool] = []
    try:
        yield freeze
    finally:
        if any(freeze):
            gc.freeze()
        if was_enabled:
            gc.enable()


async def _in_slices(steps: Steps[_T]) -> _T:
    """The result of ``steps``, computed on the event loop in slices of about
    :data:`_LOAD_SLICE` seconds, letting it run what is ready (lookups) in between.

    Not in a worker thread: a thread holding the GIL makes the loop wait for it up to the
    interpreter's switch interval (5 ms) at every turn."""
    clock = time.perf_counter
    deadline = clock() + _LOAD_SLICE
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast("_T", done.value)
        if clock() >= deadline:
            await asyncio.sleep(0)
            deadline = clock() + _LOAD_SLICE


async def _release(items: list[Any], step: int = _RELEASE_STEP) -> None:
    """Empty ``items`` from the end, ``step`` at a time, in slices of about
    :data:`_LOAD_SLICE` seconds (what is freed with them is freed meanwhile)."""
    clock = time.perf_counter
    deadline = clock() + _LOAD_SLICE
    while items:
        del items[-step:]
        if clock() >= deadline:
            await asyncio.sleep(0)
            deadline = clock() + _LOAD_SLICE


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
