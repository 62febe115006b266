"""``python -m tarsus.framework.property --config=FILE``: ``tars.tarsproperty`` as a process of its
own, from the config a node generated (upstream ``tarsproperty --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.property.service import PropertyService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(PropertyService, argv)


if __name__ == "__main__":
    sys.exit(main())
