"""Every ``t_server_conf`` row has a ``patch_time``.

Revision ID: 0003
Revises: 0002

Upstream's ``db_tars.sql`` (TarsFramework) declares ``patch_time`` ``NOT NULL``, and upstream
TarsWeb's schema sync (Sequelize ``alter``) changes the column to ``NOT NULL``: a row holding
NULL there (a server deployed but never patched, such as the framework's own ``tars.*`` rows)
stops that sync with "Data truncated for column 'patch_time'". Deploy now writes the deploy
time into a new row; this fills the rows written before it with the time they were last
changed (``posttime``, else ``registry_timestamp``). The column stays nullable here, so a row
an older tool wrote without it is still read.

Frozen: to change the schema, add a migration; do not edit this one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_servers = sa.table(
    "t_server_conf",
    sa.column("patch_time", sa.DateTime),
    sa.column("posttime", sa.DateTime),
    sa.column("registry_timestamp", sa.DateTime),
)


def upgrade() -> None:
    op.get_bind().execute(
        sa.update(_servers)
        .where(_servers.c.patch_time.is_(None))
        .values(patch_time=sa.func.coalesce(_servers.c.posttime, _servers.c.registry_timestamp))
    )


def downgrade() -> None:
    """Nothing to undo: a filled ``patch_time`` is valid for every version."""
