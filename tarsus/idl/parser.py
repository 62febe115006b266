"""Read `.tars` files into `tarsus.idl.model`.

`parse_files` reads the given files and every file they `#include`, each once, then checks the
whole set (`tarsus.idl.resolve`). Problems are raised as one `IdlError`: a syntax error at the
first one found, semantic errors all together.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence, Set
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from tarsus.idl import model
from tarsus.idl.errors import Diagnostic, IdlError
from tarsus.idl.resolve import resolve
from tarsus.idl.syntax import FileDecl, IncludeDecl, build_file

__all__ = ["MAX_INCLUDE_DEPTH", "parse_files", "parse_text"]

#: how deep #include may nest, as in upstream's tars2cpp
MAX_INCLUDE_DEPTH = 200

PathLike = str | os.PathLike[str]


def parse_files(paths: Sequence[PathLike], include_dirs: Sequence[PathLike] = ()) -> model.Program:
    """Parse ``paths`` and, recursively, the files they include.

    An ``#include "x.tars"`` is looked up next to the including file first, then in each of
    ``include_dirs`` in order.
    """
    loader = _Loader(include_dirs, preloaded={})
    return loader.program([_normalise(p) for p in paths])


def parse_text(
    text: str, filename: str = "<string>", include_dirs: Sequence[PathLike] = ()
) -> model.Program:
    """Parse IDL source held in memory, as if it were the file ``filename``.

    Relative includes resolve against ``filename``'s directory, or the current directory for a
    pseudo-name such as ``"<string>"``.
    """
    path = filename if _is_pseudo(filename) else _normalise(filename)
    loader = _Loader(include_dirs, preloaded={path: text})
    return loader.program([path])


# ---- loading -----------------------------------------------------------------------------------


@dataclass
class _Frame:
    """A file on the include stack, and how far its #include list has been followed."""

    decl: FileDecl
    next_include: int = 0
    included: list[str] = field(default_factory=list)


class _Loader:
    def __init__(self, include_dirs: Sequence[PathLike], preloaded: Mapping[str, str]) -> None:
        self.include_dirs = [_normalise(d) for d in include_dirs]
        self.preloaded = preloaded
        self.decls: dict[str, FileDecl] = {}  # in the order files finished: includes first
        self.includes: dict[str, list[str]] = {}
        self.started: set[str] = set()
        self.problems: list[Diagnostic] = []

    def program(self, roots: Sequence[str]) -> model.Program:
        unique_roots = list(dict.fromkeys(roots))
        for root in unique_roots:
            self.load_tree(root)
        if self.problems:
            raise IdlError(self.problems)
        files = list(self.decls.values())
        modules, diagnostics = resolve(files, _visibility(self.includes))
        if diagnostics:
            raise IdlError(diagnostics)
        return model.Program(
            files={
                f.path: model.TarsFile(f.path, self.includes[f.path], modules[f.path])
                for f in files
            },
            roots=unique_roots,
        )

    def load_tree(self, root: str) -> None:
        """Depth-first over #includes, without recursion (chains may be 200 files deep)."""
        if root in self.started:
            return
        decl = self.read(root, None)
        if decl is None:
            return
        self.started.add(root)
        stack = [_Frame(decl)]
        while stack:
            frame = stack[-1]
            if frame.next_include == len(frame.decl.includes):
                stack.pop()
                self.decls[frame.decl.path] = frame.decl
                self.includes[frame.decl.path] = frame.included
                continue
            include = frame.decl.includes[frame.next_include]
            frame.next_include += 1
            target = self.find_include(include, frame.decl.path)
            if target is None:
                continue
            if target not in frame.included:
                frame.included.append(target)
            if target in self.started:
                continue  # already read, or being read further up the stack (a cycle)
            if len(stack) >= MAX_INCLUDE_DEPTH:
                self.problems.append(
                    Diagnostic(
                        include.loc,
                        f"#include nested more than {MAX_INCLUDE_DEPTH} levels deep",
                    )
                )
                continue
            child = self.read(target, include)
            if child is not None:
                self.started.add(target)
                stack.append(_Frame(child))

    def find_include(self, include: IncludeDecl, including: str) -> str | None:
        name = include.target
        if os.path.isabs(name):
            candidates = [os.path.normpath(name)]
        else:
            here = os.getcwd() if _is_pseudo(including) else os.path.dirname(including)
            bases = [here, *self.include_dirs]
            candidates = list(dict.fromkeys(os.path.normpath(os.path.join(b, name)) for b in bases))
        for candidate in candidates:
            if candidate in self.preloaded or os.path.isfile(candidate):
                return _normalise(candidate)
        looked = ", ".join(candidates)
        self.problems.append(
            Diagnostic(include.loc, f"cannot find included file '{name}' (looked for {looked})")
        )
        return None

    def read(self, path: str, include: IncludeDecl | None) -> FileDecl | None:
        text = self.preloaded.get(path)
        if text is None:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                loc = include.loc if include is not None else model.Location(path, 1, 1)
                self.problems.append(Diagnostic(loc, f"cannot read '{path}': {e.strerror}"))
                return None
            text = _decode(data)
        return parse_one(path, text)


def _visibility(includes: Mapping[str, Sequence[str]]) -> dict[str, Set[str]]:
    """For each file, itself and every file it includes directly or not."""
    result: dict[str, Set[str]] = {}
    for start in includes:
        seen = {start}
        todo = [start]
        while todo:
            for nxt in includes.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        result[start] = frozenset(seen)
    return result


def _normalise(path: PathLike) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _is_pseudo(name: str) -> bool:
    return name.startswith("<") and name.endswith(">")


def _decode(data: bytes) -> str:
    # Upstream .tars files are often GBK (Chinese comments); comments are all that usually
    # differs, so a lenient fallback keeps line and column numbers right.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")


# ---- syntax --------------------------------------------------------------------------------


@cache
def _lark() -> Lark:
    """The LALR parser of ``grammar.lark``, from the user's cache when it is there.

    Building the parse tables costs about 0.1 s of CPU, a quarter of a ``tarsus call``; lark
    saves them in a file (``<cache dir>/idl-parser-lark<version>-py<M><m>.cache``: the user's
    own ``$TARSUS_CACHE_DIR`` or ``~/.cache/tarsus``, never a shared temporary directory, as
    the file is a pickle) and checks, when loading, that grammar, options and versions are
    the ones it was built from, else builds again. A cache that cannot be written is skipped.
    """
    grammar = resources.files("tarsus.idl").joinpath("grammar.lark").read_text(encoding="utf-8")
    options: dict[str, object] = {
        "parser": "lalr",
        "lexer": "basic",
        "propagate_positions": True,
        "maybe_placeholders": False,
    }
    cached = _parser_cache_file()
    if cached is None:
        return Lark(grammar, **options)
    if cached.is_file():
        return Lark(grammar, cache=str(cached), **options)
    # built once, written beside and renamed, so a process starting meanwhile never reads
    # half a file
    scratch = cached.with_name(f".{cached.name}.{os.getpid()}")
    parser = Lark(grammar, cache=str(scratch), **options)
    with suppress(OSError):
        os.replace(scratch, cached)
    return parser


def _parser_cache_file() -> Path | None:
    from lark import __version__ as lark_version

    from tarsus.rpc.locator import default_cache_dir

    where = default_cache_dir()
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(where, os.W_OK):
        return None
    py = f"{sys.version_info[0]}{sys.version_info[1]}"
    return where / f"idl-parser-lark{lark_version}-py{py}.cache"


def parse_one(path: str, text: str) -> FileDecl:
    """Parse one file's text (no includes followed); raise `IdlError` on a syntax error."""
    parser = _lark()
    try:
        tree = parser.parse(text)
    except UnexpectedInput as e:
        raise IdlError([_syntax_diagnostic(path, text, e)]) from None
    return build_file(path, tree)


#: how to name, in an error message, the terminals that are patterns rather than fixed words
_TERMINAL_WORDS = {
    "NAME": "a name",
    "INTEGER": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "INCLUDE": "'#include'",
    "$END": "end of file",
}
_TYPE_WORDS = {"bool", "byte", "short", "int", "long", "float", "double", "string"}
_TYPE_STARTS = {*(f"'{w}'" for w in _TYPE_WORDS), "'unsigned'", "'vector'", "'map'", "a name"}
_VALUE_STARTS = {"an integer", "a number", "a string", "'true'", "'false'", "a name", "'-'", "'+'"}


def _syntax_diagnostic(path: str, text: str, e: UnexpectedInput) -> Diagnostic:
    line = e.line if isinstance(e.line, int) and e.line > 0 else 1
    column = e.column if isinstance(e.column, int) and e.column > 0 else 1
    loc = model.Location(path, line, column)
    if isinstance(e, UnexpectedCharacters):
        rest = text[e.pos_in_stream :]
        if rest.startswith("/*"):
            return Diagnostic(loc, "unterminated comment: '/*' has no closing '*/'")
        if rest.startswith('"'):
            return Diagnostic(loc, "unterminated string: no closing '\"' on this line")
        if rest.startswith("#"):
            return Diagnostic(loc, "unknown directive: only '#include \"file\"' is supported")
        return Diagnostic(loc, f"unexpected character {rest[:1]!r}")
    if not isinstance(e, UnexpectedToken):
        return Diagnostic(loc, str(e).splitlines()[0])
    token = e.token
    # LALR merges lookahead sets, so e.expected can list tokens that would fail a step later;
    # accepts tries each one and keeps those that really fit.
    acceptable: set[str] = set(e.accepts) or set(e.expected)
    words = _expected_words(acceptable)
    expected = words[0] if len(words) == 1 else "one of " + ", ".join(words)
    if token.type == "$END":
        return Diagnostic(_end_of(path, text), f"unexpected end of file; expected {expected}")
    found = _describe_token(token)
    if "SEMICOLON" in acceptable:
        previous = _token_before(text, token)
        if previous is not None and (previous.end_line or 0) < (token.line or 0):
            # The user most likely forgot the ';' at the end of the previous line.
            end = model.Location(path, previous.end_line or 1, previous.end_column or 1)
            return Diagnostic(end, f"missing ';' after '{previous}' (found {found} next)")
        if acceptable == {"SEMICOLON"} or token.type == "RBRACE":
            return Diagnostic(loc, f"missing ';' before {found}")
    if token.type != "NAME" and str(token).isidentifier() and "a name" in words:
        return Diagnostic(loc, f"'{token}' is a keyword and cannot be used as a name")
    return Diagnostic(loc, f"unexpected {found}; expected {expected}")


def _describe_token(token: Token) -> str:
    text = str(token)
    if token.type == "NAME":
        return f"name '{text}'"
    if token.type in ("INTEGER", "FLOAT"):
        return f"number {text}"
    if token.type == "STRING":
        return f"string {text}"
    if text.isidentifier():
        return f"keyword '{text}'"
    return f"'{text}'"


def _expected_words(names: Iterable[str]) -> list[str]:
    """The expected terminals in plain words, grouped where possible ("a type")."""
    parser = _lark()
    names = set(names)
    if "RBRACE" in names:
        # Inside a module the grammar accepts #include and module only to reject them later
        # with a better message; do not suggest them.
        names -= {"INCLUDE", "MODULE"}
    words: set[str] = set()
    for name in names:
        if name in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[name])
            continue
        pattern = parser.get_terminal(name).pattern
        words.add(f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name)
    if words >= _TYPE_STARTS:
        words = (words - _TYPE_STARTS) | {"a type"}
    if words >= _VALUE_STARTS:
        words = (words - _VALUE_STARTS) | {"a value"}
    return sorted(words)


def _token_before(text: str, target: Token) -> Token | None:
    previous: Token | None = None
    stop = target.start_pos if target.start_pos is not None else len(text)
    try:
        for token in _lark().lex(text):
            if (token.start_pos or 0) >= stop:
                return previous
            previous = token
    except UnexpectedInput:
        pass
    return previous


def _end_of(path: str, text: str) -> model.Location:
    lines = text.split("\n")
    return model.Location(path, len(lines), len(lines[-1]) + 1)
