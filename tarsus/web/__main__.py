"""``python -m tarsus.web --config=FILE``: ``tars.tarsweb``, the HTTP app as a framework service
of its own, from the config a node generated (:mod:`tarsus.web.service`; docs/web.md)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.web.service import WebService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(WebService, argv)


if __name__ == "__main__":
    sys.exit(main())
