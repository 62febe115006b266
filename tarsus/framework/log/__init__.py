"""The remote log service (upstream ``tarslog``): ``tars.tarslog.LogObj``, port 18993.

Servers send lines in batches (``Log.logger``, ``Log.loggerbyInfo``; every SDK's remote day
log, ``tarsus.rpc.remote_log`` for Python) and the service appends them to files in
upstream's layout under its log path; beside ``Log`` the object serves our
``tarsus.LogExt`` (list and read the files: ``tarsus log``). See ``docs/logs.md``.

- :func:`add_log` serves it in an :class:`~tarsus.rpc.application.Application`;
- :class:`LogService` is the framework service, :class:`LogWriter` writes the files,
  :mod:`~tarsus.framework.log.layout` names them;
- :class:`LogSettings` says where the files go and how much the service takes in.
"""

from tarsus.framework.log.layout import BadLogName, LogTarget, Roll, by_info, by_name
from tarsus.framework.log.service import LOG_SPEC, LogService, add_log
from tarsus.framework.log.settings import LogSettings
from tarsus.framework.log.writer import LogWriter, WriterCounts

__all__ = [
    "LOG_SPEC",
    "BadLogName",
    "LogService",
    "LogSettings",
    "LogTarget",
    "LogWriter",
    "Roll",
    "WriterCounts",
    "add_log",
    "by_info",
    "by_name",
]
