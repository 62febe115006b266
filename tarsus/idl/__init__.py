"""The ``.tars`` interface definition language: parser, Python code generator, loader.

- ``load(path)`` compiles files at run time: ``load("Hello.tars").Test.HelloServant``.
- ``tarsus idl gen FILE.tars -o OUTDIR`` writes the same code as files.

The parser (and lark) is imported on first use of ``load``: servers that only use generated
modules, as the framework does (``tarsus/protocol/gen``), never pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tarsus.idl.errors import IdlError

if TYPE_CHECKING:
    from tarsus.idl.loader import load

__all__ = ["IdlError", "load"]


def __getattr__(name: str) -> object:
    if name == "load":
        from tarsus.idl.loader import load

        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
