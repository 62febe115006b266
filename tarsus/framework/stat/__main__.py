"""``python -m tarsus.framework.stat --config=FILE``: ``tars.tarsstat`` as a process of its
own, from the config a node generated (upstream ``tarsstat --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.stat.service import StatService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(StatService, argv)


if __name__ == "__main__":
    sys.exit(main())
