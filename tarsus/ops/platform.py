"""What the operations work on: the store and the framework services' clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tarsus.codec.constants import QUERY_PROPERTY_OBJ, QUERY_STAT_OBJ
from tarsus.ops.errors import Unavailable

if TYPE_CHECKING:
    from tarsus.protocol.gen import AdminReg, Patch, TarsusAdmin, TarsusConfig
    from tarsus.rpc.communicator import Communicator
    from tarsus.store import Store

__all__ = ["Platform"]


@dataclass
class Platform:
    """The store (read directly for lists, as upstream TarsWeb reads ``db_tars``) and the
    admin registry over Tars RPC (``AdminReg``, and our ``AdminExt`` on the same object) for
    what changes the running platform. ``comm`` and the proxies are None where only the store
    is at hand (``tarsus web user ...`` at the framework host); ``db`` is None where only the
    framework services are (the ``tarsus`` CLI: an operation that reads the store then answers
    :class:`~tarsus.ops.errors.Unavailable`, and :func:`tarsus.ops.audit.record` records
    nothing, docs/cli-operate.md "One service layer")."""

    db: Store | None
    comm: Communicator | None = None
    admin: AdminReg.AdminRegProxy | None = None
    ext: TarsusAdmin.AdminExtProxy | None = None
    #: the package store, ``tars.tarspatch.PatchObj`` (uploads)
    patch: Patch.PatchProxy | None = None
    #: the config center's ``ConfigExt`` (on ``tars.tarsconfig.ConfigExtObj``)
    config: TarsusConfig.ConfigExtProxy | None = None
    #: the query services the charts read (name or proxy string; docs/monitoring.md)
    query_stat: str = QUERY_STAT_OBJ
    query_property: str = QUERY_PROPERTY_OBJ

    @property
    def store(self) -> Store:
        """The database, or :class:`Unavailable` where this face has none."""
        if self.db is None:
            raise Unavailable(
                "the platform's database is not reachable from here (the tarsus CLI talks to "
                "the framework services only; the console reads it)"
            )
        return self.db
