"""The simulated cluster of bench/registry.py: its layout, seeding it, and checking it.

``nodes`` machines are split into cells of ``replicas`` nodes; every cell runs
``servers_per_node`` servers, each on all the nodes of its cell. So there are
``nodes * servers_per_node`` instances of ``nodes * servers_per_node / replicas`` servers (the
default 10,000 x 10 / 10: 100,000 instances of 10,000 servers), each server with one adapter
(``App.Server.Obj``) and ``replicas`` endpoints. The layout is a pure function of three numbers,
so the load generators rebuild it (node names, which hosts a servant may answer with) without
asking the database.

States are a fixed pseudo-random mix (seed 2024) close to a live cluster's: about 92% routable,
the rest standby (``bak_flag``), stopped, down, starting, or switched off by a lossless publish.
Some servers use IDC grouping (``enable_group``) and some sets, so lookups go through the group
and set logic rather than a trivial "everything" answer.

Seeding writes the ``db_tars`` tables directly with multi-row INSERTs (``deploy()`` one by one
would take minutes at this size and measure the admin path, not the registry). Every
``registry_timestamp`` is a day old, as in a cluster that is not being redeployed: the
registry's incremental loads then reread only what the bench changes on purpose.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from tarsus.store.schema import (
    t_adapter_conf,
    t_group_priority,
    t_node_info,
    t_server_conf,
    t_server_group_rule,
)

#: Rows per INSERT statement while seeding.
_CHUNK = 2000
#: One node's addresses per /24 (so the IDC rules are ``a.b.c.*`` prefixes, as upstream's).
_PER_NET = 250
#: Servants answered from this many applications.
_APPS = 50
#: The callers of the lookup bench connect from here; a group rule puts them in IDC "a".
CALLER_PREFIX = "127.0.0.*"
#: Port of a node's first server; the m-th server of a cell listens on BASE_PORT + m.
BASE_PORT = 20000


@dataclass(frozen=True)
class Cluster:
    nodes: int
    servers_per_node: int
    replicas: int = 10

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.nodes % self.replicas:
            raise ValueError(
                f"--nodes ({self.nodes}) must be a multiple of the replicas per server "
                f"({self.replicas})"
            )
        if self.servers_per_node < 1:
            raise ValueError("--servers-per-node must be at least 1")

    @property
    def cells(self) -> int:
        return self.nodes // self.replicas

    @property
    def servers(self) -> int:
        return self.cells * self.servers_per_node

    @property
    def instances(self) -> int:
        return self.nodes * self.servers_per_node

    def node_name(self, n: int) -> str:
        """Node ``n``'s name, which is also its address (as tarsnodes are usually named)."""
        net = n // _PER_NET
        return f"10.{net // 256}.{net % 256}.{n % _PER_NET + 1}"

    def app_server(self, j: int) -> tuple[str, str]:
        return f"App{j % _APPS:02d}", f"Server{j:05d}"

    def servant(self, j: int) -> str:
        app, server = self.app_server(j)
        return f"{app}.{server}.Obj"

    def nodes_of(self, j: int) -> list[int]:
        cell = j % self.cells
        return [cell * self.replicas + k for k in range(self.replicas)]

    def port_of(self, j: int) -> int:
        return BASE_PORT + j // self.cells

    def hosts_of(self, j: int) -> frozenset[str]:
        return frozenset(self.node_name(n) for n in self.nodes_of(j))

    def changed_servers(self, share: float) -> list[int]:
        """The servers an incremental-load measurement changes (every k-th one)."""
        step = max(1, round(1 / share))
        return list(range(step // 2, self.servers, step)) or [0]

    def instances_rows(self, old: datetime) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """``(t_server_conf row, t_adapter_conf row)`` of every instance, in a fixed order."""
        rng = random.Random(2024)
        for j in range(self.servers):
            app, server = self.app_server(j)
            servant = self.servant(j)
            port = self.port_of(j)
            grouped = "Y" if j % 5 == 0 else "N"
            in_set = j % 10 == 3
            for k, n in enumerate(self.nodes_of(j)):
                host = self.node_name(n)
                bak, setting, present, flow = _state(rng.random())
                yield (
                    {
                        "application": app,
                        "server_name": server,
                        "node_group": "",
                        "node_name": host,
                        "registry_timestamp": old,
                        "base_path": "",
                        "exe_path": "",
                        "template_name": "tars.default",
                        "bak_flag": bak,
                        "setting_state": setting,
                        "present_state": present,
                        "process_id": 10_000 + n if present == "active" else 0,
                        "patch_version": "1",
                        "patch_time": old,
                        "patch_user": "bench",
                        "tars_version": "3.0.0",
                        "posttime": old,
                        "server_type": "tars_cpp",
                        "enable_group": grouped,
                        "enable_set": "Y" if in_set else "N",
                        "set_name": "mtt" if in_set else "",
                        "set_area": ("sz" if (j // 10) % 2 else "sh") if in_set else "",
                        "set_group": str(k % 2 + 1) if in_set else "",
                        "ip_group_name": "",
                        "profile": "",
                        "flow_state": flow,
                        "run_type": "",
                        "async_thread_num": 3,
                    },
                    {
                        "application": app,
                        "server_name": server,
                        "node_name": host,
                        "adapter_name": f"{servant}Adapter",
                        "registry_timestamp": old,
                        "thread_num": 1,
                        "endpoint": f"tcp -h {host} -p {port} -t 60000",
                        "max_connections": 10000,
                        "allow_ip": "",
                        "servant": servant,
                        "queuecap": 10000,
                        "queuetimeout": 60000,
                        "posttime": old,
                        "lastuser": "bench",
                        "protocol": "tars",
                        "handlegroup": "",
                    },
                )

    def present_states(self) -> Counter[str]:
        """How many instances the seed puts in each ``present_state``."""
        return Counter(s["present_state"] for s, _ in self.instances_rows(datetime.now()))

    def group_rules(self) -> list[dict[str, Any]]:
        """Two IDCs, each half of the nodes' /24s; the bench's callers are in IDC "a"."""
        nets = sorted({self.node_name(n).rsplit(".", 1)[0] for n in range(self.nodes)})
        half = max(1, len(nets) // 2)
        a = "|".join([CALLER_PREFIX, *(f"{p}.*" for p in nets[:half])])
        b = "|".join(f"{p}.*" for p in nets[half:])
        return [
            {"group_id": 1, "group_name": "idc_a", "allow_ip_rule": a, "ip_order": "allow_denny"},
            {"group_id": 2, "group_name": "idc_b", "allow_ip_rule": b, "ip_order": "allow_denny"},
        ]


def _state(r: float) -> tuple[int, str, str, str]:
    """``(bak_flag, setting_state, present_state, flow_state)`` of one instance."""
    if r < 0.01:
        return 1, "active", "active", "active"  # standby: never routed
    if r < 0.04:
        return 0, "inactive", "inactive", "active"  # stopped by an operator
    if r < 0.06:
        return 0, "active", "inactive", "active"  # down
    if r < 0.07:
        return 0, "active", "activating", "active"  # starting
    if r < 0.08:
        return 0, "active", "active", "inactive"  # switched off by a lossless publish
    return 0, "active", "active", "active"


async def seed(store: Any, cluster: Cluster) -> dict[str, float]:
    """Write the cluster into an empty, migrated database; returns row counts."""
    now = store.clock()
    old = now - timedelta(days=1)
    servers: list[dict[str, Any]] = []
    adapters: list[dict[str, Any]] = []

    async with store.begin() as conn:
        await conn.execute(t_server_group_rule.insert(), cluster.group_rules())
        await conn.execute(
            t_group_priority.insert(),
            [{"name": "a-then-b", "group_list": "1|2", "list_order": 1, "station": "main"}],
        )
        nodes = [
            {
                "node_name": cluster.node_name(n),
                "node_obj": "",
                "endpoint_ip": cluster.node_name(n),
                "endpoint_port": 19385,
                "data_dir": "/usr/local/app/tars/tarsnode/data",
                "load_avg1": 0.0,
                "load_avg5": 0.0,
                "load_avg15": 0.0,
                "last_reg_time": now,
                "last_heartbeat": now,
                "setting_state": "active",
                "present_state": "active",
                "tars_version": "3.0.0",
                "template_name": "",
                "modify_time": now,
                "group_id": -1,
                "label": "",
            }
            for n in range(cluster.nodes)
        ]
        for i in range(0, len(nodes), _CHUNK):
            await conn.execute(t_node_info.insert(), nodes[i : i + _CHUNK])
        for server, adapter in cluster.instances_rows(old):
            servers.append(server)
            adapters.append(adapter)
            if len(servers) == _CHUNK:
                await conn.execute(t_server_conf.insert(), servers)
                await conn.execute(t_adapter_conf.insert(), adapters)
                servers, adapters = [], []
        if servers:
            await conn.execute(t_server_conf.insert(), servers)
            await conn.execute(t_adapter_conf.insert(), adapters)
    return {"nodes": cluster.nodes, "instances": cluster.instances}


async def change_servers(store: Any, cluster: Cluster, share: float) -> int:
    """A new version of ``share`` of the servers went out: their instances get a new
    ``patch_version`` and, as every writer sets it, a fresh ``registry_timestamp``. Returns
    the number of instances changed."""
    now = store.clock()
    keys = [cluster.app_server(j) for j in cluster.changed_servers(share)]
    changed = 0
    s = t_server_conf.c
    async with store.begin() as conn:
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            result = await conn.execute(
                update(t_server_conf)
                .where(s.server_name.in_([server for _, server in part]))
                .values(patch_version="2", patch_time=now, registry_timestamp=now)
            )
            changed += max(result.rowcount, 0)
    return changed


async def check_heartbeats(
    store: Any, cluster: Cluster, last_round: list[int], since: datetime
) -> dict[str, Any]:
    """Whether every node's last heartbeat reached the database: ``last_heartbeat`` at or
    after ``since``, ``present_state`` active, and ``load_avg5`` = the round number of the last
    keepAlive the node sent (the load generator puts it there)."""
    n = t_node_info.c
    async with store.connect() as conn:
        rows = (
            await conn.execute(select(n.node_name, n.last_heartbeat, n.present_state, n.load_avg5))
        ).all()
        states = dict(
            (
                await conn.execute(
                    select(t_server_conf.c.present_state, func.count()).group_by(
                        t_server_conf.c.present_state
                    )
                )
            ).all()
        )
    index = {cluster.node_name(i): i for i in range(cluster.nodes)}
    recent = active = last_value = 0
    stale: list[str] = []
    for name, beat, state, avg5 in rows:
        i = index.get(name)
        if i is None:
            continue
        ok_time = beat is not None and beat >= since
        recent += ok_time
        active += (state or "").lower() == "active"
        ok_value = last_round[i] >= 0 and round(float(avg5 or 0)) == last_round[i]
        last_value += ok_value
        if (not ok_time or not ok_value) and len(stale) < 5:
            stale.append(f"{name} (last_heartbeat {beat}, load_avg5 {avg5}, sent {last_round[i]})")
    expected_states = cluster.present_states()
    return {
        "nodes": len(rows),
        "recent": recent,
        "active": active,
        "last_value": last_value,
        "examples": stale,
        "server_states_kept": {k: int(v) for k, v in states.items()} == dict(expected_states),
        "server_states": {k: int(v) for k, v in states.items()},
        "ok": len(rows) == cluster.nodes
        and recent == active == last_value == cluster.nodes
        and {k: int(v) for k, v in states.items()} == dict(expected_states),
    }
