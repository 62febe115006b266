"""Upstream's web console, TarsWeb 3.0.15, as a test peer: found, unpacked, installed, run.

The tarball (upstream's tree without its built UI, with ``config/webConf.js`` pointing at
MariaDB on ``127.0.0.1:3306`` as ``root``) is not part of the repository: it is looked for in
``$TARSUS_TARSWEB_TARBALL``, else in ``shared/peers/tarsweb/`` beside the clone (where CI lays
a copy). It is unpacked, and its packages installed with ``npm ci``, under
``.cache/tarsweb/<tarball>/`` in the repository (git-ignored), once; ``scripts/setup`` does it
ahead of time with ``python tests/interop/tarsweb.py prepare``.

TarsWeb hard-codes its databases (``db_tars``, ``db_tars_web``, ``db_user_system``) and its
port (3000); run with its default schema sync (``alter: true``) it converts ``db_tars`` to its
own models at start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "tarsweb"
TARBALL_ENV = "TARSUS_TARSWEB_TARBALL"
PORT = 3000
#: The databases TarsWeb uses, by name (hard-coded in its ``app/dao/db`` and ``sql/``).
DATABASES = ("db_tars", "db_tars_web", "db_user_system")
_INSTALLED = ".npm-ci-done"


def find_tarball() -> Path | None:
    """The TarsWeb tarball: ``$TARSUS_TARSWEB_TARBALL``, else in ``shared/peers/tarsweb/``
    beside the repository."""
    given = os.environ.get(TARBALL_ENV)
    if given:
        return Path(given) if Path(given).is_file() else None
    found = sorted((ROOT.parent / "shared" / "peers" / "tarsweb").glob("TarsWeb-*.tar.xz"))
    return found[-1] if found else None


def web_dir(tarball: Path) -> Path:
    """Where ``tarball`` is unpacked (its ``web/`` directory)."""
    return CACHE / tarball.name.removesuffix(".tar.xz") / "web"


def prepare(tarball: Path) -> Path:
    """Unpack ``tarball`` and ``npm ci`` it, unless already done; returns its ``web/`` dir.

    Raises ``RuntimeError`` with npm's output when the install fails.
    """
    web = web_dir(tarball)
    if (web / _INSTALLED).is_file():
        return web
    base = web.parent
    if base.exists():
        shutil.rmtree(base)  # a half-done earlier attempt
    base.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(base, filter="data")
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: cannot install TarsWeb's packages")
    started = time.monotonic()
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=web,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci in {web} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    (web / _INSTALLED).write_text(f"npm ci took {time.monotonic() - started:.0f} s\n")
    return web


def sync_tables(web: Path) -> set[str]:
    """``db.table`` of every model TarsWeb's schema sync converts (and logs ``sync succ`` for)."""
    models = web / "app" / "dao" / "db"
    return {
        f"{db}.{path.stem}"
        for db in ("db_tars", "db_tars_web")
        for path in (models / f"{db}_models").glob("*.js")
    }


def main(argv: list[str]) -> int:
    if argv[1:] != ["prepare"]:
        print("usage: tarsweb.py prepare", file=sys.stderr)
        return 2
    tarball = find_tarball()
    if tarball is None:
        print(f"TarsWeb tarball not found (${TARBALL_ENV} or ../shared/peers/tarsweb/): skipped")
        return 0
    if (web_dir(tarball) / _INSTALLED).is_file():
        return 0
    print(f"==> unpacking {tarball.name} and installing its packages (npm ci)")
    started = time.monotonic()
    web = prepare(tarball)
    print(f"    {web} ready in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
