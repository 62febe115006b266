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


def served_together(*servants: type[Servant]) -> dict[str, Operation]:
    """One operation table for an object that serves several interfaces (upstream's
    interface and our extension beside it, on one object name). Refuses two interfaces that
    define a function of the same name: that would silently change what an upstream client
    of the object gets."""
    table: dict[str, Operation] = {}
    for servant in servants:
        shared = sorted(table.keys() & servant._tars_ops_.keys())
        if shared:
            raise TypeError(
                f"{servant._tars_interface_} redefines functions of the object: {', '.join(shared)}"
            )
        table.update(servant._tars_ops_)
    return table
