"""Upstream's level markers of a notification (TarsFramework ``NotifyImp::getNotifyLevel``).

A framework event (``REPORT``) carries its level in its text: the first of ``[alarm]``,
``[error]``, ``[warn]`` found, ``[fail]`` counting as ``[error]``, else ``[normal]``. A
business alarm (``NOTIFY``) names its level (``NOTIFYLEVEL``). The tag goes into
``t_server_notifys.command``, where upstream's console reads it.
"""

from __future__ import annotations

from typing import Final

from tarsus.protocol.gen.NotifyF import NOTIFYLEVEL

__all__ = ["ALARM", "ERROR", "NORMAL", "WARN", "level_number", "tag_of_level", "tag_of_message"]

ALARM: Final = "[alarm]"
ERROR: Final = "[error]"
WARN: Final = "[warn]"
FAIL: Final = "[fail]"
NORMAL: Final = "[normal]"


def tag_of_message(message: str) -> str:
    """The level tag a ``REPORT``'s text carries."""
    for marker, tag in ((ALARM, ALARM), (ERROR, ERROR), (WARN, WARN), (FAIL, ERROR)):
        if marker in message:
            return tag
    return NORMAL


def tag_of_level(level: int) -> str:
    """The level tag of a ``NOTIFY``'s ``NOTIFYLEVEL`` (anything unknown is normal)."""
    if level == NOTIFYLEVEL.NOTIFYERROR:
        return ERROR
    if level == NOTIFYLEVEL.NOTIFYWARN:
        return WARN
    return NORMAL


def level_number(tag: str) -> int:
    """A stored tag as ``NOTIFYLEVEL`` (what ``getNotifyInfo`` answers): alarms are errors."""
    if tag in (ALARM, ERROR):
        return int(NOTIFYLEVEL.NOTIFYERROR)
    if tag == WARN:
        return int(NOTIFYLEVEL.NOTIFYWARN)
    return int(NOTIFYLEVEL.NOTIFYNORMAL)
