"""The wheels a new node installs Tarsus from, and the script that does it (``node.sh``).

At ``tarsus install framework`` the framework host gathers Tarsus and every dependency as
wheels into ``/var/lib/tarsus/wheelhouse`` (``pip wheel``: from PyPI or a local index once, or
from ``--wheels DIR`` with no index at all) and packs them into ``wheelhouse.tar`` with its
SHA-256. The web app serves both and ``node.sh`` (:mod:`tarsus.web.install`); a new host runs

    curl -fsS http://FRAMEWORK:3000/install/node.sh | sh

and installs from those wheels alone: no internet needed on the node.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tarsus
from tarsus.install.errors import InstallError

__all__ = [
    "WHEELHOUSE_DIR",
    "Wheelhouse",
    "build_wheelhouse",
    "buildable",
    "node_script",
    "tarsus_requirement",
]

#: under the framework host's data directory
WHEELHOUSE_DIR = "wheelhouse"
ARCHIVE = "wheelhouse.tar"
STAMP = "wheelhouse.stamp"


@dataclass(frozen=True)
class Wheelhouse:
    directory: Path

    @property
    def archive(self) -> Path:
        return self.directory / ARCHIVE

    @property
    def sha256_file(self) -> Path:
        return self.directory / f"{ARCHIVE}.sha256"

    def sha256(self) -> str | None:
        try:
            return self.sha256_file.read_text().split()[0]
        except (OSError, IndexError):
            return None

    def ready(self) -> bool:
        return self.archive.is_file() and self.sha256() is not None


def tarsus_requirement() -> str:
    """What ``pip wheel`` builds Tarsus from: the source tree it runs from (a checkout, as
    with an editable install), else ``tarsus==<this version>`` from the index."""
    root = Path(tarsus.__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and "site-packages" not in root.parts:
        return str(root)
    return f"tarsus=={tarsus.__version__}"


#: what a wheel of Tarsus is built from, in a source tree
SOURCE_FILES = ("pyproject.toml", "setup.py", "README.md")
SOURCE_PACKAGE = "tarsus"


@contextlib.contextmanager
def buildable(requirement: str) -> Iterator[str]:
    """``requirement`` as ``pip wheel`` may build it: a source tree is copied to a private
    directory first (its files of :data:`SOURCE_FILES` and the package, without bytecode or
    built extensions). setuptools builds in the tree it is given (its ``build/``), so two
    builds of one checkout at once (two test workers, an operator beside a test) broke each
    other's ("No such file or directory" half-way through the wheel); a name from an index is
    passed through."""
    root = Path(requirement)
    if not (root / "pyproject.toml").is_file():
        yield requirement
        return
    with tempfile.TemporaryDirectory(prefix="tarsus-source-") as tmp:
        copy = Path(tmp) / "tarsus"
        copy.mkdir()
        for name in SOURCE_FILES:
            if (root / name).is_file():
                shutil.copy2(root / name, copy / name)
        shutil.copytree(
            root / SOURCE_PACKAGE,
            copy / SOURCE_PACKAGE,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"),
        )
        yield str(copy)


def build_wheelhouse(directory: Path, *, source: Path | None = None, rebuild: bool = False) -> bool:
    """Fill ``directory`` with Tarsus's wheels and pack them; False when it already holds this
    version's (unless ``rebuild``). ``source``: a directory of wheels to take them from (no
    index needed); else ``pip wheel`` of :func:`tarsus_requirement`."""
    house = Wheelhouse(directory)
    requirement = tarsus_requirement()
    stamp = f"{tarsus.__version__} {source or requirement} +pip\n"
    stamp_file = directory / STAMP
    if not rebuild and house.ready() and _read(stamp_file) == stamp:
        return False
    wheels = directory / "wheels.new"
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    if source is not None:
        found = sorted(source.glob("*.whl"))
        if not any(w.name.startswith("tarsus-") for w in found):
            raise InstallError(f"--wheels {source}: no tarsus-*.whl there")
        for wheel in found:
            shutil.copy2(wheel, wheels / wheel.name)
    else:
        # pip's own wheel too: node.sh runs it from the wheel (a venv without ensurepip)
        with buildable(requirement) as buildable_requirement:
            argv = [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheels)]
            argv += [buildable_requirement, "pip"]
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise InstallError(
                f"building the wheelhouse (pip wheel {shlex.quote(requirement)} pip) failed:\n"
                f"{done.stderr.strip()[-2000:]}\n(without an index, give --wheels DIR)"
            )
    tmp = directory / f".{ARCHIVE}.tmp"
    digest = hashlib.sha256()
    with tarfile.open(tmp, "w") as tar:
        for wheel in sorted(wheels.iterdir()):
            tar.add(wheel, arcname=wheel.name)
    with open(tmp, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    tmp.replace(house.archive)
    house.sha256_file.write_text(f"{digest.hexdigest()}  {ARCHIVE}\n")
    old = directory / "wheels"
    shutil.rmtree(old, ignore_errors=True)
    wheels.rename(old)
    stamp_file.write_text(stamp)
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def node_script(base_url: str, locator: str, sha256: str) -> str:
    """``node.sh`` for this framework: its settings, then the fixed body (``node.sh`` in this
    package). The values are shell-quoted; the body never evaluates them."""
    body = importlib.resources.files("tarsus.install").joinpath("node.sh").read_text("utf-8")
    header = "\n".join(
        [
            "#!/bin/sh",
            f"# Installs a Tarsus node from the framework at {base_url} (docs/install.md).",
            f"TARSUS_BASE={shlex.quote(base_url.rstrip('/'))}",
            f"TARSUS_LOCATOR={shlex.quote(locator)}",
            f"TARSUS_WHEELS_SHA256={shlex.quote(sha256)}",
            "",
        ]
    )
    return header + body
