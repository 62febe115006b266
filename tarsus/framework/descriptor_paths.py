"""Where a server's descriptor may point on its node.

A descriptor (``t_server_conf``: ``basePath``, ``exePath``, the start, stop and monitor
scripts) names directories the node creates, writes, runs programs from and, on
``destroyServer``, deletes. Upstream's tarsnode (``CommandLoad``, ``CommandDestroy``) takes
them as given, so ``basePath=/home/me`` followed by a destroy removes ``/home/me``. Tarsus
keeps every such path inside the node's own directories:

- ``basePath`` (the server directory) strictly inside the node's data directory, or one of the
  node's ``trusted_dirs`` (directories an operator opened to descriptors, e.g. a source tree
  on a developer's machine), and never its ``lib/`` or ``tmp/``;
- ``exePath`` (the executable and its directory) inside those directories too;
- start, stop and monitor scripts inside the installed package (the executable's directory);
- no path with a NUL or a ``..`` component.

The admin registry checks what it can at deploy (:func:`check_deploy_paths`: the raw fields,
against the data directory the node registered); the node checks the paths it computed at
load, after resolving symbolic links (:func:`require_within` with ``resolve=True``), and again
before it runs a script or deletes a directory. See docs/node.md.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["PathRefused", "check_deploy_paths", "check_raw_path", "is_within", "require_within"]


class PathRefused(ValueError):
    """A path a descriptor gives that the node will not use; the message says which and why."""


def check_raw_path(what: str, path: str) -> None:
    """Refuse a NUL or a ``..`` component in ``path`` as given."""
    if "\0" in path:
        raise PathRefused(f"{what} {path!r} contains a NUL character")
    if ".." in path.replace("\\", "/").split("/"):
        raise PathRefused(f"{what} {path!r} must not contain '..'")


def _normal(path: str | Path, resolve: bool) -> str:
    text = os.fspath(path)
    return os.path.realpath(text) if resolve else posixpath.normpath(text)


def is_within(path: str | Path, root: str | Path, *, resolve: bool, strictly: bool = False) -> bool:
    """Whether ``path`` is ``root`` or below it (``strictly``: below it only), after
    resolving symbolic links (``resolve``) or only normalising the text."""
    inner, outer = _normal(path, resolve), _normal(root, resolve)
    if inner == outer:
        return not strictly
    return inner.startswith(outer.rstrip("/") + "/")


def require_within(
    what: str, path: str | Path, roots: Iterable[str | Path], *, resolve: bool, strictly: bool
) -> None:
    """:class:`PathRefused` unless ``path`` lies within one of ``roots``."""
    names = [os.fspath(root) for root in roots]
    if not any(is_within(path, root, resolve=resolve, strictly=strictly) for root in names):
        where = " or ".join(names)
        shown = _normal(path, resolve)
        real = "" if shown == os.fspath(path) else f" (that is {shown})"
        raise PathRefused(
            f"{what} {os.fspath(path)}{real} is outside the node's directories ({where})"
        )


def check_deploy_paths(server: Any, node: Any) -> None:
    """The admin registry's check of a server about to be deployed (a ``ServerSpec``) on
    ``node`` (its ``t_node_info`` row, None when the node never registered): the raw rules,
    and absolute paths inside the data directory the node registered, when it did."""
    fields = {
        "basePath": server.base_path or "",
        "exePath": server.exe_path or "",
        "startScript": server.start_script_path or "",
        "stopScript": server.stop_script_path or "",
        "monitorScript": server.monitor_script_path or "",
    }
    for what, value in fields.items():
        check_raw_path(what, value.strip())
    data_dir = (getattr(node, "data_dir", "") or "").strip() if node is not None else ""
    base, exe = fields["basePath"].strip(), fields["exePath"].strip()
    if data_dir.startswith("/"):
        for what, value in (("basePath", base), ("exePath", exe)):
            if value.startswith("/"):
                require_within(what, value, [data_dir], resolve=False, strictly=True)
    # scripts: inside the package, i.e. relative (to the executable's directory) or under it
    if exe.startswith("/"):
        package = posixpath.dirname(posixpath.normpath(exe))
    elif base.startswith("/"):
        package = posixpath.join(posixpath.normpath(base), "bin")
    elif data_dir.startswith("/"):
        package = ""  # the node's default server directory: relative scripts only
    else:
        return
    for what in ("startScript", "stopScript", "monitorScript"):
        script = fields[what].strip()
        if script.startswith("/") and not (
            package and is_within(script, package, resolve=False, strictly=True)
        ):
            raise PathRefused(
                f"{what} {script} must lie inside the server's package"
                + (f" ({package})" if package else " (give it relative to the package)")
            )
