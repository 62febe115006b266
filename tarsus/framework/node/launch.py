"""How the node starts a server: its command line, working directory and environment.

- ``tars_python`` with an installed package (``bin/tarsus.toml``): the package's venv
  interpreter runs its entry, ``<venv>/bin/python <bin>/<entry> --config=<conf>``. The venv is
  addressed by its real path, so a later install that switches ``venv`` does not change the
  interpreter under a running process.
- ``tars_python`` without a package, when the descriptor names an ``exe_path``: a ``.py``
  file runs with the node's interpreter, anything else directly.
- any other type: ``start_script`` when set (it must run the server in the foreground, e.g.
  end with ``exec``, since the node supervises the script's process; it must lie inside the
  installed package, links resolved, checked again here), else
  ``<exe> --config=<conf>``. For ``tars_cpp``/``tars_go`` a missing exe is looked for in the
  exe directory as upstream does (an executable whose name contains ``Server``/``server``).

The process runs in ``<log_dir>/<App>/<Server>`` (cores land there, as upstream), with the
node's environment, ``LD_LIBRARY_PATH`` extended by the exe directory and the node's lib
directory, and the config's ``env`` on top.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tarsus.framework.descriptor_paths import PathRefused
from tarsus.framework.node.config import (
    TARS_PYTHON,
    RuntimeConfig,
    ServerLayout,
    require_script_in_package,
)
from tarsus.framework.node.package import PackageError, installed_manifest, venv_python

__all__ = ["LaunchError", "LaunchSpec", "launch_spec"]


class LaunchError(Exception):
    """The server cannot be started as it is installed (``installed`` False: nothing to run)."""

    def __init__(self, message: str, *, installed: bool = True) -> None:
        super().__init__(message)
        self.installed = installed


@dataclass(frozen=True)
class LaunchSpec:
    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str]
    log_file: Path


def launch_spec(
    layout: ServerLayout,
    runtime: RuntimeConfig,
    *,
    explicit_exe: bool = False,
    python: str = sys.executable,
) -> LaunchSpec:
    """The command that starts the server ``layout`` describes; :class:`LaunchError` if
    there is nothing to start."""
    conf = f"--config={layout.conf_file}"
    if layout.start_script:
        script = Path(layout.start_script)
        if not script.is_file():
            raise LaunchError(f"start script {script} is not exist", installed=False)
        try:  # checked at load too; a link in the package may lead elsewhere by now
            require_script_in_package("start script", script, layout)
        except PathRefused as e:
            raise LaunchError(f"server start error: {e}", installed=False) from None
        argv: tuple[str, ...] = (
            (str(script),)
            if os.access(script, os.X_OK)
            else (
                "/bin/sh",
                str(script),
            )
        )
    elif layout.server_type == TARS_PYTHON:
        argv = (*_python_argv(layout, explicit_exe, python), conf)
    else:
        argv = (_find_exe(layout), conf)
    env = dict(os.environ)
    library_path = ":".join(
        p for p in (env.get("LD_LIBRARY_PATH", ""), str(layout.exe_path), str(layout.lib_dir)) if p
    )
    env["LD_LIBRARY_PATH"] = library_path
    env.update(runtime.env)
    return LaunchSpec(argv=argv, cwd=layout.log_dir, env=env, log_file=layout.log_file)


def _python_argv(layout: ServerLayout, explicit_exe: bool, python: str) -> tuple[str, ...]:
    try:
        manifest = installed_manifest(layout)
    except PackageError as e:
        raise LaunchError(f"the installed package is broken: {e}", installed=False) from e
    if manifest is not None:
        venv = layout.venv_dir
        interpreter = venv_python(venv.resolve()) if venv.exists() else None
        if interpreter is None or not interpreter.exists():
            raise LaunchError(
                f"the package is installed but its venv {venv} is missing: install it again",
                installed=False,
            )
        return (str(interpreter), str(layout.bin_dir / manifest.entry))
    exe = Path(layout.exe_file)
    if explicit_exe and exe.is_file():
        return (python, str(exe)) if exe.suffix == ".py" else (str(exe),)
    raise LaunchError(
        f"server start error: no package installed in {layout.bin_dir} (no tarsus.toml)",
        installed=False,
    )


def _find_exe(layout: ServerLayout) -> str:
    exe = layout.exe_file
    if "/" not in exe:  # a command on PATH (java, node, php)
        found = shutil.which(exe)
        if found is None:
            raise LaunchError(f"server start error: {exe} is not exist.", installed=False)
        return found
    if Path(exe).is_file():
        return exe
    if layout.server_type in ("tars_cpp", "tars_go"):
        found_exe = _search_server(layout.exe_path)
        if found_exe is not None:
            return found_exe
    raise LaunchError(f"server start error: {exe} is not exist.", installed=False)


def _search_server(directory: Path) -> str | None:
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
