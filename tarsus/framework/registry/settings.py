"""What a registry can be tuned with; upstream's defaults except where noted (docs/registry.md)."""

from __future__ import annotations

from dataclasses import dataclass

import tarsus
from tarsus.codec.constants import QUERY_OBJ as QUERY_SERVANT
from tarsus.codec.constants import QUERY_PORT, REGISTRY_PORT
from tarsus.codec.constants import REGISTRY_OBJ as REGISTRY_SERVANT
from tarsus.conf import ConfigValues, TCConfig

__all__ = [
    "QUERY_ENDPOINT",
    "QUERY_PORT",
    "QUERY_SERVANT",
    "REGISTRY_ENDPOINT",
    "REGISTRY_PORT",
    "REGISTRY_SERVANT",
    "UPSTREAM_NODE_TIMEOUT",
    "UPSTREAM_NODE_TIMEOUT_INTERVAL",
    "RegistrySettings",
]

QUERY_ENDPOINT = f"tcp -h 0.0.0.0 -p {QUERY_PORT} -t 60000"
REGISTRY_ENDPOINT = f"tcp -h 0.0.0.0 -p {REGISTRY_PORT} -t 60000"

#: Upstream's dead-node timeout and sweep period (``/tars/reap<nodeTimeout>``,
#: ``<nodeTimeoutInterval>``), for those who want them back.
UPSTREAM_NODE_TIMEOUT = 250.0
UPSTREAM_NODE_TIMEOUT_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """Timings of one registry, in seconds.

    Differences from upstream, on purpose:

    * ``node_timeout`` is 30 s (upstream 250 s) and ``node_sweep_interval`` 15 s (upstream
      60 s): a node that stops beating (every 10 s) is declared dead within 45 s, inside the
      60 s clients wait between registry refreshes, so callers stop using a dead host at their
      next refresh instead of up to five minutes later. Sweeps wait ``node_timeout`` after the
      registry starts and after the database comes back, so an outage of the registry or the
      database does not take every node down with it. ``node_timeout=250`` restores upstream.
    * what the registry writes itself (node reports, sweeps, ``destroyNode``) reaches the
      route cache at once, not at the next load.
    """

    #: Incremental route load and own ``t_registry_info`` heartbeat (``loadObjectsInterval1``).
    load_interval: float = 10.0
    #: An incremental load rereads servers changed within this window (``LeastChangedTime1``),
    #: or since the last good load if that is longer ago.
    least_changed_time: float = 150.0
    #: Full route load (``loadObjectsInterval2``); group rules are reloaded with it.
    full_load_interval: float = 300.0
    #: Registry rows without heartbeat for this long are marked inactive (``registryTimeout``).
    registry_timeout: float = 150.0
    #: True: no own ``t_registry_info`` heartbeat (``heartbeatoff=Y``, for migrations).
    heartbeat_off: bool = False
    #: A node without keepAlive for this long is dead: it and its servers go inactive.
    node_timeout: float = 30.0
    #: How often dead nodes are looked for (``nodeTimeoutInterval``).
    node_sweep_interval: float = 15.0
    #: Refuse a load when more than ``recover_protect_rate`` % of nodes are inactive
    #: (``recoverProtect``; off by default, as upstream).
    recover_protect: bool = False
    recover_protect_rate: int = 30
    #: Queued keepAlive and reportVersion calls are written this often, in one statement.
    flush_interval: float = 1.0
    #: Until the first load succeeds, try again this often (upstream: 1 s, forever).
    init_retry_interval: float = 1.0
    #: ``getNodeTemplate`` of a node without template (``/tars/nodeinfo<defaultTemplate>``);
    #: ``tars.default`` when this one does not exist.
    default_node_template: str = "tars.tarsnode"
    #: Host written into ``t_registry_info`` when a servant listens on ``0.0.0.0``; None: this
    #: machine's address.
    advertise_host: str | None = None
    #: After a load of more than 2,000 rows, ``gc.freeze()`` the new routes so the cyclic
    #: garbage collector stops rescanning them (loads run with collection paused). Turn off
    #: if another part of the process cannot live with ``gc.freeze``.
    gc_freeze: bool = True
    #: Written into ``t_registry_info.tars_version``.
    tars_version: str = tarsus.__version__

    def __post_init__(self) -> None:
        positive = {
            "load_interval": self.load_interval,
            "least_changed_time": self.least_changed_time,
            "full_load_interval": self.full_load_interval,
            "registry_timeout": self.registry_timeout,
            "node_timeout": self.node_timeout,
            "node_sweep_interval": self.node_sweep_interval,
            "flush_interval": self.flush_interval,
            "init_retry_interval": self.init_retry_interval,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"RegistrySettings.{name} must be seconds > 0, got {value!r}")
        if not 0 <= self.recover_protect_rate <= 100:
            raise ValueError(
                "RegistrySettings.recover_protect_rate must be a percentage (0-100), "
                f"got {self.recover_protect_rate!r}"
            )

    @classmethod
    def from_tcconfig(cls, tc: TCConfig) -> RegistrySettings:
        """Read upstream's ``tars.tarsregistry`` config keys with upstream's floors.

        ``/tars/reap<loadObjectsInterval1>`` (min 5), ``<LeastChangedTime1>``,
        ``<loadObjectsInterval2>``, ``<registryTimeout>`` (min 5), ``<heartbeatoff>``,
        ``<recoverProtect>``, ``<recoverProtectRate>`` (below 1: 30), ``<nodeTimeout>`` and
        ``<nodeTimeoutInterval>`` (min 15 each; absent: our defaults, not upstream's) and
        ``/tars/nodeinfo<defaultTemplate>``.
        """
        values = ConfigValues(tc)
        return cls(
            load_interval=values.number("/tars/reap<loadObjectsInterval1>", 10.0, minimum=5.0),
            least_changed_time=values.number("/tars/reap<LeastChangedTime1>", 150.0, minimum=1.0),
            full_load_interval=values.number(
                "/tars/reap<loadObjectsInterval2>", 300.0, minimum=1.0
            ),
            registry_timeout=values.number("/tars/reap<registryTimeout>", 150.0, minimum=5.0),
            heartbeat_off=values.yes("/tars/reap<heartbeatoff>"),
            recover_protect=values.not_no("/tars/reap<recoverProtect>"),
            recover_protect_rate=values.integer(
                "/tars/reap<recoverProtectRate>", 30, within=(1, 100)
            ),
            node_timeout=values.number("/tars/reap<nodeTimeout>", 30.0, minimum=15.0),
            node_sweep_interval=values.number(
                "/tars/reap<nodeTimeoutInterval>", 15.0, minimum=15.0
            ),
            default_node_template=values.text("/tars/nodeinfo<defaultTemplate>", "tars.tarsnode"),
        )
