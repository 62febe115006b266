"""The web console's users, grants, API tokens, sessions and audit log (Tarsus's own tables).

Revision ID: 0005
Revises: 0004

Upstream keeps users in a database of its own (``db_user_system``: ``t_user_info``,
``t_auth (flag, role, uid)``, ``t_token``, ``t_login_temp_info``) with unsalted SHA-1
passwords and no audit log; these tables take their roles (``admin``/``operator``/
``developer`` on ``*``, ``App`` or ``App.Server``) and add what upstream lacks: salted
scrypt hashes, token hashes with scopes, server-side sessions that logout ends, and
``t_web_audit`` (docs/console.md). No upstream tool reads them.

Frozen: to change the schema, add a migration; do not edit this one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_OPTS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _str(
    name: str, length: int, default: str | None = "", *, nullable: bool = True
) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length=length), server_default=default, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "t_web_user",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("uid", 64, None, nullable=False),
        _str("password", 255, None, nullable=False),
        sa.Column("enabled", sa.Integer(), server_default="1", nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=True),
        sa.Column("password_time", sa.DateTime(), nullable=True),
        _str("lastuser", 64),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid", name="web_user_uid"),
        **_OPTS,
    )
    op.create_table(
        "t_web_grant",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("uid", 64, None, nullable=False),
        _str("role", 16, None, nullable=False),
        _str("flag", 256, None, nullable=False),
        sa.Column("posttime", sa.DateTime(), nullable=True),
        _str("lastuser", 64),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid", "role", "flag", name="web_grant_key"),
        **_OPTS,
    )
    op.create_table(
        "t_web_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("uid", 64, None, nullable=False),
        _str("name", 64, None, nullable=False),
        _str("token_hash", 64, None, nullable=False),
        _str("scopes", 255, None, nullable=False),
        _str("flag", 256, "*", nullable=False),
        sa.Column("expire_time", sa.DateTime(), nullable=True),
        sa.Column("enabled", sa.Integer(), server_default="1", nullable=False),
        sa.Column("last_used", sa.DateTime(), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash", name="web_token_hash"),
        **_OPTS,
    )
    op.create_index("web_token_uid", "t_web_token", ["uid"])
    op.create_table(
        "t_web_session",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("sid_hash", 64, None, nullable=False),
        _str("uid", 64, None, nullable=False),
        _str("csrf", 64, None, nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=True),
        sa.Column("expire_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sid_hash", name="web_session_sid"),
        **_OPTS,
    )
    op.create_index("web_session_uid", "t_web_session", ["uid"])
    op.create_table(
        "t_web_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("time", sa.DateTime(), nullable=False),
        _str("uid", 64, None, nullable=False),
        _str("via", 16),
        _str("action", 64, None, nullable=False),
        _str("target", 256),
        sa.Column("before_value", sa.Text(), nullable=True),
        sa.Column("after_value", sa.Text(), nullable=True),
        _str("client", 64),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_index("web_audit_time", "t_web_audit", ["time"])
    op.create_index("web_audit_uid", "t_web_audit", ["uid"])
    op.create_index("web_audit_action", "t_web_audit", ["action"])


def downgrade() -> None:
    for table in ("t_web_audit", "t_web_session", "t_web_token", "t_web_grant", "t_web_user"):
        op.drop_table(table)
