"""The Tars framework's own interfaces, as `.tars` IDL files shipped with the package.

The files are written by hand from the upstream interface facts so that every module, struct,
field tag, type, enum value, interface, method and parameter matches Tencent Tars on the wire.
See README.md in this folder for what each file is and which servant object uses it.
Their Python is generated once and checked in: ``tarsus.protocol.gen`` (one module per file).
"""

from __future__ import annotations

import pathlib

__all__ = ["PROTOCOL_DIR", "available", "path"]

#: The folder holding the bundled `.tars` files.
PROTOCOL_DIR: pathlib.Path = pathlib.Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the bundled `.tars` files, sorted (e.g. ``["AdminF.tars", ...]``)."""
    return sorted(p.name for p in PROTOCOL_DIR.glob("*.tars"))


def path(name: str) -> pathlib.Path:
    """Return the path of a bundled `.tars` file, e.g. ``path("QueryF.tars")``.

    Only a bare file name is accepted. Raises FileNotFoundError, listing the available names,
    if there is no such file.
    """
    candidate = PROTOCOL_DIR / name
    if pathlib.PurePath(name).name != name or not candidate.is_file():
        raise FileNotFoundError(
            f"no bundled protocol file {name!r}; available: {', '.join(available())}"
        )
    return candidate
