"""The Tars protocol's constants, in one place: packet versions and types, the status and
context keys calls carry, request ids, and the well-known objects of the framework with their
default ports.

They live in ``tarsus.codec``, the lowest layer that needs any of them (the packet versions),
so that ``tarsus.rpc`` and ``tarsus.framework`` can import them without importing each other.
Every other module names these values through this one (docs/architecture.md).

Sources: ``BaseF.tars`` (versions, packet types), TarsCpp ``servant/ServantProxy.h``
(``ServantProxy::STATUS_*``) and ``Current::sendPushResponse`` (``TARS_FUNC``),
``ServantHelper``/``Application::initializeServer`` (``AdminObj``), and TarsFramework's
deploy templates (object names, ports).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

# -- iVersion (BaseF.tars) --------------------------------------------------------------------

#: Tars binary arguments (``TARSVERSION``).
TARSVERSION: Final = 1
#: TUP, named arguments in a ``UniAttribute`` (``TUPVERSION``; what C++ and Go write).
TUP_SIMPLE: Final = 3
#: TUP version 2, one more map level (Node and older Java); read, never written.
TUP_COMPLEX: Final = 2
#: JSON arguments (``JSONVERSION``).
JSONVERSION: Final = 5

# -- cPacketType (BaseF.tars) -----------------------------------------------------------------

TARSNORMAL: Final = 0
TARSONEWAY: Final = 1

# -- keys of RequestPacket.status / context ---------------------------------------------------

#: A TUP reply's return code and description travel in ``status`` (``ServantProxy.h``).
STATUS_RESULT_CODE: Final = "STATUS_RESULT_CODE"
STATUS_RESULT_DESC: Final = "STATUS_RESULT_DESC"
#: The value of a ``routekey`` parameter, sent along with the call.
STATUS_GRID_KEY: Final = "STATUS_GRID_KEY"
#: The function a server push (request id 0) answers for (``Current::sendPushResponse``).
PUSH_FUNC: Final = "TARS_FUNC"
#: The context key with the caller's node name; the registry groups callers (IDC) by it.
CONTEXT_NODE_NAME: Final = "node_name"
#: The function every servant answers without having it (a liveness check).
TARS_PING: Final = "tars_ping"

# -- request ids ------------------------------------------------------------------------------

#: Request ids are positive int32s; 0 is reserved for server pushes.
MAX_REQUEST_ID: Final = 2**31 - 1


def request_ids() -> Iterator[int]:
    """1, 2, ... :data:`MAX_REQUEST_ID`, then 1 again: never 0 (a server push)."""
    while True:
        yield from range(1, MAX_REQUEST_ID + 1)


# -- well-known objects and their default ports (TarsFramework) -------------------------------

#: The registry's lookup interface (``QueryF``), what every client's locator names.
QUERY_OBJ: Final = "tars.tarsregistry.QueryObj"
QUERY_PORT: Final = 17890
#: The registry's interface for nodes and the admin registry (``Registry``).
REGISTRY_OBJ: Final = "tars.tarsregistry.RegistryObj"
REGISTRY_PORT: Final = 17891
#: The admin registry (``AdminReg``): deploy, start/stop, tasks, templates.
ADMIN_REG_OBJ: Final = "tars.tarsAdminRegistry.AdminRegObj"
ADMIN_REG_PORT: Final = 12000
#: The package store (``Patch``): uploads from the console, downloads by nodes.
PATCH_OBJ: Final = "tars.tarspatch.PatchObj"
PATCH_PORT: Final = 18793
#: Business configuration files (``ConfigF``): what ``addConfig`` pulls.
CONFIG_OBJ: Final = "tars.tarsconfig.ConfigObj"
CONFIG_PORT: Final = 18193
#: Tarsus's operators' interface to the config files (``TarsusConfig.ConfigExt``): an object
#: of its own beside ``ConfigObj``, so that a secured install can guard it (no upstream
#: counterpart: upstream's console writes the database directly).
CONFIG_EXT_OBJ: Final = "tars.tarsconfig.ConfigExtObj"
CONFIG_EXT_PORT: Final = 18194
#: Remote logs (``Log``): what a server's remote logger sends lines to.
LOG_OBJ: Final = "tars.tarslog.LogObj"
LOG_PORT: Final = 18993
#: Tarsus's reading of the remote logs (``TarsusLog.LogExt``), beside ``LogObj``.
LOG_EXT_OBJ: Final = "tars.tarslog.LogExtObj"
LOG_EXT_PORT: Final = 18994
#: Call statistics (``StatF``): every client and server reports there.
STAT_OBJ: Final = "tars.tarsstat.StatObj"
STAT_PORT: Final = 18293
#: Custom metrics (``PropertyF``).
PROPERTY_OBJ: Final = "tars.tarsproperty.PropertyObj"
PROPERTY_PORT: Final = 18493
#: Notifications and events (``Notify``).
NOTIFY_OBJ: Final = "tars.tarsnotify.NotifyObj"
NOTIFY_PORT: Final = 18593
#: The stored call statistics, queried by the console (``MonitorQuery``).
QUERY_STAT_OBJ: Final = "tars.tarsquerystat.QueryObj"
QUERY_STAT_PORT: Final = 18393
#: The stored properties, queried by the console (``MonitorQuery``).
QUERY_PROPERTY_OBJ: Final = "tars.tarsqueryproperty.QueryObj"
QUERY_PROPERTY_PORT: Final = 18693
#: The node's object its servers send heartbeats to (``ServerF``).
#: Tarsus's alert service (no upstream counterpart: upstream keeps alerting in its paid edition).
ALARM_OBJ: Final = "tars.tarsalarm.AlarmObj"
ALARM_PORT: Final = 18893

NODE_SERVER_OBJ: Final = "tars.tarsnode.ServerObj"
NODE_SERVER_PORT: Final = 19386
#: The admin object of every server (``AdminF``), on the ``local`` endpoint its node manages
#: it through: not an ``App.Server.Obj`` name, just ``AdminObj``.
SERVER_ADMIN_OBJ: Final = "AdminObj"
