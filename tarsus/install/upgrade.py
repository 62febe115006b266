"""Upgrading a framework host in place: its framework services restarted one at a time.

When ``tarsus install framework`` runs again with a newer Tarsus over a running install
(docs/install.md, "Upgrading"), after the store is migrated:

1. the framework process (this host's node agent) is handed over
   (:meth:`~tarsus.install.units.Service.hand_over`): it re-executes itself with the code now
   installed and adopts the framework services, which keep running meanwhile;
2. :func:`roll_framework` restarts each ``tars.*`` server one at a time through the admin
   registry (``restartServer``, as an operator would), waiting until its node reports it
   active with a new pid before the next. The admin registry cannot restart itself (upstream
   refuses it too): it is stopped (SIGTERM, a graceful stop) and its node agent starts it
   again, as for any server that went down; it goes last, after everything it restarted.

Business services never stop: they call each other over routes they already hold, and their
lookups are answered again as soon as the registry is back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from tarsus.framework.admin.server import ADMIN_SPEC
from tarsus.framework.allinone import FRAMEWORK_SERVICES
from tarsus.framework.security import FrameworkAuth
from tarsus.framework.service import FRAMEWORK_APP, ServiceSpec
from tarsus.install.errors import InstallError
from tarsus.install.settings import FrameworkSettings
from tarsus.web.service import WEB_SPEC

__all__ = ["Rolled", "roll_framework"]

#: seconds each service has to come back active with a new pid
SERVICE_TIMEOUT = 90.0


@dataclass(frozen=True)
class Rolled:
    """A framework service restarted by :func:`roll_framework`."""

    server_id: str
    old_pid: int
    new_pid: int


async def roll_framework(
    settings: FrameworkSettings,
    auth: FrameworkAuth | None,
    say: Callable[[str], None] = lambda _m: None,
    *,
    timeout: float = SERVICE_TIMEOUT,
) -> list[Rolled]:
    """Restart this host's framework services one at a time (the module docstring);
    :class:`InstallError` naming the service that did not come back."""
    from tarsus.protocol.gen import AdminReg
    from tarsus.rpc.communicator import Communicator

    proxy = settings.admin_proxy
    # the web app (tars.tarsweb) is one of them, restarted like the others
    order = [s for s in FRAMEWORK_SERVICES if s is not ADMIN_SPEC] + [WEB_SPEC, ADMIN_SPEC]
    rolled = []
    security = auth.client_security() if auth is not None else None
    async with Communicator(cache_dir=None, security=security) as comm:
        admin = comm.string_to_proxy(AdminReg.AdminRegProxy, proxy)
        for spec in order:
            old = await _active_pid(admin, spec, settings.host, not_pid=0, timeout=timeout)
            if spec is ADMIN_SPEC:
                os.kill(old, signal.SIGTERM)
            else:
                ret, result = await admin.with_options(
                    timeout_ms=int(timeout * 1000)
                ).restartServer(FRAMEWORK_APP, spec.name, settings.host)
                if ret != 0:
                    raise InstallError(f"restarting {spec.server_id} failed ({ret}): {result}")
            new = await _active_pid(admin, spec, settings.host, not_pid=old, timeout=timeout)
            rolled.append(Rolled(spec.server_id, old, new))
            say(f"{spec.server_id}: restarted (pid {old} -> {new})")
    return rolled


async def _active_pid(
    admin: object, spec: ServiceSpec, host: str, *, not_pid: int, timeout: float
) -> int:
    """The pid of ``spec``'s server once its node reports it active with a pid other than
    ``not_pid`` (asked again while the admin registry itself restarts)."""
    from tarsus.rpc.errors import TarsError

    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            ret, state, result = await admin.with_options(  # type: ignore[attr-defined]
                timeout_ms=3000
            ).getServerState(FRAMEWORK_APP, spec.name, host)
        except TarsError as e:
            last = str(e)
        else:
            pid = int(state.processId)
            present = state.presentStateInNode.lower()
            if ret == 0 and present == "active" and pid not in (0, not_pid):
                return pid
            last = f"{state.presentStateInNode or result}, pid {pid}"
        await asyncio.sleep(0.2)
    raise InstallError(
        f"{spec.server_id} did not come back active within {timeout:.0f} s ({last}); the "
        "framework's node agent log says why"
    )
