"""Server-side paging and search, the one shape every list takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tarsus.ops.errors import Invalid

__all__ = ["MAX_PAGE_SIZE", "Page", "PageQuery"]

T = TypeVar("T")

#: rows of one page at most
MAX_PAGE_SIZE = 500
#: characters of a search at most
MAX_SEARCH = 128


@dataclass(frozen=True)
class PageQuery:
    """Page ``page`` (from 1) of ``size`` rows, of those matching ``q`` (a substring)."""

    page: int = 1
    size: int = 50
    q: str = ""

    def __post_init__(self) -> None:
        if self.page < 1:
            raise Invalid(f"page must be 1 or more, not {self.page}")
        if not 1 <= self.size <= MAX_PAGE_SIZE:
            raise Invalid(f"size must be 1..{MAX_PAGE_SIZE}, not {self.size}")
        if len(self.q) > MAX_SEARCH:
            raise Invalid(f"the search is {len(self.q)} characters; at most {MAX_SEARCH}")
        if any(ord(c) < 32 for c in self.q):
            raise Invalid("the search holds control characters")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @classmethod
    def of(cls, items: Sequence[T], total: int, query: PageQuery) -> Page[T]:
        return cls(items, total, query.page, query.size)
