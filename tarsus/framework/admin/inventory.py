"""The admin registry's database-only methods: inventory, templates, deploy and config rows.

Instances, nodes and templates go through the store's repositories. A few upstream tables have
no repository yet, and their queries live here, each as upstream's ``DbProxy`` runs it:
``t_config_files`` / ``t_config_history_files`` (``insertConfigFile`` & co.) and
``t_server_group_rule`` (``getGroupId``). Packages (``t_server_patchs``) are
``store.patches``, used by :mod:`tarsus.framework.admin.packages`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update

from tarsus.framework.admin.errors import AdminError, ErrCode
from tarsus.framework.descriptor_paths import PathRefused, check_deploy_paths
from tarsus.protocol.gen import AdminReg, TarsusAdmin
from tarsus.store.errors import Conflict, InvalidInput, NotFound
from tarsus.store.schema import (
    t_adapter_conf,
    t_config_files,
    t_config_history_files,
    t_server_group_rule,
)
from tarsus.store.servers import AdapterSpec, ServerSpec

if TYPE_CHECKING:
    from tarsus.store.engine import Store
    from tarsus.store.rows import AdapterRow, ServerRow, TemplateRow

__all__ = [
    "Inventory",
    "delete_server_config_files",
    "match_period",
]

log = logging.getLogger("tarsus.framework.admin.inventory")

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# ---------------------------------------------------------------------------- config files
async def delete_server_config_files(store: Store, server: str) -> int:
    """Delete the server-level (level 2) config files of ``App.Server`` (its last instance
    was uninstalled); returns how many."""
    async with store.begin() as conn:
        result = await conn.execute(
            delete(t_config_files).where(
                t_config_files.c.server_name == server, t_config_files.c.level == 2
            )
        )
    return int(result.rowcount)


def _check_width(column: Any, value: str, what: str) -> None:
    length = getattr(column.type, "length", None)
    if length and len(value) > length:
        raise InvalidInput(f"{what} {value[:60]!r} is {len(value)} characters; at most {length}")


# ---------------------------------------------------------------------------- IDC groups
@dataclass(frozen=True, slots=True)
class IpGroupRule:
    group_id: int
    ip_order: str
    allow: tuple[str, ...]
    deny: tuple[str, ...]


def match_period(ip: str, pattern: str) -> bool:
    """TarsCpp ``TC_Common::matchPeriod``: ``*`` stands for one whole dot-separated part."""
    if not ip:
        return False
    if not pattern:
        return True
    if "*" not in pattern:
        return ip == pattern
    ip_parts, pat_parts = ip.split("."), pattern.split(".")
    if len(ip_parts) != len(pat_parts):
        return False
    return all((p == "*" and s != "") or p == s for s, p in zip(ip_parts, pat_parts, strict=True))


def _split_rule(text: str | None) -> tuple[str, ...]:
    """``TC_Common::sepstr(rule, ",|;")`` without empty parts."""
    return tuple(part for part in re.split(r"[,|;]", text or "") if part)


def group_of(ip: str, rules: list[IpGroupRule]) -> int:
    """Upstream admin ``DbProxy::getGroupId``: the first rule (by id) whose order lets ``ip``
    in. Not the registry's rule (``GroupIndex.group_of``); docs/registry.md says why."""
    for rule in rules:
        if rule.ip_order == "allow_denny":
            if any(match_period(ip, p) for p in rule.allow):
                return rule.group_id
        elif rule.ip_order == "denny_allow":
            if any(match_period(ip, p) for p in rule.deny):
                continue
            if any(match_period(ip, p) for p in rule.allow):
                return rule.group_id
    return -1


# ---------------------------------------------------------------------------- the inventory
def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)
    return str(value)


def _spec_from_row(row: ServerRow) -> ServerSpec:
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(ServerSpec)}
    for flag in ("enable_set", "enable_group"):
        values[flag] = "Y" if str(values[flag]).upper() == "Y" else "N"
    return ServerSpec(**values)


def _adapter_spec(row: AdapterRow) -> AdapterSpec:
    defaults = AdapterSpec("", "")

    def at_least_one(name: str) -> int:
        value = int(getattr(row, name))
        return value if value >= 1 else int(getattr(defaults, name))

    return AdapterSpec(
        servant=row.servant,
        endpoint=row.endpoint,
        adapter_name=row.adapter_name,
        thread_num=at_least_one("thread_num"),
        max_connections=at_least_one("max_connections"),
        allow_ip=row.allow_ip,
        queuecap=at_least_one("queuecap"),
        queuetimeout=at_least_one("queuetimeout"),
        protocol=row.protocol or "tars",
        handlegroup=row.handlegroup,
    )


def adapter_spec_from_conf(conf: AdminReg.AdapterConf) -> AdapterSpec:
    """An ``AdminReg.AdapterConf`` as the store's :class:`AdapterSpec`."""
    return AdapterSpec(
        servant=conf.servant,
        endpoint=conf.endpoint,
        adapter_name=conf.adapterName,
        thread_num=int(conf.threadNum),
        max_connections=int(conf.maxConnections),
        allow_ip=conf.allowIp,
        queuecap=int(conf.queuecap),
        queuetimeout=int(conf.queuetimeout),
        protocol=conf.protocol or "tars",
    )


def server_spec_from_conf(conf: AdminReg.ServerConf) -> ServerSpec:
    """An ``AdminReg.ServerConf`` as the store's :class:`ServerSpec`.

    As upstream's ``insertServerConf`` stores it, ``profile`` is the *template name* (empty:
    ``tars.default``, or ``tars.tarspython.default`` for a ``tars_python`` server);
    ``enableGroup`` other than ``Y`` (the IDL default is ``M``) is ``N``.
    """
    if not conf.serverType:
        raise InvalidInput(
            f"serverType of {conf.application}.{conf.serverName} on node {conf.nodeName!r} is "
            "empty; say which kind of server it is (tars_cpp, tars_go, tars_python...)"
        )
    return ServerSpec(
        application=conf.application,
        server_name=conf.serverName,
        node_name=conf.nodeName,
        server_type=conf.serverType,
        template_name=conf.profile,
        base_path=conf.basePath,
        exe_path=conf.exePath,
        async_thread_num=int(conf.asyncThreadNum),
        enable_group="Y" if conf.enableGroup.upper() == "Y" else "N",
        ip_group_name=conf.ipGroupName,
        start_script_path=conf.startScript,
        stop_script_path=conf.stopScript,
        monitor_script_path=conf.monitorScript,
    )


def _bad_input(what: str, e: Exception) -> AdminError:
    return AdminError(ErrCode.EM_TARS_PARAMETER_ERR, f"{what}: {e}")


def _profile_template(row: TemplateRow) -> TarsusAdmin.ProfileTemplate:
    """A ``t_profile_template`` row as AdminExt's ``ProfileTemplate``."""
    return TarsusAdmin.ProfileTemplate(
        name=row.template_name,
        parentName=row.parents_name,
        profile=row.profile,
        postTime=_text(row.posttime),
        lastUser=row.lastuser,
    )


def _require_template_name(name: str) -> None:
    if not name:
        raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, "the template name is empty")


class Inventory:
    """What the database alone answers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- instances and nodes ----------------------------------------------------------------
    async def application_names(self) -> list[str]:
        return sorted({row.application for row in await self.store.servers.list()})

    async def active_node_names(self) -> list[str]:
        return [n.node_name for n in await self.store.nodes.list(active_only=True)]

    async def node_version(self, name: str) -> str:
        node = await self.store.nodes.get(name)
        if node is None:
            raise AdminError(ErrCode.EM_TARS_UNKNOWN_ERR, f"node {name!r} is not in t_node_info")
        return node.tars_version

    async def server_ids(self) -> list[list[str]]:
        """Rows ``[App.Server_node, setting_state, present_state, server_type]``."""
        return [
            [r.server_id, r.setting_state, r.present_state, r.server_type]
            for r in await self.store.servers.list()
        ]

    async def has_server(self, app: str, server: str) -> bool:
        return bool(await self.store.servers.list(app, server))

    async def server_tree(self) -> list[AdminReg.ServerTree]:
        return [
            AdminReg.ServerTree(
                application=r.application,
                server_name=r.server_name,
                enable_set=r.enable_set,
                set_name=r.set_name,
                set_area=r.set_area,
                set_group=r.set_group,
            )
            for r in await self.store.servers.list()
        ]

    async def server_name_list(
        self, names: list[AdminReg.ApplicationServerName]
    ) -> list[dict[str, str]]:
        """Every ``t_server_conf`` column, as text, of the instances of the named servers."""
        out: list[dict[str, str]] = []
        for name in names:
            for row in await self.store.servers.list(name.application, name.serverName):
                out.append({k: _text(v) for k, v in dataclasses.asdict(row).items()})
        return out

    async def framework_servers(self) -> list[AdminReg.FrameworkServer]:
        """``getServers``: every servant of app ``tars`` as ``servant@endpoint``, then every
        node (its ``node_obj``, empty for nodes that only use the push channel)."""
        out: list[AdminReg.FrameworkServer] = []
        async with self.store.connect() as conn:
            rows = await conn.execute(
                select(
                    t_adapter_conf.c.server_name,
                    t_adapter_conf.c.node_name,
                    t_adapter_conf.c.servant,
                    t_adapter_conf.c.endpoint,
                )
                .where(t_adapter_conf.c.application == "tars")
                .order_by(t_adapter_conf.c.server_name, t_adapter_conf.c.node_name)
            )
            for server, node, servant, endpoint in rows:
                out.append(
                    AdminReg.FrameworkServer(
                        serverName=server or "",
                        nodeName=node or "",
                        objName=f"{servant or ''}@{endpoint or ''}",
                    )
                )
        for node_row in await self.store.nodes.list():
            out.append(
                AdminReg.FrameworkServer(
                    serverName="tarsnode", nodeName=node_row.node_name, objName=node_row.node_obj
                )
            )
        return out

    async def group_id(self, ip: str) -> int:
        g = t_server_group_rule.c
        async with self.store.connect() as conn:
            rows = await conn.execute(
                select(g.group_id, g.ip_order, g.allow_ip_rule, g.denny_ip_rule).order_by(
                    g.group_id
                )
            )
            rules = [
                IpGroupRule(int(gid), order or "", _split_rule(allow), _split_rule(deny))
                for gid, order, allow, deny in rows
            ]
        return group_of(ip, rules)

    # -- templates --------------------------------------------------------------------------
    async def profile_template(self, name: str) -> tuple[str, str]:
        """``getProfileTemplate``: the merged text and upstream's description of the chain,
        oldest ancestor first, e.g. ``(tars.default:OK)(tars.tarsnode:OK)``."""
        if not name:
            raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, "(:template name is empty)")
        desc: list[str] = []
        seen: set[str] = set()
        current = name
        while current and current not in seen:
            seen.add(current)
            row = await self.store.templates.get(current)
            if row is None:
                desc.append(f"({current}:template not found)")
                break
            desc.append(f"({current}:OK)")
            current = row.parents_name
        text = "".join(reversed(desc))
        if desc[0].endswith("template not found)"):
            raise AdminError(ErrCode.EM_TARS_UNKNOWN_ERR, text)
        try:
            return await self.store.templates.resolve(name), text
        except (NotFound, InvalidInput) as e:
            raise AdminError(ErrCode.EM_TARS_UNKNOWN_ERR, f"({name}:{e})") from None

    # AdminExt (TarsusAdmin.tars): templates as stored, and writing them.
    async def profile_templates(self) -> list[TarsusAdmin.ProfileTemplate]:
        """``listProfileTemplates``: every template as a ``ProfileTemplate``, by name."""
        return [_profile_template(row) for row in await self.store.templates.list()]

    async def raw_profile_template(self, name: str) -> TarsusAdmin.ProfileTemplate:
        """``getRawProfileTemplate``: template ``name`` as stored (its own text only)."""
        _require_template_name(name)
        row = await self.store.templates.get(name)
        if row is None:
            raise AdminError(ErrCode.EM_TARS_UNKNOWN_ERR, f"template {name!r} not found")
        return _profile_template(row)

    async def set_profile_template(
        self, tpl: TarsusAdmin.ProfileTemplate, user: str, *, force: bool = False
    ) -> None:
        """``setProfileTemplate``: create or replace ``tpl.name`` (who: ``user``; when: now).
        1007 with the store's reason for a bad name, text or parent, or a loop, and for a
        change of a built-in template without ``force`` (``forceProfileTemplate``)."""
        try:
            await self.store.templates.upsert(
                tpl.name, tpl.parentName, tpl.profile, user, force=force
            )
        except InvalidInput as e:
            raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, str(e)) from None

    async def delete_profile_template(self, name: str) -> None:
        """``deleteProfileTemplate``: -1 if there is no such template, 1004 while a server,
        a node or another template uses it."""
        _require_template_name(name)
        try:
            await self.store.templates.delete(name)
        except NotFound:
            raise AdminError(ErrCode.EM_TARS_UNKNOWN_ERR, f"template {name!r} not found") from None
        except Conflict as e:
            raise AdminError(ErrCode.EM_TARS_SERVICE_STATE_ERR, str(e)) from None

    async def server_profile(self, app: str, server: str, node: str) -> str:
        """``getServerProfileTemplate``: the instance's template merged with its private
        profile, as its node receives it."""
        row = await self.store.servers.get(app, server, node)
        if row is None:
            raise AdminError(
                ErrCode.EM_TARS_LOAD_SERVICE_DESC_ERR,
                f"{app}.{server} is not deployed on node {node!r}",
            )
        try:
            return await self.store.templates.server_profile(row)
        except (NotFound, InvalidInput) as e:
            raise AdminError(ErrCode.EM_TARS_UNKNOWN_ERR, str(e)) from None

    # -- deploy -----------------------------------------------------------------------------
    async def deploy(
        self,
        server: ServerSpec,
        adapters: list[AdapterSpec],
        *,
        replace: bool = False,
        user: str = "",
        setting_state: str = "inactive",
    ) -> ServerRow:
        """Create (or, with ``replace``, reconfigure) an instance and its servants in one
        transaction; 1007 with the reason for anything the store refuses."""
        where = f"deploy {server.application}.{server.server_name} on {server.node_name!r}"
        try:
            check_deploy_paths(server, await self.store.nodes.get(server.node_name))
            row = await self.store.servers.deploy(server, adapters, replace=replace, user=user)
            if setting_state != row.setting_state:
                await self.store.servers.set_setting_state(
                    server.application, server.server_name, server.node_name, setting_state
                )
                row = dataclasses.replace(row, setting_state=setting_state)
        except (InvalidInput, Conflict, NotFound, PathRefused) as e:
            raise _bad_input(where, e) from None
        log.info("deployed %s (by %r)", row.server_id, user)
        return row

    async def set_run_type(
        self, app: str, server: str, node: str, run_type: str, image: str, user: str = ""
    ) -> None:
        """AdminExt ``setServerRunType``: a process, or a container from ``image``."""
        where = f"setServerRunType {app}.{server} on {node!r}"
        try:
            await self.store.images.set_run_type(app, server, node, run_type, image)
        except InvalidInput as e:
            raise _bad_input(where, e) from None
        except NotFound as e:
            raise AdminError(ErrCode.EM_TARS_LOAD_SERVICE_DESC_ERR, f"{where}: {e}") from None
        log.info("%s.%s on %s: run type %r %s (by %r)", app, server, node, run_type, image, user)

    async def insert_server_conf(self, conf: AdminReg.ServerConf, replace: bool) -> ServerRow:
        """``insertServerConf``: a ``t_server_conf`` row. Replacing keeps the instance's
        servants (upstream's ``REPLACE INTO`` leaves ``t_adapter_conf`` alone too)."""
        where = f"insertServerConf {conf.application}.{conf.serverName} on {conf.nodeName!r}"
        try:
            spec = server_spec_from_conf(conf)
        except InvalidInput as e:
            raise _bad_input(where, e) from None
        state = (conf.settingState or "active").lower()
        if state not in ("active", "inactive"):
            raise _bad_input(where, InvalidInput(f"settingState {conf.settingState!r}"))
        adapters: list[AdapterSpec] = []
        if replace:
            adapters = [
                _adapter_spec(a)
                for a in await self.store.servers.adapters(
                    spec.application, spec.server_name, spec.node_name
                )
            ]
        return await self.deploy(spec, adapters, replace=replace, setting_state=state)

    async def insert_adapter_conf(
        self, app: str, server: str, node: str, conf: AdminReg.AdapterConf, replace: bool
    ) -> ServerRow:
        """``insertAdapterConf``: add (or with ``replace``, change) one servant of a deployed
        instance; the instance's other servants stay."""
        where = f"insertAdapterConf {app}.{server} on {node!r}"
        row = await self.store.servers.get(app, server, node)
        if row is None:
            raise _bad_input(
                where,
                NotFound(f"{app}.{server} is not deployed on {node!r}; insertServerConf first"),
            )
        new = adapter_spec_from_conf(conf)
        name = new.adapter_name or f"{new.servant}Adapter"
        adapters = []
        for existing in await self.store.servers.adapters(app, server, node):
            if existing.adapter_name == name:
                if not replace:
                    raise _bad_input(where, Conflict(f"adapter {name!r} already exists"))
                continue
            adapters.append(_adapter_spec(existing))
        adapters.append(new)
        return await self.deploy(
            _spec_from_row(row), adapters, replace=True, setting_state=row.setting_state
        )

    # -- config files -----------------------------------------------------------------------
    async def insert_config_file(
        self, server: str, filename: str, content: str, host: str, level: int, replace: bool
    ) -> int:
        """``insertConfigFile``: a ``t_config_files`` row (level 1 app, 2 server, 3 node);
        with ``replace`` an existing file's content is replaced. Returns its id."""
        where = f"insertConfigFile {filename!r} of {server!r}"
        c = t_config_files.c
        try:
            if level not in (1, 2, 3):
                raise InvalidInput(
                    f"level must be 1 (application), 2 (server) or 3 (node): {level}"
                )
            if not server or not filename:
                raise InvalidInput("server name and file name must not be empty")
            if level == 3 and not host:
                raise InvalidInput("a level-3 (node) config file needs the node name")
            _check_width(c.server_name, server, "server name")
            _check_width(c.filename, filename, "file name")
            _check_width(c.host, host, "node name")
        except InvalidInput as e:
            raise _bad_input(where, e) from None
        now = self.store.clock()
        key = (
            c.server_name == server,
            c.filename == filename,
            c.host == host,
            c.level == level,
            c.set_name == "",
            c.set_area == "",
            c.set_group == "",
        )
        async with self.store.begin() as conn:
            found = await conn.scalar(select(c.id).where(*key))
            if found is not None:
                if not replace:
                    raise _bad_input(where, Conflict(f"it exists (id {found}); use replace"))
                await conn.execute(
                    update(t_config_files)
                    .where(c.id == found)
                    .values(config=content, posttime=now, lastuser="")
                )
                return int(found)
            result = await conn.execute(
                insert(t_config_files).values(
                    server_name=server,
                    filename=filename,
                    host=host,
                    level=level,
                    set_name="",
                    set_area="",
                    set_group="",
                    config=content,
                    posttime=now,
                    lastuser="",
                    config_flag=0,
                )
            )
            new_id = result.inserted_primary_key
            assert new_id is not None
            return int(new_id[0])

    async def config_file_id(self, server: str, filename: str, host: str, level: int) -> int:
        """``getConfigFileId``: the id of exactly one matching file, else 1007."""
        c = t_config_files.c
        async with self.store.connect() as conn:
            ids = list(
                await conn.scalars(
                    select(c.id).where(
                        c.server_name == server,
                        c.filename == filename,
                        c.host == host,
                        c.level == level,
                    )
                )
            )
        if len(ids) != 1:
            raise AdminError(
                ErrCode.EM_TARS_PARAMETER_ERR,
                f"getConfigFileId: {len(ids)} config files named {filename!r} of {server!r} "
                f"on host {host!r} at level {level} (need exactly one)",
            )
        return int(ids[0])

    async def insert_history_config_file(self, config_id: int, reason: str, content: str) -> int:
        """``insertHistoryConfigFile``: a version of config file ``config_id``."""
        c = t_config_files.c
        now = self.store.clock()
        async with self.store.begin() as conn:
            exists = await conn.scalar(select(func.count()).where(c.id == config_id))
            if not exists:
                raise AdminError(
                    ErrCode.EM_TARS_PARAMETER_ERR,
                    f"insertHistoryConfigFile: no config file with id {config_id}",
                )
            result = await conn.execute(
                insert(t_config_history_files).values(
                    configid=config_id,
                    reason=reason[:128],
                    reason_select="",
                    content=content,
                    posttime=now,
                    lastuser="",
                )
            )
            new_id = result.inserted_primary_key
            assert new_id is not None
            return int(new_id[0])
