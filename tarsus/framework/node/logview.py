"""The web console's log viewer on the node: ``getLogFileList`` and ``getLogData`` (``NodeImp``).

Upstream runs ``getLogData``'s ``cmd`` through a shell after replacing
``__log_file_name__`` with the file's path: whoever can reach the admin registry runs any
command on every node. Tarsus never starts a shell for it. The command is read as a pipeline
of the forms the console sends, each run here in Python over the one log file:

- ``tail [-n] N`` / ``tail -N`` and ``head [-n] N`` / ``head -N``;
- ``grep [-i] [-v] [-n] [-c] [-E|-F] [-e] PATTERN`` (basic regular expressions by default, as
  grep; ``-E`` extended, ``-F`` fixed strings);
- ``cat``;

``__log_file_name__`` (where the file goes) may appear in the first stage only. Anything else
is refused with a message naming what is supported. Answers are cut at
:data:`MAX_OUTPUT` bytes.
"""

from __future__ import annotations

import collections
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FILE_PLACEHOLDER",
    "MAX_OUTPUT",
    "LogCommandError",
    "list_log_files",
    "log_file",
    "run_log_command",
]

FILE_PLACEHOLDER = "__log_file_name__"
#: Largest answer, in bytes (the answer travels in one Tars string through the registry).
MAX_OUTPUT = 4 * 1024 * 1024
_MAX_LINES = 1_000_000
SUPPORTED = "tail -n N, head -n N, grep [-i -v -n -c -E -F] PATTERN and cat, joined with |"


class LogCommandError(ValueError):
    """A ``getLogData`` command (or file name) that is not accepted."""


def list_log_files(log_dir: Path) -> list[str]:
    """Names of the log files in ``log_dir`` (upstream: name of 5+ characters with ``.log``)."""
    try:
        names = [p.name for p in log_dir.iterdir() if p.is_file()]
    except OSError:
        return []
    return sorted(n for n in names if len(n) >= 5 and ".log" in n)


def log_file(log_dir: Path, name: str) -> Path:
    """The file ``name`` in ``log_dir``; only a plain file name is accepted."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise LogCommandError(f"log file name {name!r} must be a plain file name")
    path = log_dir / name
    if not path.is_file():
        raise LogCommandError(f"the log file {name} does not exist")
    return path


@dataclass(frozen=True)
class _Stage:
    kind: str
    count: int = 0
    pattern: re.Pattern[str] | None = None
    invert: bool = False
    numbers: bool = False
    only_count: bool = False


def parse_command(cmd: str) -> list[_Stage]:
    """The pipeline ``cmd`` describes; :class:`LogCommandError` for anything else."""
    stages = []
    text = cmd.strip()
    if not text:
        return [_Stage("cat")]
    for index, part in enumerate(_split_pipeline(text)):
        try:
            words = shlex.split(part)
        except ValueError as e:
            raise LogCommandError(f"cannot read {part.strip()!r}: {e}") from None
        if FILE_PLACEHOLDER in words:
            if index != 0:
                raise LogCommandError(f"{FILE_PLACEHOLDER} may only be read by the first command")
            words = [w for w in words if w != FILE_PLACEHOLDER]
        if not words:
            raise LogCommandError(f"empty command in {cmd!r}")
        name, args = words[0], words[1:]
        if name in ("tail", "head"):
            stages.append(_Stage(name, count=_line_count(name, args)))
        elif name == "grep":
            stages.append(_grep(args))
        elif name == "cat" and not args:
            stages.append(_Stage("cat"))
        else:
            raise LogCommandError(f"{' '.join(words)!r} is not supported; use {SUPPORTED}")
    return stages


def _split_pipeline(text: str) -> list[str]:
    """Split at ``|`` outside quotes; refuse other shell syntax."""
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == "|":
            parts.append("".join(current))
            current = []
        elif ch in ";&<>`$\n":
            raise LogCommandError(f"{ch!r} is not allowed in a log command; use {SUPPORTED}")
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _line_count(name: str, args: list[str]) -> int:
    if len(args) == 1 and re.fullmatch(r"-\d+", args[0]):
        value = args[0][1:]
    elif len(args) == 2 and args[0] == "-n" and args[1].isdigit():
        value = args[1]
    elif len(args) == 1 and re.fullmatch(r"-n\d+", args[0]):
        value = args[0][2:]
    elif not args:
        value = "10"
    else:
        raise LogCommandError(f"{name} {' '.join(args)!r}: use {name} -n N")
    return min(int(value), _MAX_LINES)


def _grep(args: list[str]) -> _Stage:
    flags: set[str] = set()
    pattern: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-e" and i + 1 < len(args):
            pattern = args[i + 1]
            i += 2
            continue
        if arg.startswith("-") and len(arg) > 1 and pattern is None:
            for flag in arg[1:]:
                if flag not in "ivncEF":
                    raise LogCommandError(f"grep option -{flag} is not supported; use {SUPPORTED}")
                flags.add(flag)
        elif pattern is None:
            pattern = arg
        else:
            raise LogCommandError("grep reads only the log file: give it one pattern")
        i += 1
    if pattern is None:
        raise LogCommandError("grep needs a pattern")
    if "F" in flags:
        source = re.escape(pattern)
    elif "E" in flags:
        source = pattern
    else:
        source = _basic_to_python(pattern)
    try:
        compiled = re.compile(source, re.IGNORECASE if "i" in flags else 0)
    except re.error as e:
        raise LogCommandError(f"grep pattern {pattern!r}: {e}") from None
    return _Stage(
        "grep",
        pattern=compiled,
        invert="v" in flags,
        numbers="n" in flags,
        only_count="c" in flags,
    )


def _basic_to_python(pattern: str) -> str:
    """A grep basic regular expression as a Python one: ``+ ? | ( ) { }`` are literal
    unless escaped (GNU extensions), everything else means the same."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(nxt if nxt in "+?|(){}" else "\\" + nxt)
            i += 2
            continue
        out.append("\\" + ch if ch in "+?|(){}" else ch)
        i += 1
    return "".join(out)


def _read_lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        yield from f


def _tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines, reading from the end (logs can be large)."""
    if count <= 0:
        return []
    block = 64 * 1024
    with open(path, "rb") as f:
        f.seek(0, 2)
        end = f.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= count:
            start = max(0, end - block)
            f.seek(start)
            data = f.read(end - start) + data
            end = start
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    return lines[-count:]


def _apply(stage: _Stage, lines: Iterable[str]) -> Iterable[str]:
    if stage.kind == "cat":
        return lines
    if stage.kind == "head":
        return (line for _, line in zip(range(stage.count), lines, strict=False))
    if stage.kind == "tail":
        return collections.deque(lines, maxlen=stage.count) if stage.count else []
    assert stage.pattern is not None
    pattern = stage.pattern

    def matching() -> Iterator[str]:
        for number, line in enumerate(lines, 1):
            if bool(pattern.search(line)) != stage.invert:
                yield f"{number}:{line}" if stage.numbers else line

    if stage.only_count:
        return [f"{sum(1 for _ in matching())}\n"]
    return matching()


def run_log_command(path: Path, cmd: str) -> str:
    """Run the log command ``cmd`` over ``path`` (see the module doc)."""
    stages = parse_command(cmd)
    first = stages[0]
    lines: Iterable[str]
    if first.kind == "tail":
        lines = _tail_lines(path, first.count)
        stages = stages[1:]
    else:
        lines = _read_lines(path)
    for stage in stages:
        lines = _apply(stage, lines)
    out: list[str] = []
    size = 0
    for line in lines:
        size += len(line)
        if size > MAX_OUTPUT:
            out.append(f"\n[... cut at {MAX_OUTPUT} bytes]\n")
            break
        out.append(line)
    return "".join(out)
