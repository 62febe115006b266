"""``tarsus install node --locator ...``: a node host joins the framework.

Checks that the registry answers (a clear error otherwise, before anything is written), writes
``/etc/tarsus/node.toml`` and the ``tarsus-node`` unit, and starts the node agent (systemd, or
detached) — or, with ``--foreground``, lets the caller run it. ``node.sh``, served by the
framework host, ends with this command (docs/install.md, "Adding a node").

A secured framework (docs/security.md) hands its keys only for the join token
(``TARSUS_JOIN_TOKEN``): they are fetched from the framework's web app
(``POST /install/node-keys``) and kept in ``node.toml`` (mode 0600), with a key pair made
here for this node's own ``ServerObj``; a framework whose ports are TLS hands its CA with them
(kept as ``<auth>/node/framework-ca.crt``), and the node checks every ``ssl`` endpoint of the
framework against it. Without the token such a framework is refused here, before anything is
written, rather than leaving a node that can never attach.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tarsus
from tarsus.install.errors import InstallError, RegistryUnreachable
from tarsus.install.layout import Layout
from tarsus.install.pki import ensure_pair, read_pair
from tarsus.install.settings import NodeSettings, load_settings, write_private
from tarsus.install.units import Service, verify_unit

__all__ = ["NodeOptions", "check_locator", "install_node", "node_health"]

LOCATOR_TIMEOUT_MS = 5000
#: under ``<auth>/node``: the framework's CA, as the join handed it over
FRAMEWORK_CA = "framework-ca.crt"


@dataclass
class NodeOptions:
    locator: str
    layout: Layout = field(default_factory=Layout)
    node_name: str = ""
    host: str = ""
    port: int = 19386
    #: a secured framework's join token, and its web app's base URL (``http://FW:3000``)
    join_token: str = ""
    web: str = ""
    #: write and check the service unit (not for ``--foreground``: containers run no systemd)
    unit: bool = True
    #: seconds to wait for a framework that does not answer yet (a container started beside it)
    registry_wait: float = 0.0


@dataclass(frozen=True)
class NodeKeys:
    accesskey: str
    secretkey: str
    objects: tuple[str, ...]
    #: PEM: the CA the framework's ``ssl`` endpoints are checked against ("": not TLS)
    ca: str = ""


@dataclass(frozen=True)
class NodeInstall:
    settings: NodeSettings
    changed: bool
    service: Service


async def check_locator(locator: str) -> None:
    """:class:`InstallError` unless the registry behind ``locator`` answers a lookup."""
    from tarsus.codec.constants import QUERY_OBJ
    from tarsus.protocol.gen import QueryF
    from tarsus.rpc.communicator import Communicator
    from tarsus.rpc.endpoint import EndpointError
    from tarsus.rpc.errors import TarsError

    if "@" not in locator:
        raise InstallError(
            f"--locator {locator!r}: give the registry as "
            f"'{QUERY_OBJ}@tcp -h HOST -p 17890' (several: ...:tcp -h HOST2 -p 17890)"
        )
    try:
        async with Communicator(locator, cache_dir=None) as comm:
            query = comm.string_to_proxy(QueryF.QueryFProxy, locator)
            await query.with_options(timeout_ms=LOCATOR_TIMEOUT_MS).findObjectById(QUERY_OBJ)
    except (EndpointError, ValueError) as e:
        raise InstallError(f"--locator {locator!r} cannot be parsed: {e}") from None
    except TarsError as e:
        raise RegistryUnreachable(
            f"the registry at {locator.split('@', 1)[1]} does not answer ({e}); is the framework "
            "up, and is its port reachable from this host?"
        ) from None


async def framework_is_secured(locator: str) -> bool:
    """Whether the framework's RegistryObj asks for ``-e 1`` (as the registry answers)."""
    from tarsus.codec.constants import REGISTRY_OBJ
    from tarsus.protocol.gen import QueryF
    from tarsus.rpc.communicator import Communicator
    from tarsus.rpc.errors import TarsError

    try:
        async with Communicator(locator, cache_dir=None) as comm:
            query = comm.string_to_proxy(QueryF.QueryFProxy, locator)
            found = await query.with_options(timeout_ms=LOCATOR_TIMEOUT_MS).findObjectById(
                REGISTRY_OBJ
            )
    except TarsError as e:
        raise InstallError(f"the registry does not answer ({e})") from None
    return any(ep.authType for ep in found)


def fetch_node_keys(web: str, token: str) -> NodeKeys:
    """The framework's keys for the join token (:class:`InstallError` saying why not)."""
    url = f"{web.rstrip('/')}/install/node-keys"
    request = urllib.request.Request(
        url, data=b"", method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=LOCATOR_TIMEOUT_MS / 1000) as answer:
            body = json.loads(answer.read(65536))
        keys = NodeKeys(
            str(body["accesskey"]),
            str(body["secretkey"]),
            tuple(map(str, body["objects"])),
            str(body.get("ca") or ""),
        )
    except urllib.error.HTTPError as e:
        reason = e.read(500).decode("utf-8", "replace").strip()
        raise InstallError(
            f"the framework at {web} refused the join token ({e.code}: {reason})"
        ) from None
    except (urllib.error.URLError, OSError) as e:
        raise RegistryUnreachable(f"cannot fetch the node's keys from {url}: {e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise InstallError(f"{url} answered something that is not the node's keys ({e})") from None
    if not (keys.accesskey and keys.secretkey and keys.objects):
        raise InstallError(f"{url} answered empty keys")
    if keys.ca:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=keys.ca)
        except (ssl.SSLError, ValueError) as e:
            raise InstallError(f"{url} answered a CA that is not a certificate ({e})") from None
    return keys


async def install_node(
    opts: NodeOptions, say: Callable[[str], None] = lambda _m: None
) -> NodeInstall:
    """Steps in the module docstring; for ``opts.registry_wait`` seconds a framework that does
    not answer yet is waited for (a refused join token or a bad locator fail at once)."""
    deadline = time.monotonic() + opts.registry_wait
    while True:
        try:
            return await _install_node(opts, say)
        except RegistryUnreachable as e:
            if time.monotonic() >= deadline:
                raise
            say(f"waiting for the framework ({e})")
            await asyncio.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


async def _install_node(opts: NodeOptions, say: Callable[[str], None]) -> NodeInstall:
    await check_locator(opts.locator)
    say(f"registry answers at {opts.locator.split('@', 1)[1]}")
    layout = opts.layout
    service = Service("node", layout)
    keys: NodeKeys | None = None
    if opts.join_token:
        if not opts.web:
            raise InstallError("a join token needs the framework's web address (--web)")
        keys = await asyncio.to_thread(fetch_node_keys, opts.web, opts.join_token)
        say("keys: fetched from the framework for the join token")
    elif await framework_is_secured(opts.locator):
        previous = _previous_keys(service.settings_file)
        if previous is None:
            raise InstallError(
                "this framework is secured: set TARSUS_JOIN_TOKEN to the join token "
                '`tarsus install framework` printed (docs/install.md, "Adding a node")'
            )
        keys = previous
    server_pair = ("", "")
    ca = ""
    if keys is not None:  # this node's ServerObj gets its own pair, kept across re-runs
        d = layout.auth_dir / "node"
        ensure_pair(d / "accesskey", d / "secretkey", "node")
        server_pair = read_pair(d / "accesskey", d / "secretkey")
        if keys.ca:  # the node checks the framework's ssl endpoints against it
            ca_file = d / FRAMEWORK_CA
            write_private(ca_file, keys.ca)
            ca = str(ca_file)
            say(f"framework CA: {ca_file}")
    settings = NodeSettings(
        version=tarsus.__version__,
        locator=opts.locator,
        data_dir=layout.data_dir / "node",
        node_name=opts.node_name,
        host=opts.host,
        port=opts.port,
        accesskey=keys.accesskey if keys else "",
        secretkey=keys.secretkey if keys else "",
        secured=keys.objects if keys else (),
        ca=ca,
        server_accesskey=server_pair[0],
        server_secretkey=server_pair[1],
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    changed = write_private(service.settings_file, settings.render())
    if opts.unit:
        changed = service.write_unit() or changed
        complaint = verify_unit(service.unit_file)
        if complaint:
            raise InstallError(f"systemd-analyze verify {service.unit_file}:\n{complaint}")
    say(f"settings: {service.settings_file} ({'changed' if changed else 'unchanged'})")
    return NodeInstall(settings=settings, changed=changed, service=service)


async def node_health(settings: NodeSettings, timeout: float = 2.0) -> str:
    """What is wrong with a running node agent ("" when its ServerObj takes connections): a
    container's health check. The framework being away is not the node's fault: the node
    keeps its services running meanwhile, so that is not checked here."""
    from tarsus.install.ports import default_host

    host = settings.host or settings.node_name or default_host()
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, settings.port), timeout
        )
    except (OSError, TimeoutError) as e:
        return f"the node's ServerObj at {host}:{settings.port} does not answer ({e})"
    writer.close()
    return ""


def _previous_keys(path: Path) -> NodeKeys | None:
    """The keys an earlier install of this node fetched (a re-run needs no token)."""
    try:
        found = load_settings(path)
    except InstallError:
        return None
    if isinstance(found, NodeSettings) and found.accesskey and found.secretkey:
        try:
            ca = Path(found.ca).read_text(encoding="ascii") if found.ca else ""
        except (OSError, UnicodeDecodeError):
            ca = ""  # as before the CA was handed over: the node then does not check it
        return NodeKeys(found.accesskey, found.secretkey, found.secured, ca)
    return None
