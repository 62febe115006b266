"""What the HTTP app listens on, whom it talks to, and its limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tarsus.codec.constants import QUERY_OBJ, QUERY_PORT

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

    @property
    def web_dir(self) -> Path:
        return self.data_dir / "web"

    @property
    def token_file(self) -> Path:
        return self.web_dir / "token"

    @property
    def incoming_dir(self) -> Path:
        """Where uploads are received, one temporary file each, removed when answered."""
        return self.web_dir / "incoming"
