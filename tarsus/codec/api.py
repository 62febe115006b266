"""``encode`` / ``decode`` for structs and typed values, with errors that say where.

Two implementations behave the same: the C codec (``tarsus.codec._speedups``, fed by
``tarsus.codec.plan``) and the pure-Python compiled codec (``tarsus.codec.compiler``), the
reference. The C one is used when it was built and the environment variable
``TARSUS_NO_SPEEDUPS`` is unset or empty; ``SPEEDUPS`` tells which one runs.
"""

from __future__ import annotations

import os
import struct as _struct
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, TypeVar

from tarsus.codec import compiler, plan
from tarsus.codec.errors import DecodeError, EncodeError
from tarsus.codec.types import TarsType

S = TypeVar("S")

_LOW_LEVEL = (IndexError, _struct.error, TypeError, ValueError, AttributeError, OverflowError)

Data = bytes | bytearray | memoryview


class _Decode(Protocol):
    def __call__(self, data: Data, cls: type[S], /) -> S: ...


def py_encode(obj: Any, /) -> bytes:
    """Encode a struct as its fields back to back (upstream ``writeTo``, no struct wrapper)."""
    enc = compiler._encoders.get(obj.__class__) or compiler.struct_encoder(obj.__class__)
    b = bytearray()
    try:
        enc(obj, b)
    except EncodeError as e:
        raise _locate_encode(e, e.__traceback__) from None
    except _LOW_LEVEL as e:
        raise _locate_encode(EncodeError(_describe(e)), e.__traceback__) from None
    return bytes(b)


def py_decode(data: Data, cls: type[S], /) -> S:
    """Decode the fields of struct ``cls`` from ``data`` (as upstream ``readFrom``)."""
    dec = compiler._decoders.get(cls) or compiler.struct_decoder(cls)
    if data.__class__ is not bytes:
        data = bytes(data)
    try:
        obj, _ = dec(data, 0, len(data))
    except DecodeError as e:
        raise _locate_decode(e, e.__traceback__) from None
    except _LOW_LEVEL as e:
        raise _locate_decode(_truncated(e), e.__traceback__) from None
    return obj  # type: ignore[no-any-return]


def py_encode_value(value: Any, t: TarsType, /) -> bytes:
    """Encode one value of type ``t`` at tag 0 (as TUP stores each parameter)."""
    b = bytearray()
    try:
        compiler.value_encoder(t)(value, b)
    except EncodeError as e:
        raise _locate_encode(e, e.__traceback__) from None
    except _LOW_LEVEL as e:
        raise _locate_encode(EncodeError(_describe(e)), e.__traceback__) from None
    return bytes(b)


def py_decode_value(data: Data, t: TarsType, /) -> Any:
    """Decode one value of type ``t`` stored at tag 0."""
    if data.__class__ is not bytes:
        data = bytes(data)
    try:
        value, _ = compiler.value_decoder(t)(data, 0, len(data))
    except DecodeError as e:
        raise _locate_decode(e, e.__traceback__) from None
    except _LOW_LEVEL as e:
        raise _locate_decode(_truncated(e), e.__traceback__) from None
    return value


#: True when encode/decode run on the C codec.
SPEEDUPS: bool = plan.AVAILABLE and not os.environ.get("TARSUS_NO_SPEEDUPS")

# The public functions are the C ones themselves, not Python wrappers around them: a wrapper
# frame costs ~25 ns, 15% of a RequestPacket encode. Both sets take positional arguments only.
encode: Callable[[Any], bytes]
decode: _Decode
encode_value: Callable[[Any, TarsType], bytes]
decode_value: Callable[[Data, TarsType], Any]
if SPEEDUPS:
    from tarsus.codec import _speedups

    encode = _speedups.encode
    decode = _speedups.decode
    encode_value = _speedups.encode_value
    decode_value = _speedups.decode_value
else:
    encode = py_encode
    decode = py_decode
    encode_value = py_encode_value
    decode_value = py_decode_value


def _truncated(e: BaseException) -> DecodeError:
    if isinstance(e, IndexError | _struct.error):
        return DecodeError("truncated: the data ends inside a value")
    return DecodeError(f"malformed data: {e}")


def _describe(e: BaseException) -> str:
    if isinstance(e, _struct.error):
        return f"value out of range or of the wrong type: {e}"
    if isinstance(e, AttributeError):
        return f"wrong value type: {e}"
    return f"cannot encode: {e}"


def _innermost_site(tb: TracebackType | None) -> tuple[compiler.Site | None, Any]:
    """The innermost compiled-code frame of a traceback: its Site and its frame."""
    site = None
    frame = None
    while tb is not None:
        sites = compiler.SITES.get(tb.tb_frame.f_code.co_filename)
        if sites is not None:
            s = sites.get(tb.tb_lineno)
            if s is not None:
                site, frame = s, tb.tb_frame
        tb = tb.tb_next
    return site, frame


def _locate_decode(err: DecodeError, tb: TracebackType | None) -> DecodeError:
    site, frame = _innermost_site(tb)
    if site is None:
        return err
    offset = frame.f_locals.get("p") if frame is not None else None
    field = f"{site.owner}.{site.field}" if site.field else site.owner
    return err.locate(field=field, tag=site.tag, offset=offset)


def _locate_encode(err: EncodeError, tb: TracebackType | None) -> EncodeError:
    site, _ = _innermost_site(tb)
    if site is None or err.field is not None:
        return err
    field = f"{site.owner}.{site.field}" if site.field else site.owner
    return EncodeError(err.reason, field=field)
