"""The Tars tagged binary codec (wire-compatible with the C++, Go, Java and Node SDKs).

>>> from tarsus.codec import RequestPacket, encode, decode
>>> pkt = RequestPacket(iRequestId=7, sServantName="Test.HelloServer.HelloObj", sFuncName="hi")
>>> decode(encode(pkt), RequestPacket) == pkt
True
"""

from tarsus.codec import types
from tarsus.codec.api import decode, decode_value, encode, encode_value
from tarsus.codec.errors import CodecError, DecodeError, EncodeError
from tarsus.codec.packet import RequestPacket, ResponsePacket
from tarsus.codec.struct import Struct
from tarsus.codec.tup import UniAttribute
from tarsus.codec.types import Field

__all__ = [
    "CodecError",
    "DecodeError",
    "EncodeError",
    "Field",
    "RequestPacket",
    "ResponsePacket",
    "Struct",
    "UniAttribute",
    "decode",
    "decode_value",
    "encode",
    "encode_value",
    "types",
]
