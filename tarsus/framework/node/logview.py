"""The web console's log viewer on the node: ``getLogFileList`` and ``getLogData`` (``NodeImp``).

Upstream (``ServerManager::getLogData`` in TarsFramework's tarsnode) runs ``getLogData``'s
``cmd`` through a shell after replacing ``__log_file_name__`` with the file's path: whoever can
reach the admin registry runs any command on every node. Tarsus never starts a shell for it.
The command is read as a pipeline of the forms the console sends, each run here in Python over
the one log file:

- ``tail [-n] N`` / ``tail -N`` and ``head [-n] N`` / ``head -N``;
- ``grep [-a] [-i] [-v] [-n] [-c] [-E|-F] [-e] PATTERN`` (basic regular expressions by
  default, as grep; ``-E`` extended, ``-F`` fixed strings; ``-a`` changes nothing: logs are
  read as text anyway);
- ``cat``;
- ``iconv -c -f UTF-8 -t UTF-8`` (invalid UTF-8 dropped) and ``sed 's/[\\cA-\\cZ]//g'``
  (control characters 0x01-0x1A stripped), the tail upstream TarsWeb puts on every command.

``__log_file_name__`` (where the file goes) may appear in the first stage only. The exact
command line upstream TarsWeb builds (``LogviewService.getQueryParam`` in TarsWeb 3.0.x)::

    tail -N __log_file_name__ | grep  -a  [-i ]KEYWORD|tail -M | iconv -c -f UTF-8 -t UTF-8|sed ...

(``head`` for either ``tail``, the grep part only with a keyword) is recognised as a whole: its
keyword, which TarsWeb pastes unquoted, is searched for as literal text (``grep -F``), whatever
characters it holds; it is never read as shell syntax. Anything else is refused with a message
naming what is supported.

A search runs in a worker process (:func:`search_log`): Python's regular expressions backtrack,
and ``grep -E '(a+)+b'`` over a line of 30 ``a`` takes minutes, holding the GIL, so in the
node's own process it would stop every other call. The worker gets a CPU time, a memory and a
file-read budget (:class:`SearchLimits`), and is killed when its time is up; the answer then
says so. Answers are cut at :data:`MAX_OUTPUT` bytes.

This module uses the standard library only: the worker runs it as a script
(``python -I -S logview.py``), which starts in a few milliseconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import shlex
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FILE_PLACEHOLDER",
    "MAX_OUTPUT",
    "LogCommandError",
    "LogSearcher",
    "SearchLimits",
    "list_log_files",
    "log_file",
    "run_log_command",
    "search_log",
]

FILE_PLACEHOLDER = "__log_file_name__"
#: Largest answer, in bytes (the answer travels in one Tars string through the registry).
MAX_OUTPUT = 4 * 1024 * 1024
_MAX_LINES = 1_000_000
SUPPORTED = (
    "tail -n N, head -n N, grep [-a -i -v -n -c -E -F] PATTERN, cat, "
    "iconv -c -f UTF-8 -t UTF-8 and sed 's/[\\cA-\\cZ]//g', joined with |"
)
#: What ``sed 's/[\cA-\cZ]//g'`` removes: Ctrl-A (0x01) to Ctrl-Z (0x1A), tab included;
#: not the newline, which sed never sees (it works line by line).
_CONTROL = re.compile("[\x01-\x09\x0b-\x1a]")
#: Undecodable bytes, as ``surrogateescape`` reads them.
_INVALID = re.compile("[\udc80-\udcff]")
_UTF8 = {"utf-8", "utf8"}
_SED_CONTROL = "s/[\\cA-\\cZ]//g"
#: The command line TarsWeb's ``LogviewService.getQueryParam`` builds (see the module doc).
_TARSWEB = re.compile(
    r"\s*(?P<first>tail|head)\s+-(?P<first_n>\d+)\s+" + FILE_PLACEHOLDER + r"\s*"
    r"(?:\|\s*grep\s+-a\s+(?P<ignore>-i\s+)?(?P<keyword>.*?)\s*)?"
    r"\|\s*(?P<second>tail|head)\s+-(?P<second_n>\d+)\s*"
    r"\|\s*iconv\s+-c\s+-f\s+UTF-8\s+-t\s+UTF-8\s*"
    r"\|\s*sed\s+'s/\[\\cA-\\cZ\]//g'\s*\Z",
    re.DOTALL,
)


class LogCommandError(ValueError):
    """A ``getLogData`` command (or file name) that is not accepted, or a search that ran
    out of time or memory."""


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


# ---------------------------------------------------------------------------------- parsing


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
    text = cmd.strip()
    if not text:
        return [_Stage("cat")]
    tarsweb = _TARSWEB.match(text)
    if tarsweb is not None:
        return _tarsweb_stages(tarsweb)
    stages = []
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
        elif name == "iconv" and _is_utf8_cleanup(args):
            stages.append(_Stage("iconv"))
        elif name == "sed" and args == [_SED_CONTROL]:
            stages.append(_Stage("sed"))
        else:
            raise LogCommandError(f"{' '.join(words)!r} is not supported; use {SUPPORTED}")
    return stages


def _tarsweb_stages(match: re.Match[str]) -> list[_Stage]:
    stages = [_Stage(match["first"], count=min(int(match["first_n"]), _MAX_LINES))]
    keyword = match["keyword"]
    if keyword:
        flags = re.IGNORECASE if match["ignore"] else 0
        stages.append(_Stage("grep", pattern=re.compile(re.escape(keyword), flags)))
    stages.append(_Stage(match["second"], count=min(int(match["second_n"]), _MAX_LINES)))
    return [*stages, _Stage("iconv"), _Stage("sed")]


def _is_utf8_cleanup(args: list[str]) -> bool:
    """``iconv -c -f UTF-8 -t UTF-8`` (options in any order): drop what is not UTF-8."""
    options: dict[str, str] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "-c":
            options["c"] = ""
        elif arg in ("-f", "-t") and rest:
            options[arg[1]] = rest.pop(0).lower()
        else:
            return False
    return options.keys() == {"c", "f", "t"} and options["f"] in _UTF8 and options["t"] in _UTF8


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
                if flag not in "aivncEF":
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


# ---------------------------------------------------------------------------------- running
#
# Lines are decoded with ``surrogateescape``: bytes that are not UTF-8 survive the pipeline as
# lone surrogates, ``iconv`` drops them, and the answer turns any left into U+FFFD.


@dataclass
class _Notes:
    """What the answer should say besides the lines (a file read only in part)."""

    lines: list[str]


def _read_lines(path: Path, max_read: int, notes: _Notes) -> Iterator[str]:
    read = 0
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        for line in f:
            read += len(line)
            if read > max_read:
                notes.lines.append(f"[... stopped reading {path.name} after {max_read} bytes]\n")
                return
            yield line


def _tail_lines(path: Path, count: int, max_read: int, notes: _Notes) -> list[str]:
    """The last ``count`` lines, reading from the end (logs can be large), at most
    ``max_read`` bytes."""
    if count <= 0:
        return []
    block = 64 * 1024
    with open(path, "rb") as f:
        f.seek(0, 2)
        end = f.tell()
        chunks: list[bytes] = []
        newlines = 0
        read = 0
        while end > 0 and newlines <= count:
            if read >= max_read:
                notes.lines.append(f"[... read only the last {max_read} bytes of {path.name}]\n")
                break
            start = max(0, end - min(block, max_read - read))
            f.seek(start)
            chunk = f.read(end - start)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
            read += len(chunk)
            end = start
    data = b"".join(reversed(chunks))
    lines = data.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    return lines[-count:]


def _apply(stage: _Stage, lines: Iterable[str]) -> Iterable[str]:
    if stage.kind == "cat":
        return lines
    if stage.kind == "head":
        return (line for _, line in zip(range(stage.count), lines, strict=False))
    if stage.kind == "tail":
        return collections.deque(lines, maxlen=stage.count) if stage.count else []
    if stage.kind == "iconv":
        return (_INVALID.sub("", line) for line in lines)
    if stage.kind == "sed":
        return (_CONTROL.sub("", line) for line in lines)
    assert stage.pattern is not None
    pattern = stage.pattern

    def matching() -> Iterator[str]:
        for number, line in enumerate(lines, 1):
            if bool(pattern.search(line)) != stage.invert:
                yield f"{number}:{line}" if stage.numbers else line

    if stage.only_count:
        return [f"{sum(1 for _ in matching())}\n"]
    return matching()


def run_log_command(
    path: Path, cmd: str, *, max_read: int = 1 << 62, max_output: int = MAX_OUTPUT
) -> str:
    """Run the log command ``cmd`` over ``path`` in this process (see the module doc; the
    node uses :func:`search_log`, which runs this in a worker). At most ``max_read`` bytes
    of the file are read; the answer is cut at ``max_output`` bytes."""
    stages = parse_command(cmd)
    notes = _Notes([])
    first = stages[0]
    lines: Iterable[str]
    if first.kind == "tail":
        lines = _tail_lines(path, first.count, max_read, notes)
        stages = stages[1:]
    else:
        lines = _read_lines(path, max_read, notes)
    for stage in stages:
        lines = _apply(stage, lines)
    out: list[str] = []
    size = 0
    for line in lines:
        size += len(line)
        if size > max_output:
            out.append(f"\n[... cut at {max_output} bytes]\n")
            break
        out.append(line)
    if notes.lines and out and not out[-1].endswith("\n"):
        out.append("\n")
    text = "".join(out + notes.lines)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# ------------------------------------------------------------------------ the worker process


@dataclass(frozen=True)
class SearchLimits:
    """What one log search may use (the node's settings carry them)."""

    #: seconds of wall-clock time, then the worker is killed and the answer says so
    timeout: float = 10.0
    #: bytes of address space of the worker (``RLIMIT_AS``)
    memory: int = 512 * 1024 * 1024
    #: bytes of the log file read at most (from the end for ``tail``, else from the start)
    max_read: int = 256 * 1024 * 1024
    #: bytes of answer at most
    max_output: int = MAX_OUTPUT


async def search_log(path: Path, cmd: str, limits: SearchLimits) -> str:
    """Run ``cmd`` over ``path`` in a worker process within ``limits``; the answer, or
    :class:`LogCommandError` for a refused command or a search that ran out of time or
    memory. The event loop only waits for the worker."""
    request = json.dumps(
        {
            "path": str(path),
            "cmd": cmd,
            "memory": limits.memory,
            "max_read": limits.max_read,
            "max_output": limits.max_output,
        }
    ).encode()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        __file__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(limits.timeout):
            out, err = await proc.communicate(request)
    except TimeoutError:
        raise LogCommandError(
            f"the log search timed out after {limits.timeout:g} s and was stopped "
            "(a pattern that backtracks, or too much to read: narrow the search)"
        ) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    try:
        answer = json.loads(out)
    except ValueError:
        detail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [
            f"exit status {proc.returncode}"
        ]
        raise LogCommandError(f"the log search failed: {detail[0]}") from None
    if "error" in answer:
        raise LogCommandError(str(answer["error"]))
    return str(answer["text"])


class LogSearcher:
    """:func:`search_log` with at most ``concurrency`` workers at a time, so that a flood
    of searches cannot take every core of the node."""

    def __init__(self, limits: SearchLimits, *, concurrency: int = 2) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(concurrency)

    async def search(self, path: Path, cmd: str) -> str:
        async with self._slots:
            return await search_log(path, cmd, self.limits)


def _worker_main() -> None:
    """The worker: a JSON request on stdin, ``{"text": ...}`` or ``{"error": ...}`` on
    stdout."""
    import resource

    request = json.loads(sys.stdin.buffer.read())
    memory = int(request["memory"])
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        text = run_log_command(
            Path(request["path"]),
            request["cmd"],
            max_read=int(request["max_read"]),
            max_output=int(request["max_output"]),
        )
        answer = {"text": text}
    except LogCommandError as e:
        answer = {"error": str(e)}
    except MemoryError:
        answer = {
            "error": f"the log search was too large: it needed more than {memory} bytes of "
            "memory (ask for fewer lines)"
        }
    except OSError as e:
        answer = {"error": f"cannot read {Path(request['path']).name}: {e.strerror}"}
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    _worker_main()
