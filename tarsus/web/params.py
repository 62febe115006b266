"""What every handler takes: the platform, paging and search (query ``page``, ``size``, ``q``),
and how a page of results is answered in JSON; and the queries that a page and its API route
both take (monitoring, logs), read once here and handed to the service layer as they are."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder

from tarsus.ops import logs, monitor
from tarsus.ops.access import Actor
from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.platform import Platform

__all__ = [
    "LogQuery",
    "PageDep",
    "PlatformDep",
    "PropertiesQuery",
    "StatsQuery",
    "page_json",
]


def _platform(request: Request) -> Platform:
    return request.app.state.platform  # type: ignore[no-any-return]


def _page(page: int = 1, size: int = 50, q: str = "") -> PageQuery:
    return PageQuery(page=page, size=size, q=q.strip())


PlatformDep = Annotated[Platform, Depends(_platform)]
PageDep = Annotated[PageQuery, Depends(_page)]


def page_json(page: Page[Any], **extra: Any) -> dict[str, Any]:
    """``{"items": [...], "total", "page", "size", "pages"}``."""
    items = [
        dataclasses.asdict(i) if dataclasses.is_dataclass(i) and not isinstance(i, type) else i
        for i in page.items
    ]
    out: dict[str, Any] = jsonable_encoder(
        {
            "items": items,
            "total": page.total,
            "page": page.page,
            "size": page.size,
            "pages": page.pages,
            **extra,
        }
    )
    return out


# -------------------------------------------------------------------------------------------
# queries shared by a page and its API route (``Annotated[X, Depends()]``: the fields are the
# query parameters)


@dataclasses.dataclass
class StatsQuery:
    """A server's call statistics: :func:`tarsus.ops.monitor.stats`'s parameters."""

    date: str = ""
    compare: str = ""
    start: str = ""
    end: str = ""
    group_by: str = ""
    interface: str = ""
    caller: str = ""
    caller_ip: str = ""
    callee_ip: str = ""

    async def report(
        self, platform: Platform, actor: Actor, app: str, server: str
    ) -> monitor.StatReport:
        return await monitor.stats(platform, actor, app, server, **dataclasses.asdict(self))

    def filters(self) -> dict[str, str]:
        """The narrowing fields (a page's filter form)."""
        return {
            "interface": self.interface,
            "caller": self.caller,
            "caller_ip": self.caller_ip,
            "callee_ip": self.callee_ip,
        }


@dataclasses.dataclass
class PropertiesQuery:
    """A server's properties: :func:`tarsus.ops.monitor.properties`'s parameters (``property``
    is its ``property_name``)."""

    date: str = ""
    compare: str = ""
    start: str = ""
    end: str = ""
    group_by: str = "property_name"
    property: str = ""
    policy: str = ""
    ip: str = ""

    async def report(
        self, platform: Platform, actor: Actor, app: str, server: str
    ) -> monitor.PropertyReport:
        return await monitor.properties(
            platform,
            actor,
            app,
            server,
            date=self.date,
            compare=self.compare,
            start=self.start,
            end=self.end,
            group_by=self.group_by,
            property_name=self.property,
            policy=self.policy,
            ip=self.ip,
        )

    def filters(self) -> dict[str, str]:
        """The narrowing fields (a page's filter form)."""
        return {"property": self.property, "policy": self.policy, "ip": self.ip}


@dataclasses.dataclass
class LogQuery:
    """Which lines of a log file: :func:`tarsus.ops.logs.log_data`'s parameters but the file
    (``q`` is its ``search``)."""

    node: str = ""
    remote: bool = False
    lines: int = 200
    q: str = ""
    regex: bool = False
    ignore_case: bool = False

    async def text(
        self, platform: Platform, actor: Actor, app: str, server: str, file: str
    ) -> logs.LogText:
        return await logs.log_data(
            platform,
            actor,
            app,
            server,
            file,
            node=self.node,
            remote=self.remote,
            lines=self.lines,
            search=self.q,
            regex=self.regex,
            ignore_case=self.ignore_case,
        )
