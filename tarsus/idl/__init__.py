"""The ``.tars`` interface definition language: parser, Python code generator, loader.

- ``load(path)`` compiles files at run time: ``load("Hello.tars").Test.HelloServant``.
- ``tarsus idl gen FILE.tars -o OUTDIR`` writes the same code as files.
"""

from tarsus.idl.errors import IdlError
from tarsus.idl.loader import load

__all__ = ["IdlError", "load"]
