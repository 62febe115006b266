"""``python -m tarsus.framework.alarm --config=FILE``: ``tars.tarsalarm`` as a process of its
own, from the config a node generated."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.alarm.service import AlarmService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(AlarmService, argv)


if __name__ == "__main__":
    sys.exit(main())
