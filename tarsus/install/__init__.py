"""Installing Tarsus on real machines: ``tarsus install framework`` and ``tarsus install node``.

Each step is its own module and safe to run again (docs/install.md):

* :mod:`~tarsus.install.layout` — where things go (``/etc/tarsus``, ``/var/lib/tarsus``,
  ``/etc/systemd/system``, or all of them under ``--prefix``);
* :mod:`~tarsus.install.settings` — the installed role's settings file, what the service unit runs;
* :mod:`~tarsus.install.database` — the database, its tables (Alembic) and a least-privilege user
  with a generated password;
* :mod:`~tarsus.install.pki` — the framework's CA, server and client certificates and its
  access key pair;
* :mod:`~tarsus.install.units` — systemd units, or a detached process where there is no systemd;
* :mod:`~tarsus.install.wheelhouse` — the wheels a new node installs from, and ``node.sh``;
* :mod:`~tarsus.install.framework`, :mod:`~tarsus.install.node` — the two installs.
"""

from __future__ import annotations

from tarsus.install.errors import InstallError

__all__ = ["InstallError"]
