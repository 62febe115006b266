"""Semantic checks: turn the declarations of a set of files into `tarsus.idl.model`.

Names resolve across every occurrence of a module (modules may be re-opened, in the same file or
another), but only among the definitions a file can see: its own and those of the files it
includes, directly or not. Declaration order does not matter. Consts and enumerator values may
refer to each other; they are evaluated on demand, and a cycle is reported as an error.

Every problem is collected as a `Diagnostic`; the caller raises them together.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Literal

from tarsus.idl import model
from tarsus.idl.errors import Diagnostic
from tarsus.idl.syntax import (
    BuiltinRef,
    ConstDecl,
    EnumDecl,
    FileDecl,
    InterfaceDecl,
    KeyDecl,
    LiteralValue,
    MapRef,
    NamedDecl,
    NameRef,
    StructDecl,
    TypeRef,
    ValueRef,
    VectorRef,
)

SymbolKind = Literal["struct", "enum", "const", "interface"]

#: signed two's complement ranges, and the unsigned kinds
INT_RANGES: dict[str, tuple[int, int]] = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsigned byte": (0, 2**8 - 1),
    "unsigned short": (0, 2**16 - 1),
    "unsigned int": (0, 2**32 - 1),
}

MAX_PARAMS = 255
MAX_TAG = 255
_FLOAT32_MAX = 3.4028234663852886e38
_ENUM_RANGE = INT_RANGES["int"]  # enumerators travel as int


@dataclass(eq=False)
class _Symbol:
    kind: SymbolKind
    module: str
    name: str
    decl: NamedDecl
    file: str

    @property
    def display(self) -> str:
        return f"{self.module}::{self.name}"


@dataclass(frozen=True)
class _Scope:
    """Where a name is being looked up from."""

    module: str
    file: str


def resolve(
    files: Sequence[FileDecl], visible: Mapping[str, Set[str]]
) -> tuple[dict[str, list[model.Module]], list[Diagnostic]]:
    """Check ``files`` (includes first) and build their modules, keyed by file path.

    ``visible[path]`` is the set of files whose definitions ``path`` may use: itself and
    everything it includes, directly or not.
    """
    resolver = _Resolver(files, visible)
    modules = resolver.run()
    order = {f.path: i for i, f in enumerate(files)}
    diagnostics = sorted(
        resolver.diagnostics,
        key=lambda d: (order.get(d.loc.file, len(order)), d.loc.line, d.loc.col),
    )
    return modules, diagnostics


class _Resolver:
    def __init__(self, files: Sequence[FileDecl], visible: Mapping[str, Set[str]]) -> None:
        self.files = files
        self.visible = visible
        self.diagnostics: list[Diagnostic] = []
        self.symbols: dict[str, dict[str, _Symbol]] = {}  # module -> name -> symbol
        self.enums_by_member: dict[str, dict[str, list[_Symbol]]] = {}  # module -> enumerator
        self.enum_values: dict[tuple[str, str], dict[str, int]] = {}
        self.enums_busy: set[tuple[str, str]] = set()
        self.const_values: dict[tuple[str, str], tuple[model.Type, model.Value] | None] = {}
        self.consts_busy: set[tuple[str, str]] = set()

    def error(self, loc: model.Location, message: str) -> None:
        self.diagnostics.append(Diagnostic(loc, message))

    # ---- driver

    def run(self) -> dict[str, list[model.Module]]:
        for f in self.files:
            self.diagnostics.extend(f.problems)
        self.register()
        result: dict[str, list[model.Module]] = {}
        structs: dict[tuple[str, str], model.Struct] = {}
        keys: list[tuple[KeyDecl, _Scope]] = []
        for f in self.files:
            modules: list[model.Module] = []
            for mod in f.modules:
                scope = _Scope(mod.name.text, f.path)
                out = model.Module(mod.name.text)
                for item in mod.items:
                    if isinstance(item, KeyDecl):
                        keys.append((item, scope))
                        continue
                    definition = self.definition(item, scope)
                    if definition is None:
                        continue
                    if isinstance(definition, model.Struct):
                        structs[(definition.module, definition.name)] = definition
                    out.definitions.append(definition)
                modules.append(out)
            result[f.path] = modules
        for key, scope in keys:
            self.key(key, scope, structs)
        self.check_recursion(structs)
        return result

    def register(self) -> None:
        kinds: dict[type, SymbolKind] = {
            StructDecl: "struct",
            EnumDecl: "enum",
            ConstDecl: "const",
            InterfaceDecl: "interface",
        }
        for f in self.files:
            for mod in f.modules:
                table = self.symbols.setdefault(mod.name.text, {})
                for item in mod.items:
                    if isinstance(item, KeyDecl):
                        continue
                    name = item.name.text
                    first = table.get(name)
                    if first is not None:
                        self.error(
                            item.name.loc,
                            f"'{name}' is already defined in module '{mod.name.text}'"
                            f" (as a {first.kind} at {first.decl.name.loc})",
                        )
                        continue
                    sym = _Symbol(kinds[type(item)], mod.name.text, name, item, f.path)
                    table[name] = sym
                    if isinstance(item, EnumDecl):
                        index = self.enums_by_member.setdefault(mod.name.text, {})
                        for e in item.enumerators:
                            owners = index.setdefault(e.name.text, [])
                            if sym not in owners:  # a duplicate enumerator, reported later
                                owners.append(sym)

    def definition(self, decl: NamedDecl, scope: _Scope) -> model.Definition | None:
        sym = self.symbols[scope.module][decl.name.text]
        if sym.decl is not decl:
            return None  # a duplicate, already reported
        if isinstance(decl, StructDecl):
            return self.struct(decl, scope)
        if isinstance(decl, EnumDecl):
            return self.enum(sym)
        if isinstance(decl, ConstDecl):
            return self.const(sym)
        return self.interface(decl, scope)

    # ---- lookup

    def is_visible(self, sym: _Symbol, scope: _Scope) -> bool:
        return sym.file in self.visible.get(scope.file, {scope.file})

    def lookup(self, module: str, name: str, scope: _Scope) -> _Symbol | None:
        sym = self.symbols.get(module, {}).get(name)
        if sym is None or not self.is_visible(sym, scope):
            return None
        return sym

    def find(self, ref: NameRef, scope: _Scope) -> _Symbol | None:
        if len(ref.parts) == 1:
            return self.lookup(scope.module, ref.parts[0], scope)
        if len(ref.parts) == 2:
            return self.lookup(ref.parts[0], ref.parts[1], scope)
        return None

    def hint(self, ref: NameRef, scope: _Scope, kinds: Set[str]) -> str:
        """A suggestion to append to an "unknown name" message, or ""."""
        if len(ref.parts) == 1:
            name = ref.parts[0]
            own = self.symbols.get(scope.module, {}).get(name)
            if own is not None and own.kind in kinds:
                return self.not_included(own)
            others = [
                table[name]
                for module, table in self.symbols.items()
                if module != scope.module and name in table and table[name].kind in kinds
            ]
            if len(others) == 1:
                suggestion = others[0]
                extra = "" if self.is_visible(suggestion, scope) else self.not_included(suggestion)
                return f"; did you mean '{suggestion.display}'?{extra}"
            return ""
        if len(ref.parts) == 2:
            sym = self.symbols.get(ref.parts[0], {}).get(ref.parts[1])
            if sym is not None and sym.kind in kinds:
                return self.not_included(sym)
        return ""

    @staticmethod
    def not_included(sym: _Symbol) -> str:
        return f" ('{sym.display}' is declared in {sym.file}, which this file does not #include)"

    # ---- types

    def type(self, ref: TypeRef, scope: _Scope) -> model.Type | None:
        if isinstance(ref, BuiltinRef):
            return model.BuiltinType(ref.kind)
        if isinstance(ref, VectorRef):
            elem = self.type(ref.elem, scope)
            return None if elem is None else model.VectorType(elem)
        if isinstance(ref, MapRef):
            key = self.type(ref.key, scope)
            value = self.type(ref.value, scope)
            return None if key is None or value is None else model.MapType(key, value)
        sym = self.find(ref, scope)
        if sym is None:
            hint = self.hint(ref, scope, {"struct", "enum"})
            self.error(ref.loc, f"unknown type '{ref.text}'{hint}")
            return None
        if sym.kind == "struct" or sym.kind == "enum":
            return model.NamedType(sym.module, sym.name, sym.kind)
        self.error(ref.loc, f"'{ref.text}' is {_article(sym.kind)}, not a type")
        return None

    # ---- values

    def value(
        self, ref: ValueRef, target: model.Type, scope: _Scope, owner: str, noun: str = "value"
    ) -> model.Value | None:
        """Check ``ref`` as a value of type ``target``.

        Messages call it "<noun> <ref> of <owner>", as in "default 300 of member 'b'".
        """
        if isinstance(target, model.VectorType | model.MapType) or (
            isinstance(target, model.NamedType) and target.kind == "struct"
        ):
            self.error(
                ref.loc,
                f"{owner} has type '{_type_name(target)}';"
                " only built-in and enum types can have a default value",
            )
            return None
        if isinstance(ref, LiteralValue):
            raw: model.Value | None = ref.value
        else:
            raw = self.named_value(ref, target, scope)
        if raw is None:
            return None
        return self.coerce(raw, target, ref, f"{noun} {ref.text} of {owner}")

    def coerce(
        self, raw: model.Value, target: model.Type, ref: ValueRef, what: str
    ) -> model.Value | None:
        if isinstance(target, model.NamedType):  # an enum; structs were refused by value()
            if isinstance(raw, model.EnumValue):
                if (raw.module, raw.enum) == (target.module, target.name):
                    return raw
                self.error(
                    ref.loc,
                    f"{what} is an enumerator of '{raw.module}::{raw.enum}',"
                    f" not of '{target.module}::{target.name}'",
                )
                return None
            if isinstance(raw, int) and not isinstance(raw, bool):
                member = self.enum_member_with_value(target, raw)
                if member is not None:
                    return member
                self.error(
                    ref.loc,
                    f"{what} is not a value of enum '{target.module}::{target.name}'",
                )
                return None
            self.wrong_type(ref, target, what)
            return None
        if isinstance(target, model.BuiltinType):
            kind = target.kind
            if kind == "bool":
                if isinstance(raw, bool):
                    return raw
            elif kind == "string":
                if isinstance(raw, str):
                    return raw
            elif kind in ("float", "double"):
                if isinstance(raw, int | float) and not isinstance(raw, bool):
                    number = float(raw)
                    limit = _FLOAT32_MAX if kind == "float" else math.inf
                    if math.isinf(number) or abs(number) > limit:
                        self.error(ref.loc, f"{what} is out of range for '{kind}'")
                        return None
                    return number
            else:
                number_or_none = raw.value if isinstance(raw, model.EnumValue) else raw
                if isinstance(number_or_none, int) and not isinstance(number_or_none, bool):
                    lo, hi = INT_RANGES[kind]
                    if not lo <= number_or_none <= hi:
                        self.error(
                            ref.loc,
                            f"{what} is out of range for '{kind}' ({lo}..{hi})",
                        )
                        return None
                    return number_or_none
        self.wrong_type(ref, target, what)
        return None

    def wrong_type(self, ref: ValueRef, target: model.Type, what: str) -> None:
        self.error(
            ref.loc,
            f"{what} has the wrong type: '{_type_name(target)}' needs {_expectation(target)}",
        )

    def named_value(self, ref: NameRef, target: model.Type, scope: _Scope) -> model.Value | None:
        """Resolve an enumerator or const name used as a value."""
        parts = ref.parts
        target_enum = self.target_enum(target, scope)
        if len(parts) == 1:
            name = parts[0]
            if target_enum is not None and self.has_member(target_enum, name):
                return self.enum_value(target_enum, name, ref)
            sym = self.lookup(scope.module, name, scope)
            if sym is not None:
                return self.symbol_value(sym, ref)
            owners = self.enums_with_member(scope.module, name, scope)
            if len(owners) == 1:
                return self.enum_value(owners[0], name, ref)
            if len(owners) > 1:
                choices = ", ".join(f"'{o.name}::{name}'" for o in owners)
                self.error(ref.loc, f"'{name}' is ambiguous: write one of {choices}")
                return None
        elif len(parts) == 2:
            first, name = parts
            enum_sym = self.lookup(scope.module, first, scope)
            if enum_sym is not None and enum_sym.kind == "enum":
                return self.enum_member_or_error(enum_sym, name, ref)
            if first in self.symbols:
                sym = self.lookup(first, name, scope)
                if sym is not None:
                    return self.symbol_value(sym, ref)
                if (
                    target_enum is not None
                    and target_enum.module == first
                    and self.has_member(target_enum, name)
                ):
                    return self.enum_value(target_enum, name, ref)
                owners = self.enums_with_member(first, name, scope)
                if len(owners) == 1:
                    return self.enum_value(owners[0], name, ref)
                if len(owners) > 1:
                    choices = ", ".join(f"'{first}::{o.name}::{name}'" for o in owners)
                    self.error(ref.loc, f"'{ref.text}' is ambiguous: write one of {choices}")
                    return None
        elif len(parts) == 3:
            enum_sym = self.lookup(parts[0], parts[1], scope)
            if enum_sym is not None and enum_sym.kind == "enum":
                return self.enum_member_or_error(enum_sym, parts[2], ref)
        hint = self.hint(ref, scope, {"const"})
        self.error(
            ref.loc, f"unknown name '{ref.text}': not an enumerator or a const in scope{hint}"
        )
        return None

    def symbol_value(self, sym: _Symbol, ref: NameRef) -> model.Value | None:
        if sym.kind != "const":
            self.error(ref.loc, f"'{ref.text}' is {_article(sym.kind)}, not a value")
            return None
        evaluated = self.const_value(sym)
        return None if evaluated is None else evaluated[1]

    def target_enum(self, target: model.Type, scope: _Scope) -> _Symbol | None:
        if isinstance(target, model.NamedType) and target.kind == "enum":
            return self.symbols[target.module][target.name]
        return None

    # ---- enums

    def enum(self, sym: _Symbol) -> model.Enum:
        decl = sym.decl
        assert isinstance(decl, EnumDecl)
        if not decl.enumerators:
            self.error(decl.name.loc, f"enum '{decl.name.text}' has no enumerators")
        values = self.members_of(sym)
        members: list[model.EnumMember] = []
        seen: set[str] = set()
        for e in decl.enumerators:
            if e.name.text in seen or e.name.text not in values:
                continue
            seen.add(e.name.text)
            members.append(model.EnumMember(e.name.text, values[e.name.text], e.name.loc))
        return model.Enum(sym.module, sym.name, members, decl.name.loc)

    def has_member(self, sym: _Symbol, name: str) -> bool:
        decl = sym.decl
        assert isinstance(decl, EnumDecl)
        return any(e.name.text == name for e in decl.enumerators)

    def enums_with_member(self, module: str, name: str, scope: _Scope) -> list[_Symbol]:
        owners = self.enums_by_member.get(module, {}).get(name, [])
        return [o for o in owners if self.is_visible(o, scope)]

    def enum_member_or_error(self, sym: _Symbol, name: str, ref: NameRef) -> model.Value | None:
        if self.has_member(sym, name):
            return self.enum_value(sym, name, ref)
        self.error(ref.loc, f"enum '{sym.display}' has no enumerator '{name}'")
        return None

    def enum_value(self, sym: _Symbol, name: str, ref: NameRef) -> model.EnumValue | None:
        values = self.members_of(sym)
        if name not in values:
            if (sym.module, sym.name) in self.enums_busy:
                self.error(ref.loc, f"'{ref.text}' is used to define its own value")
            return None  # otherwise its definition failed, and said why
        return model.EnumValue(sym.module, sym.name, name, values[name])

    def enum_member_with_value(self, target: model.NamedType, value: int) -> model.EnumValue | None:
        sym = self.symbols[target.module][target.name]
        for name, member_value in self.members_of(sym).items():
            if member_value == value:
                return model.EnumValue(sym.module, sym.name, name, value)
        return None

    def members_of(self, sym: _Symbol) -> dict[str, int]:
        """Enumerator values of ``sym``; while they are being computed, the ones known so far."""
        key = (sym.module, sym.name)
        if key in self.enum_values:
            return self.enum_values[key]
        values: dict[str, int] = {}
        self.enum_values[key] = values
        self.enums_busy.add(key)
        decl = sym.decl
        assert isinstance(decl, EnumDecl)
        scope = _Scope(sym.module, sym.file)
        names = [e.name.text for e in decl.enumerators]
        seen: set[str] = set()
        next_value = 0
        for index, e in enumerate(decl.enumerators):
            name = e.name.text
            if name in seen:
                self.error(e.name.loc, f"duplicate enumerator '{name}' in enum '{sym.name}'")
                continue
            seen.add(name)
            value: int | None = next_value
            if e.value is not None:
                value = self.enumerator_value(e.value, sym, names, index, scope)
            if value is None:
                continue
            lo, hi = _ENUM_RANGE
            if not lo <= value <= hi:
                self.error(
                    e.name.loc,
                    f"value {value} of enumerator '{name}' is out of range for int ({lo}..{hi})",
                )
                continue
            values[name] = value
            next_value = value + 1
        self.enums_busy.discard(key)
        return values

    def enumerator_value(
        self, ref: ValueRef, sym: _Symbol, names: Sequence[str], index: int, scope: _Scope
    ) -> int | None:
        if isinstance(ref, NameRef):
            own = ref.parts[-1] if ref.parts[:-1] in ((), (sym.name,)) else None
            if own is not None and own in self.enum_values[(sym.module, sym.name)]:
                return self.enum_values[(sym.module, sym.name)][own]
            if own is not None and own in names[index + 1 :]:
                self.error(
                    ref.loc,
                    f"'{ref.text}' is declared later in enum '{sym.name}';"
                    " only earlier enumerators can be used",
                )
                return None
        name = names[index]
        value = self.value(ref, model.BuiltinType("int"), scope, f"enumerator '{name}'")
        if value is None:
            return None
        assert isinstance(value, int)
        return value

    # ---- consts

    def const(self, sym: _Symbol) -> model.Const | None:
        evaluated = self.const_value(sym)
        if evaluated is None:
            return None
        const_type, value = evaluated
        return model.Const(sym.module, sym.name, const_type, value, sym.decl.name.loc)

    def const_value(self, sym: _Symbol) -> tuple[model.Type, model.Value] | None:
        key = (sym.module, sym.name)
        if key in self.const_values:
            return self.const_values[key]
        decl = sym.decl
        assert isinstance(decl, ConstDecl)
        if key in self.consts_busy:
            self.error(decl.name.loc, f"const '{sym.name}' is defined in terms of itself")
            self.const_values[key] = None
            return None
        self.consts_busy.add(key)
        scope = _Scope(sym.module, sym.file)
        result: tuple[model.Type, model.Value] | None = None
        const_type = self.type(decl.type, scope)
        if isinstance(const_type, model.VectorType | model.MapType) or (
            isinstance(const_type, model.NamedType) and const_type.kind == "struct"
        ):
            self.error(
                decl.type.loc,
                f"const '{sym.name}' has type '{_type_name(const_type)}';"
                " a const must have a built-in or enum type",
            )
        elif const_type is not None:
            value = self.value(decl.value, const_type, scope, f"const '{sym.name}'")
            if value is not None:
                result = (const_type, value)
        self.consts_busy.discard(key)
        # A cycle through this const may already have stored None; keep that.
        return self.const_values.setdefault(key, result)

    # ---- structs

    def struct(self, decl: StructDecl, scope: _Scope) -> model.Struct:
        name = decl.name.text
        if not decl.members:
            self.error(
                decl.name.loc, f"struct '{name}' is empty; a struct needs at least one member"
            )
        by_tag: dict[int, str] = {}
        by_name: dict[str, model.Location] = {}
        fields: list[model.Field] = []
        for m in decl.members:
            member = m.name.text
            if not 0 <= m.tag <= MAX_TAG:
                self.error(m.tag_loc, f"tag {m.tag} of member '{member}' is outside 0..{MAX_TAG}")
            elif m.tag in by_tag:
                self.error(
                    m.tag_loc,
                    f"duplicate tag {m.tag} in struct '{name}':"
                    f" members '{by_tag[m.tag]}' and '{member}' both use it",
                )
            else:
                by_tag[m.tag] = member
            if member in by_name:
                self.error(
                    m.name.loc,
                    f"duplicate member name '{member}' in struct '{name}'"
                    f" (first declared at {by_name[member]})",
                )
            else:
                by_name[member] = m.name.loc
            field_type = self.type(m.type, scope)
            default: model.Value | None = None
            if m.default is not None and field_type is not None:
                default = self.value(
                    m.default, field_type, scope, f"member '{member}'", noun="default"
                )
            if field_type is not None:
                fields.append(
                    model.Field(m.tag, member, field_type, m.required, default, m.tag_loc)
                )
        fields.sort(key=lambda f: f.tag)
        return model.Struct(scope.module, name, fields, decl.name.loc)

    def key(
        self, decl: KeyDecl, scope: _Scope, structs: Mapping[tuple[str, str], model.Struct]
    ) -> None:
        sym = self.find(decl.struct, scope)
        if sym is None or sym.kind != "struct":
            what = "unknown struct" if sym is None else f"{_article(sym.kind)}, not a struct:"
            hint = self.hint(decl.struct, scope, {"struct"}) if sym is None else ""
            self.error(decl.struct.loc, f"key[] names {what} '{decl.struct.text}'{hint}")
            return
        struct = structs.get((sym.module, sym.name))
        if struct is None:
            return
        if not decl.fields:
            self.error(decl.loc, f"key[{decl.struct.text}] must list at least one member")
            return
        if struct.key_fields is not None:
            self.error(decl.loc, f"struct '{sym.display}' already has a key[]")
            return
        assert isinstance(sym.decl, StructDecl)
        # the declared names, not struct.fields, which lacks members whose type failed
        members = {m.name.text for m in sym.decl.members}
        names: list[str] = []
        ok = True
        for f in decl.fields:
            if f.text not in members:
                self.error(f.loc, f"key[]: struct '{sym.display}' has no member '{f.text}'")
                ok = False
            elif f.text in names:
                self.error(f.loc, f"key[]: member '{f.text}' is listed twice")
                ok = False
            names.append(f.text)
        if ok:
            struct.key_fields = names

    def check_recursion(self, structs: Mapping[tuple[str, str], model.Struct]) -> None:
        reported: set[tuple[str, str]] = set()
        for key, struct in structs.items():
            if key in reported:
                continue
            path = _cycle_from(key, structs)
            if path is None:
                continue
            reported.update((s.module, s.name) for s, _ in path)
            chain = " -> ".join(f"{s.name}.{f.name}" for s, f in path)
            first_field = path[0][1]
            self.error(
                first_field.loc,
                f"struct '{struct.name}' contains itself ({chain} -> {struct.name});"
                " recursive structs are not supported",
            )

    # ---- interfaces

    def interface(self, decl: InterfaceDecl, scope: _Scope) -> model.Interface:
        operations: list[model.Operation] = []
        seen_ops: dict[str, model.Location] = {}
        for op in decl.operations:
            op_name = op.name.text
            if op_name in seen_ops:
                self.error(
                    op.name.loc,
                    f"duplicate operation '{op_name}' in interface '{decl.name.text}'"
                    f" (first declared at {seen_ops[op_name]})",
                )
            else:
                seen_ops[op_name] = op.name.loc
            if len(op.params) > MAX_PARAMS:
                self.error(
                    op.name.loc,
                    f"operation '{op_name}' has {len(op.params)} parameters;"
                    f" at most {MAX_PARAMS} are allowed",
                )
            return_type = None
            if op.return_type is not None:
                return_type = self.type(op.return_type, scope)
            params: list[model.Param] = []
            seen_params: set[str] = set()
            for position, p in enumerate(op.params, start=1):
                if p.name.text == op_name:
                    self.error(
                        p.name.loc,
                        f"parameter '{p.name.text}' has the same name as its operation",
                    )
                if p.name.text in seen_params:
                    self.error(
                        p.name.loc,
                        f"duplicate parameter '{p.name.text}' in operation '{op_name}'",
                    )
                seen_params.add(p.name.text)
                param_type = self.type(p.type, scope)
                if param_type is not None:
                    params.append(model.Param(p.name.text, param_type, position, p.out, p.routekey))
            operations.append(model.Operation(op_name, return_type, params, op.name.loc))
        return model.Interface(scope.module, decl.name.text, operations, decl.name.loc)


def _cycle_from(
    start: tuple[str, str], structs: Mapping[tuple[str, str], model.Struct]
) -> list[tuple[model.Struct, model.Field]] | None:
    """A chain of fields leading from struct ``start`` back to itself, or None."""
    path: list[tuple[model.Struct, model.Field]] = []
    visited: set[tuple[str, str]] = set()

    def walk(key: tuple[str, str]) -> bool:
        struct = structs.get(key)
        if struct is None:
            return False
        visited.add(key)
        for f in struct.fields:
            for target in _structs_in(f.type):
                path.append((struct, f))
                if target == start or (target not in visited and walk(target)):
                    return True
                path.pop()
        return False

    return path if walk(start) else None


def _structs_in(t: model.Type) -> Iterator[tuple[str, str]]:
    if isinstance(t, model.NamedType):
        if t.kind == "struct":
            yield (t.module, t.name)
    elif isinstance(t, model.VectorType):
        yield from _structs_in(t.elem)
    elif isinstance(t, model.MapType):
        yield from _structs_in(t.key)
        yield from _structs_in(t.value)


def _type_name(t: model.Type) -> str:
    if isinstance(t, model.BuiltinType):
        return t.kind
    if isinstance(t, model.VectorType):
        return f"vector<{_type_name(t.elem)}>"
    if isinstance(t, model.MapType):
        return f"map<{_type_name(t.key)}, {_type_name(t.value)}>"
    return f"{t.module}::{t.name}"


def _expectation(t: model.Type) -> str:
    if isinstance(t, model.NamedType):
        return f"an enumerator of '{t.module}::{t.name}'"
    assert isinstance(t, model.BuiltinType)
    if t.kind == "bool":
        return "true or false"
    if t.kind == "string":
        return "a string literal"
    if t.kind in ("float", "double"):
        return "a number"
    return "an integer"


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
