"""What a package holds for each server type, and what of it the node runs (docs/node.md
"Packages").

The package has been unpacked and its root found (upstream: descend while the directory
holds one sub-directory and nothing else). By ``serverType``:

- ``tars_python``: ``tarsus.toml`` names the server and its entry; the node builds a venv
  (``tarsus/framework/node/package.py``).
- ``tars_cpp``, ``tars_go``, ``not_tars`` (and any other executable): upstream's own layout,
  what ``make tar`` gives: ``<Server>.tgz`` holding ``<Server>/<Server>`` beside any libraries
  and scripts. The executable the descriptor names (``<Server>`` by default) must be in the
  package and executable. For ``tars_cpp``/``tars_go`` a renamed binary is found as upstream
  finds it at start (``CommandStart``: the first executable whose name contains ``Server`` or
  ``server``), unless the package's top directory names another server: a package built
  for someone else is refused before anything changes. A server with a ``startScript`` needs
  that script in the package instead.
- ``tars_nodejs``: a ``@tars/rpc`` service with its ``package.json`` and ``node_modules``
  (as ``npm ci`` left them) at the root; the entry is ``package.json``'s ``main``, else the
  file ``scripts.start`` runs with ``node``, else ``index.js``; it must be a file inside the
  package. ``node_modules/@tars/rpc`` must be there: the node's agent script uses it.
- ``tars_java``, ``tars_php``: the package's files, as they are (their launch lines read the
  generated config: ``mainclass``, ``classpath``, ``entrance``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tarsus.framework.descriptor_paths import is_within
from tarsus.framework.node.config import NOT_TARS, TARS_NODEJS, TARS_PYTHON, ServerLayout
from tarsus.package import PackageError

__all__ = [
    "EXECUTABLE_TYPES",
    "NODE_AGENT",
    "NODE_PACKAGE_JSON",
    "PackageFit",
    "check_package",
    "is_python",
    "node_entry",
    "search_server",
]

#: Types whose package is one native executable (upstream ``make tar``).
EXECUTABLE_TYPES = ("tars_cpp", "tars_go", NOT_TARS)
#: Types for which a renamed executable is searched for (upstream ``CommandStart``).
SEARCHED_TYPES = ("tars_cpp", "tars_go")
NODE_PACKAGE_JSON = "package.json"
#: What a Node.js package must bundle for the node's agent script.
NODE_RPC_MODULE = ("node_modules", "@tars", "rpc")
#: The node's agent script for ``tars_nodejs`` (keepAlive and AdminObj beside the service).
NODE_AGENT = Path(__file__).with_name("nodejs_agent.js")
#: ``package.json`` is read whole: larger is not a package.json.
MAX_PACKAGE_JSON = 1 << 20
_START_SCRIPT = re.compile(r"^\s*node\s+(?:--?\S+\s+)*(?P<file>[^\s;&|<>]+)\s*$")


def is_python(layout: ServerLayout) -> bool:
    """Whether the server's packages are Python packages (``tarsus.toml`` and a venv)."""
    return layout.server_type == TARS_PYTHON


@dataclass(frozen=True)
class PackageFit:
    """What was checked in a package that is not a Python one."""

    #: what the node will run, relative to the package root ("" when the descriptor names
    #: an executable outside the package)
    runs: str
    #: for the patch result: ``"CppServer (tars_cpp)"``
    summary: str


def check_package(root: Path, top: Path, layout: ServerLayout) -> PackageFit:
    """:class:`PackageError` unless the unpacked package at ``root`` (found under ``top``, the
    directory it was unpacked into) fits ``layout``'s server; nothing is changed."""
    kind = layout.server_type or "tars_cpp"
    if kind == TARS_NODEJS:
        runs = node_entry(root)
        if not (root.joinpath(*NODE_RPC_MODULE) / NODE_PACKAGE_JSON).is_file():
            raise PackageError(
                f"the tars_nodejs package has no {'/'.join(NODE_RPC_MODULE)}: pack the service "
                "with its node_modules (npm ci, then tar)"
            )
    elif kind in ("tars_java", "tars_php"):
        if not any(root.iterdir()):
            raise PackageError("the package is empty")
        runs = ""
    else:
        runs = _check_executable(root, top, layout)
    return PackageFit(runs=runs, summary=f"{layout.server} ({kind})")


def _check_executable(root: Path, top: Path, layout: ServerLayout) -> str:
    if layout.start_script:  # the script starts the server: it is what must be there
        return _check_start_script(root, layout)
    exe = Path(layout.exe_file)
    if not is_within(exe, layout.bin_dir, resolve=False, strictly=True):
        return ""  # an executable the node already has: nothing of it in the package
    wanted = exe.relative_to(layout.bin_dir)
    path = root / wanted
    if path.is_file() and not path.is_symlink():
        if not os.access(path, os.X_OK):
            raise PackageError(
                f"{wanted} in the package is not executable (chmod +x it before packing)"
            )
        return str(wanted)
    descended = root.relative_to(top).parts
    if descended and descended[0] != layout.server:
        raise PackageError(
            f"the package is {descended[0]!r}'s ({descended[0]}/...), not {layout.server!r}'s: "
            f"upstream's make tar packs {layout.server}.tgz holding "
            f"{layout.server}/{layout.server}"
        )
    if layout.server_type in SEARCHED_TYPES:
        found = search_server(root)
        if found is not None:
            return os.path.relpath(found, root)
    held = sorted(p.name for p in root.iterdir())[:8]
    raise PackageError(
        f"no executable {wanted} in the package for {layout.server_id} (it holds: "
        f"{', '.join(held) or 'nothing'}); upstream's make tar packs {layout.server}.tgz "
        f"holding {layout.server}/{layout.server}"
    )


def _check_start_script(root: Path, layout: ServerLayout) -> str:
    script = Path(layout.start_script)
    if not is_within(script, layout.bin_dir, resolve=False, strictly=True):
        return ""
    wanted = script.relative_to(layout.bin_dir)
    if not (root / wanted).is_file():
        raise PackageError(
            f"the start script {wanted} is not in the package for {layout.server_id}"
        )
    return str(wanted)


def search_server(directory: Path) -> str | None:
    """Upstream's fallback for renamed binaries: the first executable file under
    ``directory`` whose name contains ``Server`` or ``server``."""
    if not directory.is_dir():
        return None
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if ("Server" in name or "server" in name) and os.access(path, os.X_OK):
                return path
    return None


def node_entry(root: Path) -> str:
    """The script a Node.js package runs, relative to ``root`` (see the module doc);
    :class:`PackageError` when there is none or it leads outside the package."""
    pkg_file = root / NODE_PACKAGE_JSON
    try:
        with open(pkg_file, "rb") as f:
            raw = f.read(MAX_PACKAGE_JSON + 1)
    except FileNotFoundError:
        raise PackageError(
            f"a tars_nodejs package has {NODE_PACKAGE_JSON} at its root; this one has none"
        ) from None
    except OSError as e:
        raise PackageError(f"cannot read {NODE_PACKAGE_JSON}: {e}") from None
    if len(raw) > MAX_PACKAGE_JSON:
        raise PackageError(f"{NODE_PACKAGE_JSON} is larger than {MAX_PACKAGE_JSON} bytes")
    try:
        pkg = json.loads(raw)
    except ValueError as e:
        raise PackageError(f"{NODE_PACKAGE_JSON} is not valid JSON: {e}") from None
    if not isinstance(pkg, dict):
        raise PackageError(f"{NODE_PACKAGE_JSON} must hold a JSON object")
    entry = ""
    main = pkg.get("main")
    scripts = pkg.get("scripts")
    start = scripts.get("start") if isinstance(scripts, dict) else None
    if isinstance(main, str) and main.strip():
        entry = main.strip()
    elif isinstance(start, str) and (m := _START_SCRIPT.match(start)):
        entry = m.group("file")
    else:
        entry = "index.js"
    path = root / entry
    if not path.is_file() and path.suffix != ".js" and path.with_suffix(".js").is_file():
        path = path.with_suffix(".js")  # require() resolution: "main": "server"
    if not is_within(path, root, resolve=True, strictly=True):
        raise PackageError(f"{NODE_PACKAGE_JSON}: the entry {entry!r} leads outside the package")
    if not path.is_file():
        raise PackageError(f"{NODE_PACKAGE_JSON}: the entry {entry!r} is not a file in the package")
    return os.path.relpath(path, root)
