"""What the HTTP app listens on, whom it talks to, and its limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tarsus.codec.constants import QUERY_OBJ, QUERY_PORT

if TYPE_CHECKING:
    from tarsus.framework.security import FrameworkAuth
    from tarsus.rpc.security import ServantSecurity

__all__ = ["DEFAULT_MAX_UPLOAD", "DEFAULT_PORT", "WebSettings"]

#: Upstream TarsWeb's port (``config/webConf.js``), so ``make upload`` targets, bookmarks and
#: reverse-proxy configs written for it keep working. ``tarsus up --web-port`` picks another.
DEFAULT_PORT = 3000
#: Upstream's upload limit (TarsWeb ``upload_patch_package``: 100 MB).
DEFAULT_MAX_UPLOAD = 100 * 1024 * 1024


@dataclass
class WebSettings:
    #: the framework host's data directory; the app keeps ``web/`` under it (token, uploads)
    data_dir: Path = Path(".tarsus")
    host: str = "127.0.0.1"
    #: 0: any free port (tests)
    port: int = DEFAULT_PORT
    #: the registry, through which the admin registry and the package store are found
    locator: str = f"{QUERY_OBJ}@tcp -h 127.0.0.1 -p {QUERY_PORT}"
    #: ``AdminRegObj@tcp -h ... -p ...`` to skip the lookup; None: by name through the locator
    admin: str | None = None
    #: the same for ``tars.tarspatch.PatchObj``
    patch: str | None = None
    #: the same for the config center's ``tars.tarsconfig.ConfigExtObj``
    config: str | None = None
    #: the same for the query services ``/metrics`` reads (``tars.tarsquerystat.QueryObj``,
    #: ``tars.tarsqueryproperty.QueryObj``)
    query_stat: str | None = None
    query_property: str | None = None
    #: bytes of one uploaded package at most (the whole multipart body a little more)
    max_upload: int = DEFAULT_MAX_UPLOAD
    #: uploads received at the same time at most; more are answered 429
    max_concurrent_uploads: int = 4
    #: seconds ``upload_and_publish`` follows its task before answering "still running"
    publish_wait: float = 600.0
    #: seconds between two looks at the task (upstream: 2)
    poll_interval: float = 2.0
    #: milliseconds one call to a framework service may take
    rpc_timeout_ms: int = 30000
    #: the store (users, roles, tokens, audit; the lists it reads): None is SQLite in
    #: ``<data_dir>/tarsus.db``, the framework's own when ``tarsus up`` runs it
    db_url: str | None = None
    #: the first ``admin``'s password, from this file (else generated and shown once)
    admin_password_file: Path | None = None
    #: by object name, the keys the app signs its calls with (a secured install's framework
    #: objects; docs/security.md)
    security: Mapping[str, ServantSecurity] = field(default_factory=dict)
    #: a secured install: the keys ``POST /install/node-keys`` hands a joining node that
    #: shows the join token (:attr:`join_token_file`); None: no such route
    node_auth: FrameworkAuth | None = None

    @property
    def web_dir(self) -> Path:
        return self.data_dir / "web"

    @property
    def token_file(self) -> Path:
        return self.web_dir / "token"

    @property
    def secret_file(self) -> Path:
        """The key session cookies are signed with (made at the first start, mode 0600)."""
        return self.web_dir / "secret"

    @property
    def join_token_file(self) -> Path:
        """The token a new node shows for its keys (``tarsus install framework`` prints it)."""
        return self.web_dir / "join-token"

    @property
    def incoming_dir(self) -> Path:
        """Where uploads are received, one temporary file each, removed when answered."""
        return self.web_dir / "incoming"
