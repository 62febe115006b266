"""tarsregistry: the name service (``QueryObj``) and the node/server state registry
(``RegistryObj``). See ``docs/registry.md``.

    registry = add_registry(app, store, query_endpoint="tcp -h 0.0.0.0 -p 17890",
                            registry_endpoint="tcp -h 0.0.0.0 -p 17891")
    await app.start()   # loads the routes, then serves
"""

from tarsus.framework.registry.query_obj import QueryImp
from tarsus.framework.registry.registry_obj import RegistryImp
from tarsus.framework.registry.routes import RouteCache, RouteRow, RouteSnapshot
from tarsus.framework.registry.service import Registry, add_registry
from tarsus.framework.registry.settings import (
    QUERY_ENDPOINT,
    QUERY_SERVANT,
    REGISTRY_ENDPOINT,
    REGISTRY_SERVANT,
    RegistrySettings,
)

__all__ = [
    "QUERY_ENDPOINT",
    "QUERY_SERVANT",
    "REGISTRY_ENDPOINT",
    "REGISTRY_SERVANT",
    "QueryImp",
    "Registry",
    "RegistryImp",
    "RegistrySettings",
    "RouteCache",
    "RouteRow",
    "RouteSnapshot",
    "add_registry",
]
