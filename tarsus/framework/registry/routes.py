"""The registry's route cache: what ``QueryObj`` answers, built from ``db_tars`` rows, no I/O.

Input (records of :mod:`tarsus.store.routes`, re-exported here): one :class:`RouteRow` per
(server instance, adapter) — ``t_server_conf LEFT JOIN t_adapter_conf``, plus the registries'
own rows from ``t_registry_info`` — and the IDC group tables (:class:`GroupRule` from
``t_server_group_rule``, :class:`GroupPriority` from ``t_group_priority``).

Output: an immutable :class:`RouteSnapshot` that answers every ``QueryF`` lookup (docs/registry.md)
from precomputed lists. A reader holds one snapshot for the whole lookup, and a new snapshot
replaces the old one in one assignment, so nobody sees a half-built cache (upstream's
reader/writer double buffers).

Per row (upstream ``CDbHandle::loadObjectIdCache``):

* a row without adapter (no servant, no endpoint) only sets the instance's status;
* an endpoint that does not parse skips the row (logged); ``bak_flag = 1`` (standby) skips it;
* the ``EndpointF``: host, port, timeout, ``istcp`` 0/1/2 for udp/tcp/ssl, weight, weightType,
  authType from the endpoint string (``-g``/``-q`` are not copied, as upstream), ``nodeName``,
  ``grouprealid`` = group of ``ip_group_name`` if set, else of the host; ``groupworkid`` =
  ``grouprealid`` when ``enable_group`` is Y, else -1; ``setId`` = ``name.area.group`` when
  ``enable_set`` is Y; ``bakFlag``;
* **active** iff setting_state and present_state are ``active`` and flow_state is not
  ``inactive``; otherwise the endpoint is listed as inactive;
* a set row whose name, area or group is empty, or whose name or area is ``*``, is logged and
  left out of set routing (its ``setId`` is still sent, as upstream does).

Dynamic weights (weightType 2) need the stat database; like upstream with its switch off, an
active type-2 endpoint is answered as round-robin (type 0).

Lookups never scan other servants: each servant keeps its lists, its lists per work group and
per set, and memoises group-priority and station answers (both bounded by the configured groups).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Collection, Generator, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar, cast

from tarsus.framework.registry.sharded import ShardedMap, shard_of
from tarsus.protocol.gen.EndpointF import EndpointF
from tarsus.rpc.endpoint import Endpoint, EndpointError
from tarsus.store.routes import GroupPriority, GroupRule, RouteRow

__all__ = [
    "ACTIVE",
    "INACTIVE",
    "REGISTRY_KEY",
    "CompiledServers",
    "GroupIndex",
    "GroupPriority",
    "GroupRule",
    "Lookup",
    "RouteCache",
    "RouteRow",
    "RouteSnapshot",
    "ServantRoutes",
    "ServerKey",
    "StatusKey",
    "StatusMap",
    "Steps",
    "caller_ip",
    "compile_rows",
    "compile_steps",
    "cxx_atoi",
    "is_active",
    "run_steps",
    "server_key",
    "status_key",
]

log = logging.getLogger("tarsus.registry.routes")

#: ``(application, server_name)``: the unit a load replaces.
ServerKey = tuple[str, str]
#: ``(application, server_name, node_name)``: one instance.
StatusKey = tuple[str, str, str]
#: A QueryF answer: (return code, active EndpointF list, inactive EndpointF list).
Lookup = tuple[int, list[EndpointF], list[EndpointF]]

#: Where the ``t_registry_info`` rows live in a snapshot (no deployable server has this key).
REGISTRY_KEY: Final[ServerKey] = ("", "t_registry_info")
#: Status map values: ``tars.ServerState`` numbers, as upstream's ``_mapServantStatus``.
ACTIVE: Final = 2
INACTIVE: Final = 0
#: ``EndpointF.weightType`` of dynamic weights (answered as round-robin, see the module doc).
_DYNAMIC_WEIGHT: Final = 2

_EMPTY: Final[tuple[list[EndpointF], list[EndpointF]]] = ([], [])

_T = TypeVar("_T")


# -- input ------------------------------------------------------------------------------------


def server_key(row: RouteRow) -> ServerKey:
    """The server a row belongs to (``t_registry_info`` rows: :data:`REGISTRY_KEY`)."""
    return REGISTRY_KEY if row.from_registry else (row.application, row.server_name)


def status_key(row: RouteRow) -> StatusKey:
    return (row.application, row.server_name, row.node_name)


def is_active(row: RouteRow) -> bool:
    """setting and present state active, flow state not inactive (compared lower-case)."""
    return (
        row.setting_state.lower() == "active"
        and row.present_state.lower() == "active"
        and row.flow_state.lower() != "inactive"
    )


def cxx_atoi(text: str) -> int:
    """TarsCpp ``TC_Common::strto<int>``: ``0x`` hex, else C ``atoi`` (garbage reads as 0)."""
    if text.startswith("0x"):
        m = re.match(r"[0-9a-fA-F]+", text[2:])
        return int(m.group(0), 16) if m else 0
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def _star(ip: str) -> str | None:
    """``a.b.c.*`` for a dotted IPv4 address (each part as an unsigned byte, as upstream)."""
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    try:
        a, b, c = (int(p) & 0xFF for p in parts[:3])
    except ValueError:
        return None
    return f"{a}.{b}.{c}.*"


def caller_ip(peer: tuple[str, int] | None) -> str:
    """The caller's IP as upstream's ``current->getHostName()`` (IPv4-mapped IPv6 unwrapped)."""
    if not peer:
        return ""
    host = peer[0]
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    return host


class GroupIndex:
    """The IDC group rules and priorities, ready for lookups (immutable, comparable)."""

    __slots__ = ("_key", "by_ip", "by_name", "priorities", "stations")

    def __init__(
        self, rules: Iterable[GroupRule] = (), priorities: Iterable[GroupPriority] = ()
    ) -> None:
        by_ip: dict[str, int] = {}
        by_name: dict[str, int] = {}
        # Upstream loads the rules ordered by group_id; a later rule wins an address or name.
        for rule in sorted(rules, key=lambda r: r.group_id):
            for address in (rule.allow_ip_rule or "").split("|"):
                if address:
                    by_ip[address] = rule.group_id
            by_name[rule.group_name or ""] = rule.group_id
        ordered: list[tuple[frozenset[int], str]] = []
        stations: dict[str, frozenset[int]] = {}
        for prio in sorted(priorities, key=lambda p: (p.list_order, p.id)):
            groups = frozenset(
                cxx_atoi(part) for part in re.split(r"[|,;]", prio.group_list or "") if part
            )
            ordered.append((groups, prio.station))
            stations.setdefault(prio.station, groups)
        self.by_ip: Mapping[str, int] = by_ip
        self.by_name: Mapping[str, int] = by_name
        #: (group set, station), by ``list_order``
        self.priorities: tuple[tuple[frozenset[int], str], ...] = tuple(ordered)
        #: station -> group set of its first priority row
        self.stations: Mapping[str, frozenset[int]] = stations
        self._key = (tuple(sorted(by_ip.items())), tuple(sorted(by_name.items())), self.priorities)

    def group_of(self, ip: str) -> int:
        """The registry's ``CDbHandle::getGroupId``: exact address, else ``a.b.c.*``, else -1.

        Deliberately not the admin registry's rule (``tarsus.framework.admin.inventory.group_of``,
        upstream ``DbProxy::getGroupId``: ``TC_Common::matchPeriod`` patterns with
        ``ip_order``/``denny_ip_rule``). Upstream's two services answer differently from the
        same table, and each of ours answers as its counterpart does: routing uses this one,
        ``AdminReg.getGroupId`` the other (docs/registry.md, "IDC groups")."""
        by_ip = self.by_ip
        if not by_ip:
            return -1
        gid = by_ip.get(ip)
        if gid is not None:
            return gid
        star = _star(ip)
        if star is not None:
            gid = by_ip.get(star)
            if gid is not None:
                return gid
        return -1

    def group_of_name(self, name: str) -> int:
        """Upstream ``getGroupIdByName`` (-1 for an unknown or empty name)."""
        if not name:
            return -1
        return self.by_name.get(name, -1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GroupIndex) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)


# -- compiling rows ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Instance:
    """One routable row: its EndpointF and what lookups filter on."""

    servant: str
    epf: EndpointF
    active: bool
    work_group: int
    real_group: int
    #: (set name, "name.area", "name.area.group") for valid set rows, else None
    set_keys: tuple[str, str, str] | None


@dataclass(frozen=True, slots=True)
class _Server:
    """The compiled rows of one (application, server_name)."""

    rows: tuple[RouteRow, ...]
    instances: tuple[_Instance, ...]
    servants: frozenset[str]


@functools.lru_cache(maxsize=1 << 17)
def _parse_endpoint(text: str) -> Endpoint | str:
    """Endpoint.parse, memoised across loads; the error text when it does not parse."""
    try:
        return Endpoint.parse(text)
    except (EndpointError, TypeError) as e:
        return str(e)


def _compile_server(rows: tuple[RouteRow, ...], groups: GroupIndex) -> _Server:
    instances: list[_Instance] = []
    for row in rows:
        if not row.servant and not row.endpoint:
            continue  # no adapter: status only
        parsed = _parse_endpoint(row.endpoint)
        if isinstance(parsed, str):
            log.error(
                "route of %s on %s skipped: %s",
                row.servant or "?",
                row.node_name,
                parsed,
                extra={"servant": row.servant, "node": row.node_name},
            )
            continue
        if row.bak_flag == 1:
            continue  # a standby instance is never given to clients
        ep = parsed
        ip_group_name = (row.ip_group_name or "").strip()
        real = groups.group_of_name(ip_group_name) if ip_group_name else groups.group_of(ep.host)
        work = real if (row.enable_group or "").lower() == "y" else -1
        enable_set = (row.enable_set or "").lower() == "y"
        name, area, group = row.set_name or "", row.set_area or "", row.set_group or ""
        set_id = f"{name}.{area}.{group}" if enable_set else ""
        set_keys: tuple[str, str, str] | None = None
        if enable_set:
            if not name or not area or not group or name == "*" or area == "*":
                log.error(
                    "%s on %s: set division %r is invalid (empty part, or '*' name or area); "
                    "routed as a server without set",
                    row.servant,
                    row.node_name,
                    set_id,
                    extra={"servant": row.servant, "node": row.node_name},
                )
            else:
                set_keys = (name, f"{name}.{area}", set_id)
        active = is_active(row)
        weight_type = ep.weight_type
        if active and weight_type == _DYNAMIC_WEIGHT:
            weight_type = 0
        epf = EndpointF(
            host=ep.host,
            port=ep.port,
            timeout=ep.timeout,
            istcp=ep.istcp,
            grid=0,
            groupworkid=work,
            grouprealid=real,
            setId=set_id,
            qos=0,
            bakFlag=row.bak_flag,
            weight=ep.weight,
            weightType=weight_type,
            authType=ep.auth_type,
            nodeName=(row.node_name or "").strip(),
        )
        instances.append(_Instance(row.servant, epf, active, work, real, set_keys))
    return _Server(rows, tuple(instances), frozenset(i.servant for i in instances))


def _status_of(rows: Iterable[RouteRow]) -> dict[str, int]:
    """The status map entries of one server's ``rows``, by node (registry rows have none)."""
    status: dict[str, int] = {}
    for row in rows:
        if row.from_registry:
            continue
        if not row.servant and not row.endpoint:
            ok = row.setting_state.lower() == "active" and row.present_state.lower() == "active"
        elif row.bak_flag == 1 or isinstance(_parse_endpoint(row.endpoint), str):
            continue  # upstream skips these rows before recording a status
        else:
            ok = is_active(row)
        status[row.node_name] = ACTIVE if ok else INACTIVE
    return status


class StatusMap(MutableMapping[StatusKey, int]):
    """The instance status map (upstream ``_mapServantStatus``): ``tars.ServerState`` numbers
    by ``(application, server_name, node_name)``.

    Kept per server, one small dict of nodes each: a full load replaces the map with one
    sharing every server's dict that did not change (:func:`compile_steps`), so that neither
    building the new map nor freeing the old one touches 100,000 entries while lookups wait
    (docs/registry.md, "Latency")."""

    __slots__ = ("_servers",)

    def __init__(self, servers: dict[ServerKey, dict[str, int]] | None = None) -> None:
        #: server -> node -> number (taken over, not copied)
        self._servers: dict[ServerKey, dict[str, int]] = {} if servers is None else servers

    def server(self, key: ServerKey) -> dict[str, int] | None:
        """The entries of one server, by node (None when it has none; the map's own dict,
        shared by the next full load's map when equal: read it, do not change it)."""
        return self._servers.get(key)

    def update_servers(self, parts: Mapping[ServerKey, Mapping[str, int]]) -> None:
        """Set the entries in ``parts`` (an incremental load's); the others stay."""
        servers = self._servers
        for key, nodes in parts.items():
            if nodes:
                mine = servers.get(key)
                if mine is None:
                    servers[key] = dict(nodes)
                else:
                    mine.update(nodes)

    def get(self, key: StatusKey, default: Any = None) -> Any:
        nodes = self._servers.get((key[0], key[1]))
        return default if nodes is None else nodes.get(key[2], default)

    def __getitem__(self, key: StatusKey) -> int:
        return self._servers[(key[0], key[1])][key[2]]

    def __setitem__(self, key: StatusKey, value: int) -> None:
        nodes = self._servers.get((key[0], key[1]))
        if nodes is None:
            nodes = self._servers[(key[0], key[1])] = {}
        nodes[key[2]] = value

    def __delitem__(self, key: StatusKey) -> None:
        nodes = self._servers[(key[0], key[1])]
        del nodes[key[2]]
        if not nodes:
            del self._servers[(key[0], key[1])]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 3:
            return False
        nodes = self._servers.get((key[0], key[1]))
        return nodes is not None and key[2] in nodes

    def __iter__(self) -> Iterator[StatusKey]:
        for (app, server), nodes in self._servers.items():
            for node in nodes:
                yield (app, server, node)

    def __len__(self) -> int:
        return sum(len(nodes) for nodes in self._servers.values())

    def parts(self) -> list[object]:
        """What holds the entries (for the registry to free a replaced map a part at a time)."""
        return [self._servers]


@dataclass(frozen=True, slots=True)
class CompiledServers:
    """Rows compiled per server (the expensive part of a load; see :func:`compile_steps`)."""

    servers: Mapping[ServerKey, _Server]
    #: status map entries per server, by node (see :class:`StatusMap`)
    status: Mapping[ServerKey, dict[str, int]]
    groups: GroupIndex


#: A computation in steps: it yields between steps (each a few dozen microseconds at most)
#: and returns its result. :func:`run_steps` runs one at once; the registry runs its loads'
#: with the event loop answering lookups between steps (docs/registry.md, "Latency").
Steps = Generator[None, None, _T]

#: Rows grouped by server between two steps.
_GROUP_STEP = 256


def run_steps(steps: Steps[_T]) -> _T:
    """The result of ``steps``, computed at once."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast("_T", done.value)


def compile_rows(
    rows: Iterable[RouteRow],
    groups: GroupIndex,
    previous: RouteSnapshot | None = None,
    status: StatusMap | None = None,
) -> CompiledServers:
    """Group ``rows`` by server and compile each; a server whose rows (and the groups) equal
    those in ``previous`` reuses its compiled entry, and its status entries those of
    ``status`` when equal."""
    return run_steps(compile_steps(rows, groups, previous, status))


def compile_steps(
    rows: Iterable[RouteRow],
    groups: GroupIndex,
    previous: RouteSnapshot | None = None,
    status: StatusMap | None = None,
) -> Steps[CompiledServers]:
    """:func:`compile_rows` in steps of one server (or :data:`_GROUP_STEP` rows grouped)."""
    by_server: dict[ServerKey, list[RouteRow]] = {}
    for i, row in enumerate(rows):
        by_server.setdefault(server_key(row), []).append(row)
        if i % _GROUP_STEP == _GROUP_STEP - 1:
            yield
    reuse = previous.servers if previous is not None and previous.groups == groups else {}
    servers: dict[ServerKey, _Server] = {}
    entries: dict[ServerKey, dict[str, int]] = {}
    for key in list(by_server):
        yield
        frozen = tuple(by_server.pop(key))  # the lists are freed as they are done
        old = reuse.get(key)
        servers[key] = (
            old if old is not None and old.rows == frozen else _compile_server(frozen, groups)
        )
        nodes = _status_of(frozen)
        if nodes:
            same = status.server(key) if status is not None else None
            entries[key] = same if same is not None and same == nodes else nodes
    return CompiledServers(servers, entries, groups)


# -- one servant's routes ---------------------------------------------------------------------


class _SetName:
    """The set rows of one servant with one set name."""

    __slots__ = ("by_area", "by_id")

    def __init__(self) -> None:
        self.by_id: dict[str, tuple[list[EndpointF], list[EndpointF]]] = {}
        self.by_area: dict[str, tuple[list[EndpointF], list[EndpointF]]] = {}


def _add(
    table: dict[Any, tuple[list[EndpointF], list[EndpointF]]], key: Any, inst: _Instance
) -> None:
    lists = table.get(key)
    if lists is None:
        lists = table[key] = ([], [])
    lists[0 if inst.active else 1].append(inst.epf)


class ServantRoutes:
    """Everything lookups need about one servant, precomputed. The lists are shared between
    answers: never mutate them."""

    __slots__ = ("_by_work", "_memo_group", "_memo_station", "_sets", "active", "inactive", "name")

    def __init__(self, name: str, instances: Iterable[_Instance]) -> None:
        self.name = name
        insts = tuple(instances)
        self.active: list[EndpointF] = [i.epf for i in insts if i.active]
        self.inactive: list[EndpointF] = [i.epf for i in insts if not i.active]
        by_work: dict[int, tuple[list[EndpointF], list[EndpointF]]] = {}
        sets: dict[str, _SetName] = {}
        for inst in insts:
            _add(by_work, inst.work_group, inst)
            if inst.set_keys is not None:
                set_name, set_area, set_id = inst.set_keys
                entry = sets.get(set_name)
                if entry is None:
                    entry = sets[set_name] = _SetName()
                _add(entry.by_id, set_id, inst)
                _add(entry.by_area, set_area, inst)
        self._by_work = by_work
        self._sets: dict[str, _SetName] | None = sets or None
        self._memo_group: dict[int, tuple[list[EndpointF], list[EndpointF]]] = {}
        self._memo_station: dict[str, tuple[list[EndpointF], list[EndpointF]]] = {}

    def _where(self, attr: str, groups: frozenset[int]) -> tuple[list[EndpointF], list[EndpointF]]:
        active = [e for e in self.active if getattr(e, attr) in groups]
        inactive = [e for e in self.inactive if getattr(e, attr) in groups]
        return active, inactive

    def in_group(self, group: int, index: GroupIndex) -> tuple[list[EndpointF], list[EndpointF]]:
        """Upstream ``findObjectByIdInGroupPriority`` for a caller in ``group``."""
        if group == -1:
            return self.active, self.inactive
        memo = self._memo_group.get(group)
        if memo is not None:
            return memo
        result = self._by_work.get(group, _EMPTY)
        if not result[0]:
            for members, _station in index.priorities:
                if group not in members:
                    continue
                result = self._where("groupworkid", members)
                if result[0]:
                    break
        if not result[0]:
            result = self._by_work.get(-1, _EMPTY)
        if not result[0]:
            result = (self.active, self.inactive)
        self._memo_group[group] = result
        return result

    def in_station(
        self, station: str, members: frozenset[int]
    ) -> tuple[list[EndpointF], list[EndpointF]]:
        memo = self._memo_station.get(station)
        if memo is None:
            memo = self._memo_station[station] = self._where("grouprealid", members)
        return memo

    def in_set(
        self, name: str, area: str, group: str
    ) -> tuple[list[EndpointF], list[EndpointF]] | None:
        """Set routing; None when the servant has no set rows named ``name`` (the caller falls
        back to IDC groups), empty lists when it has but none match."""
        sets = self._sets
        entry: _SetName | None = sets.get(name) if sets is not None else None
        if entry is None:
            return None
        found: tuple[list[EndpointF], list[EndpointF]] | None
        if group == "*":
            found = entry.by_area.get(f"{name}.{area}")
        else:
            found = entry.by_id.get(f"{name}.{area}.{group}")
            if found is None:
                found = entry.by_id.get(f"{name}.{area}.*")
        return _EMPTY if found is None else found


# -- the snapshot -----------------------------------------------------------------------------


def _split_set_id(set_id: str) -> list[str]:
    """TarsCpp ``sepstr(setId, ".")``: empty parts dropped."""
    return [part for part in set_id.split(".") if part]


def _sharded(table: Mapping[Any, Any]) -> ShardedMap[Any, Any]:
    return table if isinstance(table, ShardedMap) else ShardedMap(table)


_NO_SOURCES: Mapping[str, tuple[ServerKey, ...]] = {}


class RouteSnapshot:
    """An immutable route cache. Build with :meth:`build`; derive updated copies with
    :meth:`merged` (incremental load) and :meth:`with_present_states` (a node's report)."""

    __slots__ = ("groups", "servant_sources", "servants", "servers")

    def __init__(
        self,
        groups: GroupIndex,
        servers: Mapping[ServerKey, _Server],
        servants: Mapping[str, ServantRoutes],
        servant_sources: Mapping[str, tuple[ServerKey, ...]],
    ) -> None:
        self.groups = groups
        # sharded: a changed copy shares what it does not change (tarsus.framework.registry.sharded)
        self.servers: ShardedMap[ServerKey, _Server] = _sharded(servers)
        self.servants: ShardedMap[str, ServantRoutes] = _sharded(servants)
        #: servant -> the servers whose rows route it (usually one; plus t_registry_info)
        self.servant_sources: ShardedMap[str, tuple[ServerKey, ...]] = _sharded(servant_sources)

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def empty(cls) -> RouteSnapshot:
        return cls(GroupIndex(), {}, {}, {})

    @classmethod
    def build(
        cls,
        rows: Iterable[RouteRow],
        rules: Iterable[GroupRule] = (),
        priorities: Iterable[GroupPriority] = (),
        *,
        previous: RouteSnapshot | None = None,
    ) -> RouteSnapshot:
        """A full load (status entries: :func:`compile_rows`)."""
        groups = GroupIndex(rules, priorities)
        return cls.from_compiled(compile_rows(rows, groups, previous), previous=previous)

    @classmethod
    def from_compiled(
        cls, compiled: CompiledServers, *, previous: RouteSnapshot | None = None
    ) -> RouteSnapshot:
        """Everything replaced by ``compiled``; servants whose servers were reused unchanged
        from ``previous`` keep their routes (and memos)."""
        return run_steps(cls.from_compiled_steps(compiled, previous=previous))

    @classmethod
    def from_compiled_steps(
        cls, compiled: CompiledServers, *, previous: RouteSnapshot | None = None
    ) -> Steps[RouteSnapshot]:
        """:meth:`from_compiled` in steps of one servant (or :data:`_GROUP_STEP` servers)."""
        servers = compiled.servers
        server_shards: list[dict[ServerKey, _Server]] = ShardedMap.shards_to_fill()
        sources: dict[str, list[ServerKey]] = {}
        for i, (key, server) in enumerate(servers.items()):
            server_shards[shard_of(key)][key] = server
            for servant in server.servants:
                sources.setdefault(servant, []).append(key)
            if i % _GROUP_STEP == _GROUP_STEP - 1:
                yield
        # the previous snapshot's tuples when equal: freeing it then frees none of them
        old_sources = previous.servant_sources if previous is not None else _NO_SOURCES
        frozen_sources: dict[str, tuple[ServerKey, ...]] = {}
        source_shards: list[dict[str, tuple[ServerKey, ...]]] = ShardedMap.shards_to_fill()
        for i, name in enumerate(list(sources)):
            keys = tuple(sources.pop(name))
            same = old_sources.get(name)
            frozen = same if same is not None and same == keys else keys
            frozen_sources[name] = source_shards[shard_of(name)][name] = frozen
            if i % _GROUP_STEP == _GROUP_STEP - 1:
                yield
        yield
        old = previous if previous is not None and previous.groups == compiled.groups else None
        servant_shards: list[dict[str, ServantRoutes]] = ShardedMap.shards_to_fill()
        for name, keys in frozen_sources.items():
            yield
            if (
                old is not None
                and old.servant_sources.get(name) == keys
                and all(old.servers.get(k) is servers[k] for k in keys)
            ):
                routes = old.servants[name]
            else:
                routes = _servant_routes(name, keys, servers)
            servant_shards[shard_of(name)][name] = routes
        return cls(
            compiled.groups,
            ShardedMap.from_shards(server_shards),
            ShardedMap.from_shards(servant_shards),
            ShardedMap.from_shards(source_shards),
        )

    def merged(
        self, compiled: CompiledServers, replaced: Collection[ServerKey] = ()
    ) -> RouteSnapshot:
        """An incremental load: the servers in ``compiled`` and in ``replaced`` get exactly
        the rows in ``compiled`` (a server in ``replaced`` without rows disappears). Group
        rules are kept (they change with full loads only)."""
        return run_steps(self.merged_steps(compiled, replaced))

    def merged_steps(
        self, compiled: CompiledServers, replaced: Collection[ServerKey] = ()
    ) -> Steps[RouteSnapshot]:
        """:meth:`merged` in steps of one servant (or one copy of a table)."""
        touched = set(replaced) | set(compiled.servers)
        if not touched:
            return self
        yield
        server_changes: dict[ServerKey, _Server | None] = {}
        affected: set[str] = set()
        new_sources: dict[str, list[ServerKey]] = {}
        for key in touched:
            old = self.servers.get(key)
            if old is not None:
                affected |= old.servants
            new = compiled.servers.get(key)
            server_changes[key] = new  # None: the server is gone
            if new is not None:
                affected |= new.servants
                for servant in new.servants:
                    new_sources.setdefault(servant, []).append(key)
        servers = self.servers.updated(server_changes)
        sources: dict[str, tuple[ServerKey, ...] | None] = {}
        servants: dict[str, ServantRoutes | None] = {}
        for name in affected:
            yield
            keys = tuple(k for k in self.servant_sources.get(name, ()) if k not in touched) + tuple(
                new_sources.get(name, ())
            )
            if keys:
                sources[name] = keys
                servants[name] = _servant_routes(name, keys, servers)
            else:
                sources[name] = servants[name] = None  # no server routes it any more
        return RouteSnapshot(
            self.groups,
            servers,
            self.servants.updated(servants),
            self.servant_sources.updated(sources),
        )

    def with_present_states(self, changes: Mapping[StatusKey, str]) -> RouteSnapshot:
        """A copy where the given instances have a new ``present_state`` (unknown ones are
        ignored). Used for what the registry itself writes: node reports, sweeps."""
        per_server: dict[ServerKey, dict[str, str]] = {}
        for (app, server, node), state in changes.items():
            per_server.setdefault((app, server), {})[node] = state
        replaced: dict[ServerKey, _Server] = {}
        for key, nodes in per_server.items():
            current = self.servers.get(key)
            if current is None:
                continue
            rows = tuple(
                replace(row, present_state=nodes[row.node_name])
                if row.node_name in nodes and row.present_state != nodes[row.node_name]
                else row
                for row in current.rows
            )
            if rows != current.rows:
                replaced[key] = _compile_server(rows, self.groups)
        if not replaced:
            return self
        return self.merged(CompiledServers(replaced, {}, self.groups))

    def nodes_instances(self, node_names: Collection[str]) -> list[StatusKey]:
        """Every instance (with or without adapters) on the given nodes."""
        names = set(node_names)
        found: dict[StatusKey, None] = {}
        for key, server in self.servers.items():
            if key == REGISTRY_KEY:
                continue
            for row in server.rows:
                if row.node_name in names:
                    found[status_key(row)] = None
        return list(found)

    def parts(self) -> list[object]:
        """The shards of this snapshot's tables (for the registry to free a replaced snapshot
        a part at a time: 10,000 servants make a table a few hundred microseconds to free; a
        shard shared with the new snapshot is not freed at all)."""
        return [*self.servers.shards(), *self.servants.shards(), *self.servant_sources.shards()]

    # -- facts -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.servants)

    def __contains__(self, servant: object) -> bool:
        return servant in self.servants

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.servers.values())

    # -- lookups (upstream ``CDbHandle::findObjectById*``) -----------------------------------------

    def find_by_id(self, obj: str) -> list[EndpointF]:
        """``findObjectById``: the active endpoints."""
        routes = self.servants.get(obj)
        return routes.active if routes is not None else []

    def find_4any(self, obj: str) -> Lookup:
        """``findObjectById4Any``: every active and inactive endpoint, no grouping."""
        routes = self.servants.get(obj)
        if routes is None:
            return 0, [], []
        return 0, routes.active, routes.inactive

    def find_in_same_group(self, obj: str, ip: str) -> Lookup:
        """``findObjectByIdInSameGroup`` (and ``findObjectById4All``): the caller's IDC group,
        then the priority rows holding it, then servers without grouping, then everything."""
        routes = self.servants.get(obj)
        if routes is None:
            return 0, [], []
        active, inactive = routes.in_group(self.groups.group_of(ip), self.groups)
        return 0, active, inactive

    find_4all = find_in_same_group

    def find_in_same_station(self, obj: str, station: str) -> Lookup:
        """``findObjectByIdInSameStation``: endpoints whose real group is in the first priority
        row of ``station`` (-1 when no row names the station)."""
        members = self.groups.stations.get(station)
        if members is None:
            return -1, [], []
        routes = self.servants.get(obj)
        if routes is None:
            return 0, [], []
        active, inactive = routes.in_station(station, members)
        return 0, active, inactive

    def find_in_same_set(self, obj: str, set_id: str, ip: str) -> Lookup:
        """``findObjectByIdInSameSet``: ``set_id`` is ``name.area.group`` (group may be
        ``*``). A servant without set rows of that name falls back to IDC groups; otherwise
        the exact group, else the wildcard group ``name.area.*``, else -1 (no other set)."""
        parts = _split_set_id(set_id)
        if len(parts) != 3 or parts[0] == "*" or parts[1] == "*":
            return -1, [], []
        routes = self.servants.get(obj)
        found = routes.in_set(*parts) if routes is not None else None
        if found is None:
            return self.find_in_same_group(obj, ip)
        active, inactive = found
        if not active and not inactive:
            return -1, [], []
        return 0, active, inactive


def _servant_routes(
    name: str, keys: tuple[ServerKey, ...], servers: Mapping[ServerKey, _Server]
) -> ServantRoutes:
    instances = [inst for key in keys for inst in servers[key].instances if inst.servant == name]
    if len(keys) > 1:
        instances = _one_per_address(instances)
    return ServantRoutes(name, instances)


def _one_per_address(instances: list[_Instance]) -> list[_Instance]:
    """One instance per address (host, port, transport), an active one if any.

    A framework service is routed both by its ``t_registry_info`` row (its own heartbeat) and
    by its ``t_adapter_conf`` row as a ``tars.*`` server (TarsFramework's
    ``deploy/framework/sql/tars_servers.sql`` records both): clients and nodes must see its
    address once, not twice (a node would keep two push connections to one admin registry)."""
    chosen: dict[tuple[str, int, int], _Instance] = {}
    for inst in instances:
        address = (inst.epf.host, inst.epf.port, inst.epf.istcp)
        have = chosen.get(address)
        if have is None or (inst.active and not have.active):
            chosen[address] = inst
    return list(chosen.values())


# -- the holder --------------------------------------------------------------------------------


class RouteCache:
    """The current snapshot and the instance status map (upstream ``_mapServantStatus``).

    ``snapshot`` is replaced, never modified. The status map (``tars.ServerState`` numbers)
    is what ``updateServerBatch`` compares reports against.
    """

    def __init__(self) -> None:
        self.snapshot: RouteSnapshot = RouteSnapshot.empty()
        self.status = StatusMap()
        #: set by the first full load
        self.loaded = False

    def load_full(
        self,
        rows: Iterable[RouteRow],
        rules: Iterable[GroupRule] = (),
        priorities: Iterable[GroupPriority] = (),
    ) -> RouteSnapshot:
        compiled = compile_rows(rows, GroupIndex(rules, priorities), self.snapshot, self.status)
        return self.install_full(compiled)

    def load_servers(
        self, rows: Iterable[RouteRow], replaced: Collection[ServerKey] = ()
    ) -> RouteSnapshot:
        compiled = compile_rows(rows, self.snapshot.groups, self.snapshot)
        return self.install_servers(compiled, replaced)

    def install_full(
        self, compiled: CompiledServers, snapshot: RouteSnapshot | None = None
    ) -> RouteSnapshot:
        """Replace everything; ``snapshot``, if given, is ``compiled`` already built (say,
        in steps, by :meth:`RouteSnapshot.from_compiled_steps`). The status map is made of
        ``compiled.status`` itself when it is a dict (a load's own: not copied while lookups
        wait)."""
        if snapshot is None:
            snapshot = RouteSnapshot.from_compiled(compiled, previous=self.snapshot)
        self.snapshot = snapshot
        status = compiled.status
        self.status = StatusMap(status if type(status) is dict else dict(status))
        self.loaded = True
        return self.snapshot

    def install_servers(
        self, compiled: CompiledServers, replaced: Collection[ServerKey] = ()
    ) -> RouteSnapshot:
        if compiled.groups != self.snapshot.groups:
            # compiled against rules a full load has since replaced: compile again
            rows = [row for server in compiled.servers.values() for row in server.rows]
            compiled = compile_rows(rows, self.snapshot.groups, self.snapshot)
        self.snapshot = self.snapshot.merged(compiled, replaced)
        self.status.update_servers(compiled.status)
        return self.snapshot

    def install_servers_steps(
        self, compiled: CompiledServers, replaced: Collection[ServerKey] = ()
    ) -> Steps[RouteSnapshot]:
        """:meth:`install_servers` in steps. The snapshot is replaced in the last one; if it
        was replaced meanwhile (a node's report), the merge is done again on the new one."""
        base = self.snapshot
        if compiled.groups != base.groups:
            return self.install_servers(compiled, replaced)
        merged = yield from base.merged_steps(compiled, replaced)
        if self.snapshot is not base:
            return self.install_servers(compiled, replaced)
        self.snapshot = merged
        self.status.update_servers(compiled.status)
        return merged

    def set_present_states(self, changes: Mapping[StatusKey, str]) -> RouteSnapshot:
        """Apply present_state changes the registry wrote itself, without waiting for a load."""
        self.snapshot = self.snapshot.with_present_states(changes)
        return self.snapshot
