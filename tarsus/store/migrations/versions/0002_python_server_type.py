"""Python servers stored with upstream's ``server_type``: ``tars_python`` rows become ``tars_cpp``.

Revision ID: 0002
Revises: 0001

Upstream's tools hold ``server_type`` in an ``ENUM`` without ``tars_python`` (TarsFramework
``db_tars.sql``); TarsWeb's schema sync stops at a value outside it. A Python server is now
stored as ``tars_cpp`` and told apart by its template (``tars.tarspython.default`` or a
descendant; :mod:`tarsus.store.server_types`). A ``tars_python`` row whose template is empty or
``tars.default`` moves to ``tars.tarspython.default``, which is ``tars.default`` plus the
interpreter key. A row whose template is another one that does not inherit
``tars.tarspython.default`` keeps ``tars_python`` (converting it would make it a C++ server)
and is logged: give it such a template and deploy it again.

Frozen: to change the schema, add a migration; do not edit this one.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from tarsus.store.server_types import PYTHON, PYTHON_STORED_AS, PYTHON_TEMPLATE, inherits

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

log = logging.getLogger("tarsus.store")

_servers = sa.table(
    "t_server_conf",
    sa.column("id", sa.Integer),
    sa.column("application", sa.String),
    sa.column("server_name", sa.String),
    sa.column("node_name", sa.String),
    sa.column("server_type", sa.String),
    sa.column("template_name", sa.String),
)
_templates = sa.table(
    "t_profile_template",
    sa.column("template_name", sa.String),
    sa.column("parents_name", sa.String),
)


def _parents(conn: sa.Connection) -> dict[str, str]:
    rows = conn.execute(sa.select(_templates.c.template_name, _templates.c.parents_name))
    return {name: parent or "" for name, parent in rows}


def upgrade() -> None:
    conn = op.get_bind()
    parents = _parents(conn)
    rows = conn.execute(
        sa.select(
            _servers.c.id,
            _servers.c.application,
            _servers.c.server_name,
            _servers.c.node_name,
            _servers.c.template_name,
        ).where(_servers.c.server_type == PYTHON)
    ).all()
    for id_, app, server, node, template in rows:
        values = {"server_type": PYTHON_STORED_AS}
        if template in ("", None, "tars.default"):
            values["template_name"] = PYTHON_TEMPLATE
        elif not inherits(template, parents, PYTHON_TEMPLATE):
            log.warning(
                "server %s.%s on %s keeps server_type tars_python: its template %r does not "
                "inherit %s (upstream tools refuse that type; give it such a template)",
                app,
                server,
                node,
                template,
                PYTHON_TEMPLATE,
            )
            continue
        conn.execute(sa.update(_servers).where(_servers.c.id == id_).values(values))


def downgrade() -> None:
    conn = op.get_bind()
    parents = _parents(conn)
    rows = conn.execute(
        sa.select(_servers.c.id, _servers.c.template_name).where(
            _servers.c.server_type == PYTHON_STORED_AS
        )
    ).all()
    ids = [id_ for id_, template in rows if inherits(template or "", parents, PYTHON_TEMPLATE)]
    if ids:
        conn.execute(sa.update(_servers).where(_servers.c.id.in_(ids)).values(server_type=PYTHON))
