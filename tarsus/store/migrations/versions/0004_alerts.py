"""Alert rules and alert events (Tarsus's own tables, docs/alerts.md).

Revision ID: 0004
Revises: 0003

``t_alert_rules``: thresholds an operator set (failure rate, timeout rate, average latency,
a property, server down, node lost) and the webhook each one posts to; ``t_alert_events``:
every firing and resolving (and test) notification, with its delivery state, so a webhook that
is down is retried after a restart too. Upstream has no such tables (its alerting is in its
paid edition), so no upstream tool reads them.

Frozen: to change the schema, add a migration; do not edit this one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_OPTS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _str(
    name: str, length: int, default: str | None = "", *, nullable: bool = True
) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length=length), server_default=default, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "t_alert_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("name", 128, None, nullable=False),
        _str("kind", 32, None, nullable=False),
        _str("application", 50),
        _str("server_name", 128),
        _str("interface_name", 128),
        _str("node_name", 50),
        _str("property_name", 128),
        _str("policy", 16),
        _str("comparison", 2, ">"),
        sa.Column("threshold", sa.Float(), server_default="0", nullable=False),
        sa.Column("windows", sa.Integer(), server_default="1", nullable=False),
        _str("webhook", 512, None, nullable=False),
        sa.Column("enabled", sa.Integer(), server_default="1", nullable=False),
        sa.Column("posttime", sa.DateTime(), nullable=True),
        _str("lastuser", 30),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="alert_rule_name"),
        **_OPTS,
    )
    op.create_table(
        "t_alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        _str("rule_name", 128),
        _str("target", 256),
        _str("state", 16, None, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("event_time", sa.DateTime(), nullable=True),
        _str("webhook", 512),
        _str("delivery", 16, "pending"),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt", sa.DateTime(), nullable=True),
        _str("last_error", 255),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_index("alert_event_rule", "t_alert_events", ["rule_id", "target"])
    op.create_index("alert_event_delivery", "t_alert_events", ["delivery", "next_attempt"])


def downgrade() -> None:
    op.drop_table("t_alert_events")
    op.drop_table("t_alert_rules")
