"""Schema migrations (Alembic, run in code) and the first-run seed of built-in templates.

:func:`upgrade` brings a database to the newest revision; :func:`seed_templates` installs the
profile templates shipped in :mod:`tarsus.conf.templates` that the database lacks, never
touching existing rows. :func:`tarsus.store.open_store` runs both, under a lock, on every open,
so a re-open is a no-op and several processes starting together migrate once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from tarsus.conf.templates import BUILTIN_PARENTS, builtin_names, load_builtin
from tarsus.store.schema import t_profile_template

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "seed_templates",
    "upgrade",
]

log = logging.getLogger("tarsus.store")

#: Alembic ``script_location``: ``env.py`` and ``versions/`` ship inside the package.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code (no ``alembic.ini``), optionally bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the package ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> bool:
    """Migrate the database behind ``connection`` to head; True if anything ran.

    Runs inside the caller's transaction: the caller commits, and holds whatever lock keeps
    other processes from migrating at the same time.
    """
    before = current_revision(connection)
    head = head_revision()
    if before == head:
        return False
    log.info("migrating database from %s to %s", before or "empty", head)
    command.upgrade(alembic_config(connection), "head")
    return True


def seed_templates(connection: Connection, now: datetime) -> list[str]:
    """Insert the built-in templates the database does not have yet; returns their names.

    Existing rows are never changed, so an operator's edits to ``tars.default`` survive.
    """
    have = set(connection.scalars(select(t_profile_template.c.template_name)))
    missing = [name for name in builtin_names() if name not in have]
    if missing:
        connection.execute(
            insert(t_profile_template),
            [
                {
                    "template_name": name,
                    "parents_name": BUILTIN_PARENTS[name],
                    "profile": load_builtin(name),
                    "posttime": now,
                    "lastuser": "tarsus",
                }
                for name in missing
            ],
        )
        log.info("installed built-in templates %s", ", ".join(missing))
    return missing
