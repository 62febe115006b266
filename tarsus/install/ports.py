"""Before starting anything: is each port the install will listen on free?

A port held by another process is named with its owner when the system says who (root sees
every process's sockets), so "port in use" is an answer, not a riddle.
"""

from __future__ import annotations

import errno
import socket

import psutil  # type: ignore[import-untyped]

from tarsus.install.errors import InstallError

__all__ = ["check_ports_free", "default_host"]


def _owner(port: int) -> str:
    try:
        for conn in psutil.net_connections("inet"):
            listening = conn.status == psutil.CONN_LISTEN and conn.laddr
            if listening and conn.laddr.port == port and conn.pid:
                try:
                    return f" by pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                except psutil.Error:
                    return f" by pid {conn.pid}"
    except (psutil.Error, OSError):
        pass
    return ""


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """:class:`InstallError` naming the first of ``ports`` (what -> port) taken on ``host``."""
    for what, port in ports.items():
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise InstallError(
                        f"port {port} on {host} ({what}) is in use{_owner(port)}: stop what "
                        f"holds it, or give another with --port {what}=PORT"
                    ) from None
                if e.errno == errno.EADDRNOTAVAIL:
                    raise InstallError(
                        f"{host} is not an address of this machine (--host): cannot listen there"
                    ) from None
                raise InstallError(f"cannot listen on {host}:{port} ({what}): {e}") from None


def default_host() -> str:
    """The first IPv4 address of an interface that is up and not loopback, else 127.0.0.1."""
    stats = psutil.net_if_stats()
    for name, addrs in psutil.net_if_addrs().items():
        if name == "lo" or not stats.get(name, None) or not stats[name].isup:
            continue
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith("127."):
                return str(addr.address)
    return "127.0.0.1"
