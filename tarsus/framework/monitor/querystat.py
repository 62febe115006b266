"""``python -m tarsus.framework.monitor.querystat --config=FILE``: ``tars.tarsquerystat`` as a
process of its own, from the config a node generated (upstream ``tarsquerystat --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.monitor.query_service import QueryStatService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(QueryStatService, argv)


if __name__ == "__main__":
    sys.exit(main())
