"""The package store put together (upstream ``PatchServer``), and how to serve it.

It is a :class:`~tarsus.framework.service.FrameworkService` (docs/architecture.md, "one
service shape") that needs no store: its state is its files::

    app = Application()
    patch = add_patch(app, PatchSettings.under(Path("/srv/patchs")),
                      endpoint="tcp -h 10.0.0.1 -p 18793 -t 60000")
    await app.start()

``python -m tarsus.framework.patch --config=FILE`` runs it as a process of its own, from the
config a node generated (upstream ``tarspatch --config=...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

from tarsus.codec.constants import PATCH_OBJ, PATCH_PORT
from tarsus.framework.patch.files import PackageFiles
from tarsus.framework.patch.servant import PatchImp
from tarsus.framework.patch.settings import PatchSettings
from tarsus.framework.service import FrameworkService, ServiceSpec, host

if TYPE_CHECKING:
    from tarsus.conf import TCConfig
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store

__all__ = ["PATCH_SPEC", "PatchService", "add_patch"]

#: ``tars.tarspatch``: upstream's object and port (TarsFramework ``deploy/framework/conf``).
PATCH_SPEC: Final = ServiceSpec(
    name="tarspatch",
    servants=((PATCH_OBJ, PATCH_PORT),),
    module="tarsus.framework.patch",
    uses_store=False,
)


class PatchService(FrameworkService):
    """One package store over the directories of ``settings``."""

    spec = PATCH_SPEC

    def __init__(self, settings: PatchSettings) -> None:
        super().__init__()
        self.settings = settings
        self.files = PackageFiles(settings)

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        """Upstream's ``tars.tarspatch`` keys (:meth:`PatchSettings.from_tcconfig`); without
        ``directory``, under the server's data path. ``store`` is not used."""
        base = Path(config.datapath) if config.datapath else None
        return cls(PatchSettings.from_tcconfig(tc, base=base))

    def servants(self) -> dict[str, Servant]:
        return {PATCH_OBJ: PatchImp(self.files)}

    async def start(self) -> None:
        self.files.make_directories()
        await super().start()


def add_patch(
    app: Application,
    settings: PatchSettings,
    *,
    endpoint: str = f"tcp -h 0.0.0.0 -p {PATCH_PORT} -t 60000",
) -> PatchService:
    """Serve ``tars.tarspatch.PatchObj`` on ``endpoint`` in ``app``."""
    return host(app, PatchService(settings), {PATCH_OBJ: endpoint})
