"""``t_server_conf`` and ``t_adapter_conf``: deployed server instances and their servants.

The desired state (``setting_state``) is written by the management path, the observed state
(``present_state``, ``process_id``) from node reports (docs/store.md). Every write sets
``registry_timestamp`` from the store's clock: the registry's incremental route load reads only
rows whose timestamp moved, so a write that forgot it would never reach clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, Table, and_, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from tarsus.conf import ConfigError, parse
from tarsus.names import InvalidName, check_application, check_node_name, check_server_name
from tarsus.rpc.endpoint import Endpoint, EndpointError
from tarsus.store.bulk import update_many
from tarsus.store.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    StoreError,
    driver_reason,
    is_duplicate_key,
)
from tarsus.store.rows import AdapterRow, ServerRow, read_adapter, read_server
from tarsus.store.schema import (
    PRESENT_STATES,
    SERVER_TYPES,
    SETTING_STATES,
    t_adapter_conf,
    t_config_files,
    t_config_references,
    t_server_conf,
)
from tarsus.store.server_types import (
    PYTHON,
    PYTHON_TEMPLATE,
    default_template,
    inherits,
    stored_type,
    with_types,
)
from tarsus.store.templates import parent_map

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tarsus.store.engine import Store

__all__ = ["PRESENT_CHUNK", "AdapterSpec", "PresentReport", "ServerSpec", "Servers"]

#: Rows per statement of :meth:`Servers.update_present_many` (upstream's chunk).
PRESENT_CHUNK = 1000

#: ``(node_name, application, server_name, present_state, process_id)``; node first, as the
#: node sends ``updateServer`` (docs/registry.md).
PresentReport = tuple[str, str, str, str, int]

_NAME = re.compile(r"[A-Za-z0-9_]+")
_SET_NAME = re.compile(r"[A-Za-z]+")
_SET_GROUP = re.compile(r"[0-9]+|\*")
_INT32 = (-(2**31), 2**31 - 1)
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "*"})
_RUNNING = ("active", "activating", "deactivating")


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """A servant of an instance to deploy: one ``t_adapter_conf`` row.

    ``servant`` is ``App.Server.Obj``; ``adapter_name`` defaults to ``<servant>Adapter``.
    """

    servant: str
    endpoint: str
    adapter_name: str = ""
    thread_num: int = 1
    max_connections: int = 10000
    allow_ip: str = ""
    queuecap: int = 10000
    queuetimeout: int = 60000
    protocol: str = "tars"
    handlegroup: str = ""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """A server instance to deploy: one ``t_server_conf`` row (the configured columns)."""

    application: str
    server_name: str
    node_name: str
    server_type: str = "tars_python"
    #: "" is the type's default: ``tars.tarspython.default`` for Python, else ``tars.default``
    template_name: str = ""
    profile: str = ""
    node_group: str = ""
    base_path: str = ""
    exe_path: str = ""
    bak_flag: int = 0
    async_thread_num: int = 3
    enable_set: str = "N"
    set_name: str = ""
    set_area: str = ""
    set_group: str = ""
    enable_group: str = "N"
    ip_group_name: str = ""
    start_script_path: str = ""
    stop_script_path: str = ""
    monitor_script_path: str = ""
    config_center_port: int = 0
    server_important_type: str = "0"
    run_type: str = ""
    base_image_id: int = 0
    source: str = ""


def _check_columns(table: Table, values: dict[str, Any], where: str) -> None:
    """Every string fits its column and every int is a 32-bit int, or :class:`InvalidInput`."""
    for key, value in values.items():
        column = table.c[key]
        if isinstance(value, str):
            length = getattr(column.type, "length", None)
            if isinstance(column.type, String) and length and len(value) > length:
                raise InvalidInput(
                    f"{key} of {where} is {len(value)} characters; at most {length} fit"
                )
        elif isinstance(value, int) and not _INT32[0] <= value <= _INT32[1]:
            raise InvalidInput(f"{key} of {where} is out of range: {value}")


def _check_state(field: str, state: str, allowed: Sequence[str]) -> str:
    lowered = state.lower() if isinstance(state, str) else ""
    if lowered not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}; got {state!r}")
    return lowered


def _instance(app: str, server: str, node: str) -> str:
    return f"server {app}.{server} on node {node!r}"


def _key(app: str, server: str, node: str) -> Any:
    return and_(
        t_server_conf.c.application == app,
        t_server_conf.c.server_name == server,
        t_server_conf.c.node_name == node,
    )


def _adapter_key(app: str, server: str, node: str) -> Any:
    return and_(
        t_adapter_conf.c.application == app,
        t_adapter_conf.c.server_name == server,
        t_adapter_conf.c.node_name == node,
    )


def _server_values(spec: ServerSpec) -> dict[str, Any]:
    """Validated ``t_server_conf`` values of ``spec`` (no timestamps, no state)."""
    try:
        check_application(spec.application)
        check_server_name(spec.server_name)
        check_node_name(spec.node_name)
    except InvalidName as e:
        raise InvalidInput(
            f"{e} (deploying {spec.application!r}.{spec.server_name!r} on {spec.node_name!r})"
        ) from None
    where = _instance(spec.application, spec.server_name, spec.node_name)
    if spec.server_type not in SERVER_TYPES:
        raise InvalidInput(
            f"server_type of {where} must be one of {', '.join(SERVER_TYPES)}; "
            f"got {spec.server_type!r}"
        )
    for flag in ("enable_set", "enable_group"):
        if getattr(spec, flag) not in ("Y", "N"):
            raise InvalidInput(f"{flag} of {where} must be 'Y' or 'N'; got {getattr(spec, flag)!r}")
    if spec.enable_set == "Y":
        if not _SET_NAME.fullmatch(spec.set_name):
            raise InvalidInput(f"set_name of {where} must be letters only; got {spec.set_name!r}")
        if not _SET_NAME.fullmatch(spec.set_area):
            raise InvalidInput(f"set_area of {where} must be letters only; got {spec.set_area!r}")
        if not _SET_GROUP.fullmatch(spec.set_group):
            raise InvalidInput(
                f"set_group of {where} must be digits or '*'; got {spec.set_group!r}"
            )
    if spec.async_thread_num < 0:
        raise InvalidInput(f"async_thread_num of {where} must not be negative")
    if spec.server_important_type not in tuple("012345"):
        raise InvalidInput(
            f"server_important_type of {where} must be one of 0-5; "
            f"got {spec.server_important_type!r}"
        )
    if spec.profile:
        try:
            parse(spec.profile, source="profile")
        except ConfigError as err:
            raise InvalidInput(f"profile of {where} is not valid TC_Config: {err}") from None
    values = asdict(spec)
    values["template_name"] = spec.template_name or default_template(spec.server_type)
    values["server_type"] = stored_type(spec.server_type)
    if spec.enable_set == "N":  # a set that is not enabled is stored empty, as upstream does
        values.update(set_name="", set_area="", set_group="")
    _check_columns(t_server_conf, values, where)
    return values


def _adapter_values(spec: ServerSpec, adapters: Sequence[AdapterSpec]) -> list[dict[str, Any]]:
    """Validated ``t_adapter_conf`` rows (without timestamps) of ``adapters``."""
    where = _instance(spec.application, spec.server_name, spec.node_name)
    prefix = f"{spec.application}.{spec.server_name}."
    rows: list[dict[str, Any]] = []
    servants: set[str] = set()
    names: set[str] = set()
    bound: dict[tuple[str, int], str] = {}
    for adapter in adapters:
        servant = adapter.servant
        obj = servant[len(prefix) :] if servant.startswith(prefix) else ""
        if not _NAME.fullmatch(obj):
            raise InvalidInput(
                f"servant {servant!r} of {where} must be {prefix}<Obj>, <Obj> being letters, "
                f"digits and '_'"
            )
        if servant in servants:
            raise InvalidInput(f"servant {servant!r} of {where} is listed twice")
        servants.add(servant)
        name = adapter.adapter_name or f"{servant}Adapter"
        if name in names:
            raise InvalidInput(f"adapter_name {name!r} of {where} is listed twice")
        names.add(name)
        try:
            endpoint = Endpoint.parse(adapter.endpoint)
        except (EndpointError, TypeError) as err:
            raise InvalidInput(f"endpoint of servant {servant} on {where}: {err}") from None
        for field in ("thread_num", "max_connections", "queuecap", "queuetimeout"):
            if getattr(adapter, field) < 1:
                raise InvalidInput(
                    f"{field} of servant {servant} on {where} must be at least 1; "
                    f"got {getattr(adapter, field)}"
                )
        if not _NAME.fullmatch(adapter.protocol):
            raise InvalidInput(
                f"protocol of servant {servant} on {where} must be a word such as 'tars' or "
                f"'not_tars'; got {adapter.protocol!r}"
            )
        if endpoint.port:
            for (host, port), other in bound.items():
                if port == endpoint.port and _hosts_clash(host, endpoint.host):
                    raise Conflict(
                        f"servants {other} and {servant} of {where} both listen on "
                        f"{endpoint.host}:{port}"
                    )
            bound[(endpoint.host, endpoint.port)] = servant
        row = asdict(adapter)
        row.update(
            application=spec.application,
            server_name=spec.server_name,
            node_name=spec.node_name,
            adapter_name=name,
        )
        _check_columns(t_adapter_conf, row, f"servant {servant} on {where}")
        rows.append(row)
    return rows


def _hosts_clash(a: str, b: str) -> bool:
    return a == b or a in _WILDCARD_HOSTS or b in _WILDCARD_HOSTS


class Servers:
    """Deployed server instances."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- management ------------------------------------------------------------------------

    async def deploy(
        self,
        server: ServerSpec,
        adapters: Sequence[AdapterSpec],
        *,
        replace: bool = False,
        user: str = "",
    ) -> ServerRow:
        """Create the instance ``server`` with its servants ``adapters``, in one transaction.

        New instances start ``setting_state = present_state = 'inactive'``. With ``replace``,
        an existing instance's configuration and servants are replaced (its observed state,
        patch and version are kept); without, an existing instance is a :class:`Conflict`.
        Raises :class:`InvalidInput` naming the bad field, :class:`Conflict` naming the server
        whose endpoint is already taken on that node.
        """
        values = _server_values(server)
        rows = _adapter_values(server, adapters)
        app, name, node = server.application, server.server_name, server.node_name
        where = _instance(app, name, node)
        _check_columns(t_server_conf, {"lastuser": user}, f"deploy of {where}")
        now = self._store.clock()
        values.update(registry_timestamp=now, posttime=now, lastuser=user)
        for row in rows:
            row.update(registry_timestamp=now, posttime=now, lastuser=user)
        async with self._store.begin() as conn:
            template = values["template_name"]
            parents = await parent_map(conn)
            if template not in parents:
                raise InvalidInput(
                    f"template_name of {where}: template {template!r} does not exist"
                )
            if server.server_type == PYTHON and not inherits(template, parents, PYTHON_TEMPLATE):
                raise InvalidInput(
                    f"template_name of {where}: a tars_python server's template must be "
                    f"{PYTHON_TEMPLATE} or inherit from it (that is how the database tells a "
                    f"Python server from a C++ one); {template!r} does not"
                )
            exists = await conn.scalar(
                select(t_server_conf.c.id).where(_key(app, name, node)).with_for_update()
            )
            if exists is not None and not replace:
                raise Conflict(f"{where} is already deployed; undeploy it or deploy with replace")
            await self._check_ports(conn, server, rows)
            try:
                if exists is None:
                    # upstream's column is NOT NULL and TarsWeb's schema sync makes it so: a
                    # server not patched yet carries its deploy time (migration 0003)
                    await conn.execute(
                        insert(t_server_conf).values(
                            setting_state="inactive",
                            present_state="inactive",
                            patch_time=now,
                            **values,
                        )
                    )
                else:
                    await conn.execute(
                        update(t_server_conf)
                        .where(t_server_conf.c.id == exists)
                        .values(patch_time=func.coalesce(t_server_conf.c.patch_time, now), **values)
                    )
                    await conn.execute(delete(t_adapter_conf).where(_adapter_key(app, name, node)))
                if rows:
                    await conn.execute(insert(t_adapter_conf), rows)
            except IntegrityError as err:
                if is_duplicate_key(err):  # a concurrent deploy of the same instance won
                    raise Conflict(f"{where} was deployed concurrently: {err.orig}") from None
                raise StoreError(f"deploy of {where} failed: {driver_reason(err)}") from err
            stored = (await conn.execute(read_server.select().where(_key(app, name, node)))).one()
            return (await with_types(conn, [read_server(stored)]))[0]

    async def _check_ports(
        self, conn: AsyncConnection, spec: ServerSpec, rows: list[dict[str, Any]]
    ) -> None:
        """:class:`Conflict` if another instance on the node listens where ``rows`` would."""
        wanted = [(Endpoint.parse(r["endpoint"]), r["servant"]) for r in rows]
        wanted = [(ep, servant) for ep, servant in wanted if ep.port]
        if not wanted:
            return
        others = await conn.execute(
            select(
                t_adapter_conf.c.application,
                t_adapter_conf.c.server_name,
                t_adapter_conf.c.servant,
                t_adapter_conf.c.endpoint,
            ).where(
                t_adapter_conf.c.node_name == spec.node_name,
                ~and_(
                    t_adapter_conf.c.application == spec.application,
                    t_adapter_conf.c.server_name == spec.server_name,
                ),
            )
        )
        for app, server, servant, text in others:
            try:
                theirs = Endpoint.parse(text or "")
            except (EndpointError, TypeError):
                continue  # written by someone else, unparseable: it cannot be listening either
            for ours, our_servant in wanted:
                if ours.port == theirs.port and _hosts_clash(ours.host, theirs.host):
                    raise Conflict(
                        f"endpoint {ours.host}:{ours.port} of servant {our_servant} on node "
                        f"{spec.node_name!r} is already used by server {app}.{server} "
                        f"(servant {servant}, {text})"
                    )

    async def undeploy(self, app: str, server: str, node: str, *, force: bool = False) -> None:
        """Delete the instance, its servants and its node-specific config files
        (``t_config_files`` rows of ``App.Server`` for host ``node``).

        Refused (:class:`Conflict`) while the instance is running (present state active,
        activating or deactivating) unless ``force``. The other instances of the server get
        their ``registry_timestamp`` bumped, so incremental route loads notice the change.
        """
        where = _instance(app, server, node)
        now = self._store.clock()
        async with self._store.begin() as conn:
            state = await conn.scalar(
                select(t_server_conf.c.present_state).where(_key(app, server, node))
            )
            if state is None:
                raise NotFound(f"{where} is not deployed")
            if state.lower() in _RUNNING and not force:
                raise Conflict(f"{where} is {state.lower()}; stop it first, or undeploy with force")
            files = select(t_config_files.c.id).where(
                t_config_files.c.server_name == f"{app}.{server}",
                t_config_files.c.host == node,
            )
            await conn.execute(
                delete(t_config_references).where(t_config_references.c.config_id.in_(files))
            )
            await conn.execute(
                delete(t_config_files).where(
                    t_config_files.c.server_name == f"{app}.{server}",
                    t_config_files.c.host == node,
                )
            )
            await conn.execute(delete(t_adapter_conf).where(_adapter_key(app, server, node)))
            await conn.execute(delete(t_server_conf).where(_key(app, server, node)))
            await conn.execute(
                update(t_server_conf)
                .where(
                    t_server_conf.c.application == app,
                    t_server_conf.c.server_name == server,
                )
                .values(registry_timestamp=now)
            )
            await conn.execute(
                update(t_adapter_conf)
                .where(
                    t_adapter_conf.c.application == app,
                    t_adapter_conf.c.server_name == server,
                )
                .values(registry_timestamp=now)
            )

    async def set_setting_state(self, app: str, server: str, node: str, state: str) -> None:
        """Set the desired state, ``'active'`` or ``'inactive'``; :class:`NotFound` if the
        instance is not deployed."""
        value = _check_state("setting_state", state, SETTING_STATES)
        now = self._store.clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(t_server_conf)
                .where(_key(app, server, node))
                .values(setting_state=value, registry_timestamp=now)
            )
        if result.rowcount == 0:
            raise NotFound(f"{_instance(app, server, node)} is not deployed")

    async def set_flow_state(
        self, app: str, server: str, nodes: Iterable[str], active: bool
    ) -> int:
        """Switch traffic to the instances of ``App.Server`` on ``nodes`` on or off (lossless
        publish); returns how many rows changed."""
        value = "active" if active else "inactive"
        names = sorted(set(nodes))
        if not names:
            return 0
        now = self._store.clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(t_server_conf)
                .where(
                    t_server_conf.c.application == app,
                    t_server_conf.c.server_name == server,
                    t_server_conf.c.node_name.in_(names),
                    t_server_conf.c.flow_state != value,
                )
                .values(flow_state=value, registry_timestamp=now)
            )
        return max(result.rowcount, 0)

    # -- node reports ----------------------------------------------------------------------

    async def update_present(self, node: str, app: str, server: str, state: str, pid: int) -> bool:
        """The node's report of one instance (upstream ``updateServer``, node first). Writes
        only if state or pid changed; True if it did. An unknown instance is ignored."""
        value = _check_state("present_state", state, PRESENT_STATES)
        now = self._store.clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(t_server_conf)
                .where(
                    _key(app, server, node),
                    (t_server_conf.c.present_state != value) | (t_server_conf.c.process_id != pid),
                )
                .values(present_state=value, process_id=int(pid), registry_timestamp=now)
            )
        return result.rowcount > 0

    async def update_present_many(self, reports: Sequence[PresentReport]) -> int:
        """Many reports ``(node, app, server, state, pid)`` at once (``updateServerBatch``):
        rows whose state and pid are already stored are skipped, the rest written in chunks of
        :data:`PRESENT_CHUNK`. Returns how many rows changed."""
        latest: dict[tuple[str, str, str], tuple[str, int]] = {}
        for node, app, server, state, pid in reports:
            latest[(app, server, node)] = (
                _check_state("present_state", state, PRESENT_STATES),
                int(pid),
            )
        if not latest:
            return 0
        now = self._store.clock()
        keys = sorted(latest)  # a stable lock order across concurrent batches
        changed = 0
        key_columns = tuple_(
            t_server_conf.c.application, t_server_conf.c.server_name, t_server_conf.c.node_name
        )
        async with self._store.begin() as conn:
            for start in range(0, len(keys), PRESENT_CHUNK):
                part = keys[start : start + PRESENT_CHUNK]
                stored = await conn.execute(
                    select(
                        t_server_conf.c.application,
                        t_server_conf.c.server_name,
                        t_server_conf.c.node_name,
                        t_server_conf.c.present_state,
                        t_server_conf.c.process_id,
                    ).where(key_columns.in_(part))
                )
                rows: list[tuple[str, str, str, str, int]] = []
                for app, server, node, state, pid in stored:
                    new_state, new_pid = latest[(app, server, node)]
                    if (state or "").lower() != new_state or pid != new_pid:
                        rows.append((app, server, node, new_state, new_pid))
                rows.sort()
                changed += await update_many(
                    conn,
                    t_server_conf,
                    ["application", "server_name", "node_name"],
                    ["present_state", "process_id"],
                    rows,
                    {"registry_timestamp": now},
                    chunk=PRESENT_CHUNK,
                )
        return changed

    async def set_patch_result(
        self, app: str, server: str, node: str, version: str, user: str
    ) -> bool:
        """Record a finished patch: ``patch_version``, ``patch_time = now``, ``patch_user``.
        False if the instance is not deployed."""
        where = _instance(app, server, node)
        _check_columns(t_server_conf, {"patch_version": version, "patch_user": user}, where)
        now = self._store.clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(t_server_conf)
                .where(_key(app, server, node))
                .values(
                    patch_version=version, patch_time=now, patch_user=user, registry_timestamp=now
                )
            )
        return result.rowcount > 0

    async def set_tars_version(self, app: str, server: str, node: str, version: str) -> bool:
        """Record the framework version an instance reported; False if it is not deployed."""
        _check_columns(t_server_conf, {"tars_version": version}, _instance(app, server, node))
        now = self._store.clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(t_server_conf)
                .where(_key(app, server, node))
                .values(tars_version=version, registry_timestamp=now)
            )
        return result.rowcount > 0

    # -- reads -----------------------------------------------------------------------------

    async def get(self, app: str, server: str, node: str) -> ServerRow | None:
        """The instance, or None."""
        async with self._store.connect() as conn:
            row = (await conn.execute(read_server.select().where(_key(app, server, node)))).first()
            return None if row is None else (await with_types(conn, [read_server(row)]))[0]

    async def adapters(self, app: str, server: str, node: str) -> list[AdapterRow]:
        """The servants of one instance, by adapter name."""
        async with self._store.connect() as conn:
            rows = await conn.execute(
                read_adapter.select()
                .where(_adapter_key(app, server, node))
                .order_by(t_adapter_conf.c.adapter_name)
            )
            return [read_adapter(r) for r in rows]

    async def list(
        self,
        application: str | None = None,
        server_name: str | None = None,
        node_name: str | None = None,
    ) -> list[ServerRow]:
        """Instances matching every filter given, by application, server and node."""
        query = read_server.select().order_by(
            t_server_conf.c.application, t_server_conf.c.server_name, t_server_conf.c.node_name
        )
        if application is not None:
            query = query.where(t_server_conf.c.application == application)
        if server_name is not None:
            query = query.where(t_server_conf.c.server_name == server_name)
        if node_name is not None:
            query = query.where(t_server_conf.c.node_name == node_name)
        async with self._store.connect() as conn:
            return await with_types(conn, [read_server(r) for r in await conn.execute(query)])
