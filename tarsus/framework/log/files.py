"""Reading the remote logs back (``tarsus.LogExt``): which files a server has, and a
``getLogData`` command over one of them, in the node's command language (tail, head, grep;
no shell: :mod:`tarsus.framework.node.logview`)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from tarsus.framework.node.logview import LogCommandError, LogSearcher, SearchLimits
from tarsus.names import check_application, check_server_name

__all__ = ["RemoteLogFiles"]

_MAX_LISTED = 10_000


class RemoteLogFiles:
    """The files under ``root`` (the service's log path), read only."""

    def __init__(self, root: Path, limits: SearchLimits | None = None) -> None:
        self.root = root
        self.searcher = LogSearcher(limits or SearchLimits())

    async def names(self, app: str, server: str) -> list[str]:
        """``<server>/<file>`` and ``<set>/<server>/<file>`` under ``<root>/<app>``."""
        check_application(app)
        check_server_name(server)
        return await asyncio.to_thread(self._list, app, server)

    def _list(self, app: str, server: str) -> list[str]:
        base = self.root / app
        dirs = [Path(server)]
        try:
            with os.scandir(base) as entries:
                dirs += [
                    Path(e.name, server)
                    for e in entries
                    if e.name != server and e.is_dir(follow_symlinks=False)
                ]
        except OSError:
            return []
        out: list[str] = []
        for rel in dirs:
            try:
                with os.scandir(base / rel) as entries:
                    out += [
                        (rel / e.name).as_posix()
                        for e in entries
                        if e.is_file(follow_symlinks=False)
                    ]
            except OSError:
                continue
            if len(out) >= _MAX_LISTED:
                break
        return sorted(out)[:_MAX_LISTED]

    def path(self, app: str, server: str, name: str) -> Path:
        """The file ``name`` (as :meth:`names` gives it) of ``app``/``server``; refuses
        anything else with :class:`LogCommandError`."""
        check_application(app)
        check_server_name(server)
        parts = name.split("/")
        bad = any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts)
        if bad or len(parts) not in (2, 3) or parts[-2] != server:
            raise LogCommandError(
                f"log file {name[:80]!r} is not one of {app}.{server}'s "
                "('<server>/<file>' or '<set>/<server>/<file>')"
            )
        path = self.root.joinpath(app, *parts)
        try:
            st = path.lstat()
        except OSError:
            raise LogCommandError(f"the log file {name} does not exist") from None
        if not stat.S_ISREG(st.st_mode):
            raise LogCommandError(f"{name} is not a regular file")
        return path

    async def data(self, app: str, server: str, name: str, cmd: str) -> str:
        """``cmd`` over the file (:func:`~tarsus.framework.node.logview.search_log`)."""
        return await self.searcher.search(self.path(app, server, name), cmd)
