"""A database outage, as a framework service tells it: once when it starts, once when it ends.

The registry and the admin registry keep working while their database is down (routes from
memory, retries on their schedule); what they owe the operator is one warning in their log and
one row in ``t_server_notifys`` per outage, never one per failed call (upstream's registry
sends ``TARS_NOTIFY_ERROR`` on every failed load, TarsFramework ``RegistryServer``
``DbHandle``). docs/notify.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from tarsus.store.errors import StoreError

__all__ = ["DB_ERRORS", "DatabaseOutage"]

#: Errors that mean "the database did not do it" (as opposed to a bug).
DB_ERRORS = (StoreError, SQLAlchemyError, OSError, TimeoutError)

#: Characters of the database's reason a notification carries.
_REASON_CHARS = 500


class DatabaseOutage:
    """Tracks whether the database answers. :meth:`failed` after a failed statement,
    :meth:`ok` after a successful one; ``report(text)`` (a notifier's) hears the start of an
    outage (``[error] database unavailable ...``) and its end (``database answers again
    ...``, normal)."""

    def __init__(
        self,
        log: logging.Logger,
        report: Callable[[str], object] = lambda _text: None,
        *,
        consequence: str = "",
    ) -> None:
        self.log = log
        self.report = report
        #: what goes on meanwhile, said in the warning ("lookups go on from memory")
        self.consequence = consequence
        #: monotonic time the outage began, None while the database answers
        self.down_since: float | None = None
        #: monotonic time the database last came back (or the service started)
        self.since_ok = time.monotonic()
        #: outages seen so far
        self.outages = 0

    def failed(self, what: str, err: BaseException) -> None:
        if self.down_since is not None:
            self.log.debug("database still unavailable (%s: %s)", what, err)
            return
        self.down_since = time.monotonic()
        self.outages += 1
        tail = f"; {self.consequence}" if self.consequence else ""
        self.log.warning("database unavailable (%s: %s); retrying%s", what, err, tail)
        reason = str(err)
        if len(reason) > _REASON_CHARS:  # a driver's error may quote a whole statement
            reason = reason[:_REASON_CHARS] + "..."
        self.report(f"[error] database unavailable ({what}: {reason}); retrying{tail}")

    def ok(self) -> None:
        if self.down_since is None:
            return
        seconds = time.monotonic() - self.down_since
        self.down_since = None
        self.since_ok = time.monotonic()
        self.log.warning("database answers again after %.1fs", seconds)
        self.report(f"database answers again after {seconds:.1f}s")
