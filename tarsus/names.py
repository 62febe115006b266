"""The names that address a server: application, server and node. One check for all of them.

These names become file paths on the node (``<data>/<App>.<Server>/``, ``<log>/<App>/<Server>``),
config file names, SQL values and command-line arguments, so they are checked wherever they
enter: the store's deploy (hence the admin registry's ``insertServerConf``, ``insertAdapterConf``
and deploy), the registry's ``registerNode``, and any CLI or node code that wants to refuse a
bad name before sending it. Upstream's web console allows the same characters (TarsWeb
``ServerController`` validation: letters, digits, ``_`` for applications and servers), and node
names are IP addresses or host names.

* application, server: letters, digits and ``_``; at most 128 characters;
* node: an IPv4 or IPv6 address or a host name: letters, digits, ``.``, ``-``, ``_`` and
  ``:``, starting with a letter or digit, no ``..``; at most 128 characters.
* package file (a release package in the package store, ``t_server_patchs.tgz``): a plain file
  name of letters, digits, ``.``, ``-`` and ``_``, starting with a letter, digit or ``_``, no
  ``..``; at most 200 characters (upstream's web names them ``<App>.<Server>_<field>_<ms>.tgz``).
* config file (a business config file of the config center, ``t_config_files.filename``,
  written into a server's ``basepath``): the same characters as a package file, at most 128
  (its column); upstream's console allows letters, digits, ``.``, ``_`` and ``-``.

Nothing here touches the file system or the network.
"""

from __future__ import annotations

import re

__all__ = [
    "InvalidName",
    "check_application",
    "check_config_file",
    "check_node_name",
    "check_package_file",
    "check_server_name",
]

_WORD = re.compile(r"[A-Za-z0-9_]+")
_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_MAX = 128
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_FILE_MAX = 200


class InvalidName(ValueError):
    """A name that may not address a server; the message names the field and the rule."""


def _check(kind: str, name: object, pattern: re.Pattern[str], rule: str, limit: int = _MAX) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidName(f"{kind} must not be empty")
    if len(name) > limit:
        raise InvalidName(f"{kind} {name[:40]!r}... is {len(name)} characters; at most {limit}")
    if not pattern.fullmatch(name):
        raise InvalidName(f"{kind} {name!r} may only use {rule}")
    return name


def check_application(name: object) -> str:
    """``name`` if it is a valid application name, else :class:`InvalidName`."""
    return _check("application", name, _WORD, "letters, digits and '_'")


def check_server_name(name: object) -> str:
    """``name`` if it is a valid server name, else :class:`InvalidName`."""
    return _check("server name", name, _WORD, "letters, digits and '_'")


def check_node_name(name: object) -> str:
    """``name`` if it is a valid node name (an address or host name), else :class:`InvalidName`."""
    _check(
        "node name",
        name,
        _NODE,
        "letters, digits, '.', '-', '_' and ':' (an IP address or a host name), "
        "starting with a letter or digit",
    )
    assert isinstance(name, str)
    if ".." in name:
        raise InvalidName(f"node name {name!r} may not contain '..'")
    return name


def check_package_file(name: object) -> str:
    """``name`` if it is a valid package file name (one file of the package store, never a
    path), else :class:`InvalidName`."""
    _check(
        "package file name",
        name,
        _FILE,
        "letters, digits, '.', '-' and '_' (a plain file name, no directory), "
        "starting with a letter, digit or '_'",
        _FILE_MAX,
    )
    assert isinstance(name, str)
    if ".." in name:
        raise InvalidName(f"package file name {name!r} may not contain '..'")
    return name


def check_config_file(name: object) -> str:
    """``name`` if it is a valid business config file name (one file in a server's
    ``basepath``, never a path), else :class:`InvalidName`."""
    _check(
        "config file name",
        name,
        _FILE,
        "letters, digits, '.', '-' and '_' (a plain file name, no directory), "
        "starting with a letter, digit or '_'",
    )
    assert isinstance(name, str)
    if ".." in name:
        raise InvalidName(f"config file name {name!r} may not contain '..'")
    return name
