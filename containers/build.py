"""Build Tarsus's container images locally, with podman, and keep them cached.

    python containers/build.py base        # prints localhost/tarsus-base:<hash>
    python containers/build.py python      # localhost/tarsus-python:<hash>
    python containers/build.py framework   # localhost/tarsus-framework:<hash>
    python containers/build.py node        # localhost/tarsus-node:<hash>
    python containers/build.py mariadb     # localhost/tarsus-mariadb:<hash>
    python containers/build.py all         # all of them, as TARSUS_<NAME>_IMAGE=<tag> lines

- ``base``: Debian bookworm (``debootstrap --variant=minbase``) with ``python3``, imported
  with ``podman import``: no image registry is needed, only Debian's package mirror.
- ``python``: the runtime business services run on (run type ``container``, docs/node.md,
  "Servers in containers"): the base plus Tarsus and its dependencies, installed from this
  source tree's wheels; the default user is ``nobody`` (the node runs each service as its own user).
- ``framework``, ``node``: the runtime plus the entrypoint that installs and runs the role
  (``tarsus install ROLE --foreground``) as the user ``tarsus``; the framework also carries
  the wheels new node hosts install from. ``mariadb``: the base plus Debian's mariadb-server.
  Their recipes are ``containers/<name>/Containerfile`` (docs/containers.md).

Each image is tagged with a hash of what it is built from (the image it is built FROM, its
recipe directory, and for the runtime this tree's ``tarsus/`` sources and ``pyproject.toml``),
and built only when no image has that tag: a second run costs one ``podman image exists``.
Each build also tags ``<repo>:latest`` (what containers/compose.yaml uses by default).
Images are built in Docker format: OCI images drop ``HEALTHCHECK``.
Needs root (debootstrap), ``podman`` and ``debootstrap`` (``apt-get install podman runc
debootstrap``). ``CONTAINERS_CONF`` and ``PODMAN`` (the command, default ``podman``) are
honoured.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this tree's tarsus, whichever python runs the script
from tarsus.install.wheelhouse import buildable  # noqa: E402

SUITE = "bookworm"
MIRROR = os.environ.get("TARSUS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = ("python3",)
#: bump when the recipe below changes in a way the inputs do not show
RECIPE = "2"
#: what a minbase rootfs needs no more once built (docs, manuals, apt's lists and cache)
TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
        "var/lib/apt/lists", "var/cache/apt", "var/cache/debconf/templates.dat-old")  # fmt: skip
HERE = Path(__file__).resolve().parent
BASE_REPO = "localhost/tarsus-base"
PYTHON_REPO = "localhost/tarsus-python"
#: where Debian's python3 looks for packages installed by hand
SITE = "/usr/local/lib/python3.11/dist-packages"


def _podman() -> list[str]:
    return [*shlex.split(os.environ.get("PODMAN", "podman")), "--runtime", "runc"]


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def exists(tag: str) -> bool:
    return subprocess.run([*_podman(), "image", "exists", tag], check=False).returncode == 0


def base() -> str:
    """``localhost/tarsus-base:<hash>``, built now if it is not there."""
    tag = f"{BASE_REPO}:{_digest(SUITE, MIRROR, PACKAGES, TRIM, RECIPE)}"
    if exists(tag):
        return tag
    if shutil.which("debootstrap") is None:
        sys.exit("containers/build.py: debootstrap is missing (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="tarsus-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(rootfs), MIRROR],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for part in TRIM:
            shutil.rmtree(rootfs / part, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [*_podman(), "import", "--change", 'CMD ["/bin/sh"]', "-", tag],
            stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0:
            sys.exit("containers/build.py: tar of the rootfs failed")
    _latest(tag)
    return tag


def _tree_digest(root: Path, paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        if "__pycache__" in path.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _sources_digest() -> str:
    files = [ROOT / "pyproject.toml", ROOT / "setup.py"]
    return _tree_digest(ROOT, files + sorted((ROOT / "tarsus").rglob("*")))


def _recipe(name: str) -> list[Path]:
    """What ``containers/<name>/`` holds, and the shared entrypoint where it is used."""
    files = sorted(p for p in (HERE / name).rglob("*") if p.is_file())
    return files + ([HERE / "entrypoint.sh"] if name in ("framework", "node") else [])


def _latest(tag: str) -> None:
    repo = tag.rsplit(":", 1)[0]
    subprocess.run([*_podman(), "tag", tag, f"{repo}:latest"], check=True)


def _build(
    name: str, from_tag: str, *inputs: object, fill: Callable[[Path], None] | None = None
) -> str:
    """``localhost/tarsus-<name>:<hash>`` from ``containers/<name>/Containerfile`` over
    ``from_tag``, built now if it is not there; ``fill`` adds generated files to the context."""
    recipe = _recipe(name)
    tag = (
        f"localhost/tarsus-{name}:{_digest(from_tag, _tree_digest(HERE, recipe), *inputs, RECIPE)}"
    )
    if exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix=f"tarsus-{name}-") as tmp:
        context = Path(tmp)
        for path in recipe:
            shutil.copy2(path, context / path.name)
        if fill is not None:
            fill(context)
        subprocess.run(
            [*_podman(), "build", "--quiet", "--format", "docker", "--build-arg",
             f"FROM={from_tag}", "-t", tag, str(context)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    _latest(tag)
    return tag


def _wheels(dest: Path) -> None:
    """Tarsus and every dependency, as wheels built from a copy of this tree (the image's
    python3 is 3.11 like the node's: the same wheels fit)."""
    with buildable(str(ROOT)) as source:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
             "--wheel-dir", str(dest), source],
            check=True,
        )  # fmt: skip


#: what the wheels carry that nothing runs: C and Cython sources (asyncmy ships 14 MB of them)
SOURCES = ("*.c", "*.cpp", "*.h", "*.pyx", "*.pxd")
STRIP = shutil.which("strip")


def _slim(site: Path) -> None:
    """Drop the compiled packages' sources and their debugging symbols (``strip``, from
    binutils, when it is installed): a third of the runtime's size."""
    for pattern in SOURCES:
        for path in site.rglob(pattern):
            path.unlink()
    if STRIP is not None:
        libs = [str(p) for p in site.rglob("*.so")]
        subprocess.run([STRIP, "--strip-unneeded", *libs], check=True)


def _site(context: Path) -> None:
    _wheels(context / "wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-index",
         "--disable-pip-version-check", "--find-links", str(context / "wheels"),
         "--target", str(context / "site"), "tarsus"],
        check=True,
    )  # fmt: skip
    shutil.rmtree(context / "wheels")
    shutil.rmtree(context / "site" / "bin", ignore_errors=True)  # the host's shebangs
    _slim(context / "site")
    # bytecode in the image: a container starts from it every time and writes none back
    # (checked-hash pycs: valid whatever the files' times in the image)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "checked-hash",
         str(context / "site")],
        check=True,
    )  # fmt: skip


def python_runtime() -> str:
    """``localhost/tarsus-python:<hash>``: the base with Tarsus installed from this tree."""
    return _build("python", base(), _sources_digest(), SITE, SOURCES, STRIP, fill=_site)


def framework() -> str:
    return _build("framework", python_runtime(), fill=lambda c: _wheels(c / "wheels"))


def node() -> str:
    return _build("node", python_runtime())


def mariadb() -> str:
    return _build("mariadb", base())


BUILDERS: dict[str, Callable[[], str]] = {
    "base": base,
    "python": python_runtime,
    "framework": framework,
    "node": node,
    "mariadb": mariadb,
}


#: held while building: a second build.py (another test worker) waits, then finds the images
LOCK = Path(tempfile.gettempdir()) / "tarsus-containers-build.lock"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in (*BUILDERS, "all"):
        print(f"usage: {Path(__file__).name} {{{'|'.join(BUILDERS)}|all}}", file=sys.stderr)
        return 2
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _main(argv)


def _main(argv: list[str]) -> int:
    if argv[0] == "all":
        for name, build in BUILDERS.items():
            print(f"TARSUS_{name.upper()}_IMAGE={build()}", flush=True)
        return 0
    print(BUILDERS[argv[0]]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
