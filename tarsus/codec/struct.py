"""The base class of every generated struct.

A generated struct declares ``__slots__``, an ``__init__`` with the IDL defaults, ``_tars_name_``
and ``_tars_fields_``. Its encoder and decoder are compiled from ``_tars_fields_`` the first time
they are needed (``tarsus.codec.compiler``), so importing generated code stays cheap and the
hot path never looks at field descriptors again.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from tarsus.codec.types import Field


class Struct:
    __slots__ = ()

    _tars_name_: ClassVar[str] = ""
    _tars_fields_: ClassVar[tuple[Field, ...]] = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in self._tars_fields_)

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        # Structs are map keys on the wire (map<StatMicMsgHead, ...>), so they hash by value.
        # Do not change a struct while it is a key of a dict.
        return hash((self.__class__, *(getattr(self, f.name) for f in self._tars_fields_)))

    def __repr__(self) -> str:
        body = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self._tars_fields_)
        return f"{self._tars_name_ or type(self).__qualname__}({body})"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (shallow: nested structs stay structs)."""
        return {f.name: getattr(self, f.name) for f in self._tars_fields_}

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (shallow)."""
        values = self.to_dict()
        unknown = set(changes) - values.keys()
        if unknown:
            raise TypeError(f"{self._tars_name_} has no field {', '.join(sorted(unknown))}")
        values.update(changes)
        return type(self)(**values)
