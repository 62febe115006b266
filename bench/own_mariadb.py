"""A MariaDB server of a bench's own, pinned to a CPU (bench/registry.py).

The machine's MariaDB on 127.0.0.1:3306 is shared: by every test and bench running on the
machine (whose queries then compete with the bench's), and its threads run on any CPU — on
the one the measured process is pinned to as well, where each of its statements makes that
process wait. This one is :class:`tarsus.testing.PrivateMariaDB` (``mariadbd`` from Debian's
``mariadb-server``, on a data directory of its own) with the settings of the shared one
(``/etc/mysql/my.cnf``: utf8mb4, no binary log, InnoDB defaults), started under ``taskset`` so
that it runs on the given CPU only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil

from tarsus.testing import PrivateMariaDB, launch_logged

unavailable_reason = PrivateMariaDB.unavailable_reason


class OwnMariaDB:
    """``mariadbd`` on 127.0.0.1 (a free port), its files under ``root``, pinned to ``cpu``
    (None: not pinned)."""

    def __init__(self, root: Path, cpu: str | None) -> None:
        self.root = root
        pin = ["taskset", "-c", cpu] if cpu is not None and shutil.which("taskset") else []

        self.db = PrivateMariaDB(
            root,
            launch=lambda argv, log: launch_logged([*pin, *argv], log),
            options=("--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"),
        )

    @property
    def server_url(self) -> str:
        """The server's URL without a database."""
        return self.db.url()

    @property
    def process(self) -> psutil.Process:
        assert self.db.proc is not None
        return psutil.Process(self.db.proc.pid)

    def start(self, timeout: float = 120.0) -> None:
        try:
            self.db.install(timeout)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut it down (SIGTERM: a clean shutdown) and delete its files."""
        self.db.stop()
        shutil.rmtree(self.root, ignore_errors=True)
