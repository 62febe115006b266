"""The config center (upstream ``tarsconfig``): ``tars.tarsconfig.ConfigObj``, port 18193.

Every Tars server pulls its business config files from it (``addConfig``, ``tars.loadconfig``:
``Config.loadConfig`` / ``loadConfigByInfo``); files live at upstream's levels (application,
set, server, node), reference application files, and are merged by position. Beside upstream's
``Config`` the object serves our ``tarsus.ConfigExt`` (``TarsusConfig.tars``): what upstream's
console writes into the database directly (add, update, delete, history, references). See
``docs/config-center.md``.

- :func:`add_config_center` serves it in an :class:`~tarsus.rpc.application.Application`;
- :class:`ConfigService` is the framework service, :class:`ConfigCenter` its logic over
  :class:`~tarsus.store.configs.Configs`;
- :class:`ConfigSettings`: the rate limit and size bounds.
"""

from tarsus.framework.config.center import ConfigCenter, ConfigRefused
from tarsus.framework.config.limiter import TOO_MANY_CALLS, RateLimiter
from tarsus.framework.config.service import CONFIG_SPEC, ConfigService, add_config_center
from tarsus.framework.config.settings import ConfigSettings

__all__ = [
    "CONFIG_SPEC",
    "TOO_MANY_CALLS",
    "ConfigCenter",
    "ConfigRefused",
    "ConfigService",
    "ConfigSettings",
    "RateLimiter",
    "add_config_center",
]
