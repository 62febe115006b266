"""The settings file of an installed role: ``framework.toml`` or ``node.toml``.

Written by ``tarsus install framework|node`` (mode 0600: the framework's holds its database
password) and read by ``tarsus install run framework|node`` — what the service unit runs. A
re-run of the install writes the same file when nothing changed, which is how it knows that
a running service can be left alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tarsus.codec.constants import ADMIN_REG_OBJ
from tarsus.framework.allinone import Ports
from tarsus.install.errors import InstallError

__all__ = ["FrameworkSettings", "NodeSettings", "load_settings", "write_private"]


def _toml(value: Any) -> str:
    if isinstance(value, tuple | list):
        return json.dumps([str(v) for v in value])  # a JSON string array is a TOML array
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


@dataclass(frozen=True)
class FrameworkSettings:
    version: str
    host: str
    data_dir: Path
    #: the framework's own database URL (its least-privilege user, password included)
    db: str
    web_port: int = 3000
    ports: Ports = field(default_factory=Ports)
    #: listening beyond loopback: the operating objects take only holders of the keys in
    #: ``/etc/tarsus/auth`` (docs/security.md)
    secure: bool = False
    #: ``--tls``: the guarded objects on ``ssl`` endpoints too (the install's certificates)
    tls: bool = False
    role: str = "framework"

    @property
    def admin_proxy(self) -> str:
        """This host's admin registry as its own clients (the web app, an upgrade) call it."""
        protocol = "ssl" if self.secure and self.tls else "tcp"
        auth = " -e 1" if self.secure else ""
        return f"{ADMIN_REG_OBJ}@{protocol} -h {self.host} -p {self.ports.admin}{auth}"

    def render(self) -> str:
        lines = [
            "# Written by `tarsus install framework`; run it again to change it (docs/install.md).",
            f"role = {_toml(self.role)}",
            f"version = {_toml(self.version)}",
            f"host = {_toml(self.host)}",
            f"data_dir = {_toml(self.data_dir)}",
            f"db = {_toml(self.db)}",
            f"web_port = {self.web_port}",
            f"secure = {_toml(self.secure)}",
            f"tls = {_toml(self.tls)}",
            "",
            "[ports]",
        ]
        lines += [f"{k} = {v}" for k, v in dataclasses.asdict(self.ports).items()]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NodeSettings:
    version: str
    locator: str
    data_dir: Path
    node_name: str = ""
    host: str = ""
    port: int = 19386
    #: a secured framework's keys, handed over for the join token, and the objects they
    #: open (docs/install.md, "Adding a node"); empty for an open framework
    accesskey: str = ""
    secretkey: str = ""
    secured: tuple[str, ...] = ()
    #: the CA file the framework's ``ssl`` endpoints are checked against ("": not TLS)
    ca: str = ""
    #: the keys this node's ServerObj takes (``-e 1``), made here; empty: ServerObj open
    server_accesskey: str = ""
    server_secretkey: str = ""
    role: str = "node"

    def render(self) -> str:
        lines = [
            "# Written by `tarsus install node`; run it again to change it (docs/install.md).",
            f"role = {_toml(self.role)}",
            f"version = {_toml(self.version)}",
            f"locator = {_toml(self.locator)}",
            f"data_dir = {_toml(self.data_dir)}",
            f"node_name = {_toml(self.node_name)}",
            f"host = {_toml(self.host)}",
            f"port = {self.port}",
            f"accesskey = {_toml(self.accesskey)}",
            f"secretkey = {_toml(self.secretkey)}",
            f"secured = {_toml(self.secured)}",
            f"ca = {_toml(self.ca)}",
            f"server_accesskey = {_toml(self.server_accesskey)}",
            f"server_secretkey = {_toml(self.server_secretkey)}",
        ]
        return "\n".join(lines) + "\n"


def load_settings(path: Path) -> FrameworkSettings | NodeSettings:
    """The settings at ``path``; :class:`InstallError` naming the file and the fault."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InstallError(
            f"{path} does not exist: run `tarsus install framework|node` first"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InstallError(f"{path} cannot be read: {e}") from None
    try:
        role = raw.pop("role")
        raw["data_dir"] = Path(raw["data_dir"])
        if role == "framework":
            raw["ports"] = Ports(**raw.get("ports", {}))
            return FrameworkSettings(**raw)
        if role == "node":
            raw["secured"] = tuple(raw.get("secured", ()))
            return NodeSettings(**raw)
    except (KeyError, TypeError) as e:
        raise InstallError(f"{path}: missing or unknown setting ({e})") from None
    raise InstallError(f"{path}: role must be 'framework' or 'node', not {role!r}")


def write_private(path: Path, text: str, mode: int = 0o600) -> bool:
    """Write ``text`` to ``path`` (created with ``mode``, replaced atomically) unless it holds
    exactly that already; True when it changed."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True
