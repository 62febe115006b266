"""``python -m tarsus.framework.registry --config=FILE``: ``tars.tarsregistry`` as a process of
its own, from the config a node generated (upstream ``tarsregistry --config=...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tarsus.framework import service
from tarsus.framework.registry.service import Registry


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(Registry, argv)


if __name__ == "__main__":
    sys.exit(main())
