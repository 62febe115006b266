"""How a server's type is stored: only values upstream's tools accept, Python told by template.

Upstream's ``t_server_conf.server_type`` is an ``ENUM`` of ``tars_cpp``, ``not_tars``,
``tars_java``, ``tars_nodejs``, ``tars_php`` and ``tars_go`` (TarsFramework
``deploy/framework/sql/db_tars.sql``); upstream tools that convert the column to that enum
(TarsWeb's schema sync, ``alter: true``) stop at a value outside it. So a Tarsus Python server
(``tars_python`` everywhere else: the CLI, the admin registry, the ``ServerDescriptor`` the
node receives) is **stored as** ``tars_cpp`` — to an upstream node it is what a C++ server is,
an executable speaking Tars — and read back as ``tars_python`` when its profile template is
``tars.tarspython.default`` or inherits from it. Upstream's tools leave ``template_name`` alone.

A stored ``tars_python`` (rows of an older Tarsus, or written by a tool whose enum has it) still
reads as ``tars_python``. See docs/store.md, "Server types".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from tarsus.store.rows import ServerRow
from tarsus.store.templates import parent_map

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "PYTHON",
    "PYTHON_STORED_AS",
    "PYTHON_TEMPLATE",
    "default_template",
    "inherits",
    "read_type",
    "stored_type",
    "with_types",
]

PYTHON = "tars_python"
#: The template every Python server's template is or inherits from.
PYTHON_TEMPLATE = "tars.tarspython.default"
PYTHON_STORED_AS = "tars_cpp"


def default_template(server_type: str) -> str:
    """The template a server of ``server_type`` gets when none is named."""
    return PYTHON_TEMPLATE if server_type == PYTHON else "tars.default"


def inherits(template: str, parents: Mapping[str, str], ancestor: str) -> bool:
    """Whether ``template`` is ``ancestor`` or inherits from it (``parents``: name -> parent).
    A missing parent or a loop ends the chain, as template resolution does."""
    seen: set[str] = set()
    current = template
    while current and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = parents.get(current, "")
    return False


def stored_type(server_type: str) -> str:
    """The ``server_type`` value written for a server of type ``server_type``."""
    return PYTHON_STORED_AS if server_type == PYTHON else server_type


def read_type(stored: str, template: str, parents: Mapping[str, str]) -> str:
    """A server's type from its stored ``server_type`` and its template."""
    if stored == PYTHON_STORED_AS and inherits(template, parents, PYTHON_TEMPLATE):
        return PYTHON
    return stored


async def with_types(conn: AsyncConnection, rows: Sequence[ServerRow]) -> list[ServerRow]:
    """``rows`` with ``server_type`` as Tarsus sees it (templates read once)."""
    if not any(row.server_type == PYTHON_STORED_AS for row in rows):
        return list(rows)
    parents = await parent_map(conn)
    out: list[ServerRow] = []
    for row in rows:
        kind = read_type(row.server_type, row.template_name, parents)
        out.append(row if kind == row.server_type else replace(row, server_type=kind))
    return out
