"""The config center put together (upstream ``ConfigServer``), and how to serve it.

It is a :class:`~tarsus.framework.service.FrameworkService` (docs/architecture.md, "one
service shape") over the store's config tables::

    app = Application()
    add_config_center(app, store, endpoint="tcp -h 10.0.0.1 -p 18193 -t 60000")
    await app.start()

``python -m tarsus.framework.config --config=FILE`` runs it as a process of its own, from the
config a node generated (upstream ``tarsconfig --config=...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Self

from tarsus.codec.constants import CONFIG_EXT_OBJ, CONFIG_EXT_PORT, CONFIG_OBJ, CONFIG_PORT
from tarsus.framework.config.center import ConfigCenter
from tarsus.framework.config.servant import ConfigExtImp, ConfigImp
from tarsus.framework.config.settings import ConfigSettings
from tarsus.framework.service import FrameworkService, ServiceSpec, host, require_store

if TYPE_CHECKING:
    from tarsus.conf import TCConfig
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store

__all__ = ["CONFIG_SPEC", "ConfigService", "add_config_center"]

#: ``tars.tarsconfig``: upstream's object and port (TarsFramework ``deploy/framework/conf``),
#: and our operators' object beside it.
CONFIG_SPEC: Final = ServiceSpec(
    name="tarsconfig",
    servants=((CONFIG_OBJ, CONFIG_PORT), (CONFIG_EXT_OBJ, CONFIG_EXT_PORT)),
    module="tarsus.framework.config",
)


class ConfigService(FrameworkService):
    """The config center over ``store``'s config tables."""

    spec = CONFIG_SPEC

    def __init__(self, store: Store, settings: ConfigSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or ConfigSettings()
        self.store = store
        store.configs.max_size = self.settings.max_file_size
        self.center = ConfigCenter(store.configs, self.settings)

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        """Upstream's ``tars.tarsconfig`` keys (:meth:`ConfigSettings.from_tcconfig`)."""
        return cls(require_store(CONFIG_SPEC, store), ConfigSettings.from_tcconfig(tc))

    def servants(self) -> dict[str, Servant]:
        return {CONFIG_OBJ: ConfigImp(self.center), CONFIG_EXT_OBJ: ConfigExtImp(self.center)}


def add_config_center(
    app: Application,
    store: Store,
    settings: ConfigSettings | None = None,
    *,
    endpoint: str = f"tcp -h 0.0.0.0 -p {CONFIG_PORT} -t 60000",
    ext_endpoint: str = f"tcp -h 0.0.0.0 -p {CONFIG_EXT_PORT} -t 60000",
) -> ConfigService:
    """Serve ``tars.tarsconfig.ConfigObj`` on ``endpoint`` and ``ConfigExtObj`` on
    ``ext_endpoint`` in ``app``."""
    return host(
        app, ConfigService(store, settings), {CONFIG_OBJ: endpoint, CONFIG_EXT_OBJ: ext_endpoint}
    )
