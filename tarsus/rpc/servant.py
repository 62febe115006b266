"""The base class of generated ``<Interface>Servant`` classes."""

from __future__ import annotations

from typing import ClassVar

from tarsus.codec.operation import Operation


class Servant:
    """Subclass a generated ``<Interface>Servant`` and override its ``async def`` methods.

    ``_tars_ops_`` maps each IDL method name to its :class:`Operation`, which knows how the
    arguments and results are laid out on the wire.
    """

    _tars_interface_: ClassVar[str] = ""
    _tars_ops_: ClassVar[dict[str, Operation]] = {}
