"""Deploying a server onto nodes, and expanding it onto more.

**Deploy** (upstream TarsWeb's deploy form): application, server, type, template, the nodes,
and its objs (servants) each with a port — or ``0``, *auto*: the lowest port from
:data:`AUTO_PORT_FROM` that no instance on that node uses — threads, max connections, queue
capacity and timeout, protocol and allowed IPs; it runs as a process, or in a container from
an image (docs/node.md, "Servers in containers"). One ``AdminExt.deployServer`` per node (an
instance and its servants in one transaction), then ``setServerRunType`` for a container.
Everything the request gets wrong is found before the first write; should a node still refuse,
the instances this request created on the other nodes are removed again.

**Expand** deploys an existing instance's configuration (type, template, run type, servants)
onto more nodes, with the same ports or auto ones.

New instances are ``inactive``: starting them is the operate pages' business, as upstream's.
Both need ``operate`` on the server. The ``tarsus server deploy`` command builds its request
with the same functions (:func:`server_conf`, :class:`Servant`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from tarsus.names import InvalidName, check_application, check_node_name, check_server_name
from tarsus.ops import adminreg, audit
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Invalid, NotFound, OpError
from tarsus.ops.platform import Platform
from tarsus.package import SERVANT_NAME
from tarsus.protocol.gen import AdminReg
from tarsus.rpc.endpoint import Endpoint, EndpointError
from tarsus.store.schema import t_adapter_conf
from tarsus.store.server_types import default_template

__all__ = [
    "ADAPTER_IDLE_TIMEOUT_MS",
    "AUTO_PORT_FROM",
    "RUN_TYPES",
    "SERVER_TYPES",
    "DeployRequest",
    "Deployed",
    "Servant",
    "deploy",
    "endpoint",
    "expand",
    "server_conf",
]

#: Idle timeout on the adapter endpoints deploy writes (upstream's console writes ``-t 60000``).
ADAPTER_IDLE_TIMEOUT_MS = 60000
#: where an automatic port choice starts (upstream's console suggests ports from 10000 too)
AUTO_PORT_FROM = 10000
SERVER_TYPES = ("tars_python", "tars_cpp", "tars_java", "tars_nodejs", "tars_go", "not_tars")
#: ``process`` (the default) or ``container`` (with an image)
RUN_TYPES = ("process", "container")
MAX_NODES = 100
MAX_SERVANTS = 20


def endpoint(node: str, port: int) -> str:
    return f"tcp -h {node} -p {port} -t {ADAPTER_IDLE_TIMEOUT_MS}"


def server_conf(
    application: str, server_name: str, node: str, template: str, server_type: str
) -> AdminReg.ServerConf:
    """The ``ServerConf`` of a new instance: inactive (running it is ``start``'s job)."""
    return AdminReg.ServerConf(
        application=application,
        serverName=server_name,
        nodeName=node,
        settingState="inactive",
        profile=template,  # upstream stores ServerConf.profile as the template name
        serverType=server_type,
    )


@dataclass(frozen=True)
class Servant:
    """One obj of the server (``App.Server.<name>``); ``port`` 0 is chosen per node."""

    name: str
    port: int = 0
    threads: int = 5
    max_connections: int = 10240
    queuecap: int = 100000
    queuetimeout: int = 60000
    protocol: str = "tars"
    allow_ip: str = ""

    def check(self) -> Servant:
        where = f"obj {self.name[:40]!r}"
        if not SERVANT_NAME.match(self.name) or len(self.name) > 64:
            raise Invalid(f"{where}: a name of letters, digits and '_' (e.g. HelloObj)")
        for what, value, low, high in (
            ("port", self.port, 0, 65535),
            ("threads", self.threads, 1, 1024),
            ("max connections", self.max_connections, 1, 1_000_000),
            ("queue capacity", self.queuecap, 1, 10_000_000),
            ("queue timeout (ms)", self.queuetimeout, 1, 3_600_000),
        ):
            if not low <= value <= high:
                raise Invalid(f"{where}: {what} must be {low}..{high}, not {value}")
        if self.protocol not in ("tars", "not_tars"):
            raise Invalid(f"{where}: protocol is tars or not_tars, not {self.protocol[:20]!r}")
        if len(self.allow_ip) > 1000 or any(ord(c) < 32 for c in self.allow_ip):
            raise Invalid(f"{where}: allowed IPs: a list of addresses, one line")
        return self

    def adapter_conf(self, app: str, server: str, node: str, port: int) -> AdminReg.AdapterConf:
        servant = f"{app}.{server}.{self.name}"
        return AdminReg.AdapterConf(
            adapterName=f"{servant}Adapter",
            threadNum=self.threads,
            endpoint=endpoint(node, port),
            maxConnections=self.max_connections,
            allowIp=self.allow_ip,
            servant=servant,
            queuecap=self.queuecap,
            queuetimeout=self.queuetimeout,
            protocol=self.protocol,
        )


@dataclass
class DeployRequest:
    application: str
    server_name: str
    nodes: list[str]
    servants: list[Servant]
    server_type: str = "tars_python"
    #: "" is the type's default (``tars.tarspython.default`` for Python)
    template: str = ""
    run_type: str = "process"
    image: str = ""


@dataclass(frozen=True)
class Deployed:
    node_name: str
    #: ``servant -> endpoint``
    servants: dict[str, str] = field(default_factory=dict)
    result: str = ""


def _names(application: str, server_name: str, nodes: Sequence[str]) -> list[str]:
    try:
        check_application(application)
        check_server_name(server_name)
        return [check_node_name(n.strip()) for n in nodes]
    except InvalidName as e:
        raise Invalid(str(e)) from None


async def _used_ports(platform: Platform, node: str) -> set[int]:
    used: set[int] = set()
    async with platform.store.connect() as conn:
        rows = await conn.execute(
            select(t_adapter_conf.c.endpoint).where(t_adapter_conf.c.node_name == node)
        )
        for (text,) in rows:
            try:
                used.add(Endpoint.parse(text or "").port)
            except (EndpointError, TypeError):
                continue
    return used


async def _plan(platform: Platform, node: str, servants: Sequence[Servant]) -> dict[str, int]:
    """``name -> port`` on ``node``: the given ports, and free ones for ``0``."""
    used = await _used_ports(platform, node)
    ports = {s.name: s.port for s in servants if s.port}
    taken = used | set(ports.values())
    port = AUTO_PORT_FROM
    for s in servants:
        if s.port:
            continue
        while port in taken:
            port += 1
        if port > 65535:
            raise Invalid(f"no free port left on node {node}")
        ports[s.name] = port
        taken.add(port)
    return ports


async def _check(platform: Platform, req: DeployRequest) -> list[str]:
    nodes = _names(req.application, req.server_name, req.nodes)
    if not nodes:
        raise Invalid("choose at least one node")
    if len(nodes) > MAX_NODES:
        raise Invalid(f"{len(nodes)} nodes in one deploy; at most {MAX_NODES}")
    if len(set(nodes)) != len(nodes):
        raise Invalid("a node is named twice")
    if not req.servants:
        raise Invalid("a server needs at least one obj (servant), e.g. HelloObj")
    if len(req.servants) > MAX_SERVANTS:
        raise Invalid(f"{len(req.servants)} objs; at most {MAX_SERVANTS}")
    for s in req.servants:
        s.check()
    if len({s.name for s in req.servants}) != len(req.servants):
        raise Invalid("an obj is named twice")
    given = [s.port for s in req.servants if s.port]
    if len(set(given)) != len(given):
        raise Invalid("two objs are given the same port")
    if req.server_type not in SERVER_TYPES:
        raise Invalid(f"type must be one of {', '.join(SERVER_TYPES)}, not {req.server_type!r}")
    if req.run_type not in RUN_TYPES:
        raise Invalid(f"run type is process or container, not {req.run_type[:20]!r}")
    if req.run_type == "container" and not req.image.strip():
        raise Invalid("a server run in a container needs an image (e.g. tarsus/python:3.11)")
    if req.run_type == "process" and req.image.strip():
        raise Invalid("an image is only for run type container")
    req.template = req.template.strip() or default_template(req.server_type)
    if await platform.store.templates.get(req.template) is None:
        raise Invalid(f"there is no template {req.template!r}")
    for node in nodes:
        if await platform.store.nodes.get(node) is None:
            raise Invalid(f"node {node} is not registered (see the node list)")
    return nodes


async def _deploy_one(
    platform: Platform, actor: Actor, req: DeployRequest, node: str, ports: dict[str, int]
) -> Deployed:
    where = f"deploying {req.application}.{req.server_name} on node {node}"
    conf = server_conf(req.application, req.server_name, node, req.template, req.server_type)
    adapters = [
        s.adapter_conf(req.application, req.server_name, node, ports[s.name]) for s in req.servants
    ]
    ext = adminreg.ext(platform)
    async with adminreg.calling(where):
        code, result = await ext.deployServer(conf, adapters, False, actor.uid)
    if code != 0:
        raise adminreg.refusal(where, code, result)
    if req.run_type == "container":
        async with adminreg.calling(where):
            code, why = await ext.setServerRunType(
                req.application, req.server_name, node, "container", req.image.strip(), actor.uid
            )
        if code != 0:
            raise adminreg.refusal(f"{where} (in a container)", code, why)
    return Deployed(node, {a.servant: a.endpoint for a in adapters}, str(result))


async def deploy(platform: Platform, actor: Actor, req: DeployRequest) -> list[Deployed]:
    """Deploy on every node of the request, or on none (see the module docstring)."""
    actor.require(Perm.OPERATE, req.application, req.server_name)
    nodes = await _check(platform, req)
    for node in nodes:
        if await platform.store.servers.get(req.application, req.server_name, node) is not None:
            raise Invalid(f"{req.application}.{req.server_name} is already deployed on node {node}")
    plans = {node: await _plan(platform, node, req.servants) for node in nodes}
    done: list[Deployed] = []
    try:
        for node in nodes:
            done.append(await _deploy_one(platform, actor, req, node, plans[node]))
    except OpError as e:
        for d in done:  # new, inactive: nothing runs them yet
            await platform.store.servers.undeploy(
                req.application, req.server_name, d.node_name, force=True
            )
        if done:
            e.message += f" (the {len(done)} instance(s) this deploy made are removed again)"
        raise
    await audit.record(
        platform,
        actor,
        "server.deploy",
        f"{req.application}.{req.server_name}",
        after={
            "nodes": nodes,
            "server_type": req.server_type,
            "template": req.template,
            "run_type": req.run_type,
            "image": req.image.strip(),
            "servants": {d.node_name: d.servants for d in done},
        },
    )
    return done


async def expand(
    platform: Platform,
    actor: Actor,
    application: str,
    server_name: str,
    source_node: str,
    nodes: Sequence[str],
    *,
    same_ports: bool = True,
) -> list[Deployed]:
    """Deploy the instance on ``source_node`` as it is configured onto ``nodes``."""
    actor.require(Perm.OPERATE, application, server_name)
    _names(application, server_name, [source_node])
    row = await platform.store.servers.get(application, server_name, source_node)
    if row is None:
        raise NotFound(f"{application}.{server_name} is not deployed on node {source_node}")
    servants = []
    for a in await platform.store.servers.adapters(application, server_name, source_node):
        try:
            port = Endpoint.parse(a.endpoint).port if same_ports else 0
        except (EndpointError, TypeError):
            port = 0
        servants.append(
            Servant(
                name=a.servant.rsplit(".", 1)[-1],
                port=port,
                threads=a.thread_num,
                max_connections=a.max_connections,
                queuecap=a.queuecap,
                queuetimeout=a.queuetimeout,
                protocol=a.protocol or "tars",
                allow_ip=a.allow_ip,
            )
        )
    image = ""
    if row.run_type == "container" and row.base_image_id:
        found = await platform.store.images.get(row.base_image_id)
        image = found.image if found is not None else ""
    req = DeployRequest(
        application=application,
        server_name=server_name,
        nodes=list(nodes),
        servants=servants,
        server_type=row.server_type,
        template=row.template_name,
        run_type="container" if row.run_type == "container" else "process",
        image=image,
    )
    return await deploy(platform, actor, req)
