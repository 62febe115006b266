"""``python -m tarsus.framework.admin --config=FILE``: ``tars.tarsAdminRegistry`` as a process of
its own, from the config a node generated (upstream ``tarsAdminRegistry --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.admin.server import AdminRegistry


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(AdminRegistry, argv)


if __name__ == "__main__":
    sys.exit(main())
