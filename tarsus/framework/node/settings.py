"""``NodeSettings``: who the node is, where it keeps things, and how it supervises.

Defaults are upstream's where upstream has one (docs/node.md), except where Tarsus is
deliberately faster: the monitor runs every second (upstream 2-3 s) and crashes are noticed
the moment the process exits, not at the next monitor pass. Every interval is a setting, so
tests (and impatient operators) can shrink them.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tarsus.codec.constants import NODE_SERVER_PORT

__all__ = ["DEFAULT_DISK_RESERVE", "DEFAULT_MAX_UNPACKED_SIZE", "ActivationLimits", "NodeSettings"]

#: Bytes a package may unpack to (an archive bomb, 1 MB that unpacks to 1 GB, is refused).
DEFAULT_MAX_UNPACKED_SIZE = 512 * 1024 * 1024
#: Bytes that must stay free on the server directory's file system after unpacking.
DEFAULT_DISK_RESERVE = 256 * 1024 * 1024


@dataclass(frozen=True)
class ActivationLimits:
    """Crash-loop protection for node-initiated starts (upstream ``Activator.cpp``).

    A start that follows the previous one within ``time_interval`` seconds counts; once more
    than ``max_count`` such starts have counted, the server is *limited*: the node does not
    start it on its own until ``punish_interval`` seconds after the last attempt, and after
    that tries once per ``punish_interval``. ``1.5 * punish_interval`` seconds without any
    start forget the history. Manual starts (from the admin) are never refused.
    """

    time_interval: float = 60.0
    max_count: int = 10
    punish_interval: float = 600.0

    @property
    def reset_after(self) -> float:
        return self.punish_interval * 1.5


@dataclass(frozen=True)
class NodeSettings:
    """Everything the node agent needs to know about itself.

    ``node_endpoint`` is the endpoint of the node's own ``tars.tarsnode.ServerObj`` (what each
    server's config gets as ``node=``); set it to the endpoint actually bound before loading
    servers (``dataclasses.replace``) when the node listens on an ephemeral port.
    """

    #: the node's name in the registry (usually its IP)
    node_name: str
    #: upstream ``tarsnode/data``: server dirs, ``serversCache.json``, ``tmp/`` backups
    data_dir: Path
    #: upstream ``app_log``: ``<log_dir>/<app>/<server>/`` per server
    log_dir: Path
    #: the node's own locator (``tars.tarsregistry.QueryObj@tcp -h ... -p 17890``); used for
    #: ``${locator}`` when no fresher registry list is given; "" leaves ``${locator}`` as is
    locator: str = ""
    node_endpoint: str = f"tcp -h 127.0.0.1 -p {NODE_SERVER_PORT} -t 60000"
    #: ``(accesskey, secretkey)`` of a ``ServerObj`` served with ``-e 1``: every generated
    #: config gets them in its ``<client><tars.tarsnode.ServerObj>`` domain, so the server's
    #: heartbeats sign (docs/security.md); None when ServerObj is open
    node_keys: tuple[str, str] | None = None
    #: ``${localip}``: the address servers are told is theirs
    local_ip: str = "127.0.0.1"

    #: seconds between monitor passes (heartbeat, activating-timeout and auto-start checks)
    monitor_interval: float = 1.0
    #: seconds without keepAlive before an Active server counts as hung, when its config has
    #: no ``hearttimeout`` (ms)
    heart_timeout: float = 45.0
    #: seconds a node-started server may stay Activating without heartbeats, when its config
    #: has no ``activating-timeout`` (ms)
    activating_timeout: float = 60.0
    #: seconds a stopping server gets when its config has no ``deactivating-timeout`` (ms)
    deactivating_timeout: float = 3.0
    #: the bounds ``deactivating-timeout`` is clamped to (upstream 2-60 s)
    deactivating_timeout_range: tuple[float, float] = (2.0, 60.0)
    #: seconds to wait for the process to vanish after SIGKILL
    kill_wait: float = 2.0
    #: ``AdminF.shutdown`` / ``notify`` call timeouts, ms
    admin_call_timeout_ms: int = 1000
    notify_timeout_ms: int = 10000
    #: seconds after a start during which the monitor leaves the server alone (upstream 5 s)
    start_grace: float = 5.0
    #: seconds after node start during which servers with no known process are not started,
    #: so that their keepAlive can reveal a process still running (upstream 11 s)
    startup_grace: float = 11.0
    #: seconds between liveness polls of a process the node did not start itself, when the
    #: kernel cannot notify its exit (no pidfd)
    adopt_poll_interval: float = 0.5
    limits: ActivationLimits = field(default_factory=ActivationLimits)

    #: the Docker Engine API that starts servers of run type ``container`` (``unix:///...``;
    #: "" = ``DOCKER_HOST``, else ``unix:///var/run/docker.sock``; upstream's ``<container>
    #: socket``); it is only asked when such a server starts or the node restarts
    container_engine: str = ""
    #: seconds one call to the container engine may take (upstream ``<container> timeout``)
    container_timeout: float = 30.0
    #: seconds between two starts of a container server while its engine does not answer
    #: (such a start is not an activation: the limiter does not count it)
    container_retry: float = 3.0
    #: the interpreter a Python server runs on inside its image
    container_python: str = "python3"

    #: the node's interpreter: creates each Python service's venv and runs pip for it
    python: str = sys.executable
    #: seconds a package's wheel installation may take
    pip_timeout: float = 600.0
    #: bytes a package may unpack to (the sum of its files' sizes)
    max_unpacked_size: int = DEFAULT_MAX_UNPACKED_SIZE
    #: bytes that must stay free on the disk of a server's directory once its package is
    #: unpacked there
    disk_reserve: int = DEFAULT_DISK_RESERVE
    #: seconds an ``on_state`` callback may take before it is abandoned
    report_timeout: float = 5.0
    #: seconds before a failed state report is sent again (the server's state then), doubling
    #: up to ``report_retry_max``: a server started before the registry answers (the
    #: framework's own services, in the processes layout) is routed soon after it does, not at
    #: the next 60 s round of ``keepAlive`` reports
    report_retry: float = 1.0
    report_retry_max: float = 10.0

    #: ``getLogData``: seconds one log search may run (in its own worker process) before it is
    #: stopped and answered "timed out"; under the admin registry's 5 s wait for a node's answer
    #: (``admin/channel.py``), so that the console gets "timed out" rather than a call timeout
    log_search_timeout: float = 4.0
    #: ``getLogData``: bytes of memory (address space) of the worker
    log_search_memory: int = 512 * 1024 * 1024
    #: ``getLogData``: bytes of the log file read at most
    log_search_max_read: int = 256 * 1024 * 1024
    #: directories besides ``data_dir`` where a descriptor's ``basePath`` and ``exePath`` may
    #: point (a source tree on a developer's machine, say); the node never deletes there
    trusted_dirs: tuple[Path, ...] = ()

    def replace(self, **changes: object) -> NodeSettings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def cache_file(self) -> Path:
        return Path(self.data_dir) / "serversCache.json"

    @property
    def download_dir(self) -> Path:
        """Packages downloaded from the package store (upstream's ``downloadpath``,
        ``<tarsnode>/data/tmp/download/``)."""
        return Path(self.data_dir) / "tmp" / "download"
