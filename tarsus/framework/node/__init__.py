"""The node agent (upstream ``tarsnode``): runs this machine's servers and keeps them running.

- :class:`Supervisor` (``supervisor.py``): the node's servers, their monitor, cache records
  and state reports; :class:`ServerProcess` (``server_process.py``): one server's state
  machine (start, stop, heartbeats, crash and hang handling, the activation limiter);
- ``config.py``: each server's generated config file (:class:`NodeSettings` in
  ``settings.py`` says who and where the node is);
- ``cache.py``: the local cache that lets the node carry on, and adopt running processes,
  without the registry;
- ``package.py``: installing a Python service from its package (``tarsus.toml``);
- ``servant.py``: ``tars.tarsnode.ServerObj``, where servers send heartbeats;
- ``commands.py``: what the admin registry pushes (``NodePush``), as :class:`NodeCommands`.

See docs/node.md.
"""

from tarsus.framework.node.cache import CacheEntry, NodeCache
from tarsus.framework.node.commands import DescriptorLoader, NodeCommands
from tarsus.framework.node.config import (
    ConfigGenError,
    GeneratedConfig,
    RuntimeConfig,
    ServerLayout,
    generate_config,
    render_config,
    server_layout,
)
from tarsus.framework.node.errors import NodeError, NodeErrorCode
from tarsus.framework.node.package import (
    LocalPackageSource,
    PackageError,
    PackageManifest,
    PackageSource,
    install_package,
)
from tarsus.framework.node.servant import SERVER_OBJ, SERVER_OBJ_PORT, server_obj_servant
from tarsus.framework.node.server_process import (
    InternalState,
    PatchStatus,
    ServerHost,
    ServerProcess,
)
from tarsus.framework.node.settings import ActivationLimits, NodeSettings
from tarsus.framework.node.supervisor import StateCallback, Supervisor, VersionCallback

__all__ = [
    "SERVER_OBJ",
    "SERVER_OBJ_PORT",
    "ActivationLimits",
    "CacheEntry",
    "ConfigGenError",
    "DescriptorLoader",
    "GeneratedConfig",
    "InternalState",
    "LocalPackageSource",
    "NodeCache",
    "NodeCommands",
    "NodeError",
    "NodeErrorCode",
    "NodeSettings",
    "PackageError",
    "PackageManifest",
    "PackageSource",
    "PatchStatus",
    "RuntimeConfig",
    "ServerHost",
    "ServerLayout",
    "ServerProcess",
    "StateCallback",
    "Supervisor",
    "VersionCallback",
    "generate_config",
    "install_package",
    "render_config",
    "server_layout",
    "server_obj_servant",
]
