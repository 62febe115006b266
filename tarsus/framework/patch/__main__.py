"""``python -m tarsus.framework.patch --config=FILE``: ``tars.tarspatch`` as a process of its
own, from the config a node generated (upstream ``tarspatch --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.patch.service import PatchService


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(PatchService, argv)


if __name__ == "__main__":
    sys.exit(main())
