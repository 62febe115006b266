"""``python -m tarsus.framework.config --config=FILE``: ``tars.tarsconfig`` as a process of its
own, from the config a node generated (upstream ``tarsconfig --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.config.service import ConfigService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(ConfigService, argv)


if __name__ == "__main__":
    sys.exit(main())
