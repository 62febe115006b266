"""The console's navigation: each page module lists its entries (``NAV``); the layout shows
those the actor may use, by section and order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tarsus.ops.access import Actor, Perm

__all__ = ["SECTIONS", "NavItem", "visible"]

#: sections of the navigation, in order, with their catalog keys
SECTIONS = (
    ("services", "core.nav_services"),
    ("operation", "core.nav_operation"),
    ("admin", "core.nav_admin"),
)


@dataclass(frozen=True)
class NavItem:
    section: str
    #: position within the section (10, 20, ...: room to put one between)
    order: int
    #: catalog key of its label
    text: str
    path: str
    #: shown to actors who have it somewhere (``admin``: on ``*``)
    perm: Perm

    def shown_to(self, actor: Actor) -> bool:
        return actor.can(self.perm) if self.perm is Perm.ADMIN else actor.can_somewhere(self.perm)


def visible(items: Iterable[NavItem], actor: Actor) -> list[tuple[str, list[NavItem]]]:
    """``[(section catalog key, [items])]`` the actor may use, empty sections left out."""
    chosen = [i for i in items if i.shown_to(actor)]
    out = []
    for name, key in SECTIONS:
        entries = sorted((i for i in chosen if i.section == name), key=lambda i: (i.order, i.path))
        if entries:
            out.append((key, entries))
    return out
