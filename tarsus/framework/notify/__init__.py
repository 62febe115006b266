"""Notifications (upstream ``tarsnotify``): ``tars.tarsnotify.NotifyObj``, port 18593.

Every Tars server library, the node, the admin registry and the registry report alarms and
events to it (``reportServer``, ``notifyServer``, ``reportNotifyInfo``); it writes them into
``t_server_notifys`` with upstream's level tags, keeps a bounded history per instance and
answers ``getNotifyInfo``. Upstream's console shows the table. See ``docs/notify.md``.

- :func:`add_notify` serves it in an :class:`~tarsus.rpc.application.Application`;
- :class:`NotifyService` is the framework service, :class:`NotifyJournal` its plain logic;
- :class:`NotifySettings` says how much it keeps.

The reporting side (what services use to send) is :mod:`tarsus.rpc.notify`.
"""

from tarsus.framework.notify.journal import NotifyJournal
from tarsus.framework.notify.service import NOTIFY_SPEC, NotifyService, add_notify
from tarsus.framework.notify.settings import NotifySettings

__all__ = ["NOTIFY_SPEC", "NotifyJournal", "NotifyService", "NotifySettings", "add_notify"]
