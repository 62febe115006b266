"""``python -m tarsus.framework.notify --config=FILE``: ``tars.tarsnotify`` as a process of its
own, from the config a node generated (upstream ``tarsnotify --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.notify.service import NotifyService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(NotifyService, argv)


if __name__ == "__main__":
    sys.exit(main())
