"""Reporting alarms and events to ``tars.tarsnotify.NotifyObj`` (upstream
``TarsRemoteNotify``), for business services and for the framework itself.

:meth:`RemoteNotify.report` and :meth:`RemoteNotify.notify` never block and never raise: the
notification is queued (at most ``capacity``; past that the newest is dropped and counted in
:attr:`RemoteNotify.dropped`) and a background task sends the queue, in order. A send that
fails (notify down, not routed yet) keeps the notification at the head of the queue and is
retried after a pause, so a short outage loses nothing::

    notify = RemoteNotify(app.communicator, "tars.tarsnotify.NotifyObj",
                          application="Test", server="HelloServer")
    notify.report("[alarm] the disk is almost full")      # level from the marker
    notify.notify(NOTIFYLEVEL.NOTIFYERROR, "cannot reach the bank")

A server run by :class:`~tarsus.rpc.application.Application` has one at ``app.notifier``
(the ``notify`` object of its config). docs/notify.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING

from tarsus.protocol.gen.NotifyF import NOTIFYLEVEL, NotifyProxy, ReportInfo, ReportType
from tarsus.rpc.errors import TarsError

if TYPE_CHECKING:
    from tarsus.rpc.communicator import Communicator

__all__ = ["DEFAULT_CAPACITY", "RemoteNotify"]

log = logging.getLogger("tarsus.rpc.notify")

#: Notifications queued at most by default.
DEFAULT_CAPACITY = 1000
#: Milliseconds one send may take.
SEND_TIMEOUT_MS = 3000
#: Seconds between two tries while NotifyObj does not answer.
RETRY_PAUSE = 1.0


class RemoteNotify:
    """A bounded, non-blocking sender of notifications for ``application.server``."""

    def __init__(
        self,
        communicator: Communicator,
        obj: str,
        *,
        application: str,
        server: str,
        node: str = "",
        set_id: str = "",
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.communicator = communicator
        #: ``tars.tarsnotify.NotifyObj`` (through the locator) or ``Obj@endpoints``; ""
        #: drops every notification (no notify service configured)
        self.obj = obj
        self.application = application
        self.server = server
        self.node = node
        self.set_id = set_id
        self.capacity = max(1, capacity)
        self.queue: deque[ReportInfo] = deque()
        #: notifications dropped: the queue was full, or no notify object is configured
        self.dropped = 0
        #: notifications NotifyObj took
        self.sent = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._failing = False

    # -- what callers use ----------------------------------------------------------------

    def report(
        self,
        message: str,
        *,
        application: str = "",
        server: str = "",
        thread_id: str = "",
        node: str = "",
    ) -> bool:
        """A framework-style event (``REPORT``): its level is the marker in ``message``
        (``[alarm]``, ``[error]``, ``[warn]``, ``[fail]``; none: normal). ``application`` and
        ``server`` name another server than this reporter's (the node reports for the
        servers it runs), ``node`` another node (the admin registry reports for instances
        on every node). False when it was dropped."""
        return self._put(
            ReportInfo(
                eType=ReportType.REPORT,
                sApp=application or self.application,
                sSet=self.set_id,
                sContainer="",
                sServer=server or self.server,
                sMessage=message,
                sThreadId=thread_id,
                sNodeName=node or self.node,
            )
        )

    def notify(self, level: NOTIFYLEVEL | int, message: str) -> bool:
        """A business alarm (``NOTIFY``) at ``level``. False when it was dropped."""
        return self._put(
            ReportInfo(
                eType=ReportType.NOTIFY,
                sApp=self.application,
                sSet=self.set_id,
                sContainer="",
                sServer=self.server,
                sMessage=message,
                eLevel=level,
                sNodeName=self.node,
            )
        )

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is sent (True) or ``timeout`` seconds passed (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (for at most ``timeout`` seconds), then stop."""
        if self.queue and self._task is not None and not self._task.done():
            await self.flush(timeout)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the sender ----------------------------------------------------------------------

    def _put(self, info: ReportInfo) -> bool:
        if not self.obj or len(self.queue) >= self.capacity:
            self.dropped += 1
            return False
        self.queue.append(info)
        self._idle.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return True  # sent once a loop runs and another notification comes
            self._task = loop.create_task(self._run(), name="tarsus-notify-sender")
        return True

    async def _run(self) -> None:
        try:
            proxy = self.communicator.string_to_proxy(NotifyProxy, self.obj).with_options(
                timeout_ms=SEND_TIMEOUT_MS
            )
        except TarsError as e:  # a bare name and no locator: nowhere to send, ever
            log.warning("notifications to %s are dropped: %s", self.obj, e)
            self.dropped += len(self.queue)
            self.queue.clear()
            self.obj = ""  # what comes later is dropped at once
            self._idle.set()
            return
        while True:
            if not self.queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            info = self.queue[0]
            try:
                await proxy.reportNotifyInfo(info)
            except (TarsError, OSError) as e:
                if not self._failing:
                    log.warning(
                        "%s does not take notifications (%s); %d queued, retrying",
                        self.obj,
                        e,
                        len(self.queue),
                    )
                self._failing = True
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if self.queue and self.queue[0] is info:
                self.queue.popleft()
            self.sent += 1
            self._failing = False
