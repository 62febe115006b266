"""A MariaDB server of a test's own, on a host (network namespace) of its own.

The machine's MariaDB on 127.0.0.1:3306 is shared by every test, so a test that kills the
database kills this one instead: :class:`tarsus.testing.PrivateMariaDB` (``mariadbd`` from
Debian's ``mariadb-server`` with its own data directory) listening on the host's address, port
3306. :meth:`~tarsus.testing.PrivateMariaDB.kill` is SIGKILL (no shutdown, as when the machine
loses power); ``start`` again on the same data directory is the database coming back, after
InnoDB's crash recovery.
"""

from __future__ import annotations

from pathlib import Path

from netns import Host

from tarsus.testing import PrivateMariaDB

unavailable_reason = PrivateMariaDB.unavailable_reason


def mariadb_host(host: Host, root: Path) -> PrivateMariaDB:
    """A private MariaDB on ``host``'s address, port 3306, run in its network namespace."""
    return PrivateMariaDB(
        root,
        host=host.address,
        port=3306,
        launch=lambda argv, log: host.popen(argv, log=log),
        options=("--innodb-buffer-pool-size=32M",),
    )
