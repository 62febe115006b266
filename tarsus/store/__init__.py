"""The framework's database: upstream's ``db_tars`` tables on SQLite or MySQL/MariaDB.

::

    from tarsus.store import open_store

    async with await open_store("mysql://tars:pw@db:3306/db_tars") as store:
        await store.servers.deploy(ServerSpec("Demo", "Hello", "10.0.0.5"), [...])

``open_store()`` without a URL uses SQLite in ``./.tarsus/tarsus.db``. The schema is migrated
to head (Alembic, in code) and the built-in templates installed on every open. SQLAlchemy Core
tables are in :mod:`tarsus.store.schema`; the repositories (``store.templates``,
``store.nodes``, ``store.servers``, ``store.patches``) return frozen row records named after
the columns.
See ``docs/store.md``.
"""

from tarsus.store.engine import (
    DB_FILENAME,
    DEFAULT_DATA_DIR,
    Store,
    drop_database,
    normalize_url,
    open_store,
)
from tarsus.store.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    StoreDamaged,
    StoreError,
    StoreUnavailable,
)
from tarsus.store.nodes import REGISTER_CONFLICT, REGISTER_OK, Nodes
from tarsus.store.patches import Patches
from tarsus.store.rows import AdapterRow, NodeRow, PatchRow, ServerRow, TemplateRow
from tarsus.store.servers import AdapterSpec, PresentReport, Servers, ServerSpec
from tarsus.store.templates import Templates

__all__ = [
    "DB_FILENAME",
    "DEFAULT_DATA_DIR",
    "REGISTER_CONFLICT",
    "REGISTER_OK",
    "AdapterRow",
    "AdapterSpec",
    "Conflict",
    "InvalidInput",
    "NodeRow",
    "Nodes",
    "NotFound",
    "PatchRow",
    "Patches",
    "PresentReport",
    "ServerRow",
    "ServerSpec",
    "Servers",
    "Store",
    "StoreDamaged",
    "StoreError",
    "StoreUnavailable",
    "TemplateRow",
    "Templates",
    "drop_database",
    "normalize_url",
    "open_store",
]
