"""The REST API, ``/api/v1/...``: one module per domain, each with a ``router``
(``fastapi.APIRouter``), found here without a list to edit (docs/console.md, "Adding a page").

Handlers are thin: parse the request, call the operation in :mod:`tarsus.ops`, answer JSON.
Every route declares its access with :func:`tarsus.web.security.access`.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

__all__ = ["PREFIX", "routers"]

PREFIX = "/api/v1"


def routers() -> list[APIRouter]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(module.router)
    return found
