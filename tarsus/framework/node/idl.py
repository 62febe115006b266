"""The framework types the node speaks, loaded once from the bundled ``.tars`` files.

One namespace holds every struct the node builds or reads (``ServerDescriptor``,
``ServerStateInfo``, ``PatchInfo``, ``PatchRequest``, ``ServerInfo``...), so values made here
encode alike wherever they go. Values that arrive from elsewhere (a ``ServerDescriptor``
decoded by the lead's ``Registry`` proxy, say) are classes of another load of the same IDL:
:func:`canonical` re-reads them as ours.
"""

from __future__ import annotations

import functools
from typing import Any

import tarsus.idl
import tarsus.protocol
from tarsus.codec import decode, encode

__all__ = ["adminf", "adminreg", "canonical", "nodef", "queryf", "registry", "tars"]


@functools.cache
def tars() -> Any:
    """``NodePush.tars`` (with NodeDescriptor and RegistryDescriptor): ``ServerDescriptor``,
    ``AdapterDescriptor``, ``ServerStateInfo``, ``ServerState``, ``PatchInfo``, ``PatchRequest``."""
    return tarsus.idl.load(tarsus.protocol.path("NodePush.tars")).tars


@functools.cache
def nodef() -> Any:
    """``NodeF.tars``: ``ServerInfo``, ``ServerFServant``, ``ServerFProxy``."""
    return tarsus.idl.load(tarsus.protocol.path("NodeF.tars")).tars


@functools.cache
def adminf() -> Any:
    """``AdminF.tars``: ``AdminFProxy`` (every server's AdminObj)."""
    return tarsus.idl.load(tarsus.protocol.path("AdminF.tars")).tars


@functools.cache
def registry() -> Any:
    """``Registry.tars``: ``RegistryProxy``, ``NodeInfo``, ``LoadInfo``, ``PatchResult``."""
    return tarsus.idl.load(tarsus.protocol.path("Registry.tars")).tars


@functools.cache
def queryf() -> Any:
    """``QueryF.tars``: ``QueryFProxy``."""
    return tarsus.idl.load(tarsus.protocol.path("QueryF.tars")).tars


@functools.cache
def adminreg() -> Any:
    """``AdminReg.tars``: ``AdminRegProxy``, ``ReportNode`` (the push channel's calls)."""
    return tarsus.idl.load(tarsus.protocol.path("AdminReg.tars")).tars


def canonical(value: Any, cls: Any) -> Any:
    """``value`` as an instance of ``cls`` (a struct of our load): itself when it already is,
    else re-decoded from its encoding (same IDL, so the same fields and tags)."""
    if isinstance(value, cls):
        return value
    return decode(encode(value), cls)
