"""The base class of generated ``<Interface>Proxy`` classes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from tarsus.codec.operation import Operation

#: What a proxy hands each call to: (operation, in-arguments) -> the result shape.
Invoker = Callable[[Operation, tuple[Any, ...]], Awaitable[Any]]


class ServantProxy:
    """A client-side stub: each generated method encodes its arguments and awaits the call."""

    _tars_interface_: ClassVar[str] = ""
    _tars_ops_: ClassVar[dict[str, Operation]] = {}

    def __init__(self, invoker: Invoker) -> None:
        self._tars_invoker_ = invoker

    async def _tars_invoke_(self, op: Operation, args: tuple[Any, ...]) -> Any:
        return await self._tars_invoker_(op, args)
