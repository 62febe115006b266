"""Reading what nodes answer over the push channel.

A node answers most pushed commands with plain text, but three of them carry a Tars-encoded
buffer in ``reportResult``'s ``result`` string (``NodePush.tars``), which the channel hands us as
a ``str`` decoded with ``surrogateescape``:

* ``getStateInfo``: ``ServerStateInfo`` at tag 0, a text at tag 1;
* ``getPatchPercent``: the fields of ``PatchInfo`` (upstream ``PatchInfo::writeTo``);
* ``getLogFileList``: ``vector<string>`` at tag 0.
"""

from __future__ import annotations

import functools

from tarsus.codec import DecodeError, decode, decode_value
from tarsus.codec import types as T
from tarsus.codec.operation import Operation, Param
from tarsus.framework.admin.errors import AdminError, ErrCode
from tarsus.protocol.gen import NodeDescriptor

__all__ = [
    "decode_log_files",
    "decode_patch_info",
    "decode_state_info",
    "raw_bytes",
]


@functools.cache
def _state_reply() -> Operation:
    # (ServerStateInfo at tag 0, string at tag 1) is exactly a result with a return value and
    # one out-parameter, so an Operation decodes it.
    return Operation(
        "getStateInfo", NodeDescriptor.ServerStateInfo, (Param(1, "result", T.STRING, out=True),)
    )


def raw_bytes(result: str) -> bytes:
    """The bytes of a Tars-encoded answer, as the channel carries them in a ``str``."""
    return result.encode("utf-8", "surrogateescape")


def decode_state_info(result: str) -> tuple[NodeDescriptor.ServerStateInfo, str]:
    """``(ServerStateInfo, text)`` from a node's ``getStateInfo`` answer."""
    try:
        info, text = _state_reply().decode_results(raw_bytes(result))
    except DecodeError as e:
        raise _undecodable("getStateInfo", e) from None
    return info, str(text)


def decode_patch_info(result: str) -> NodeDescriptor.PatchInfo:
    """``PatchInfo`` from a node's ``getPatchPercent`` answer."""
    try:
        return decode(raw_bytes(result), NodeDescriptor.PatchInfo)
    except DecodeError as e:
        raise _undecodable("getPatchPercent", e) from None


def decode_log_files(result: str) -> list[str]:
    """The file names of a node's ``getLogFileList`` answer."""
    try:
        names = decode_value(raw_bytes(result), T.vector(T.STRING))
    except DecodeError as e:
        raise _undecodable("getLogFileList", e) from None
    return [str(n) for n in names]


def _undecodable(func: str, e: DecodeError) -> AdminError:
    return AdminError(
        ErrCode.EM_TARS_UNKNOWN_ERR, f"the node's answer to {func} could not be decoded: {e}"
    )
