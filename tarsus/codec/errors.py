"""Codec errors: every failure names what was wrong and where."""

from __future__ import annotations


class CodecError(Exception):
    """Base class of encode and decode failures."""


class DecodeError(CodecError, ValueError):
    """The bytes are not a valid encoding of the requested type.

    ``offset`` is the byte position in the input where the problem was found; ``tag`` and
    ``field`` name the struct member being read when the codec knows it.
    """

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        tag: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.offset = offset
        self.tag = tag
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.field is not None:
            where.append(f"field {self.field}")
        if self.tag is not None:
            where.append(f"tag {self.tag}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return f"{self.reason} ({', '.join(where)})" if where else self.reason

    def locate(self, *, field: str | None, tag: int | None, offset: int | None) -> DecodeError:
        """Fill in the location the raiser did not know (the innermost one wins)."""
        if self.field is None:
            self.field = field
        if self.tag is None:
            self.tag = tag
        if self.offset is None:
            self.offset = offset
        self.args = (self._render(),)
        return self


class EncodeError(CodecError, ValueError):
    """A value cannot be encoded as its declared Tars type (wrong type, out of range...)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.reason = message
        self.field = field
        super().__init__(f"{message} (field {field})" if field else message)
