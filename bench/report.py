"""How every bench writes its results: one marked section of docs/benchmarks.md each.

A bench renders its section (starting with its ``<!-- name:begin -->`` marker and ending with
``<!-- name:end -->``) and :func:`replace_section` puts it in place of the old one, or at the end
of the file the first time, leaving every other bench's section as it was.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_output_arguments", "command_lines", "emit", "replace_section"]


def command_lines(command: str) -> list[str]:
    """The closing lines of a section: the command that produced it."""
    return ["Command (from the repository root):", "", "```", command, "```"]


def replace_section(path: Path, begin: str, end: str, section: str) -> None:
    """Put ``section`` (markers included) in place of the one between ``begin`` and ``end``."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        doc = head + section + tail
    else:
        doc = doc.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc)


def add_output_arguments(ap: argparse.ArgumentParser, doc: Path) -> None:
    """``--json PATH``, ``--no-write`` and ``--write MD`` (default ``doc``), which :func:`emit`
    obeys as ``json_path=args.json, doc=None if args.no_write else Path(args.write)``."""
    ap.add_argument("--json", metavar="PATH", help="also save every run as JSON")
    ap.add_argument("--no-write", action="store_true", help="do not touch the docs")
    ap.add_argument("--write", metavar="MD", default=str(doc), help="markdown to update")


def emit(
    printed: list[str],
    data: dict[str, Any],
    *,
    json_path: str | None,
    doc: Path | None,
    begin: str,
    end: str,
    section: str,
) -> None:
    """The end of every bench: print its tables (``printed``, one blank line between them),
    save ``data`` as JSON when asked, and write its section of ``doc`` (None: leave the docs)."""
    print("\n\n".join(printed))
    if json_path:
        Path(json_path).write_text(json.dumps(data, indent=1))
    if doc is not None:
        replace_section(doc, begin, end, section)
        print(f"wrote {doc}", file=sys.stderr)
