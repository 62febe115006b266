"""The console's pages: one module per domain, each with a ``router`` and its ``NAV``
entries, found here without a list to edit (docs/console.md, "Adding a page").

Handlers are thin: call the operation in :mod:`tarsus.ops`, render a template
``<domain>/<page>.html`` with :func:`tarsus.web.render.render`. Forms post back with the CSRF
field; htmx requests get fragments.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

from tarsus.web.nav import NavItem

__all__ = ["NAV", "routers"]


def _modules() -> list[object]:
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    ]


def routers() -> list[APIRouter]:
    return [m.router for m in _modules()]  # type: ignore[attr-defined]


#: every page module's navigation entries
NAV: tuple[NavItem, ...] = tuple(item for m in _modules() for item in getattr(m, "NAV", ()))
