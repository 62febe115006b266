"""The base class of generated ``<Interface>Proxy`` classes, and per-call options."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

from tarsus.codec.operation import Operation


@dataclass(frozen=True, slots=True)
class CallOptions:
    """How one call is made. ``None`` means the proxy's default."""

    timeout_ms: int | None = None
    context: dict[str, str] | None = None
    status: dict[str, str] | None = None
    oneway: bool = False
    hash_code: int | None = None
    consistent_key: int | str | None = None


DEFAULT_OPTIONS = CallOptions()

#: What a proxy hands each call to: (operation, in-arguments, options) -> the result shape.
Invoker = Callable[[Operation, tuple[Any, ...], CallOptions], Awaitable[Any]]


class ServantProxy:
    """A client-side stub: each generated method encodes its arguments and awaits the call.

    Results: ``None``, the single value, or ``(return value, out1, ...)`` (see
    ``tarsus.codec.operation``). Per-call settings come from ``with_options``::

        await proxy.with_options(timeout_ms=500, context={"k": "v"}).sayHello("x")
    """

    _tars_interface_: ClassVar[str] = ""
    _tars_ops_: ClassVar[dict[str, Operation]] = {}

    __slots__ = ("_tars_invoker_", "_tars_options_")

    def __init__(self, invoker: Invoker, options: CallOptions = DEFAULT_OPTIONS) -> None:
        self._tars_invoker_ = invoker
        self._tars_options_ = options

    def _tars_invoke_(self, op: Operation, args: tuple[Any, ...]) -> Awaitable[Any]:
        # Not a coroutine: the generated method awaits the invoker's awaitable directly.
        return self._tars_invoker_(op, args, self._tars_options_)

    def with_options(self, **changes: Any) -> Self:
        """A proxy to the same servant whose calls use these options (see ``CallOptions``)."""
        return type(self)(self._tars_invoker_, replace(self._tars_options_, **changes))

    def tars_set_timeout(self, timeout_ms: int) -> Self:
        """Upstream's spelling of ``with_options(timeout_ms=...)``."""
        return self.with_options(timeout_ms=timeout_ms)

    def tars_oneway(self) -> Self:
        """Calls through the returned proxy are one-way: sent, never answered, return None."""
        return self.with_options(oneway=True)

    def tars_set_push_callback(self, callback: Callable[[Any], None] | None) -> None:
        """Receive server pushes (responses with request id 0, ``status["TARS_FUNC"]`` naming
        the function) arriving on this servant's connections; as TarsCpp's
        ``tars_set_push_callback``. The callback gets the ``ResponsePacket``."""
        if not hasattr(self._tars_invoker_, "push_handler"):
            raise TypeError("this proxy's invoker does not receive pushes")
        self._tars_invoker_.push_handler = callback

    @property
    def tars_name(self) -> str:
        name: str = getattr(self._tars_invoker_, "name", "")
        return name
