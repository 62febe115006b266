"""``python -m tarsus.framework.log --config=FILE``: ``tars.tarslog`` as a process of its
own, from the config a node generated (upstream ``tarslog --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.log.service import LogService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(LogService, argv)


if __name__ == "__main__":
    sys.exit(main())
