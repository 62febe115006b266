"""How the node starts a server: its command line, working directory and environment.

- ``tars_python`` with an installed package (``bin/tarsus.toml``): the package's venv
  interpreter runs its entry, ``<venv>/bin/python <bin>/<entry> --config=<conf>``. The venv is
  addressed by its real path, so a later install that switches ``venv`` does not change the
  interpreter under a running process.
- ``tars_python`` without a package, when the descriptor names an ``exe_path``: a ``.py``
  file runs with the node's interpreter, anything else directly.
- any other type: ``start_script`` when set (it must run the server in the foreground, e.g.
  end with ``exec``, since the node supervises the script's process; it must lie inside the
  installed package, links resolved, checked again here), else upstream's launch line
  (``CommandStart``):

  - ``tars_cpp``, ``tars_go``, ``not_tars``: ``<exe> --config=<conf>``; for
    ``tars_cpp``/``tars_go`` a missing exe is looked for in the exe directory as upstream
    does (an executable whose name contains ``Server``/``server``);
  - ``tars_java``: ``java -Dconfig=<conf> <jvmparams> [-cp <classpath>/*] <mainclass>``
    (``jvmparams`` and ``mainclass`` split on blanks: ``mainclass`` may be ``-jar x.jar``);
  - ``tars_php``: ``php <entrance, else <server_dir>/bin/src/index.php> --config=<conf>``;
  - ``tars_nodejs``: ``node <the node's agent script> <entry> -c <conf>`` with ``TARS_CONFIG``
    set to the config file, as upstream's node-agent sets it for its workers. ``@tars/rpc``
    reads its servants from ``TARS_CONFIG`` but neither sends ``ServerF.keepAlive`` nor
    serves ``AdminObj`` (node-agent does both in upstream); the agent script
    (``nodejs_agent.js`` beside this module) does them, in the service's process, with the
    package's own ``@tars/rpc``, then loads the entry.

  ``java``, ``php`` and ``node`` are the profile's ``<java>``/``<php>``/``<nodejs>`` when set,
  else found on ``PATH``.

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
    TARS_NODEJS,
    TARS_PYTHON,
    RuntimeConfig,
    ServerLayout,
    require_script_in_package,
)
from tarsus.framework.node.layouts import NODE_AGENT, node_entry, search_server
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
    image_python: str = "",
) -> LaunchSpec:
    """The command that starts the server ``layout`` describes; :class:`LaunchError` if
    there is nothing to start. ``image_python``: the server runs in a container whose image
    has this interpreter (an installed Python package runs on it, with its venv's
    site-packages on ``PYTHONPATH``: the venv's own interpreter is the node's)."""
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
        argv = (*_python_argv(layout, explicit_exe, python, image_python), conf)
    elif layout.server_type == "tars_java":
        argv = (
            _find_exe(layout),
            f"-Dconfig={layout.conf_file}",
            *runtime.jvm_params.split(),
            *(("-cp", f"{runtime.classpath}/*") if runtime.classpath else ()),
            *runtime.mainclass.split(),
        )
    elif layout.server_type == "tars_php":
        entrance = runtime.entrance or str(layout.server_dir / "bin" / "src" / "index.php")
        argv = (_find_exe(layout), entrance, conf)
    elif layout.server_type == TARS_NODEJS:
        argv = (
            _find_exe(layout),
            str(NODE_AGENT),
            _node_entry(layout),
            "-c",
            str(layout.conf_file),
        )
    else:
        argv = (_find_exe(layout), conf)
    env = dict(os.environ)
    library_path = ":".join(
        p for p in (env.get("LD_LIBRARY_PATH", ""), str(layout.exe_path), str(layout.lib_dir)) if p
    )
    env["LD_LIBRARY_PATH"] = library_path
    if layout.server_type == TARS_NODEJS:
        env["TARS_CONFIG"] = str(layout.conf_file)
    if image_python and layout.server_type == TARS_PYTHON and layout.venv_dir.exists():
        site = sorted(layout.venv_dir.resolve().glob("lib/python*/site-packages"))
        if site:
            env["PYTHONPATH"] = str(site[0])
    env.update(runtime.env)
    return LaunchSpec(argv=argv, cwd=layout.log_dir, env=env, log_file=layout.log_file)


def _python_argv(
    layout: ServerLayout, explicit_exe: bool, python: str, image_python: str = ""
) -> tuple[str, ...]:
    try:
        manifest = installed_manifest(layout)
    except PackageError as e:
        raise LaunchError(f"the installed package is broken: {e}", installed=False) from e
    if manifest is not None and image_python:
        return (image_python, str(layout.bin_dir / manifest.entry))
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
        return (image_python or python, str(exe)) if exe.suffix == ".py" else (str(exe),)
    raise LaunchError(
        f"server start error: no package installed in {layout.bin_dir} (no tarsus.toml)",
        installed=False,
    )


def _node_entry(layout: ServerLayout) -> str:
    try:
        return str(layout.exe_path / node_entry(layout.exe_path))
    except PackageError as e:
        raise LaunchError(f"server start error: {e}", installed=False) from None


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
        found_exe = search_server(layout.exe_path)
        if found_exe is not None:
            return found_exe
    raise LaunchError(f"server start error: {exe} is not exist.", installed=False)
