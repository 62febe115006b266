"""The config file the node writes for each server it runs (upstream ``CommandLoad``; docs/node.md).

From a ``ServerDescriptor`` and the node's settings:

1. ``/tars/application/server<node>`` = ``tars.tarsnode.ServerObj@<node endpoint>``;
2. one domain ``/tars/application/server/<adapterName>`` per adapter, with ``allow``,
   ``endpoint``, ``maxconns``, ``protocol`` (default ``tars``), ``queuecap``,
   ``queuetimeout``, ``servant``, ``threads`` (upstream's key and domain order);
3. the server's profile with the node macros filled in, joined on top with overwrite.

The admin port (``${local}``) is the one already in the server's config file, else a random
free port in 30000-44999 that no other server on this node uses. The file is written only
when its content changes, atomically (temporary file, then rename), the old one kept as
``.bak``; nothing is written if anything fails.

Every path the descriptor gives stays inside the node's directories (:func:`check_layout`,
the rules in ``tarsus/framework/descriptor_paths.py``); a server directory the node creates is
marked as this server's (:data:`OWNER_MARK`), and ``destroyServer`` deletes only a directory so
marked, or the default one, under the data directory (:func:`remove_server_files`).

The node reads some keys back from the result (:class:`RuntimeConfig`). ``hearttimeout`` is
taken as **milliseconds**, as its default (45000) says; upstream compares it with seconds
(``ServerObject::setHeartTimeout``), which turns its 45 s hung detection into 12.5 h.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import random
import shutil
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tarsus.codec.constants import NODE_SERVER_OBJ as NODE_OBJ
from tarsus.conf import ConfigError, TCConfig, expand, node_macros, parse
from tarsus.framework.descriptor_paths import (
    PathRefused,
    check_raw_path,
    is_within,
    require_within,
)
from tarsus.framework.node.settings import NodeSettings
from tarsus.protocol.gen import RegistryDescriptor
from tarsus.rpc.endpoint import Endpoint, EndpointError

__all__ = [
    "ADMIN_PORT_RANGE",
    "NODE_OBJ",
    "NOT_TARS",
    "TARS_NODEJS",
    "TARS_PYTHON",
    "ConfigGenError",
    "GeneratedConfig",
    "RuntimeConfig",
    "ServerLayout",
    "adapter_ports",
    "check_layout",
    "generate_config",
    "remove_server_files",
    "render_config",
    "server_layout",
    "write_config",
]

log = logging.getLogger("tarsus.framework.node.config")

#: ``[low, high)`` of the random admin ports (upstream ``30000 + rand() % 15000``).
ADMIN_PORT_RANGE = (30000, 45000)
#: Server types the node treats specially.
NOT_TARS = "not_tars"
TARS_PYTHON = "tars_python"
TARS_NODEJS = "tars_nodejs"
_INTERPRETED = {"tars_java": "java", "tars_nodejs": "nodejs", "tars_php": "php"}
_INTERPRETER_DEFAULT = {"java": "java", "nodejs": "node", "php": "php"}
_SERVER = "/tars/application/server"


class ConfigGenError(Exception):
    """The config of a server cannot be generated; says which server and what was wrong."""


# ------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class ServerLayout:
    """Where one server's files are on this node."""

    app: str
    server: str
    server_type: str
    #: ``basePath`` when absolute, else ``<data_dir>/<app>.<server>``
    server_dir: Path
    conf_file: Path
    #: the executable's directory (``${basepath}``), normally ``<server_dir>/bin``
    exe_path: Path
    #: the executable: a path, or a bare command (``java``) for interpreted types
    exe_file: str
    #: ``<server_dir>/data`` (``${datapath}``)
    data_dir: Path
    #: ``<node log_dir>/<app>/<server>``: the process's cwd and log files
    log_dir: Path
    #: stdout and stderr of the process: ``<log_dir>/<app>.<server>.log``
    log_file: Path
    lib_dir: Path
    #: where packages are installed and the one venv per Python server
    bin_dir: Path
    venv_dir: Path
    #: previous ``bin`` dirs, ``bin_bak1`` (newest) .. ``bin_bak5``
    backup_dir: Path
    start_script: str = ""
    stop_script: str = ""
    monitor_script: str = ""

    @property
    def server_id(self) -> str:
        return f"{self.app}.{self.server}"

    @property
    def is_tars(self) -> bool:
        """Upstream: everything but ``not_tars`` speaks Tars (AdminObj, keepAlive)."""
        return self.server_type != NOT_TARS


def _simplify(path: str) -> str:
    simple = posixpath.normpath(path) if path else ""
    if simple.startswith("//"):
        simple = "/" + simple.lstrip("/")
    return simple


def server_layout(
    desc: RegistryDescriptor.ServerDescriptor, settings: NodeSettings
) -> ServerLayout:
    """The paths of ``desc`` on this node, by upstream's rules (``CommandLoad``)."""
    app, server = desc.application, desc.serverName
    _check_name(app, "application")
    _check_name(server, "server name")
    data_root = Path(settings.data_dir)
    base = (desc.basePath or "").strip()
    server_dir = Path(_simplify(base)) if base.startswith("/") else data_root / f"{app}.{server}"
    server_type = (desc.serverType or "").strip().lower()
    bin_dir = server_dir / "bin"
    exe_given = (desc.exePath or "").strip()
    if not exe_given:
        exe_path = bin_dir
        if server_type in _INTERPRETED:
            key = _INTERPRETED[server_type]
            exe_file = (
                _profile_value(desc.profile, f"{_SERVER}<{key}>") or _INTERPRETER_DEFAULT[key]
            )
        else:
            exe_file = str(bin_dir / server)
    elif not exe_given.startswith("/"):
        exe_file = _simplify(str(bin_dir / exe_given))
        exe_path = Path(posixpath.dirname(exe_file))
    else:
        exe_file = _simplify(exe_given)
        exe_path = bin_dir if server_type == "tars_java" else Path(posixpath.dirname(exe_file))

    def script(name: str | None) -> str:
        name = (name or "").strip()
        if not name:
            return ""
        return _simplify(name if name.startswith("/") else str(exe_path / name))

    log_dir = Path(settings.log_dir) / app / server
    return ServerLayout(
        app=app,
        server=server,
        server_type=server_type,
        server_dir=server_dir,
        conf_file=server_dir / "conf" / f"{app}.{server}.config.conf",
        exe_path=exe_path,
        exe_file=exe_file,
        data_dir=server_dir / "data",
        log_dir=log_dir,
        log_file=log_dir / f"{app}.{server}.log",
        lib_dir=data_root / "lib",
        bin_dir=bin_dir,
        venv_dir=server_dir / "venv",
        backup_dir=data_root / "tmp" / f"{app}.{server}",
        start_script=script(desc.startScript),
        stop_script=script(desc.stopScript),
        monitor_script=script(desc.monitorScript),
    )


# ------------------------------------------------------------------- where paths may go

#: In a server directory the node created: the ``App.Server`` it belongs to.
OWNER_MARK = ".tarsus-node"
#: Keys of the generated config that name directories the server writes to.
_PROFILE_DIRS = ("basepath", "datapath", "logpath")


def _roots(settings: NodeSettings) -> list[Path]:
    return [Path(settings.data_dir), *(Path(d) for d in settings.trusted_dirs)]


def check_layout(
    desc: RegistryDescriptor.ServerDescriptor, layout: ServerLayout, settings: NodeSettings
) -> None:
    """:class:`ConfigGenError` unless every path of ``desc`` (as laid out in ``layout``)
    stays inside the node's directories, symbolic links resolved (see
    ``tarsus/framework/descriptor_paths.py``)."""
    data = Path(settings.data_dir)
    roots = _roots(settings)
    try:
        for what, raw in (
            ("basePath", desc.basePath),
            ("exePath", desc.exePath),
            ("startScript", desc.startScript),
            ("stopScript", desc.stopScript),
            ("monitorScript", desc.monitorScript),
        ):
            check_raw_path(what, (raw or "").strip())
        require_within("basePath", layout.server_dir, roots, resolve=True, strictly=True)
        for reserved in (data / "lib", data / "tmp", Path(settings.log_dir)):
            if is_within(layout.server_dir, reserved, resolve=True):
                raise PathRefused(
                    f"basePath {layout.server_dir} is inside {reserved}, which the node keeps "
                    "for itself"
                )
        if "/" in layout.exe_file:
            require_within("exePath", layout.exe_file, roots, resolve=True, strictly=True)
        require_within("exePath", layout.exe_path, roots, resolve=True, strictly=False)
        for what, script in (
            ("startScript", layout.start_script),
            ("stopScript", layout.stop_script),
            ("monitorScript", layout.monitor_script),
        ):
            if script:
                require_script_in_package(what, script, layout)
    except PathRefused as e:
        raise ConfigGenError(f"{layout.server_id}: {e}") from e


def require_script_in_package(what: str, script: str | Path, layout: ServerLayout) -> None:
    """:class:`PathRefused` unless ``script`` lies inside the installed package (the
    executable's directory, ``bin/`` by default), symbolic links resolved."""
    if not is_within(script, layout.exe_path, resolve=True, strictly=True):
        real = os.path.realpath(script)
        shown = f"{script}" + ("" if real == os.fspath(script) else f" (that is {real})")
        raise PathRefused(
            f"{what} {shown} must lie inside the installed package ({layout.exe_path})"
        )


def _check_profile_dirs(tc: TCConfig, layout: ServerLayout, settings: NodeSettings) -> None:
    roots = [*_roots(settings), Path(settings.log_dir)]
    try:
        for key in _PROFILE_DIRS:
            value = tc.get(f"{_SERVER}<{key}>").strip()
            if value:
                check_raw_path(f"the profile's {key}", value)
                require_within(f"the profile's {key}", value, roots, resolve=True, strictly=False)
    except PathRefused as e:
        raise ConfigGenError(f"{layout.server_id}: {e}") from e


def _default_server_dir(layout: ServerLayout, settings: NodeSettings) -> Path:
    return Path(settings.data_dir) / layout.server_id


def _owner(server_dir: Path) -> str:
    try:
        return (server_dir / OWNER_MARK).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def claim_server_dir(layout: ServerLayout, settings: NodeSettings) -> None:
    """Create the server directory, marked as ``layout``'s server; or take an existing one
    that is its own (the default directory, one marked for it, one holding its config file,
    or an empty one). :class:`ConfigGenError` for a directory that holds someone else's
    files: the node would write into it, and a later destroy would delete it."""
    sid = layout.server_id
    server_dir = layout.server_dir
    owner = _owner(server_dir)
    if owner == sid:
        return
    if owner:
        raise ConfigGenError(f"{sid}: basePath {server_dir} is the directory of {owner}")
    default = os.path.realpath(server_dir) == os.path.realpath(
        _default_server_dir(layout, settings)
    )
    try:
        existing = [p.name for p in server_dir.iterdir()] if server_dir.is_dir() else []
    except OSError as e:
        raise ConfigGenError(f"{sid}: cannot read basePath {server_dir}: {e}") from e
    ours = (server_dir / "conf" / f"{sid}.config.conf").exists()  # written by a node for it
    if existing and not default and not ours:
        raise ConfigGenError(
            f"{sid}: basePath {server_dir} already holds files the node did not put there "
            f"({', '.join(sorted(existing)[:5])}); give a new or empty directory"
        )
    try:
        server_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(server_dir / OWNER_MARK, f"{sid}\n".encode())
    except OSError as e:
        raise ConfigGenError(f"{sid}: cannot create {server_dir}: {e}") from e


def remove_server_files(layout: ServerLayout, settings: NodeSettings) -> None:
    """Delete what the node made for a destroyed server: its directory (only one the node
    created for it under its data directory), its logs and its backups. Anything else is
    left alone, and the log says so."""
    sid = layout.server_id
    data = Path(settings.data_dir)
    server_dir = Path(os.path.realpath(layout.server_dir))
    default = server_dir == Path(os.path.realpath(_default_server_dir(layout, settings)))
    mine = _owner(server_dir) == sid or default
    if not server_dir.exists():
        pass
    elif mine and is_within(server_dir, data, resolve=True, strictly=True):
        shutil.rmtree(server_dir, ignore_errors=True)
    else:
        log.error(
            "%s: not deleting %s: the node did not create it for this server under %s",
            sid,
            layout.server_dir,
            data,
        )
    for directory, root in (
        (layout.log_dir, Path(settings.log_dir)),
        (layout.backup_dir, data / "tmp"),
    ):
        if directory.is_symlink() or not is_within(directory, root, resolve=True, strictly=True):
            log.error("%s: not deleting %s: it is not under %s", sid, directory, root)
        else:
            shutil.rmtree(directory, ignore_errors=True)


def _check_name(name: str, what: str) -> None:
    """App and server names become path components: keep them to one harmless component."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or name != name.strip():
        raise ConfigGenError(f"{what} {name!r} cannot name a directory")


def _profile_value(profile: str, path: str) -> str:
    try:
        return parse(profile or "").get(path).strip()
    except ConfigError:
        return ""


# ------------------------------------------------------------------------- the content


@dataclass(frozen=True)
class RuntimeConfig:
    """What the node itself reads back from a server's generated config."""

    #: the admin endpoint (``AdminObj@<local>``), "" when the server has none
    local: str = ""
    #: seconds; None = the node's default. From ``hearttimeout``, in ms (see the module doc).
    heart_timeout: float | None = None
    #: seconds; None = the node's default. From ``activating-timeout`` (ms).
    activating_timeout: float | None = None
    #: seconds, not yet clamped; None = the node's default. From ``deactivating-timeout`` (ms).
    deactivating_timeout: float | None = None
    #: ``env``: ``K=V`` pairs separated by ``;`` or ``|``
    env: Mapping[str, str] = field(default_factory=dict)
    #: ``enableworking``: "n" makes the node always report the server Inactive
    enable_working: bool = True
    #: ``tars_java``'s launch line: ``jvmparams``, ``classpath``, ``mainclass``
    jvm_params: str = ""
    classpath: str = ""
    mainclass: str = ""
    #: ``tars_php``'s script (``entrance``)
    entrance: str = ""

    @classmethod
    def from_config(cls, tc: TCConfig) -> RuntimeConfig:
        return cls(
            local=tc.get(f"{_SERVER}<local>").strip(),
            heart_timeout=_ms(tc.get(f"{_SERVER}<hearttimeout>")),
            activating_timeout=_ms(tc.get(f"{_SERVER}<activating-timeout>")),
            deactivating_timeout=_ms(tc.get(f"{_SERVER}<deactivating-timeout>")),
            env=parse_env(tc.get(f"{_SERVER}<env>")),
            enable_working=tc.get(f"{_SERVER}<enableworking>", "y").strip().lower() == "y",
            jvm_params=tc.get(f"{_SERVER}<jvmparams>").strip(),
            classpath=tc.get(f"{_SERVER}<classpath>").strip(),
            mainclass=tc.get(f"{_SERVER}<mainclass>").strip(),
            entrance=tc.get(f"{_SERVER}<entrance>").strip(),
        )


def _ms(text: str) -> float | None:
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value / 1000.0 if value > 0 else None


def parse_env(text: str) -> dict[str, str]:
    """``A=1;B=2|C=3`` → ``{"A": "1", "B": "2", "C": "3"}`` (upstream ``sepstr(env, ";|")``)."""
    env: dict[str, str] = {}
    for part in text.replace("|", ";").split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key.strip():
            env[key.strip()] = value.strip()
    return env


@dataclass(frozen=True)
class GeneratedConfig:
    layout: ServerLayout
    text: str
    admin_port: int
    #: the ports this server uses on this node (adapters and admin)
    ports: frozenset[int]
    runtime: RuntimeConfig
    #: whether the file on disk changed (only :func:`generate_config` sets it)
    written: bool = False


def adapter_ports(desc: RegistryDescriptor.ServerDescriptor) -> set[int]:
    """The ports of ``desc``'s adapters (those that parse)."""
    ports = set()
    for adapter in (desc.adapters or {}).values():
        with contextlib.suppress(EndpointError):
            ports.add(Endpoint.parse(adapter.endpoint).port)
    return ports


def render_config(
    desc: RegistryDescriptor.ServerDescriptor,
    settings: NodeSettings,
    *,
    used_ports: Iterable[int] = (),
    locator: str | None = None,
    layout: ServerLayout | None = None,
    admin_port: int | None = None,
) -> GeneratedConfig:
    """The config text for ``desc`` (nothing is written).

    ``used_ports``: ports of the node's other servers, kept clear of a new admin port;
    ``locator``: the registry list to give the server (upstream asks the registry for the
    active QueryObj endpoints), else the node's own ``settings.locator``; ``admin_port``:
    this admin port instead of the file's or a random one (framework servers keep their
    well-known ones, as upstream keeps them by copying their install-time config).
    """
    layout = layout or server_layout(desc, settings)
    check_layout(desc, layout, settings)
    sid = layout.server_id
    tc = TCConfig()
    try:
        node_ep = Endpoint.parse(settings.node_endpoint)
    except EndpointError as e:
        raise ConfigGenError(f"the node's endpoint {settings.node_endpoint!r}: {e}") from e
    tc.set(f"{_SERVER}<node>", f"{NODE_OBJ}@{node_ep}")
    if settings.node_keys is not None:  # ServerObj with -e 1: the server's heartbeats sign
        access, secret = settings.node_keys
        tc.insert_params(
            f"/tars/application/client/{NODE_OBJ}", {"accesskey": access, "secretkey": secret}
        )
    ports: set[int] = set()
    adapters: Mapping[str, RegistryDescriptor.AdapterDescriptor] = desc.adapters or {}
    for name in sorted(adapters, reverse=True):  # upstream walks its std::map backwards
        if not name:
            continue
        adapter = adapters[name]
        try:
            endpoint = Endpoint.parse(adapter.endpoint)
        except EndpointError as e:
            raise ConfigGenError(
                f"{sid}: adapter {name}: endpoint {adapter.endpoint!r}: {e}"
            ) from e
        ports.add(endpoint.port)
        tc.insert_params(
            f"{_SERVER}/{name}",
            {  # a std::map on upstream's side: keys in sorted order
                "allow": adapter.allowIp,
                "endpoint": str(endpoint),
                "maxconns": str(adapter.maxConnections),
                "protocol": adapter.protocol or "tars",
                "queuecap": str(adapter.queuecap),
                "queuetimeout": str(adapter.queuetimeout),
                "servant": adapter.servant,
                "threads": str(adapter.threadNum),
            },
        )
    if admin_port is None:
        admin_port = _existing_admin_port(layout.conf_file)
    if admin_port is None:
        admin_port = pick_admin_port(set(used_ports) | ports)
    local = str(Endpoint("tcp", "127.0.0.1", admin_port, timeout=10000))
    macros = node_macros(
        app=layout.app,
        server=layout.server,
        node_name=settings.node_name,
        local_ip=settings.local_ip,
        local=local,
        exe_file=layout.exe_file,
        exe_path=str(layout.exe_path),
        server_dir=str(layout.server_dir),
        log_path=str(settings.log_dir),
        locator=locator or settings.locator or None,
        set_id=desc.setId or "",
        async_thread_num=desc.asyncThreadNum,
        config_center_port=desc.configCenterPort,
        base_image=desc.baseImage or "",
        sha=desc.sha or "",
    )
    try:
        profile = parse(expand(desc.profile or "", macros), source=f"profile of {sid}")
        tc.join(profile, overwrite=True)
        text = tc.tostr()
    except ConfigError as e:
        raise ConfigGenError(f"{sid}: {e}") from e
    _check_profile_dirs(tc, layout, settings)
    runtime = RuntimeConfig.from_config(tc)
    return GeneratedConfig(
        layout=layout,
        text=text,
        admin_port=admin_port,
        ports=frozenset(ports | {admin_port}),
        runtime=runtime,
    )


def generate_config(
    desc: RegistryDescriptor.ServerDescriptor,
    settings: NodeSettings,
    *,
    used_ports: Iterable[int] = (),
    locator: str | None = None,
    admin_port: int | None = None,
) -> GeneratedConfig:
    """:func:`render_config`, create the server's directories, write the file if it changed."""
    generated = render_config(
        desc, settings, used_ports=used_ports, locator=locator, admin_port=admin_port
    )
    layout = generated.layout
    claim_server_dir(layout, settings)
    try:
        for path in (
            layout.exe_path,
            layout.lib_dir,
            layout.conf_file.parent,
            layout.data_dir,
            layout.log_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)
        written = write_config(layout.conf_file, generated.text)
    except OSError as e:
        raise ConfigGenError(f"{layout.server_id}: cannot write {layout.conf_file}: {e}") from e
    if written:
        log.info("%s: config written to %s", layout.server_id, layout.conf_file)
    return GeneratedConfig(
        layout=generated.layout,
        text=generated.text,
        admin_port=generated.admin_port,
        ports=generated.ports,
        runtime=generated.runtime,
        written=written,
    )


def write_config(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; the previous content
    goes to ``<path>.bak``. Atomic: readers see the old file or the new one, never a part.
    Returns whether the file changed."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        old: bytes | None = path.read_bytes()
    except FileNotFoundError:
        old = None
    if old == data:
        return False
    parse(text, source=str(path))  # never replace a file with one that does not read back
    if old is not None:
        atomic_write(path.with_name(path.name + ".bak"), old)
    atomic_write(path, data)
    return True


def atomic_write(path: Path, data: bytes) -> None:
    """``data`` into ``path`` via a temporary file in the same directory, fsynced, renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _existing_admin_port(conf_file: Path) -> int | None:
    try:
        text = conf_file.read_text("utf-8", "surrogateescape")
        local = parse(text).get(f"{_SERVER}<local>").strip()
        port = Endpoint.parse(local).port if local else 0
    except (OSError, ConfigError, EndpointError):
        return None
    return port or None


def pick_admin_port(avoid: set[int], *, rng: random.Random | None = None) -> int:
    """A random port in :data:`ADMIN_PORT_RANGE` not in ``avoid`` and not in use on
    127.0.0.1 (nothing answers a connect there and it can be bound)."""
    rng = rng or random.SystemRandom()
    low, high = ADMIN_PORT_RANGE
    candidates = [port for port in range(low, high) if port not in avoid]
    rng.shuffle(candidates)
    # Ports the kernel hands out to outgoing connections may be taken by one between now and
    # the server binding it (and stay taken while that connection lives): try the others first.
    ephemeral = _ephemeral_ports()
    candidates.sort(key=lambda port: port in ephemeral)
    for port in candidates:
        if _port_free(port):
            return port
    raise ConfigGenError(f"no free admin port found in {low}-{high - 1}")


def _ephemeral_ports() -> range:
    """The local port range of outgoing connections (Linux; 32768-60999 by default)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
