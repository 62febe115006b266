"""``python -m tarsus.framework.monitor.queryproperty --config=FILE``:
``tars.tarsqueryproperty`` as a process of its own, from the config a node generated
(upstream ``tarsqueryproperty --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.monitor.query_service import QueryPropertyService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(QueryPropertyService, argv)


if __name__ == "__main__":
    sys.exit(main())
