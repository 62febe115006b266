"""What every handler takes: the platform, paging and search (query ``page``, ``size``, ``q``),
and how a page of results is answered in JSON."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder

from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.platform import Platform

__all__ = ["PageDep", "PlatformDep", "page_json"]


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
