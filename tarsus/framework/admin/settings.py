"""What an admin registry can be tuned with, and upstream's defaults for each."""

from __future__ import annotations

from dataclasses import dataclass

from tarsus.codec.constants import ADMIN_REG_OBJ as ADMIN_SERVANT
from tarsus.codec.constants import ADMIN_REG_PORT as DEFAULT_PORT
from tarsus.codec.constants import PATCH_OBJ
from tarsus.conf import ConfigValues, TCConfig
from tarsus.store.patches import PATCH_HISTORY, PATCH_HISTORY_MIN

__all__ = ["ADMIN_ADAPTER", "ADMIN_SERVANT", "DEFAULT_ENDPOINT", "DEFAULT_PORT", "AdminSettings"]

ADMIN_ADAPTER = f"{ADMIN_SERVANT}Adapter"
DEFAULT_ENDPOINT = f"tcp -h 0.0.0.0 -p {DEFAULT_PORT} -t 60000"


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """Timings and names of one admin registry. Defaults are upstream's (docs/admin.md)."""

    #: Seconds between ``t_registry_info`` heartbeats of our servant (``updateHeartInterval``).
    update_heart_interval: float = 10.0
    #: Rows of ``t_registry_info`` older than this many seconds are marked inactive.
    registry_timeout: float = 150.0
    #: True: no heartbeat rows (upstream ``heartbeatoff=Y``, used while migrating).
    heartbeat_off: bool = False
    #: Seconds an elegant (lossless) batch waits after closing traffic, so that clients drop
    #: the instances from their route lists (upstream 75, valid 2-180; 0 is for tests).
    elegant_wait_second: float = 75.0
    #: Seconds a lossless batch waits, after restarting an instance, for it to be Active and
    #: answer on its servants before its traffic is opened again; and the polling period.
    elegant_ready_timeout: float = 60.0
    ready_poll_interval: float = 0.5
    #: Seconds a finished task stays in memory (``getTaskRsp`` then reads it from the DB).
    task_timeout: float = 300.0
    elegant_task_timeout: float = 600.0
    #: Seconds between sweeps of expired in-memory tasks.
    task_sweep_interval: float = 5.0
    #: Items of a parallel task (and of one elegant batch) that run at the same time.
    max_parallel: int = 5
    #: Seconds a patch item waits for the node to finish installing, and its polling period.
    patch_wait_timeout: float = 300.0
    patch_poll_interval: float = 1.0
    #: The package service's object, passed to nodes in ``PatchRequest.patchobj`` and called
    #: by the package store functions (``Obj`` through the locator, or ``Obj@endpoint``).
    patch_obj: str = PATCH_OBJ
    #: Seconds a call to the package service may take (``preparePatchFile`` of a publish,
    #: ``listUploads``, ``deletePatchFile``; upstream ``batchpatch_node_timeout``, 10000 ms).
    batchpatch_node_timeout: float = 10.0
    #: Packages kept per server (upstream ``patchHistory``: 200, at least 10); older ones go,
    #: except one an instance runs and the default.
    patch_history: int = PATCH_HISTORY
    #: What ``getVersion`` answers: the upstream framework release whose interfaces we serve
    #: (the web console enables features by it).
    framework_version: str = "3.0.17"
    #: Host written into ``t_registry_info`` when the servant listens on ``0.0.0.0``.
    advertise_host: str | None = None
    #: Timeout of ``checkServer``'s ping of a framework object.
    check_server_timeout_ms: int = 3000

    def __post_init__(self) -> None:
        positive = {
            "update_heart_interval": self.update_heart_interval,
            "registry_timeout": self.registry_timeout,
            "task_timeout": self.task_timeout,
            "elegant_task_timeout": self.elegant_task_timeout,
            "task_sweep_interval": self.task_sweep_interval,
            "patch_wait_timeout": self.patch_wait_timeout,
            "patch_poll_interval": self.patch_poll_interval,
            "batchpatch_node_timeout": self.batchpatch_node_timeout,
            "elegant_ready_timeout": self.elegant_ready_timeout,
            "ready_poll_interval": self.ready_poll_interval,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"AdminSettings.{name} must be > 0, got {value!r}")
        if not 0 <= self.elegant_wait_second <= 180:
            raise ValueError(
                f"AdminSettings.elegant_wait_second must be within 0-180 s, "
                f"got {self.elegant_wait_second!r}"
            )
        if self.patch_history < PATCH_HISTORY_MIN:
            raise ValueError(
                f"AdminSettings.patch_history must be >= {PATCH_HISTORY_MIN}, "
                f"got {self.patch_history}"
            )
        if self.max_parallel < 1:
            raise ValueError(f"AdminSettings.max_parallel must be >= 1, got {self.max_parallel}")

    @classmethod
    def from_tcconfig(cls, tc: TCConfig) -> AdminSettings:
        """Read upstream's ``tars.tarsAdminRegistry`` config keys, with upstream's clamps.

        ``/tars/reap<updateHeartInterval>`` (min 5), ``<registryTimeout>`` (min 5),
        ``<heartbeatoff>``, ``/tars/objname<patchServerObj>``,
        ``/tars/patch<patch_wait_timeout>`` (upstream reads a misspelt path and always uses
        300 s, ``TaskList::patch``; we read the one its template writes) and
        ``/tars/application/server<elegant_wait_second>`` (2-180, else 75),
        ``/tars/nodeinfo<batchpatch_node_timeout>`` (ms, default 10000) and
        ``/tars/patch<patchHistory>`` (default 200; below 10 is 10, as upstream).
        """
        values = ConfigValues(tc)
        return cls(
            update_heart_interval=values.number(
                "/tars/reap<updateHeartInterval>", 10.0, minimum=5.0
            ),
            registry_timeout=values.number("/tars/reap<registryTimeout>", 150.0, minimum=5.0),
            heartbeat_off=values.yes("/tars/reap<heartbeatoff>"),
            elegant_wait_second=values.number(
                "/tars/application/server<elegant_wait_second>", 75.0, within=(2, 180)
            ),
            patch_wait_timeout=values.number("/tars/patch<patch_wait_timeout>", 300.0) or 300.0,
            patch_obj=values.text("/tars/objname<patchServerObj>", PATCH_OBJ),
            batchpatch_node_timeout=values.number(
                "/tars/nodeinfo<batchpatch_node_timeout>", 10000.0, minimum=1.0
            )
            / 1000.0,
            patch_history=int(
                values.number("/tars/patch<patchHistory>", PATCH_HISTORY, minimum=PATCH_HISTORY_MIN)
            ),
        )
