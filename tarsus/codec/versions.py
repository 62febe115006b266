"""How each protocol version (``iVersion``) packs a call's arguments and results.

``codec_for(version)`` is the one place that chooses: the client encodes arguments and decodes
results with it, the server the reverse. As upstream (TarsCpp ``ServantHandle``,
``ServantProxy``), a version other than TUP's and JSON's is read as Tars binary.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tarsus.codec import jsonproto, tup
from tarsus.codec.constants import JSONVERSION, TARSVERSION, TUP_COMPLEX, TUP_SIMPLE
from tarsus.codec.operation import Operation

__all__ = ["BodyCodec", "codec_for"]


@dataclass(frozen=True, slots=True)
class BodyCodec:
    """The ``sBuffer`` encoding of one protocol version."""

    version: int
    encode_args: Callable[[Operation, tuple[Any, ...] | list[Any]], bytes]
    decode_args: Callable[[Operation, bytes], list[Any]]
    encode_results: Callable[[Operation, Any], bytes]
    decode_results: Callable[[Operation, bytes], Any]
    #: TUP: the reply is a ``RequestPacket`` whose ``status`` carries the result code
    #: (``STATUS_RESULT_CODE``), not a ``ResponsePacket``
    tup: bool = False


def _tup(version: int) -> BodyCodec:
    return BodyCodec(
        version,
        functools.partial(tup.encode_args, version=version),
        functools.partial(tup.decode_args, version=version),
        functools.partial(tup.encode_results, version=version),
        functools.partial(tup.decode_results, version=version),
        tup=True,
    )


_TARS = BodyCodec(
    TARSVERSION,
    Operation.encode_args,
    Operation.decode_args,
    Operation.encode_results,
    Operation.decode_results,
)
_CODECS: dict[int, BodyCodec] = {
    TARSVERSION: _TARS,
    TUP_SIMPLE: _tup(TUP_SIMPLE),
    TUP_COMPLEX: _tup(TUP_COMPLEX),
    JSONVERSION: BodyCodec(
        JSONVERSION,
        jsonproto.encode_args,
        jsonproto.decode_args,
        jsonproto.encode_results,
        jsonproto.decode_results,
    ),
}


def codec_for(version: int) -> BodyCodec:
    """The codec of ``iVersion`` *version*; Tars binary for any version without its own."""
    return _CODECS.get(version, _TARS)
