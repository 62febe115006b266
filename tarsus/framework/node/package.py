"""Installing a service from its package (the node's half of ``CommandPatch``).

A ``tars_python`` package is described below; the other server types come in upstream's own
layouts (``make tar``: ``<Server>/<Server>``; Node.js: ``package.json`` and ``node_modules``),
checked by :mod:`tarsus.framework.node.layouts`, unpacked and swapped in the same way, with
no manifest and no venv.

What a package is, its manifest (``tarsus.toml``, ``PackageManifest``), its md5 and how a
directory is packed live in :mod:`tarsus.package`, shared with deploy tooling (``tarsus
server deploy``) and ``tarsus up``.

Installation (``install_package``):

1. fetch through a :class:`PackageSource` (local path or ``file://`` URL for now); check the
   md5 of a file when one is given;
2. unpack a tarball into a scratch dir inside the server dir, refusing members that are
   absolute, contain ``..``, are devices, or are links leading outside the package, and a
   package that unpacks to more than ``max_unpacked`` bytes (an archive bomb) or would leave
   less than ``disk_reserve`` bytes free on the server dir's disk (both read from the
   archive's headers before anything is written); descend while the top holds a single
   directory; read and check ``tarsus.toml``;
3. build a fresh virtual environment, fast: ``python -m venv --without-pip``, then the
   bundled wheels with the node's own pip (``pip --python <venv python> install --no-index
   --find-links wheels -r requirements.txt``), so nodes need no internet; a ``.pth`` file
   makes the node's own packages (``tarsus`` and its dependencies) importable *after* the
   service's own, so a service's wheel always wins;
4. swap: the old ``bin/`` goes to ``<data>/tmp/<App>.<Server>/bin_bak1`` (``bin_bak1..5``
   kept, as upstream) and the new one takes its place; ``venv`` is a symlink to
   ``venvs/<stamp>``, switched atomically; the two previous venvs are kept so that a process
   still running on one is not pulled from under itself.

Any failure before the swap leaves the installed ``bin/`` and ``venv`` exactly as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import lzma
import os
import shutil
import sys
import sysconfig
import tarfile
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import tarsus
from tarsus.framework.node.config import ServerLayout
from tarsus.framework.node.layouts import check_package, is_python
from tarsus.framework.node.settings import DEFAULT_DISK_RESERVE, DEFAULT_MAX_UNPACKED_SIZE
from tarsus.package import (
    MANIFEST,
    SERVANT_NAME,
    PackageError,
    PackageManifest,
    check_member,
    local_path,
    md5_of,
    python_satisfies,
)

__all__ = [
    "BACKUPS_KEPT",
    "MANIFEST",
    "SERVANT_NAME",
    "InstalledPackage",
    "LocalPackageSource",
    "PackageError",
    "PackageManifest",
    "PackageSource",
    "UnpackLimits",
    "install_package",
    "md5_of",
    "read_manifest",
    "record_version",
    "recorded_version",
    "venv_python",
]

log = logging.getLogger("tarsus.framework.node.package")

#: ``bin_bak1`` .. ``bin_bak5``, as upstream.
BACKUPS_KEPT = 5
#: venvs kept besides the current one (a process may still run on the previous ones).
VENVS_KEPT = 2
#: The ``.pth`` file that lets a service's venv import the node's own packages.
NODE_PTH = "tarsus-node.pth"
#: Where pip's output is cut in an error message.
_PIP_OUTPUT_TAIL = 4000
#: What is left out when a directory is installed as a package (build and VCS leftovers).
NOT_COPIED = ("__pycache__", ".git", ".venv", "venv", "*.pyc")
#: The file in an installed ``bin/`` (and each ``bin_bakN``) saying which package it holds.
VERSION_FILE = ".tarsus-version"
#: Members a package may have (an archive of millions of empty files is a bomb too).
MAX_MEMBERS = 100_000

Progress = Callable[[int], None]


def read_manifest(root: Path) -> PackageManifest:
    """The manifest of the package (or installed ``bin/``) at ``root``, entry checked."""
    manifest = PackageManifest.load(root / MANIFEST)
    entry = root / manifest.entry
    if not entry.is_file():
        raise PackageError(
            f"{manifest.source}: entry {manifest.entry!r} is not a file in the package"
        )
    if not _inside(root, entry):
        raise PackageError(f"{manifest.source}: entry {manifest.entry!r} leads outside the package")
    return manifest


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------- source


class PackageSource(Protocol):
    """Where packages come from. ``fetch`` returns a local path (a ``.tgz`` or a directory);
    a downloading source stores the file under ``workdir`` and reports ``progress`` (0-100)."""

    async def fetch(
        self, location: str, workdir: Path, progress: Progress | None = None
    ) -> Path: ...


class LocalPackageSource:
    """Packages on this machine: a path, or a ``file://`` URL."""

    async def fetch(self, location: str, workdir: Path, progress: Progress | None = None) -> Path:
        path = local_path(location)
        if not path.exists():
            raise PackageError(f"package {location!r} does not exist")
        return path


# ------------------------------------------------------------------------------- unpacking


@dataclass(frozen=True)
class UnpackLimits:
    """How much a package may take on the node's disk."""

    #: bytes the package may unpack to (the sum of its files' sizes)
    max_size: int = DEFAULT_MAX_UNPACKED_SIZE
    #: bytes that must stay free on the disk it is unpacked to
    disk_reserve: int = DEFAULT_DISK_RESERVE


def extract_tarball(archive: Path, dest: Path, limits: UnpackLimits | None = None) -> None:
    """Unpack ``archive`` into ``dest``, refusing any member that would land outside it and
    an archive that unpacks to more than ``limits`` allow (nothing is written then)."""
    limits = limits or UnpackLimits()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = []
            total = 0
            for member in tar:  # headers only: the sizes come before any data is written
                check_member(member)
                members.append(member)
                if len(members) > MAX_MEMBERS:
                    raise PackageError(
                        f"refusing the package: it has more than {MAX_MEMBERS} members"
                    )
                if member.isreg():
                    total += member.size
                    _check_unpacked_size(total, limits)
            _check_disk(dest.parent, total, limits)
            dest.mkdir(parents=True, exist_ok=True)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                tar.extractall(dest, members=members)
    except tarfile.TarError as e:
        raise PackageError(f"{archive.name} is not a readable tar archive: {e}") from None
    except (EOFError, zlib.error, lzma.LZMAError) as e:  # a truncated or damaged stream
        raise PackageError(
            f"{archive.name} is not a readable tar archive (truncated or corrupt): {e}"
        ) from None
    except OSError as e:
        raise PackageError(f"cannot unpack {archive.name}: {e}") from None


def _check_unpacked_size(total: int, limits: UnpackLimits) -> None:
    if total > limits.max_size:
        raise PackageError(
            f"refusing the package: it unpacks to more than {_size(limits.max_size)} "
            f"(at least {_size(total)}), the node's max_unpacked_size"
        )


def _check_disk(where: Path, needed: int, limits: UnpackLimits) -> None:
    """The node's disk check: ``needed`` bytes must fit on ``where``'s file system with
    ``limits.disk_reserve`` to spare."""
    free = shutil.disk_usage(where).free
    if free - needed < limits.disk_reserve:
        raise PackageError(
            f"not enough disk space for the package: it unpacks to {_size(needed)}, "
            f"{_size(free)} is free on the disk of {where} and {_size(limits.disk_reserve)} "
            "must stay free (the node's disk_reserve)"
        )


def _directory_size(root: Path, limits: UnpackLimits) -> int:
    """The bytes of the files under ``root`` that a directory package copies, refused past
    the cap."""
    total = 0
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not _not_copied(d)]
        for name in files:
            if _not_copied(name):
                continue
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
        _check_unpacked_size(total, limits)
    return total


def _not_copied(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in NOT_COPIED)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _package_root(top: Path) -> Path:
    """Descend while the directory holds nothing but one sub-directory (upstream), stopping
    at a directory that has ``tarsus.toml``."""
    current = top
    for _ in range(32):
        if (current / MANIFEST).exists():
            return current
        entries = list(current.iterdir())
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
            current = entries[0]
            continue
        break
    if not any(top.iterdir()):
        raise PackageError("the package is empty")
    return current


# ----------------------------------------------------------------------------------- venv


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def node_import_paths() -> list[str]:
    """What a service venv needs from the node: the directory holding ``tarsus`` and the
    node's site-packages (for tarsus's dependencies)."""
    tarsus_root = str(Path(tarsus.__file__).resolve().parent.parent)
    paths = [tarsus_root]
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    return paths


def _site_packages(venv_dir: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = sorted(venv_dir.glob("lib/python*/site-packages"))
    return found[0] if found else venv_dir / "lib" / version / "site-packages"


def _pth_text(paths: list[str]) -> str:
    lines = [
        "# Written by the tarsus node: its own packages (tarsus and its dependencies),",
        "# after this venv's own, so a package's bundled wheels win.",
    ]
    for path in paths:
        # addsitedir also runs the .pth files there (editable installs need that)
        lines.append(f"import site; site.addsitedir({path!r})")
    return "\n".join(lines) + "\n"


async def _run(argv: list[str], *, cwd: Path, timeout: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PIP_NO_INPUT": "1", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise PackageError(f"{' '.join(argv[:4])} ... took longer than {timeout:g}s") from None
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


async def _python_version(python: str) -> tuple[int, ...]:
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return tuple(sys.version_info[:3])
    code, out = await _run(
        [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        cwd=Path.cwd(),
        timeout=30,
    )
    if code != 0:
        raise PackageError(f"cannot run the node's python {python!r}: {out.strip()}")
    return tuple(int(n) for n in out.strip().split("."))


# -------------------------------------------------------------------------------- install


@dataclass(frozen=True)
class InstalledPackage:
    #: a Python package's manifest (None for the other server types)
    manifest: PackageManifest | None
    bin_dir: Path
    #: the venv this install created (``<server_dir>/venvs/<stamp>``; None: no venv)
    venv_dir: Path | None
    #: the md5 of the package file ("" for a directory)
    md5: str
    #: what pip said, when wheels were installed
    pip_output: str = ""
    #: what was installed, for the patch result (``Test.HelloServer``, ``CppServer (tars_cpp)``)
    summary: str = ""


async def install_package(
    location: str,
    layout: ServerLayout,
    *,
    md5: str = "",
    source: PackageSource | None = None,
    python: str = sys.executable,
    pip_timeout: float = 600.0,
    progress: Progress | None = None,
    limits: UnpackLimits | None = None,
) -> InstalledPackage:
    """Install the package at ``location`` as ``layout``'s server (see the module doc).

    Raises :class:`PackageError`; the previous installation is then untouched.
    """
    limits = limits or UnpackLimits()
    report = progress or (lambda percent: None)
    source = source or LocalPackageSource()
    server_dir = layout.server_dir
    stamp = time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:8]
    workdir = server_dir / f".install-{stamp}"
    venv_real = server_dir / "venvs" / stamp
    swapped = False
    try:
        workdir.mkdir(parents=True)
        # a download is the first fifth of the progress
        fetched = await source.fetch(location, workdir / "download", lambda p: report(p // 5))
        report(20)
        digest = ""
        if fetched.is_file():
            digest = await asyncio.to_thread(md5_of, fetched)
            if md5 and digest.lower() != md5.strip().lower():
                raise PackageError(
                    f"md5 mismatch for {fetched.name}: expected {md5.strip()}, got {digest}"
                )
            await asyncio.to_thread(extract_tarball, fetched, workdir / "unpacked", limits)
            top = workdir / "unpacked"
            root = _package_root(top)
            copy_from_source = False
        elif fetched.is_dir():
            if md5:
                log.info("%s: md5 ignored for a directory package", layout.server_id)
            top = root = fetched
            copy_from_source = True
            needed = await asyncio.to_thread(_directory_size, root, limits)
            _check_disk(workdir, needed, limits)
        else:
            raise PackageError(f"package {location!r} is neither a file nor a directory")
        report(30)
        if not is_python(layout):  # upstream's layouts: no tarsus.toml, no venv
            fit = check_package(root, top, layout)
            new_bin = workdir / "bin"
            await _take_files(root, new_bin, copy=copy_from_source)
            report(90)
            await asyncio.to_thread(_swap_in, layout, new_bin, None, stamp)
            swapped = True
            report(99)
            log.info("%s: package installed (%s)", layout.server_id, fit.summary)
            return InstalledPackage(None, layout.bin_dir, None, digest, summary=fit.summary)
        manifest = read_manifest(root)
        if manifest.name != layout.server_id:
            raise PackageError(
                f"{manifest.source}: the package is {manifest.name!r}, not {layout.server_id!r}"
            )
        version = await _python_version(python)
        if manifest.requires_python and not python_satisfies(
            manifest.requires_python, version, source=manifest.source
        ):
            raise PackageError(
                f"{manifest.source}: requires-python {manifest.requires_python!r}, but the "
                f"node runs Python {'.'.join(map(str, version))}"
            )
        new_bin = workdir / "bin"
        await _take_files(root, new_bin, copy=copy_from_source)
        report(40)
        venv_real.parent.mkdir(parents=True, exist_ok=True)
        code, out = await _run(
            [python, "-m", "venv", "--without-pip", str(venv_real)], cwd=workdir, timeout=120
        )
        if code != 0:
            raise PackageError(f"cannot create the virtual environment: {out.strip()}")
        site_dir = _site_packages(venv_real)
        site_dir.mkdir(parents=True, exist_ok=True)
        (site_dir / NODE_PTH).write_text(_pth_text(node_import_paths()), encoding="utf-8")
        report(50)
        pip_output = await _install_wheels(new_bin, venv_real, python, pip_timeout)
        report(90)
        await asyncio.to_thread(_swap_in, layout, new_bin, venv_real, stamp)
        swapped = True
        report(99)
        log.info("%s: package installed (venv %s)", layout.server_id, venv_real.name)
        return InstalledPackage(
            manifest, layout.bin_dir, venv_real, digest, pip_output, summary=manifest.name
        )
    except OSError as e:
        raise PackageError(f"installing into {server_dir} failed: {e}") from e
    finally:
        if not swapped:
            shutil.rmtree(venv_real, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


async def _take_files(root: Path, new_bin: Path, *, copy: bool) -> None:
    """The package's files become ``new_bin``: copied from a directory package (build and
    VCS leftovers left out), moved from an unpacked tarball."""
    if copy:
        await asyncio.to_thread(
            shutil.copytree,
            root,
            new_bin,
            symlinks=True,
            ignore=shutil.ignore_patterns(*NOT_COPIED),
        )
    else:
        root.rename(new_bin)


async def _install_wheels(bin_dir: Path, venv_dir: Path, python: str, timeout: float) -> str:
    wheels = bin_dir / "wheels"
    requirements = bin_dir / "requirements.txt"
    wheel_files = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    has_requirements = requirements.is_file() and any(
        line.strip() and not line.lstrip().startswith("#")
        for line in requirements.read_text("utf-8", "replace").splitlines()
    )
    if not has_requirements and not wheel_files:
        return ""
    argv = [
        python,
        "-m",
        "pip",
        "--python",
        str(venv_python(venv_dir)),
        "install",
        "--no-index",
        "--disable-pip-version-check",
        "--no-input",
        "--no-warn-script-location",
    ]
    if wheels.is_dir():
        argv += ["--find-links", str(wheels)]
    if has_requirements:
        argv += ["-r", str(requirements)]
    else:
        argv += [str(w) for w in wheel_files]
    code, out = await _run(argv, cwd=bin_dir, timeout=timeout)
    if code != 0:
        tail = out.strip()[-_PIP_OUTPUT_TAIL:]
        raise PackageError(f"installing the bundled wheels failed (pip exit {code}):\n{tail}")
    return out


def _swap_in(layout: ServerLayout, new_bin: Path, venv_real: Path | None, stamp: str) -> None:
    """``new_bin`` becomes ``bin/`` (the old one kept as ``bin_bak1``); ``venv`` points at
    ``venv_real`` when there is one."""
    server_dir = layout.server_dir
    bin_dir = layout.bin_dir
    old_bin: Path | None = None
    if bin_dir.exists() or bin_dir.is_symlink():
        old_bin = server_dir / f".bin-old-{stamp}"
        os.rename(bin_dir, old_bin)
    try:
        os.rename(new_bin, bin_dir)
    except OSError:
        if old_bin is not None:
            os.rename(old_bin, bin_dir)
        raise
    if old_bin is not None:
        try:
            _rotate_backups(layout.backup_dir, old_bin)
        except OSError as e:
            log.warning("%s: could not keep the previous bin as a backup: %s", layout.server_id, e)
            shutil.rmtree(old_bin, ignore_errors=True)
    if venv_real is None:
        return
    link = layout.venv_dir
    if link.exists() and not link.is_symlink():  # a venv made by hand: keep it aside
        link.rename(server_dir / "venvs" / f"previous-{stamp}")
    tmp_link = server_dir / f".venv-{stamp}"
    os.symlink(os.path.relpath(venv_real, server_dir), tmp_link)
    os.replace(tmp_link, link)
    _prune_venvs(server_dir / "venvs", keep=venv_real)


def _rotate_backups(backup_dir: Path, old_bin: Path) -> None:
    backup_dir.mkdir(parents=True, exist_ok=True)
    oldest = backup_dir / f"bin_bak{BACKUPS_KEPT}"
    if oldest.exists():
        shutil.rmtree(oldest)
    for n in range(BACKUPS_KEPT - 1, 0, -1):
        older = backup_dir / f"bin_bak{n}"
        if older.exists():
            older.rename(backup_dir / f"bin_bak{n + 1}")
    shutil.move(str(old_bin), str(backup_dir / "bin_bak1"))


def _prune_venvs(venvs: Path, *, keep: Path) -> None:
    others = sorted(
        (p for p in venvs.iterdir() if p != keep and p.is_dir()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in others[VENVS_KEPT:]:
        shutil.rmtree(stale, ignore_errors=True)


def record_version(bin_dir: Path, version: str, md5: str, user: str = "") -> None:
    """Write which package ``bin_dir`` holds (:data:`VERSION_FILE`): it moves with the
    directory into ``bin_bak1..5``, so a rollback can tell the versions kept apart."""
    text = f"version={version}\nmd5={md5}\nuser={user}\ntime={int(time.time())}\n"
    tmp = bin_dir / f"{VERSION_FILE}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, bin_dir / VERSION_FILE)


def recorded_version(bin_dir: Path) -> dict[str, str]:
    """What :func:`record_version` wrote in ``bin_dir`` (or a backup of it); {} if nothing."""
    try:
        text = (bin_dir / VERSION_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def installed_manifest(layout: ServerLayout) -> PackageManifest | None:
    """The manifest of the package installed in ``layout.bin_dir``; None when no package is
    installed there; :class:`PackageError` when one is, but broken."""
    if not (layout.bin_dir / MANIFEST).exists():
        return None
    return read_manifest(layout.bin_dir)
