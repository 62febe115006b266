"""DDL touches that SQLAlchemy's portable column options cannot express.

Upstream's ``db_tars`` relies on two MySQL-only column clauses:

* ``DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP`` on ``registry_timestamp`` and
  ``modify_time``, so that any writer (the upstream web console included) bumps the timestamp the
  registry's incremental route load watches;
* ``AUTO_INCREMENT`` on a column that is a UNIQUE key but not the primary key
  (``t_machine_tars_info.id``).

A column says it wants them through its ``info`` dict (:data:`ON_UPDATE_NOW`,
:data:`AUTO_INCREMENT`), and the ``CREATE TABLE`` compiler below adds them on MySQL/MariaDB. On
SQLite, ``CURRENT_TIMESTAMP`` would be UTC while our clock is local time, so the default becomes
``datetime('now', 'localtime')`` there; Tarsus's own writes set these columns explicitly anyway.
The migrations build their columns with the same ``info``, so both paths produce the same DDL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, DateTime, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn, FetchedValue
from sqlalchemy.sql.compiler import DDLCompiler

__all__ = ["AUTO_INCREMENT", "ON_UPDATE_NOW", "now_column"]

#: ``Column.info`` key: the column defaults to now and, on MySQL, is bumped on every update.
ON_UPDATE_NOW = "tarsus_on_update_now"
#: ``Column.info`` key: on MySQL, the column is ``AUTO_INCREMENT`` though not the primary key.
AUTO_INCREMENT = "tarsus_auto_increment"

_SQLITE_NOW = "(datetime('now', 'localtime'))"


def now_column(name: str, **kw: Any) -> Column[Any]:
    """A ``DATETIME DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP`` column (the ``ON
    UPDATE`` part on MySQL only)."""
    return Column(
        name,
        DateTime(),
        nullable=True,
        server_default=text("CURRENT_TIMESTAMP"),
        server_onupdate=FetchedValue(),
        info={ON_UPDATE_NOW: True},
        **kw,
    )


@compiles(CreateColumn, "mysql")
@compiles(CreateColumn, "mariadb")
def _create_column_mysql(element: CreateColumn, compiler: DDLCompiler, **kw: Any) -> str:
    sql: str = compiler.visit_create_column(element, **kw)  # type: ignore[no-untyped-call]
    info = element.element.info
    if info.get(ON_UPDATE_NOW):
        sql += " ON UPDATE CURRENT_TIMESTAMP"
    if info.get(AUTO_INCREMENT) and "AUTO_INCREMENT" not in sql:
        sql += " AUTO_INCREMENT"
    return sql


@compiles(CreateColumn, "sqlite")
def _create_column_sqlite(element: CreateColumn, compiler: DDLCompiler, **kw: Any) -> str:
    sql: str = compiler.visit_create_column(element, **kw)  # type: ignore[no-untyped-call]
    if element.element.info.get(ON_UPDATE_NOW):
        sql = sql.replace("DEFAULT CURRENT_TIMESTAMP", f"DEFAULT {_SQLITE_NOW}")
    return sql
