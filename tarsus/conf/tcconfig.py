"""The TC_Config text format: every Tars server's config file, every profile template.

A config is a tree of *domains* (``<name> ... </name>``), each holding ordered ``key=value``
params and ordered sub-domains. The parser follows TarsCpp's ``TC_Config`` (util/src/tc_config.cpp)
line by line, so a text is accepted here exactly when a C++ server accepts it, and gives the same
values; ``docs/config.md`` lists the few places where we deliberately differ. The serializer writes
what ``TC_Config::tostr`` writes (two-space indent, ``key=value``), so a file we generate reads the
same in every Tars language.

Paths address values as ``/tars/application/server<logpath>`` and domains as
``/tars/application/server``, as upstream's ``get`` and ``getDomainVector`` do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TypeVar, overload

from tarsus.conf.errors import ConfigError

__all__ = [
    "MAX_DEPTH",
    "ConfigDomain",
    "ConfigError",
    "TCConfig",
    "escape",
    "parse",
    "parse_file",
    "unescape",
]

#: Deepest domain nesting accepted. Real configs nest 4-5 levels; the cap keeps hostile input
#: from exhausting the recursion of the tree walks (upstream has no cap).
MAX_DEPTH = 100

# TC_Common::trim's default set: what upstream strips from lines, keys and values. Not
# str.strip()'s set, which would also eat \v, \f and Unicode spaces that upstream keeps.
_TRIM = " \r\n\t"
_UNESCAPES = {"\\": "\\", "r": "\r", "n": "\n", "t": "\t", "=": "="}
_ESCAPES = str.maketrans({"\\": "\\\\", "\r": "\\r", "\n": "\\n", "\t": "\\t", "=": "\\="})
_ESCAPE_RE = re.compile(r"\\(.?)", re.DOTALL)
_INDENT = "  "

_T = TypeVar("_T")


def _show(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message, cut short so a hostile line cannot flood a log."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def unescape(text: str) -> str:
    """Decode the escapes of a key or value: ``\\\\``, ``\\r``, ``\\n``, ``\\t``, ``\\=``.

    Any other backslash, a lone one at the end included, is an error, as in upstream's
    ``TC_ConfigDomain::parse``.
    """
    if "\\" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if not code:
            raise ConfigError(
                f"lone '\\' at the end of {_show(text)}; write '\\\\' for a backslash"
            )
        decoded = _UNESCAPES.get(code)
        if decoded is None:
            raise ConfigError(
                f"invalid escape '\\{code}' in {_show(text)}; "
                "only \\\\ \\r \\n \\t and \\= are allowed"
            )
        return decoded

    return _ESCAPE_RE.sub(one, text)


def escape(text: str) -> str:
    """Encode a key or value for writing, as upstream's ``reverse_parse`` does.

    Unlike upstream, ``<`` and ``>`` are written as they are instead of being refused: they only
    matter at the start of a line, and :meth:`TCConfig.tostr` refuses keys that start with one.
    """
    return text.translate(_ESCAPES)


def _check_name(name: str) -> None:
    """Refuse a domain name that could not be written and read back as the same domain."""
    if "\n" in name or ">" in name:
        raise ConfigError(f"domain name {_show(name)} may not contain a newline or '>'")
    if name.startswith("/"):
        raise ConfigError(
            f"domain name {_show(name)} may not start with '/' (it reads as a closing tag)"
        )


class ConfigDomain:
    """One ``<name> ... </name>`` block: ordered params and ordered, uniquely named sub-domains."""

    __slots__ = ("_children", "_name", "_params")

    def __init__(self, name: str) -> None:
        _check_name(name)
        self._name = name
        self._params: dict[str, str] = {}
        self._children: dict[str, ConfigDomain] = {}

    @property
    def name(self) -> str:
        """The name as written between ``<`` and ``>``: ``<db >`` is ``"db "``.

        Upstream keys sub-domains by this untrimmed text, so ``<db >`` is not found at ``/db``
        by a C++ server; we keep that, so a file means the same thing in every language.
        """
        return self._name

    @property
    def closing_name(self) -> str:
        """What the closing tag must say: the name trimmed (``</db>`` closes ``<db >``)."""
        return self._name.strip(_TRIM)

    # -- params ------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Param keys in file order (upstream ``getDomainKey``)."""
        return list(self._params)

    def params(self) -> dict[str, str]:
        """A copy of the params, in file order (upstream ``getDomainMap``)."""
        return dict(self._params)

    @overload
    def get(self, key: str) -> str: ...
    @overload
    def get(self, key: str, default: _T) -> str | _T: ...
    def get(self, key: str, default: object = "") -> object:
        """The value of ``key``, or ``default`` (``""`` as upstream) when it is absent."""
        return self._params.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self._params[key]

    def set(self, key: str, value: str) -> None:
        """Set a param; an existing key keeps its place, a new one goes last (upstream ``set``)."""
        self._params[key] = value

    def erase(self, key: str) -> None:
        """Remove a param if present."""
        self._params.pop(key, None)

    def _put(self, key: str, value: str) -> None:
        # What a repeated key in a file does upstream: the last value wins and the key moves to
        # the end. Merges go through here too, since upstream merges by re-parsing text.
        self._params.pop(key, None)
        self._params[key] = value

    # -- sub-domains -------------------------------------------------------------------------

    def domains(self) -> list[str]:
        """Sub-domain names in file order (upstream ``getDomainVector``)."""
        return list(self._children)

    def domain(self, name: str) -> ConfigDomain | None:
        """The sub-domain called ``name``, or None."""
        return self._children.get(name)

    def add_domain(self, name: str) -> ConfigDomain:
        """The sub-domain called ``name``, created (last) if it does not exist yet."""
        child = self._children.get(name)
        if child is None:
            child = self._children[name] = ConfigDomain(name)
        return child

    def erase_domain(self, name: str) -> None:
        """Remove a sub-domain, with everything under it, if present."""
        self._children.pop(name, None)

    # -- whole-tree operations ---------------------------------------------------------------

    def copy(self) -> ConfigDomain:
        """A deep copy."""
        clone = ConfigDomain.__new__(ConfigDomain)
        clone._name = self._name
        clone._params = dict(self._params)
        clone._children = {name: child.copy() for name, child in self._children.items()}
        return clone

    def _absorb(self, other: ConfigDomain) -> None:
        """Read ``other`` after this domain, as upstream's ``joinConfig`` re-parses concatenated
        texts: its values win, and its keys move after ours; new sub-domains go last."""
        for key, value in other._params.items():
            self._put(key, value)
        for name, child in other._children.items():
            self.add_domain(name)._absorb(child)

    def __eq__(self, other: object) -> bool:
        # Order matters: adapters bind, and files are written, in the order of the tree.
        if not isinstance(other, ConfigDomain):
            return NotImplemented
        return (
            self._name == other._name
            and list(self._params.items()) == list(other._params.items())
            and list(self._children.items()) == list(other._children.items())
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<ConfigDomain {self._name!r} keys={self.keys()} domains={self.domains()}>"

    def _write(self, out: list[str], depth: int, path: str) -> None:
        tab = _INDENT * depth
        out.append(f"{tab}<{self._name}>\n")
        _write_params(self._params, out, tab + _INDENT, path)
        for name, child in self._children.items():
            child._write(out, depth + 1, f"{path}/{name}")
        out.append(f"{tab}</{self.closing_name}>\n")


def _write_params(params: Mapping[str, str], out: list[str], tab: str, path: str) -> None:
    for key, value in params.items():
        where = f"{path or '/'}<{key}>"
        if key.strip(" ") != key or value.strip(" ") != value:
            raise ConfigError(
                f"cannot write {_show(where)}: the parser trims spaces around keys and values"
            )
        if key[:1] in ("#", "<"):
            raise ConfigError(
                f"cannot write {_show(where)}: a line starting with {key[0]!r} reads as "
                "a comment or a tag"
            )
        coded = escape(key)
        if not value:
            # Upstream writes a bare key for an empty value; an empty key needs its '='.
            out.append(f"{tab}{coded or '='}\n")
            continue
        # Upstream splits at the first '=' not preceded by a backslash, so a key ending in an
        # (escaped) backslash needs a space before the '=' to be read back.
        sep = " =" if coded.endswith("\\") else "="
        out.append(f"{tab}{coded}{sep}{escape(value)}\n")


def _domain_path(path: str) -> list[str]:
    """``/a/b/c`` -> ``["a", "b", "c"]``; empty parts are skipped as upstream's ``sepstr`` does."""
    if not path.startswith("/"):
        raise ConfigError(f"domain path {_show(path)} must start with '/'")
    if "<" in path or ">" in path:
        raise ConfigError(f"domain path {_show(path)} names a key; use get() for values")
    parts = [part for part in path[1:].split("/") if part]
    if len(parts) > MAX_DEPTH:
        raise ConfigError(f"domain path {_show(path)} is deeper than {MAX_DEPTH} levels")
    return parts


def _param_path(path: str) -> tuple[list[str], str]:
    """``/a/b<key>`` -> ``(["a", "b"], "key")``."""
    if not path.startswith("/"):
        raise ConfigError(f"param path {_show(path)} must start with '/'")
    lt = path.find("<")
    gt = path.find(">", lt + 1)
    if lt < 0 or gt < 0:
        raise ConfigError(f"param path {_show(path)} has no <key>; write /domain/sub<key>")
    if gt != len(path) - 1:
        raise ConfigError(f"param path {_show(path)} goes on after its <key>")
    return _domain_path(path[:lt]), path[lt + 1 : gt]


class TCConfig:
    """A parsed config: a nameless root domain holding the top-level domains.

    Reads mirror upstream's ``TC_Config``: :meth:`get` (default ``""``), :meth:`params`
    (``getDomainMap``), :meth:`domains` (``getDomainVector``), :meth:`keys` (``getDomainKey``).
    """

    __slots__ = ("root",)

    def __init__(self, root: ConfigDomain | None = None) -> None:
        self.root = root if root is not None else ConfigDomain("")

    @classmethod
    def parse(cls, text: str, *, source: str | None = None) -> TCConfig:
        """Parse TC_Config text; ``source`` names the text in errors."""
        return parse(text, source=source)

    @classmethod
    def parse_file(cls, path: str | PathLike[str]) -> TCConfig:
        """Parse a file; see :func:`parse_file`."""
        return parse_file(path)

    # -- reading -----------------------------------------------------------------------------

    def get_domain(self, path: str) -> ConfigDomain | None:
        """The domain at ``/a/b``, or None; ``/`` is the root."""
        return self._find(_domain_path(path))

    def _find(self, names: list[str]) -> ConfigDomain | None:
        domain = self.root
        for name in names:
            child = domain.domain(name)
            if child is None:
                return None
            domain = child
        return domain

    def has_domain(self, path: str) -> bool:
        """Whether the domain exists. For ``/``: whether there is any top-level domain, as
        upstream's ``hasDomainVector`` answers."""
        domain = self.get_domain(path)
        if domain is self.root:
            return bool(self.root.domains())
        return domain is not None

    @overload
    def get(self, path: str) -> str: ...
    @overload
    def get(self, path: str, default: _T) -> str | _T: ...
    def get(self, path: str, default: object = "") -> object:
        """The value at ``/a/b<key>``, or ``default`` (``""`` as upstream) when it is absent.

        A malformed path raises :class:`ConfigError`, it does not give the default.
        """
        names, key = _param_path(path)
        domain = self._find(names)
        return default if domain is None else domain.get(key, default)

    def __getitem__(self, path: str) -> str:
        """The value at ``/a/b<key>``; :class:`KeyError` if it is absent (upstream ``[]``)."""
        missing = object()
        value = self.get(path, missing)
        if value is missing:
            raise KeyError(path)
        assert isinstance(value, str)
        return value

    def domains(self, path: str) -> list[str]:
        """Sub-domain names of ``path`` in order; ``[]`` if it does not exist."""
        domain = self.get_domain(path)
        return [] if domain is None else domain.domains()

    def params(self, path: str) -> dict[str, str]:
        """The params of ``path`` in order; ``{}`` if it does not exist."""
        domain = self.get_domain(path)
        return {} if domain is None else domain.params()

    def keys(self, path: str) -> list[str]:
        """The param keys of ``path`` in order; ``[]`` if it does not exist."""
        domain = self.get_domain(path)
        return [] if domain is None else domain.keys()

    # -- changing ----------------------------------------------------------------------------

    def add_domain(self, path: str) -> ConfigDomain:
        """The domain at ``path``, created with any missing parents."""
        domain = self.root
        for name in _domain_path(path):
            domain = domain.add_domain(name)
        return domain

    def set(self, path: str, value: str) -> None:
        """Set the value at ``/a/b<key>``, creating domains as needed (upstream ``set``)."""
        names, key = _param_path(path)
        domain = self.root
        for name in names:
            domain = domain.add_domain(name)
        domain.set(key, value)

    def insert_params(self, path: str, params: Mapping[str, str]) -> ConfigDomain:
        """Set several params of the domain at ``path``, creating it as needed (upstream
        ``insertDomainParam(path, m, true)``)."""
        domain = self.add_domain(path)
        for key, value in params.items():
            domain.set(key, value)
        return domain

    def erase(self, path: str) -> None:
        """Remove the param at ``/a/b<key>`` if present."""
        names, key = _param_path(path)
        domain = self._find(names)
        if domain is not None:
            domain.erase(key)

    def erase_domain(self, path: str) -> None:
        """Remove the domain at ``path`` and everything under it, if present."""
        names = _domain_path(path)
        if not names:
            raise ConfigError("cannot erase the root domain")
        parent = self._find(names[:-1])
        if parent is not None:
            parent.erase_domain(names[-1])

    def join(self, other: TCConfig, *, overwrite: bool) -> None:
        """Merge ``other`` into this config (upstream ``joinConfig``).

        Domains are united recursively. On a key present in both, ``overwrite=True`` takes
        ``other``'s value and ``overwrite=False`` keeps ours. Order follows upstream, which merges
        by parsing one text after the other: the later text's keys end up after the earlier
        text's, and domains keep the place of their first appearance.
        """
        if overwrite:
            self.root._absorb(other.root)
        else:
            merged = other.root.copy()
            merged._absorb(self.root)
            self.root = merged

    def copy(self) -> TCConfig:
        """A deep copy."""
        return TCConfig(self.root.copy())

    # -- writing -----------------------------------------------------------------------------

    def tostr(self) -> str:
        """The config as TC_Config text, in the layout of upstream's ``tostr``.

        Raises :class:`ConfigError` for a key or value no parser could read back (set through
        the API with leading or trailing spaces, or a key starting with ``#`` or ``<``).
        """
        out: list[str] = []
        _write_params(self.root._params, out, "", "")
        for name, child in self.root._children.items():
            child._write(out, 0, "/" + name)
        return "".join(out)

    def to_bytes(self) -> bytes:
        """:meth:`tostr` as UTF-8; bytes that were not UTF-8 in a parsed file come back as they
        were."""
        return self.tostr().encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return self.tostr()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TCConfig):
            return NotImplemented
        return self.root == other.root

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<TCConfig domains={self.root.domains()}>"


def _split_param(line: str) -> tuple[str, str]:
    """Split a trimmed param line at its first ``=`` not preceded by a backslash.

    Upstream looks only at the previous character, so in ``a\\\\=b`` the ``=`` counts as escaped
    even though the backslash before it is itself escaped: that line is the key ``a\\=b``. We
    read it the same way, and :meth:`TCConfig.tostr` never writes such a line.
    """
    pos = line.find("=")
    while pos > 0 and line[pos - 1] == "\\":
        pos = line.find("=", pos + 1)
    if pos < 0:
        return line, ""
    return line[:pos].strip(_TRIM), line[pos + 1 :].strip(_TRIM)


def parse(text: str, *, source: str | None = None) -> TCConfig:
    """Parse TC_Config text as upstream's ``TC_Config::parseString`` does.

    Lines are split at ``\\n`` only and trimmed of spaces, tabs, ``\\r``; blank lines and lines
    starting with ``#`` are skipped; a line starting with ``<`` is a tag and whatever follows its
    first ``>`` is ignored; any other line is a param. A repeated domain is the same domain; a
    repeated key keeps the last value and moves to the end. Raises :class:`ConfigError` with the
    line number for a tag without ``>``, a closing tag that does not match, a domain left open,
    a bad escape, or nesting deeper than :data:`MAX_DEPTH`.
    """
    cfg = TCConfig()
    # (domain, line it was opened on)
    stack: list[tuple[ConfigDomain, int]] = [(cfg.root, 0)]
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(_TRIM)
        if not line or line[0] == "#":
            continue
        try:
            if line[0] != "<":
                key, value = _split_param(line)
                stack[-1][0]._put(unescape(key), unescape(value))
                continue
            end = line.find(">")
            if end < 0:
                raise ConfigError(f"tag {_show(line)} has no closing '>'")
            if line[1] == "/":
                name = line[2:end]
                top, opened = stack[-1]
                if len(stack) == 1:
                    raise ConfigError(f"closing tag </{name}> has no open domain")
                if name != top.closing_name:
                    raise ConfigError(
                        f"closing tag </{name}> does not match <{top.name}> opened on line {opened}"
                    )
                stack.pop()
            else:
                if len(stack) > MAX_DEPTH:
                    raise ConfigError(f"domains nest deeper than {MAX_DEPTH} levels")
                name = line[1:end]
                stack.append((stack[-1][0].add_domain(name), lineno))
        except ConfigError as err:
            raise err.located(lineno, source) from None
    if len(stack) > 1:
        domain, opened = stack[-1]
        raise ConfigError(f"domain <{domain.name}> is never closed", opened, source)
    return cfg


def parse_file(path: str | PathLike[str]) -> TCConfig:
    """Parse a config file. It is read as UTF-8; bytes that are not (a GBK comment in an old
    file) are kept as they are, as the C++ parser keeps them."""
    data = Path(path).read_bytes()
    return parse(data.decode("utf-8", "surrogateescape"), source=str(path))
