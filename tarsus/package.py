"""A Tarsus package: its manifest (``tarsus.toml``), its archive and its md5, in one place for
every tool that makes, ships or installs one (``tarsus server deploy|publish``, ``tarsus up``
and the node, docs/node.md "Packages").

A package is a directory, or a ``.tgz`` of one, holding ``tarsus.toml``, the service's code,
and optionally ``requirements.txt`` and ``wheels/*.whl``::

    # tarsus.toml
    [package]
    name = "Test.HelloServer"       # App.Server: must be the server it is installed for
    entry = "server.py"             # run as: <venv>/bin/python server.py --config=<conf>
    requires-python = ">=3.11"      # optional; checked against the node's interpreter

    [servants]                      # optional defaults for deploy tooling
    HelloObj = { port = 18601 }

Deploy tooling reads the same file with ``PackageManifest.parse(..., partial=True)``:
``[package]``, its name and its entry may then be left out, and ``servant_ports()`` gives the
default port of each servant. :func:`open_package` packs a directory into a reproducible
``.tgz`` (the same tree gives the same md5, so a node can tell a republish of identical
files); installing it is the node's half (``tarsus.framework.node.package``).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import posixpath
import re
import tarfile
import tempfile
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST",
    "PACK_EXCLUDED",
    "SERVANT_NAME",
    "Package",
    "PackageError",
    "PackageManifest",
    "check_archive",
    "check_member",
    "local_path",
    "manifest_in_archive",
    "md5_of",
    "open_package",
    "pack_directory",
    "python_satisfies",
    "read_deploy_manifest",
]

log = logging.getLogger("tarsus.package")

MANIFEST = "tarsus.toml"
#: A servant's own name, the last part of ``App.Server.HelloObj``.
SERVANT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Left out when a directory is packed: caches that the interpreter rebuilds, and VCS data.
PACK_EXCLUDED = frozenset({"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


# ----------------------------------------------------------------------------- manifest


class PackageError(Exception):
    """A package that cannot be installed; the message says what and where."""


@dataclass(frozen=True)
class PackageManifest:
    """The contents of ``tarsus.toml``."""

    #: ``App.Server``; "" when a partial manifest leaves it out
    name: str
    #: the script to run, a path inside the package; "" when a partial manifest leaves it out
    entry: str
    requires_python: str = ""
    #: servant name (``HelloObj``) -> its defaults (``{"port": 18601}``)
    servants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = MANIFEST

    @property
    def app(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def server(self) -> str:
        return self.name.split(".", 1)[1]

    @classmethod
    def parse(cls, text: str, *, source: str = MANIFEST, partial: bool = False) -> PackageManifest:
        """Read and check ``tarsus.toml``; :class:`PackageError` names the file and the key.

        ``partial`` is for tools that ship a package rather than run it (deploy): ``[package]``,
        its ``name`` and its ``entry`` may be left out (``""``); what is there is checked all
        the same.
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise PackageError(f"{source}: not valid TOML: {e}") from None
        package = data.get("package", {} if partial else None)
        if not isinstance(package, dict):
            if partial:
                raise PackageError(f"{source}: [package] must be a table")
            raise PackageError(f"{source}: a [package] table with name and entry is required")
        for key in package:
            if key not in ("name", "entry", "requires-python"):
                log.warning("%s: unknown key [package] %s ignored", source, key)
        name = package.get("name")
        if name is None and partial:
            name = ""
        elif not isinstance(name, str) or not re.fullmatch(
            r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+", name
        ):
            raise PackageError(
                f"{source}: [package] name must be 'App.Server' (letters, digits, _ and -), "
                f"got {name!r}"
            )
        entry = package.get("entry")
        if entry is None and partial:
            entry = ""
        elif not isinstance(entry, str) or not entry.strip():
            raise PackageError(f"{source}: [package] entry must name the script to run")
        entry = entry.strip()
        normalized = posixpath.normpath(entry) if entry else ""
        if entry.startswith("/") or normalized.startswith("..") or "\\" in entry:
            raise PackageError(
                f"{source}: [package] entry {entry!r} must be a path inside the package"
            )
        requires = package.get("requires-python", "")
        if not isinstance(requires, str):
            raise PackageError(f"{source}: [package] requires-python must be a string")
        if requires:
            _parse_specifier(requires, source)
        servants_raw = data.get("servants", {})
        if not isinstance(servants_raw, dict):
            raise PackageError(f"{source}: [servants] must be a table of servant tables")
        servants: dict[str, Mapping[str, Any]] = {}
        for servant, spec in servants_raw.items():
            if not isinstance(spec, dict):
                raise PackageError(
                    f"{source}: [servants] {servant} must be a table, e.g. {{ port = 18601 }}"
                )
            port = spec.get("port")
            if port is not None and (
                not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536
            ):
                raise PackageError(f"{source}: [servants] {servant}.port must be 1-65535")
            servants[servant] = dict(spec)
        return cls(name, normalized, requires, servants, source)

    def servant_ports(self) -> dict[str, int]:
        """The default port of each servant in ``[servants]``, for deploy tooling, which needs
        one for every servant listed there; :class:`PackageError` otherwise."""
        ports: dict[str, int] = {}
        for servant, spec in self.servants.items():
            where = f"{self.source}: [servants] {servant}"
            if not SERVANT_NAME.match(servant):
                raise PackageError(f"{where}: a servant name is letters, digits and '_' (HelloObj)")
            port = spec.get("port")
            if port is None:
                raise PackageError(f"{where}: write {servant} = {{ port = 1..65535 }}")
            ports[servant] = port
        return ports

    @classmethod
    def load(cls, path: Path) -> PackageManifest:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PackageError(
                f"{MANIFEST} is missing: a package must have {MANIFEST} at its top "
                f"(looked for {path})"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise PackageError(f"cannot read {path}: {e}") from None
        return cls.parse(text, source=str(path))


_SPEC = re.compile(r"^\s*(~=|===|==|!=|<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)*)(\.\*)?\s*$")


def _parse_specifier(text: str, source: str) -> list[tuple[str, tuple[int, ...], bool]]:
    """``>=3.11,<4`` -> [(op, release, wildcard)]; only release numbers, as Python versions
    need."""
    clauses = []
    for part in text.split(","):
        match = _SPEC.match(part)
        if not match:
            raise PackageError(f"{source}: requires-python {text!r}: cannot read {part.strip()!r}")
        op, version, star = match.groups()
        clauses.append((op, tuple(int(n) for n in version.split(".")), bool(star)))
    return clauses


def python_satisfies(spec: str, version: tuple[int, ...], *, source: str = MANIFEST) -> bool:
    """Whether Python ``version`` (``(3, 11, 7)``) meets ``requires-python`` ``spec``."""
    for op, want, star in _parse_specifier(spec, source):
        if star:  # ==3.11.* / !=3.11.*
            same = version[: len(want)] == want
            if (op == "==" and not same) or (op == "!=" and same):
                return False
            continue
        n = max(len(version), len(want))
        have, need = version + (0,) * (n - len(version)), want + (0,) * (n - len(want))
        ok = {
            "==": have == need,
            "===": have == need,
            "!=": have != need,
            "<=": have <= need,
            ">=": have >= need,
            "<": have < need,
            ">": have > need,
            "~=": have >= need and version[: len(want) - 1] == want[:-1],
        }[op]
        if not ok:
            return False
    return True


# ------------------------------------------------------------------------ where and md5


def local_path(location: str) -> Path:
    """The file a package location names: a path, or a ``file://`` URL of this host."""
    if location.startswith("file:"):
        parsed = urllib.parse.urlparse(location)
        if parsed.netloc not in ("", "localhost"):
            raise PackageError(f"package URL {location!r} names another host")
        return Path(urllib.parse.unquote(parsed.path))
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise PackageError(
            f"package location {location!r}: {scheme}:// is not supported yet "
            "(give a local path or a file:// URL)"
        )
    return Path(location)


def md5_of(path: Path) -> str:
    """The hex md5 of a file, as ``PatchRequest.md5`` carries it."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- packing


@dataclass(frozen=True)
class Package:
    """A ``.tgz`` ready to publish."""

    archive: Path
    md5: str
    manifest: PackageManifest | None
    packed_from: Path | None = None


def open_package(spec: str, cache_dir: Path) -> Package:
    """The package at a path or ``file://`` URL; a directory is packed into a ``.tgz`` first
    (under ``cache_dir``, named by content, so packing the same tree twice is free). Its
    ``tarsus.toml``, if any, is read as deploy reads it (:func:`read_deploy_manifest`).
    :class:`PackageError` says what is wrong."""
    try:
        return _open_package(local_path(spec).expanduser(), spec, cache_dir)
    except (OSError, UnicodeDecodeError) as e:
        raise PackageError(f"cannot read the package {spec!r}: {e}") from None


def _open_package(path: Path, spec: str, cache_dir: Path) -> Package:
    if path.is_dir():
        manifest_file = path / MANIFEST
        manifest = None
        if manifest_file.is_file():
            manifest = read_deploy_manifest(manifest_file.read_text("utf-8"), str(manifest_file))
        stem = manifest.name if manifest and manifest.name else path.resolve().name
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip(".") or "package"
        archive = pack_directory(path, cache_dir, stem)
        return Package(archive, md5_of(archive), manifest, packed_from=path.resolve())
    if not path.is_file():
        raise PackageError(f"no package at {spec!r} (give a directory or a .tgz)")
    found = manifest_in_archive(path)
    manifest = read_deploy_manifest(found[1], f"{path}:{found[0]}") if found else None
    return Package(path.resolve(), md5_of(path), manifest)


def read_deploy_manifest(text: str, source: str) -> PackageManifest:
    """``tarsus.toml`` as deploy reads it: ``[package]`` name and entry optional, a port for
    each servant (checked now: deploy needs them)."""
    manifest = PackageManifest.parse(text, source=source, partial=True)
    manifest.servant_ports()
    return manifest


def pack_directory(src: Path, dest_dir: Path, stem: str) -> Path:
    """``src``'s files (paths relative to ``src``) as ``<dest_dir>/<stem>-<md5>.tgz``.

    The archive is reproducible (sorted entries, no owners, zero gzip time), so the same tree
    gives the same md5 and the node can tell a republish of identical files.
    """
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}-", suffix=".tgz", dir=dest_dir)
    except OSError as e:
        raise PackageError(f"cannot pack {src} into {dest_dir}: {e}") from None
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in _walk(src):
                info = tar.gettarinfo(str(path), arcname=path.relative_to(src).as_posix())
                if info is None:  # a socket: nothing a package can carry
                    continue
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isfile():
                    with path.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        digest = md5_of(tmp)
        final = dest_dir / f"{stem}-{digest[:12]}.tgz"
        os.replace(tmp, final)
        return final
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PackageError(f"cannot pack {src} into {dest_dir}: {e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in PACK_EXCLUDED)
        base = Path(dirpath)
        found.extend(base / d for d in dirnames)
        found.extend(base / f for f in sorted(filenames) if not f.endswith((".pyc", ".pyo")))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def manifest_in_archive(path: Path) -> tuple[str, str] | None:
    """``(member name, text)`` of ``tarsus.toml`` at the top of the archive (or in its only
    top-level folder)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            by_name = {m.name.removeprefix("./"): m for m in members}
            member = by_name.get(MANIFEST)
            if member is None:
                tops = {n.split("/", 1)[0] for n in by_name}
                if len(tops) == 1:
                    member = by_name.get(f"{tops.pop()}/{MANIFEST}")
            if member is None:
                return None
            f = tar.extractfile(member)
            if f is None:
                return None
            return member.name, f.read().decode("utf-8")
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as e:
        raise PackageError(f"{path} is not a readable .tgz package: {e}") from None


# ----------------------------------------------------------------------------- checking


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse (:class:`PackageError`) an archive member that would land outside the package
    when unpacked (absolute path, ``..``, a link leading out) or is a device or fifo."""
    name = member.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise PackageError(f"refusing the package: member {name!r} has an absolute path")
    if ".." in name.split("/"):
        raise PackageError(f"refusing the package: member {name!r} contains '..'")
    if member.isdev() or member.isfifo():
        raise PackageError(f"refusing the package: member {name!r} is a device or a fifo")
    if member.issym() or member.islnk():
        target = member.linkname
        if target.startswith("/"):
            raise PackageError(
                f"refusing the package: link {name!r} points to the absolute path {target!r}"
            )
        base = posixpath.dirname(name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if resolved == ".." or resolved.startswith("../"):
            raise PackageError(
                f"refusing the package: link {name!r} -> {target!r} leads outside the package"
            )


def check_archive(path: Path, *, max_members: int = 100_000) -> int:
    """Check that ``path`` is a whole gzip-compressed tar archive whose members all pass
    :func:`check_member` (read to the end, so a truncated file is refused); returns how many
    members it holds. :class:`PackageError` says what is wrong. Nothing is unpacked."""
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
        if magic != b"\x1f\x8b":
            raise PackageError("not a gzip file (a package is a .tgz: tar czf X.tgz Server/)")
        count = 0
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                count += 1
                if count > max_members:
                    raise PackageError(f"refusing the package: more than {max_members} members")
                check_member(member)
                if member.isfile():
                    f2 = tar.extractfile(member)
                    if f2 is not None:
                        while f2.read(1 << 20):
                            pass
        if count == 0:
            raise PackageError("the package is empty")
        return count
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as e:
        raise PackageError(f"not a readable .tgz package: {e}") from None
