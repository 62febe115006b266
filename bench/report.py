"""How every bench writes its results: one marked section of docs/benchmarks.md each.

A bench renders its section (starting with its ``<!-- name:begin -->`` marker and ending with
``<!-- name:end -->``) and :func:`replace_section` puts it in place of the old one, or at the end
of the file the first time, leaving every other bench's section as it was.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["command_lines", "replace_section"]


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
