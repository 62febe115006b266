"""What one `.tars` file says, before any name is resolved.

`build_file` turns lark's parse tree into these declarations, decoding literals on the way.
Nothing here looks outside the file: `tarsus.idl.resolve` checks names, types and values
against the whole program and produces `tarsus.idl.model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from lark import Token, Tree

from tarsus.idl.errors import Diagnostic
from tarsus.idl.model import BuiltinKind, Location

# ---- declarations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    text: str
    loc: Location


@dataclass(frozen=True)
class BuiltinRef:
    kind: BuiltinKind
    loc: Location


@dataclass(frozen=True)
class VectorRef:
    elem: TypeRef
    loc: Location


@dataclass(frozen=True)
class MapRef:
    key: TypeRef
    value: TypeRef
    loc: Location


@dataclass(frozen=True)
class NameRef:
    """``A``, ``Mod::A`` or ``Mod::Enum::A``: a type in a type position, a value elsewhere."""

    parts: tuple[str, ...]
    loc: Location

    @property
    def text(self) -> str:
        return "::".join(self.parts)


TypeRef = BuiltinRef | VectorRef | MapRef | NameRef


@dataclass(frozen=True)
class LiteralValue:
    value: bool | int | float | str
    text: str  # as written, for messages
    loc: Location


ValueRef = LiteralValue | NameRef


@dataclass
class MemberDecl:
    tag: int
    tag_loc: Location
    required: bool
    type: TypeRef
    name: Name
    default: ValueRef | None


@dataclass
class StructDecl:
    name: Name
    members: list[MemberDecl]


@dataclass
class EnumeratorDecl:
    name: Name
    value: ValueRef | None


@dataclass
class EnumDecl:
    name: Name
    enumerators: list[EnumeratorDecl]


@dataclass
class ConstDecl:
    type: TypeRef
    name: Name
    value: ValueRef


@dataclass
class KeyDecl:
    struct: NameRef
    fields: list[Name]
    loc: Location


@dataclass
class ParamDecl:
    name: Name
    type: TypeRef
    out: bool
    routekey: bool


@dataclass
class OperationDecl:
    name: Name
    return_type: TypeRef | None  # None for void
    params: list[ParamDecl]


@dataclass
class InterfaceDecl:
    name: Name
    operations: list[OperationDecl]


NamedDecl = StructDecl | EnumDecl | ConstDecl | InterfaceDecl
Decl = NamedDecl | KeyDecl


@dataclass
class ModuleDecl:
    name: Name
    items: list[Decl]


@dataclass
class IncludeDecl:
    target: str
    loc: Location


@dataclass
class FileDecl:
    path: str
    includes: list[IncludeDecl]
    modules: list[ModuleDecl]
    #: problems found while reading the tree (bad literals, misplaced definitions)
    problems: list[Diagnostic] = field(default_factory=list)


# ---- parse tree -> declarations ------------------------------------------------------------


def build_file(path: str, tree: Tree[Token]) -> FileDecl:
    """Convert the parse tree of the file at ``path``."""
    return _Builder(path).file(tree)


class _Builder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Diagnostic] = []

    def loc(self, token: Token) -> Location:
        return Location(self.path, token.line or 0, token.column or 0)

    def tree_loc(self, tree: Tree[Token]) -> Location:
        # meta (propagate_positions) also counts the keywords and punctuation that lark drops
        # from the tree, so a `vector<int>` starts at `vector`, not at `int`.
        meta = tree.meta
        if not meta.empty:
            return Location(self.path, meta.line, meta.column)
        return self.loc(_first_token(tree))

    def error(self, loc: Location, message: str) -> None:
        self.problems.append(Diagnostic(loc, message))

    def name(self, token: Token) -> Name:
        return Name(str(token), self.loc(token))

    # -- file structure

    def file(self, tree: Tree[Token]) -> FileDecl:
        result = FileDecl(self.path, [], [], self.problems)
        for item in _trees(tree):
            if item.data == "include":
                result.includes.append(self.include(item))
            elif item.data == "module":
                result.modules.append(self.module(item))
            else:
                self.error(
                    self.tree_loc(item),
                    f"{_describe_definition(item)} must be declared inside a module",
                )
        return result

    def include(self, tree: Tree[Token]) -> IncludeDecl:
        string = _tokens(tree)[1]
        return IncludeDecl(self.string(string), self.loc(string))

    def module(self, tree: Tree[Token]) -> ModuleDecl:
        name = self.name(_tokens(tree)[0])
        items: list[Decl] = []
        for item in _trees(tree):
            if item.data == "module":
                self.error(self.tree_loc(item), "modules cannot be nested")
            elif item.data == "include":
                self.error(
                    self.tree_loc(item), "#include must be at file level, outside any module"
                )
            else:
                items.append(self.definition(item))
        return ModuleDecl(name, items)

    def definition(self, tree: Tree[Token]) -> Decl:
        if tree.data == "struct":
            return self.struct(tree)
        if tree.data == "enum":
            return self.enum(tree)
        if tree.data == "const":
            return self.const(tree)
        if tree.data == "interface":
            return self.interface(tree)
        return self.key(tree)

    # -- definitions

    def struct(self, tree: Tree[Token]) -> StructDecl:
        name = self.name(_tokens(tree)[0])
        return StructDecl(name, [self.member(m) for m in _trees(tree)])

    def member(self, tree: Tree[Token]) -> MemberDecl:
        tag_tree, req_tree, type_tree, *rest = tree.children
        tag_lit = self.int_literal(cast(Tree[Token], tag_tree))
        required = str(_tokens(cast(Tree[Token], req_tree))[0]) == "require"
        member_type = self.type(cast(Tree[Token], type_tree))
        name: Name | None = None
        default: ValueRef | None = None
        as_vector = False
        for child in rest:
            if isinstance(child, Token):
                if child.type == "STAR":
                    as_vector = True
                else:
                    name = self.name(child)
            elif child.data == "array_suffix":
                as_vector = True
            else:
                default = self.value(child)
        assert name is not None
        if as_vector:
            # C-style `byte *m` and `byte m[5]` exist for tars2cpp; every other language reads
            # them as a vector of the element type.
            member_type = VectorRef(member_type, member_type.loc)
        return MemberDecl(
            tag=cast(int, tag_lit.value),
            tag_loc=tag_lit.loc,
            required=required,
            type=member_type,
            name=name,
            default=default,
        )

    def enum(self, tree: Tree[Token]) -> EnumDecl:
        name = self.name(_tokens(tree)[0])
        enumerators: list[EnumeratorDecl] = []
        for item in _trees(tree):
            value_trees = _trees(item)
            value = self.value(value_trees[0]) if value_trees else None
            enumerators.append(EnumeratorDecl(self.name(_tokens(item)[0]), value))
        return EnumDecl(name, enumerators)

    def const(self, tree: Tree[Token]) -> ConstDecl:
        type_tree, name_token, value_tree = tree.children
        return ConstDecl(
            type=self.type(cast(Tree[Token], type_tree)),
            name=self.name(cast(Token, name_token)),
            value=self.value(cast(Tree[Token], value_tree)),
        )

    def key(self, tree: Tree[Token]) -> KeyDecl:
        struct = self.name_ref(_trees(tree)[0])
        fields = [self.name(t) for t in _tokens(tree)]
        return KeyDecl(struct, fields, self.tree_loc(tree))

    def interface(self, tree: Tree[Token]) -> InterfaceDecl:
        name = self.name(_tokens(tree)[0])
        return InterfaceDecl(name, [self.operation(op) for op in _trees(tree)])

    def operation(self, tree: Tree[Token]) -> OperationDecl:
        ret, name_token, *params = tree.children
        return_type = None if isinstance(ret, Token) else self.type(ret)
        return OperationDecl(
            name=self.name(cast(Token, name_token)),
            return_type=return_type,
            params=[self.param(cast(Tree[Token], p)) for p in params],
        )

    def param(self, tree: Tree[Token]) -> ParamDecl:
        mode = ""
        if isinstance(tree.children[0], Token):
            mode = str(tree.children[0])
        type_tree = _trees(tree)[0]
        name_token = cast(Token, tree.children[-1])
        return ParamDecl(
            name=self.name(name_token),
            type=self.type(type_tree),
            out=mode == "out",
            routekey=mode == "routekey",
        )

    # -- types

    def type(self, tree: Tree[Token]) -> TypeRef:
        loc = self.tree_loc(tree)
        if tree.data == "builtin":
            return BuiltinRef(cast(BuiltinKind, str(_tokens(tree)[0])), loc)
        if tree.data == "unsigned":
            word = str(_tokens(tree)[1])
            return BuiltinRef(cast(BuiltinKind, f"unsigned {word}"), loc)
        if tree.data == "vector":
            return VectorRef(self.type(_trees(tree)[0]), loc)
        if tree.data == "map":
            key, value = _trees(tree)
            return MapRef(self.type(key), self.type(value), loc)
        return self.name_ref(tree)

    def name_ref(self, tree: Tree[Token]) -> NameRef:
        return NameRef(tuple(str(t) for t in _tokens(tree)), self.tree_loc(tree))

    # -- values

    def value(self, tree: Tree[Token]) -> ValueRef:
        if tree.data == "int_lit":
            return self.int_literal(tree)
        if tree.data == "float_lit":
            return self.float_literal(tree)
        if tree.data == "string_lit":
            token = _tokens(tree)[0]
            return LiteralValue(self.string(token), str(token), self.loc(token))
        if tree.data == "bool_lit":
            token = _tokens(tree)[0]
            return LiteralValue(str(token) == "true", str(token), self.loc(token))
        return self.name_ref(tree)

    def int_literal(self, tree: Tree[Token]) -> LiteralValue:
        tokens = _tokens(tree)
        text = "".join(tokens)
        digits = str(tokens[-1])
        negative = len(tokens) == 2 and tokens[0] == "-"
        loc = self.loc(tokens[0])
        if digits[:2] in ("0x", "0X"):
            value = int(digits[2:], 16)
        elif len(digits) > 1 and digits[0] == "0":
            if any(c in "89" for c in digits):
                self.error(loc, f"invalid octal literal '{digits}' (a leading 0 means octal)")
                value = 0
            else:
                value = int(digits, 8)
        else:
            value = int(digits)
        return LiteralValue(-value if negative else value, text, loc)

    def float_literal(self, tree: Tree[Token]) -> LiteralValue:
        tokens = _tokens(tree)
        text = "".join(tokens)
        value = float(text.rstrip("fF"))
        return LiteralValue(value, text, self.loc(tokens[0]))

    def string(self, token: Token) -> str:
        text = str(token)[1:-1]
        if "\\" not in text:
            return text
        decoded, bad = _unescape(text)
        if bad is not None:
            self.error(self.loc(token), f"unknown escape sequence '\\{bad}' in string literal")
        return decoded


_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "?": "?",
}

_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCT_DIGITS = frozenset("01234567")


def _unescape(text: str) -> tuple[str, str | None]:
    """Decode C escapes; also return the first unknown escape character, if any."""
    out: list[str] = []
    bad: str | None = None
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = text[i + 1]  # the STRING terminal never ends on a lone backslash
        i += 2
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
        elif e in _OCT_DIGITS:
            j = i
            while j < n and j < i + 2 and text[j] in _OCT_DIGITS:
                j += 1
            out.append(chr(int(text[i - 1 : j], 8)))
            i = j
        elif e in _HEX_ESCAPES:
            width = _HEX_ESCAPES[e]
            j = i
            while j < n and j < i + width and text[j] in _HEX_DIGITS:
                j += 1
            if j == i or (e != "x" and j - i != width) or int(text[i:j], 16) > 0x10FFFF:
                bad = bad or e
            else:
                out.append(chr(int(text[i:j], 16)))
            i = j
        else:
            bad = bad or e
            out.append(e)
    return "".join(out), bad


def _trees(tree: Tree[Token]) -> list[Tree[Token]]:
    return [c for c in tree.children if isinstance(c, Tree)]


def _tokens(tree: Tree[Token]) -> list[Token]:
    return [c for c in tree.children if isinstance(c, Token)]


def _first_token(tree: Tree[Token]) -> Token:
    for child in tree.children:
        if isinstance(child, Token):
            return child
        if isinstance(child, Tree):
            return _first_token(child)
    raise ValueError("empty parse tree")  # the grammar has no empty rules


def _describe_definition(tree: Tree[Token]) -> str:
    kind = str(tree.data)
    if kind == "key":
        return "key[...]"
    names = [t for t in tree.children if isinstance(t, Token) and t.type == "NAME"]
    return f"{kind} '{names[0]}'" if names else kind
