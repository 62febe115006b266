"""The admin registry (upstream ``tarsAdminRegistry``): ``tars.tarsAdminRegistry.AdminRegObj``.

The management entry of the platform: the web console, the CLI and tools call it to start,
stop, restart, notify, patch and undeploy server instances, run tasks over many of them, read
templates and write inventory rows. Beside upstream's AdminReg the object serves our extension
``tarsus.AdminExt`` (``TarsusAdmin.tars``): templates listed, written and deleted. Commands
reach nodes over the push channel (:mod:`tarsus.framework.admin.channel`). See
``docs/admin.md``.

- :func:`add_admin` serves it in an :class:`~tarsus.rpc.application.Application`;
- :class:`AdminRegistry` holds its parts (``lifecycle``, ``inventory``, ``tasks``) and
  ``deploy()``;
- :class:`AdminSettings` tunes it (upstream's defaults).
"""

from tarsus.framework.admin.errors import AdminError, ErrCode, Outcome
from tarsus.framework.admin.server import AdminRegistry, add_admin
from tarsus.framework.admin.settings import (
    ADMIN_ADAPTER,
    ADMIN_SERVANT,
    DEFAULT_ENDPOINT,
    DEFAULT_PORT,
    AdminSettings,
)

__all__ = [
    "ADMIN_ADAPTER",
    "ADMIN_SERVANT",
    "DEFAULT_ENDPOINT",
    "DEFAULT_PORT",
    "AdminError",
    "AdminRegistry",
    "AdminSettings",
    "ErrCode",
    "Outcome",
    "add_admin",
]
