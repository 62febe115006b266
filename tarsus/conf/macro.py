"""``${name}`` macros: how a profile template becomes one server's config file.

Templates say ``app = ${app}`` and ``locator = ${locator}``; when tarsnode generates a server's
config it substitutes the values it knows for that server, in the *text* of the merged profile,
before parsing it (TarsFramework NodeServer/CommandLoad.cpp, ``ServerObject::decodeMacro``).
Upstream escapes each value as a config value (``\\=``, ``\\n``...) and leaves a macro it has no
value for as it is, ``${name}`` and all; we do both the same way.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from tarsus.conf.errors import ConfigError
from tarsus.conf.tcconfig import escape

__all__ = ["NODE_MACROS", "expand", "macros_in", "node_macros"]

#: The macros tarsnode defines for every server it loads (upstream ``CommandLoad``), in the order
#: :func:`node_macros` documents them. ``locator`` may be missing (see there).
NODE_MACROS: tuple[str, ...] = (
    "locator",
    "modulename",
    "app",
    "server",
    "nodename",
    "serverid",
    "localip",
    "exe",
    "basepath",
    "datapath",
    "logpath",
    "local",
    "priKey",
    "mainclass",
    "config-center-port",
    "setdivision",
    "enableset",
    "asyncthread",
    "baseimage",
    "sha",
)

# A name is anything up to the first '}', except '$' and '{': "${${app}}" expands the inner
# "${app}" and keeps the rest, as upstream's plain string replacement does.
_MACRO = re.compile(r"\$\{([^${}]*)\}")


def macros_in(text: str) -> list[str]:
    """Names of the macros used in ``text``, each once, in order of first use."""
    return list(dict.fromkeys(_MACRO.findall(text)))


def expand(text: str, macros: Mapping[str, str], *, escape_values: bool = True) -> str:
    """Replace each ``${name}`` whose name is in ``macros``; leave unknown ones untouched.

    With ``escape_values`` (what the node does for server configs), each value is escaped as a
    TC_Config value so that a ``=`` or a newline in it stays inside that value; a value with
    ``<`` or ``>`` is refused with :class:`ConfigError`, as upstream refuses it. Without it the
    values go in raw, as the node does for its own config template.

    Expansion is one pass: a value that itself contains ``${...}`` is not expanded again.
    (Upstream replaces macro by macro in name order, so such a value may or may not be expanded
    depending on the names; no value the node produces contains ``${``.)
    """

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = macros.get(name)
        if value is None:
            return match.group(0)
        if not escape_values:
            return value
        if "<" in value or ">" in value:
            raise ConfigError(f"macro ${{{name}}} has a value with '<' or '>': {value!r}")
        return escape(value)

    return _MACRO.sub(one, text)


def node_macros(
    *,
    app: str,
    server: str,
    node_name: str,
    local_ip: str,
    local: str,
    exe_file: str,
    exe_path: str,
    server_dir: str,
    log_path: str,
    locator: str | None = None,
    set_id: str = "",
    async_thread_num: int = 3,
    config_center_port: int = 0,
    private_key: str = "",
    base_image: str = "",
    sha: str = "",
) -> dict[str, str]:
    """The macro values tarsnode computes for one server (NodeServer/CommandLoad.cpp).

    - ``locator``: the registry's QueryObj with the endpoints the node found; omitted when
      None, so ``${locator}`` stays in the file as upstream leaves it when it has none.
    - ``modulename`` ``app.server``; ``serverid`` ``app.server``.
    - ``exe`` the executable, ``basepath`` its directory and ``datapath`` ``<server_dir>/data``,
      each normalised and the directories ending in ``/``; ``logpath`` the node's log path.
    - ``local`` the admin endpoint; ``localip`` the node's own address.
    - ``mainclass`` ``com.qq.<app>.<server>.<Server>`` (lower-cased app and server, for Java).
    - ``setdivision`` the set id or ``NULL``; ``enableset`` ``y`` when there is a set id.
    - ``priKey`` the framework's private key, only when there is one. (Upstream's condition is
      inverted in ``CommandLoad``, so it only ever sets it empty; we do what it meant.)
    """
    values = {
        "modulename": f"{app}.{server}",
        "app": app,
        "server": server,
        "nodename": node_name,
        "serverid": f"{app}.{server}",
        "localip": local_ip,
        "exe": _simplify(exe_file),
        "basepath": _simplify(exe_path) + "/",
        "datapath": _simplify(server_dir) + "/data/",
        "logpath": log_path,
        "local": local,
        "mainclass": f"com.qq.{app.lower()}.{server.lower()}.{server}",
        "config-center-port": str(config_center_port),
        "setdivision": set_id or "NULL",
        "enableset": "y" if set_id else "n",
        "asyncthread": str(async_thread_num),
        "baseimage": base_image,
        "sha": sha,
    }
    if locator is not None:
        values["locator"] = locator
    if private_key:
        values["priKey"] = private_key
    return values


def _simplify(path: str) -> str:
    """A path without ``//``, ``.``, ``..`` or a trailing ``/`` (upstream ``simplifyDirectory``)."""
    if not path:
        return ""
    simple = posixpath.normpath(path)
    if simple.startswith("//"):
        simple = "/" + simple.lstrip("/")
    return simple
