"""Where an install puts things.

Without a prefix: settings and keys in ``/etc/tarsus``, data (the node's servers, the package
store, logs, the wheelhouse) in ``/var/lib/tarsus``, units in ``/etc/systemd/system``. With
``--prefix P`` the same tree under ``P`` (``P/etc/tarsus``, ``P/var/lib/tarsus``, ...): for
tests, for several roles on one machine, and for hosts without root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    prefix: Path | None = None

    def _under(self, path: str) -> Path:
        return Path(path) if self.prefix is None else self.prefix / path.lstrip("/")

    @property
    def etc_dir(self) -> Path:
        return self._under("/etc/tarsus")

    @property
    def data_dir(self) -> Path:
        return self._under("/var/lib/tarsus")

    @property
    def unit_dir(self) -> Path:
        return self._under("/etc/systemd/system")

    def settings_file(self, role: str) -> Path:
        """``framework.toml`` / ``node.toml``: what ``tarsus install run ROLE`` reads."""
        return self.etc_dir / f"{role}.toml"

    @property
    def tls_dir(self) -> Path:
        """``ca.crt``/``ca.key``, ``server.crt``/``server.key``, ``client.crt``/``client.key``."""
        return self.etc_dir / "tls"

    @property
    def auth_dir(self) -> Path:
        """``accesskey`` and ``secretkey``: the framework's Tars AK/SK pair."""
        return self.etc_dir / "auth"

    @property
    def node_auth_dir(self) -> Path:
        """``accesskey`` and ``secretkey`` this host's node agent's ServerObj takes."""
        return self.auth_dir / "node"  # framework.node_server_credentials reads it

    @property
    def client_keys_file(self) -> Path:
        """``client.conf``: the keys the CLI on this host signs with (docs/security.md)."""
        return self.etc_dir / "client.conf"

    @property
    def wheelhouse_dir(self) -> Path:
        from tarsus.install.wheelhouse import WHEELHOUSE_DIR

        return self.data_dir / WHEELHOUSE_DIR

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    def pid_file(self, role: str) -> Path:
        return self.run_dir / f"{role}.pid"

    def log_file(self, role: str) -> Path:
        return self.data_dir / "log" / f"{role}.log"
