"""The .tars parser: what it builds from real files, and how it reports mistakes."""

from __future__ import annotations

import os
import pickle
import textwrap
from pathlib import Path

import pytest

from tarsus.idl import model
from tarsus.idl.errors import Diagnostic, IdlError
from tarsus.idl.model import (
    BuiltinType,
    EnumValue,
    MapType,
    NamedType,
    VectorType,
)
from tarsus.idl.parser import MAX_INCLUDE_DEPTH, parse_files, parse_text

FIXTURES = Path(__file__).parent / "idl_fixtures"

INT = BuiltinType("int")
STRING = BuiltinType("string")


def write(directory: Path, name: str, source: str) -> str:
    """Write ``source`` (dedented) to ``directory/name``; return its normalised path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return os.path.realpath(path)


def errors_of(paths: list[str], include_dirs: list[str] | None = None) -> list[str]:
    with pytest.raises(IdlError) as info:
        parse_files(paths, include_dirs=include_dirs or [])
    assert str(info.value) == "\n".join(str(d) for d in info.value.diagnostics)
    return [str(d) for d in info.value.diagnostics]


def check(tmp_path: Path, source: str, *expected: tuple[int, int, str]) -> None:
    """Parsing ``source`` fails with exactly these (line, column, message) diagnostics.

    ``{path}`` in a message stands for the file's path.
    """
    path = write(tmp_path, "bad.tars", source)
    assert errors_of([path]) == [
        f"{path}:{line}:{col}: {msg.replace('{path}', path)}" for line, col, msg in expected
    ]


def definitions(program: model.Program) -> dict[str, model.Definition]:
    return {
        f"{d.module}::{d.name}": d
        for f in program.files.values()
        for m in f.modules
        for d in m.definitions
    }


# ---- the big fixture ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def everything() -> model.Program:
    return parse_files([FIXTURES / "everything.tars"], include_dirs=[FIXTURES / "incdir"])


def test_files_come_after_what_they_include(everything: model.Program) -> None:
    base = str(FIXTURES / "base.tars")
    shared = str(FIXTURES / "incdir" / "shared.tars")
    main = str(FIXTURES / "everything.tars")
    assert list(everything.files) == [base, shared, main]
    assert everything.roots == [main]
    assert everything.files[main].includes == [base, shared]
    assert everything.files[base].includes == []
    assert everything.files[main].path == main


def test_reopened_modules_stay_separate_but_share_names(everything: model.Program) -> None:
    main = everything.files[str(FIXTURES / "everything.tars")]
    assert [m.name for m in main.modules] == ["Demo", "Demo"]
    later = main.modules[1].definitions[0]
    assert isinstance(later, model.Struct)
    assert later.fields[0].type == NamedType("Demo", "Everything", "struct")
    assert later.fields[1].default == EnumValue("Demo", "Color", "GREEN", 5)
    shared = everything.files[str(FIXTURES / "incdir" / "shared.tars")]
    assert [m.name for m in shared.modules] == ["Shared", "Base"]


def test_enum_values_count_up_and_follow_references(everything: model.Program) -> None:
    defs = definitions(everything)
    code = defs["Base::Code"]
    assert isinstance(code, model.Enum)
    assert [(m.name, m.value) for m in code.members] == [
        ("OK", 0),
        ("FAILED", -1),
        ("RETRY", 16),
        ("LATER", 17),
        ("SAME", 16),
        ("LIMIT", 511),
    ]
    color = defs["Demo::Color"]
    assert isinstance(color, model.Enum)
    assert [(m.name, m.value) for m in color.members] == [("RED", 0), ("GREEN", 5), ("BLUE", 6)]
    assert color.loc == model.Location(str(FIXTURES / "everything.tars"), 10, 10)


def test_consts_of_every_kind(everything: model.Program) -> None:
    defs = definitions(everything)
    values = {k: (d.type, d.value) for k, d in defs.items() if isinstance(d, model.Const)}
    assert values == {
        "Base::MAX_CODE": (INT, 511),
        "Base::GREETING": (STRING, 'hello\t"world"\n'),
        "Demo::ENABLED": (BuiltinType("bool"), True),
        "Demo::SMALL": (BuiltinType("byte"), -128),
        "Demo::MID": (BuiltinType("short"), 32767),
        "Demo::BIG": (BuiltinType("long"), -(2**63)),
        "Demo::UB": (BuiltinType("unsigned byte"), 255),
        "Demo::US": (BuiltinType("unsigned short"), 65535),
        "Demo::UI": (BuiltinType("unsigned int"), 2**32 - 1),
        "Demo::RATIO": (BuiltinType("float"), 1.5),
        "Demo::TINY": (BuiltinType("double"), 2.5e-3),
        "Demo::WHOLE": (BuiltinType("double"), 3.0),
        "Demo::NAME": (STRING, "demo"),
        "Demo::FAVOURITE": (
            NamedType("Demo", "Color", "enum"),
            EnumValue("Demo", "Color", "BLUE", 6),
        ),
        "Demo::FROM_CONST": (INT, 511),
    }
    assert isinstance(values["Demo::WHOLE"][1], float)


def test_struct_fields_types_and_defaults(everything: model.Program) -> None:
    s = definitions(everything)["Demo::Everything"]
    assert isinstance(s, model.Struct)
    assert s.qualname == "Demo.Everything"
    color = NamedType("Demo", "Color", "enum")
    byte_vector = VectorType(BuiltinType("byte"))
    rows = [(f.tag, f.name, f.type, f.required, f.default) for f in s.fields]
    assert rows == [
        (0, "b", BuiltinType("bool"), True, True),
        (1, "y", BuiltinType("byte"), False, -128),
        (2, "s", BuiltinType("short"), False, 32767),
        (3, "l", BuiltinType("long"), False, -(2**63)),
        (4, "f", BuiltinType("float"), False, 2.0),
        (5, "d", BuiltinType("double"), False, -125.0),
        (6, "str", STRING, False, "a\\b"),
        (7, "ub", BuiltinType("unsigned byte"), False, 255),
        (8, "us", BuiltinType("unsigned short"), False, 0),
        (9, "ui", BuiltinType("unsigned int"), False, 8),
        (10, "c1", color, False, EnumValue("Demo", "Color", "RED", 0)),
        (11, "c2", color, False, EnumValue("Demo", "Color", "GREEN", 5)),
        (12, "c3", color, False, EnumValue("Demo", "Color", "BLUE", 6)),
        (13, "c4", color, False, EnumValue("Demo", "Color", "BLUE", 6)),
        (14, "c5", color, False, EnumValue("Demo", "Color", "BLUE", 6)),
        (15, "c6", color, False, EnumValue("Demo", "Color", "BLUE", 6)),
        (
            16,
            "code",
            NamedType("Base", "Code", "enum"),
            False,
            EnumValue("Base", "Code", "LATER", 17),
        ),
        (17, "vi", VectorType(INT), False, None),
        (18, "msv", MapType(STRING, VectorType(INT)), False, None),
        (19, "nested", VectorType(MapType(STRING, VectorType(INT))), False, None),
        (
            20,
            "byPoint",
            MapType(
                NamedType("Shared", "Point", "struct"),
                VectorType(NamedType("Base", "Header", "struct")),
            ),
            False,
            None,
        ),
        (21, "raw", byte_vector, False, None),
        (22, "ptr", byte_vector, False, None),
        (255, "last", STRING, False, 'hello\t"world"\n'),
    ]
    assert isinstance(s.fields[4].default, float)
    # locations point at each member's tag, in the file it was declared in
    main = str(FIXTURES / "everything.tars")
    assert s.loc == model.Location(main, 26, 12)
    assert s.fields[3].loc == model.Location(main, 29, 9)


def test_key_sets_key_fields(everything: model.Program) -> None:
    structs = everything.structs()
    assert structs["Demo.Everything"].key_fields == ["b", "y"]
    assert structs["Shared.Point"].key_fields == ["x", "y"]
    assert structs["Base.Header"].key_fields is None


def test_interface_operations_and_param_tags(everything: model.Program) -> None:
    service = everything.interfaces()["Demo.Service"]
    ops = {op.name: op for op in service.operations}
    assert list(ops) == ["ping", "echo", "lookup", "colors"]
    assert ops["ping"].return_type is None
    assert ops["ping"].params == []
    assert ops["echo"].return_type == INT
    assert [(p.name, p.tag, p.out, p.routekey) for p in ops["echo"].params] == [
        ("in", 1, False, False),
        ("out_", 2, True, False),
    ]
    lookup = ops["lookup"]
    assert lookup.return_type == NamedType("Base", "Code", "enum")
    assert [(p.name, p.type, p.tag, p.out, p.routekey) for p in lookup.params] == [
        ("key2", STRING, 1, False, True),
        ("where", NamedType("Shared", "Point", "struct"), 2, False, False),
        ("found", VectorType(NamedType("Demo", "Everything", "struct")), 3, True, False),
    ]
    assert ops["colors"].return_type == MapType(INT, VectorType(NamedType("Demo", "Color", "enum")))


def test_program_helpers_see_every_file(everything: model.Program) -> None:
    assert set(everything.structs()) == {
        "Base.Header",
        "Shared.Point",
        "Demo.Everything",
        "Demo.Later",
    }
    assert set(everything.enums()) == {"Base.Code", "Demo.Color"}
    assert set(everything.interfaces()) == {"Demo.Service"}


# ---- types and literals -------------------------------------------------------------------------


def test_double_angle_brackets_close_two_levels() -> None:
    program = parse_text(
        "module M { struct S { 0 require vector<map<string, vector<int>>> a;"
        " 1 require map<int,map<int,vector<vector<byte>>>> b; }; };"
    )
    s = program.structs()["M.S"]
    assert s.fields[0].type == VectorType(MapType(STRING, VectorType(INT)))
    assert s.fields[1].type == MapType(
        INT, MapType(INT, VectorType(VectorType(BuiltinType("byte"))))
    )


@pytest.mark.parametrize(
    ("type_text", "literal", "value"),
    [
        ("int", "0", 0),
        ("int", "-0x10", -16),
        ("int", "+7", 7),
        ("int", "0X7FFFFFFF", 2**31 - 1),
        ("int", "017", 15),
        ("long", "-9223372036854775808", -(2**63)),
        ("unsigned int", "0xFFFFFFFF", 2**32 - 1),
        ("double", "1e3", 1000.0),
        ("double", "1.5E-2", 0.015),
        ("double", ".5", 0.5),
        ("double", "2.", 2.0),
        ("float", "-3.25f", -3.25),
        ("float", "7F", 7.0),
        ("float", "4", 4.0),
        ("bool", "false", False),
        (
            "string",
            r'"tab\tquote\"back\\nul\0hex\x41oct\101uni\u00e9"',
            'tab\tquote"back\\nul\0hexAoctAunié',
        ),
        ("string", '""', ""),
    ],
)
def test_literals(type_text: str, literal: str, value: object) -> None:
    program = parse_text(f"module M {{ const {type_text} C = {literal}; }};")
    const = program.files["<string>"].modules[0].definitions[0]
    assert isinstance(const, model.Const)
    assert const.value == value
    assert type(const.value) is type(value)


def test_comments_everywhere() -> None:
    program = parse_text(
        "// leading\nmodule /* in */ M // trailing\n{ /* multi\nline */ struct S"
        " { 0 /**/ require int a; // x\n }; };"
    )
    assert [f.name for f in program.structs()["M.S"].fields] == ["a"]


def test_missing_semicolon_after_module_is_tolerated() -> None:
    program = parse_text(
        "module A { struct S { 0 require int a; }; }\nmodule B { struct T { 0 require A::S s; }; }"
    )
    assert set(program.structs()) == {"A.S", "B.T"}


def test_definitions_may_be_used_before_they_are_declared() -> None:
    program = parse_text(
        """
        module M {
            struct A { 0 require B b; 1 optional E e = LAST; };
            key[B, x];
            struct B { 0 require int x = K; };
            const int K = 3;
            enum E { FIRST = K, LAST };
        };
        """
    )
    assert program.structs()["M.A"].fields[1].default == EnumValue("M", "E", "LAST", 4)
    assert program.structs()["M.B"].fields[0].default == 3
    assert program.structs()["M.B"].key_fields == ["x"]


def test_int_default_may_name_an_enumerator_and_float_an_int_const() -> None:
    program = parse_text(
        """
        module M {
            enum E { A = 3 };
            const int K = 9;
            struct S { 0 optional int i = E::A; 1 optional double d = K; };
        };
        """
    )
    assert [f.default for f in program.structs()["M.S"].fields] == [3, 9.0]


def test_gbk_comments_are_read(tmp_path: Path) -> None:
    path = tmp_path / "gbk.tars"
    source = "module M {\n// 上报消息\nstruct S { 0 require int a; };\n};\n"
    path.write_bytes(source.encode("gbk"))
    assert "M.S" in parse_files([path]).structs()


# ---- includes ------------------------------------------------------------------------------


def test_include_next_to_the_file_wins_over_include_dirs(tmp_path: Path) -> None:
    near = write(tmp_path, "src/common.tars", "module Near { struct N { 0 require int a; }; };")
    write(tmp_path, "inc/common.tars", "module Far { struct F { 0 require int a; }; };")
    main = write(
        tmp_path,
        "src/main.tars",
        '#include "common.tars"\nmodule M { struct S { 0 require Near::N n; }; };',
    )
    program = parse_files([main], include_dirs=[tmp_path / "inc"])
    assert list(program.files) == [near, main]


def test_include_dirs_are_searched_in_order(tmp_path: Path) -> None:
    write(tmp_path, "two/lib.tars", "module Two { struct T { 0 require int a; }; };")
    one = write(tmp_path, "one/lib.tars", "module One { struct O { 0 require int a; }; };")
    main = write(
        tmp_path,
        "main.tars",
        '#include "lib.tars"\nmodule M { struct S { 0 require One::O o; }; };',
    )
    program = parse_files([main], include_dirs=[tmp_path / "one", tmp_path / "two"])
    assert list(program.files) == [one, main]


def test_include_with_subdirectory_and_absolute_path(tmp_path: Path) -> None:
    sub = write(tmp_path, "lib/sub/a.tars", "module A { struct X { 0 require int a; }; };")
    absolute = write(tmp_path, "elsewhere/b.tars", "module B { struct Y { 0 require int a; }; };")
    main = write(
        tmp_path,
        "main.tars",
        f'#include "lib/sub/a.tars"\n#include "{absolute}"\n'
        "module M { struct S { 0 require A::X x; 1 require B::Y y; }; };",
    )
    assert list(parse_files([main]).files) == [sub, absolute, main]


def test_include_cycle_reads_each_file_once(tmp_path: Path) -> None:
    a = write(
        tmp_path, "a.tars", '#include "b.tars"\nmodule A { struct SA { 0 require int x; }; };'
    )
    b = write(
        tmp_path,
        "b.tars",
        '#include "a.tars"\nmodule B { struct SB { 0 require A::SA a; }; };',
    )
    program = parse_files([a])
    assert list(program.files) == [b, a]
    assert program.files[a].includes == [b]
    assert program.files[b].includes == [a]
    # from the other side, the order flips
    assert list(parse_files([b]).files) == [a, b]


def test_diamond_and_repeated_includes_parse_each_file_once(tmp_path: Path) -> None:
    base = write(tmp_path, "base.tars", "module Base { struct B { 0 require int x; }; };")
    left = write(
        tmp_path,
        "left.tars",
        '#include "base.tars"\nmodule L { struct X { 0 require Base::B b; }; };',
    )
    right = write(
        tmp_path,
        "right.tars",
        '#include "base.tars"\n#include "base.tars"\n'
        "module R { struct Y { 0 require Base::B b; }; };",
    )
    top = write(
        tmp_path,
        "top.tars",
        '#include "left.tars"\n#include "right.tars"\n'
        "module T { struct Z { 0 require L::X x; 1 require R::Y y; }; };",
    )
    program = parse_files([top, left])
    assert list(program.files) == [base, left, right, top]
    assert program.roots == [top, left]
    assert program.files[right].includes == [base]


def test_module_reopened_in_another_file(tmp_path: Path) -> None:
    first = write(tmp_path, "first.tars", "module Shop { enum Kind { BOOK, FOOD }; };")
    second = write(
        tmp_path,
        "second.tars",
        '#include "first.tars"\nmodule Shop { struct Item { 0 require Kind k = FOOD; }; };',
    )
    program = parse_files([second])
    assert [m.name for f in program.files.values() for m in f.modules] == ["Shop", "Shop"]
    item = program.structs()["Shop.Item"]
    assert item.fields[0].type == NamedType("Shop", "Kind", "enum")
    assert item.fields[0].default == EnumValue("Shop", "Kind", "FOOD", 1)
    assert list(program.files) == [first, second]


def test_duplicate_definition_across_reopened_modules(tmp_path: Path) -> None:
    first = write(tmp_path, "first.tars", "module Shop {\n  struct Item { 0 require int a; };\n};")
    second = write(
        tmp_path,
        "second.tars",
        '#include "first.tars"\nmodule Shop {\n  enum Item { A };\n};',
    )
    assert errors_of([second]) == [
        f"{second}:3:8: 'Item' is already defined in module 'Shop' (as a struct at {first}:2:10)"
    ]


def test_names_from_files_not_included_are_not_visible(tmp_path: Path) -> None:
    lib = write(tmp_path, "lib.tars", "module Lib { struct Thing { 0 require int a; }; };")
    main = write(tmp_path, "main.tars", "module App {\n  struct S { 0 require Lib::Thing t; };\n};")
    assert errors_of([lib, main]) == [
        f"{main}:2:24: unknown type 'Lib::Thing' ('Lib::Thing' is declared in {lib},"
        " which this file does not #include)"
    ]


def test_missing_include_says_where_it_looked(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        "src/main.tars",
        'module M { struct S { 0 require int a; }; };\n  #include "nope.tars"\n',
    )
    inc = tmp_path / "inc"
    inc.mkdir()
    looked = (
        f"{os.path.realpath(tmp_path / 'src' / 'nope.tars')}, {os.path.realpath(inc / 'nope.tars')}"
    )
    assert errors_of([main], include_dirs=[str(inc)]) == [
        f"{main}:2:12: cannot find included file 'nope.tars' (looked for {looked})"
    ]


def test_all_missing_includes_are_reported(tmp_path: Path) -> None:
    main = write(tmp_path, "main.tars", '#include "x.tars"\n#include "y.tars"\n')
    assert [e.split(": ", 1)[1].split(" (")[0] for e in errors_of([main])] == [
        "cannot find included file 'x.tars'",
        "cannot find included file 'y.tars'",
    ]


def test_missing_root_file(tmp_path: Path) -> None:
    path = os.path.realpath(tmp_path / "absent.tars")
    assert errors_of([path]) == [f"{path}:1:1: cannot read '{path}': No such file or directory"]


def test_include_depth_limit(tmp_path: Path) -> None:
    count = MAX_INCLUDE_DEPTH + 1
    for i in range(count):
        nxt = f'#include "f{i + 1}.tars"\n' if i + 1 < count else ""
        write(tmp_path, f"f{i}.tars", f"{nxt}module M{i} {{ struct S {{ 0 require int a; }}; }};")
    deepest = os.path.realpath(tmp_path / f"f{MAX_INCLUDE_DEPTH - 1}.tars")
    assert errors_of([str(tmp_path / "f0.tars")]) == [
        f"{deepest}:1:10: #include nested more than {MAX_INCLUDE_DEPTH} levels deep"
    ]
    # one level less is fine
    program = parse_files([tmp_path / "f1.tars"])
    assert len(program.files) == MAX_INCLUDE_DEPTH


def test_syntax_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.tars", "module B {\n  struct S { 0 require int a };\n};")
    main = write(tmp_path, "main.tars", '#include "bad.tars"\n')
    assert errors_of([main]) == [f"{bad}:2:30: missing ';' before '}}'"]


def test_parse_text_includes_relative_to_its_filename(tmp_path: Path) -> None:
    lib = write(tmp_path, "lib.tars", "module Lib { struct T { 0 require int a; }; };")
    program = parse_text(
        '#include "lib.tars"\nmodule M { struct S { 0 require Lib::T t; }; };',
        filename=str(tmp_path / "virtual.tars"),
    )
    virtual = os.path.realpath(tmp_path / "virtual.tars")
    assert list(program.files) == [lib, virtual]
    assert program.roots == [virtual]


def test_parse_text_pseudo_filename_in_locations() -> None:
    with pytest.raises(IdlError) as info:
        parse_text("module M {\n  struct S { 0 require Nope n; };\n};", filename="<editor>")
    assert str(info.value) == "<editor>:2:24: unknown type 'Nope'"


# ---- syntax errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "col", "message"),
    [
        (
            "module M {\n  struct S {\n    0 require int a\n    1 optional int b;\n  };\n};",
            3,
            20,
            "missing ';' after 'a' (found number 1 next)",
        ),
        (
            "module M {\n  struct S { 0 require int a; } };",
            2,
            33,
            "missing ';' before '}'",
        ),
        (
            "module M {\n  struct S { 0 require int struct; };\n};",
            2,
            28,
            "'struct' is a keyword and cannot be used as a name",
        ),
        (
            "module M {\n  enum E { A, vector };\n};",
            2,
            15,
            "'vector' is a keyword and cannot be used as a name",
        ),
        (
            "module M {\n  struct S { 0 require int a; };\n",
            3,
            1,
            "unexpected end of file; expected one of 'const', 'enum', 'interface', 'key',"
            " 'struct', '}'",
        ),
        (
            "module M {\n  struct S { 0 maybe int a; };\n};",
            2,
            16,
            "unexpected name 'maybe'; expected one of 'optional', 'require'",
        ),
        (
            "module M {\n  struct S { 0 require int a b; };\n};",
            2,
            30,
            "unexpected name 'b'; expected one of ';', '=', '['",
        ),
        (
            "module M {\n  struct S { 0 require map<int> m; };\n};",
            2,
            31,
            "unexpected '>'; expected ','",
        ),
        (
            "module M {\n  const int X = ;\n};",
            2,
            17,
            "unexpected ';'; expected a value",
        ),
        (
            "module M {\n  struct S { 0 require int a; };\n  /* never closed\n};",
            3,
            3,
            "unterminated comment: '/*' has no closing '*/'",
        ),
        (
            'module M {\n  const string S = "abc;\n};',
            2,
            20,
            "unterminated string: no closing '\"' on this line",
        ),
        (
            "module M {\n  const int X = 1 $ 2;\n};",
            2,
            19,
            "unexpected character '$'",
        ),
        (
            "#pragma once\nmodule M { };",
            1,
            1,
            "unknown directive: only '#include \"file\"' is supported",
        ),
        (
            "module M {\n  interface I { out int f(); };\n};",
            2,
            17,
            "unexpected keyword 'out'; expected one of 'void', '}', a type",
        ),
    ],
)
def test_syntax_errors(tmp_path: Path, source: str, line: int, col: int, message: str) -> None:
    check(tmp_path, source, (line, col, message))


# ---- semantic errors ----------------------------------------------------------------------------


def test_unknown_type_with_hint(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module Other { struct Point { 0 require int x; }; };
        module Geo { struct Box { 0 require int x; }; };
        module Geo { struct Size { 0 require int w; }; };
        module App {
            struct S {
                0 require Point p;
                1 require Box b;
                2 require Nothing n;
                3 require Geo::Nothing g;
                4 require vector<map<int, Missing>> m;
            };
            interface I { Unknown f(Absent a); };
        };
        """,
        (6, 19, "unknown type 'Point'; did you mean 'Other::Point'?"),
        (7, 19, "unknown type 'Box'; did you mean 'Geo::Box'?"),
        (8, 19, "unknown type 'Nothing'"),
        (9, 19, "unknown type 'Geo::Nothing'"),
        (10, 35, "unknown type 'Missing'"),
        (12, 19, "unknown type 'Unknown'"),
        (12, 29, "unknown type 'Absent'"),
    )


def test_no_hint_when_several_modules_have_the_name(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module A { struct P { 0 require int x; }; };
        module B { struct P { 0 require int x; }; };
        module C { struct S { 0 require P p; }; };
        """,
        (3, 33, "unknown type 'P'"),
    )


def test_a_const_or_interface_is_not_a_type(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            const int K = 1;
            interface I { void f(); };
            struct S { 0 require K k; 1 require M::I i; };
        };
        """,
        (4, 26, "'K' is a const, not a type"),
        (4, 41, "'M::I' is an interface, not a type"),
    )


def test_struct_member_errors(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            struct S {
                0 require int a;
                0 optional int b;
                256 optional int c;
                -1 optional int d;
                1 optional string a;
            };
            struct Empty { };
        };
        """,
        (4, 9, "duplicate tag 0 in struct 'S': members 'a' and 'b' both use it"),
        (5, 9, "tag 256 of member 'c' is outside 0..255"),
        (6, 9, "tag -1 of member 'd' is outside 0..255"),
        (7, 27, "duplicate member name 'a' in struct 'S' (first declared at {path}:3:23)"),
        (9, 12, "struct 'Empty' is empty; a struct needs at least one member"),
    )


def test_recursive_structs(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            struct Self { 0 optional vector<Self> children; };
            struct A { 0 require int x; 1 optional map<string, B> bs; };
            struct B { 0 optional vector<C> cs; };
            struct C { 0 optional A a; };
            struct UsesA { 0 optional A a; };
        };
        """,
        (
            2,
            19,
            "struct 'Self' contains itself (Self.children -> Self); recursive structs are not"
            " supported",
        ),
        (
            3,
            33,
            "struct 'A' contains itself (A.bs -> B.cs -> C.a -> A); recursive structs are not"
            " supported",
        ),
    )


@pytest.mark.parametrize(
    ("decl", "message"),
    [
        ("byte v = 128", "default 128 of member 'v' is out of range for 'byte' (-128..127)"),
        ("byte v = -129", "default -129 of member 'v' is out of range for 'byte' (-128..127)"),
        (
            "short v = 32768",
            "default 32768 of member 'v' is out of range for 'short' (-32768..32767)",
        ),
        (
            "int v = 0x80000000",
            "default 0x80000000 of member 'v' is out of range for 'int' (-2147483648..2147483647)",
        ),
        (
            "long v = 9223372036854775808",
            "default 9223372036854775808 of member 'v' is out of range for 'long'"
            " (-9223372036854775808..9223372036854775807)",
        ),
        (
            "unsigned byte v = 256",
            "default 256 of member 'v' is out of range for 'unsigned byte' (0..255)",
        ),
        (
            "unsigned byte v = -1",
            "default -1 of member 'v' is out of range for 'unsigned byte' (0..255)",
        ),
        (
            "unsigned short v = 65536",
            "default 65536 of member 'v' is out of range for 'unsigned short' (0..65535)",
        ),
        (
            "unsigned int v = 4294967296",
            "default 4294967296 of member 'v' is out of range for 'unsigned int' (0..4294967295)",
        ),
        ("int v = 1.5", "default 1.5 of member 'v' has the wrong type: 'int' needs an integer"),
        (
            "int v = true",
            "default true of member 'v' has the wrong type: 'int' needs an integer",
        ),
        (
            'int v = "1"',
            "default \"1\" of member 'v' has the wrong type: 'int' needs an integer",
        ),
        (
            "bool v = 1",
            "default 1 of member 'v' has the wrong type: 'bool' needs true or false",
        ),
        (
            'bool v = "true"',
            "default \"true\" of member 'v' has the wrong type: 'bool' needs true or false",
        ),
        (
            "string v = 5",
            "default 5 of member 'v' has the wrong type: 'string' needs a string literal",
        ),
        (
            "string v = RED",
            "default RED of member 'v' has the wrong type: 'string' needs a string literal",
        ),
        (
            "float v = true",
            "default true of member 'v' has the wrong type: 'float' needs a number",
        ),
        ("float v = 1e39", "default 1e39 of member 'v' is out of range for 'float'"),
        ("double v = 1e999", "default 1e999 of member 'v' is out of range for 'double'"),
        ("Color v = 7", "default 7 of member 'v' is not a value of enum 'M::Color'"),
        (
            'Color v = "RED"',
            "default \"RED\" of member 'v' has the wrong type:"
            " 'M::Color' needs an enumerator of 'M::Color'",
        ),
        (
            "Color v = SMALL",
            "default SMALL of member 'v' is an enumerator of 'M::Size', not of 'M::Color'",
        ),
        ("Color v = Color::PINK", "enum 'M::Color' has no enumerator 'PINK'"),
        ("Color v = NOWHERE", "unknown name 'NOWHERE': not an enumerator or a const in scope"),
        (
            "Color v = Other::RED",
            "unknown name 'Other::RED': not an enumerator or a const in scope",
        ),
        ("int v = S", "'S' is a struct, not a value"),
        ("byte v = BIG", "default BIG of member 'v' is out of range for 'byte' (-128..127)"),
        (
            "vector<int> v = 1",
            "member 'v' has type 'vector<int>'; only built-in and enum types can have a default"
            " value",
        ),
        (
            "map<int, int> v = 1",
            "member 'v' has type 'map<int, int>'; only built-in and enum types can have a"
            " default value",
        ),
        (
            "Inner v = 1",
            "member 'v' has type 'M::Inner'; only built-in and enum types can have a default value",
        ),
    ],
)
def test_bad_defaults(tmp_path: Path, decl: str, message: str) -> None:
    path = write(
        tmp_path,
        "bad.tars",
        f"""
        module M {{
            enum Color {{ RED, GREEN }};
            enum Size {{ SMALL }};
            const int BIG = 1000;
            struct Inner {{ 0 require int x; }};
            struct S {{ 0 optional {decl}; }};
        }};
        """,
    )
    col = len("    struct S { 0 optional ") + decl.index("= ") + 3  # where the value starts
    assert errors_of([path]) == [f"{path}:6:{col}: {message}"]


def test_ambiguous_enumerator_default(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            enum A { X };
            enum B { X };
            struct S { 0 optional int v = X; 1 optional A a = X; };
        };
        """,
        (4, 35, "'X' is ambiguous: write one of 'A::X', 'B::X'"),
    )


def test_enum_errors(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            const string NAME = "x";
            enum E {
                A,
                B = C,
                C,
                A,
                D = NAME,
                F = 2147483647,
                G,
                H = 1.5
            };
            enum Nothing { };
        };
        """,
        (5, 13, "'C' is declared later in enum 'E'; only earlier enumerators can be used"),
        (7, 9, "duplicate enumerator 'A' in enum 'E'"),
        (8, 13, "value NAME of enumerator 'D' has the wrong type: 'int' needs an integer"),
        (
            10,
            9,
            "value 2147483648 of enumerator 'G' is out of range for int (-2147483648..2147483647)",
        ),
        (11, 13, "value 1.5 of enumerator 'H' has the wrong type: 'int' needs an integer"),
        (13, 10, "enum 'Nothing' has no enumerators"),
    )


def test_const_errors(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            struct P { 0 require int x; };
            const vector<int> V = 1;
            const map<string, int> MAP = 1;
            const P STRUCT_CONST = 1;
            const byte B = 300;
            const int LOOP_A = LOOP_B;
            const int LOOP_B = LOOP_A;
            const int K = 1;
            const string K = "again";
        };
        """,
        (3, 11, "const 'V' has type 'vector<int>'; a const must have a built-in or enum type"),
        (
            4,
            11,
            "const 'MAP' has type 'map<string, int>'; a const must have a built-in or enum type",
        ),
        (5, 11, "const 'STRUCT_CONST' has type 'M::P'; a const must have a built-in or enum type"),
        (6, 20, "value 300 of const 'B' is out of range for 'byte' (-128..127)"),
        (7, 15, "const 'LOOP_A' is defined in terms of itself"),
        (10, 18, "'K' is already defined in module 'M' (as a const at {path}:9:15)"),
    )


def test_enum_and_const_cycle(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            enum E { A = K };
            const int K = E::A;
        };
        """,
        (3, 19, "'E::A' is used to define its own value"),
    )


def test_duplicate_definitions_in_one_module(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            struct X { 0 require int a; };
            interface X { void f(); };
        };
        module M {
            enum X { A };
        };
        module N {
            struct X { 0 require int a; };
        };
        """,
        (3, 15, "'X' is already defined in module 'M' (as a struct at {path}:2:12)"),
        (6, 10, "'X' is already defined in module 'M' (as a struct at {path}:2:12)"),
    )


def test_interface_errors(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            interface I {
                int f(int a, out string a);
                void f();
                void g(int g);
                void h(string x, routekey string x);
            };
        };
        """,
        (3, 33, "duplicate parameter 'a' in operation 'f'"),
        (4, 14, "duplicate operation 'f' in interface 'I' (first declared at {path}:3:13)"),
        (5, 20, "parameter 'g' has the same name as its operation"),
        (6, 42, "duplicate parameter 'x' in operation 'h'"),
    )


def test_too_many_params(tmp_path: Path) -> None:
    params = ", ".join(f"int p{i}" for i in range(256))
    check(
        tmp_path,
        f"module M {{\n  interface I {{ void big({params}); }};\n}};",
        (2, 22, "operation 'big' has 256 parameters; at most 255 are allowed"),
    )
    ok = ", ".join(f"int p{i}" for i in range(255))
    program = parse_text(f"module M {{ interface I {{ void big({ok}); }}; }};")
    op = program.interfaces()["M.I"].operations[0]
    assert [p.tag for p in op.params] == list(range(1, 256))


def test_key_errors(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            struct S { 0 require int a; 1 require int b; };
            const int K = 1;
            key[Nope, a];
            key[S, a, missing, a];
            key[K, a];
            key[S];
            key[Other::S, a];
        };
        """,
        (4, 9, "key[] names unknown struct 'Nope'"),
        (5, 15, "key[]: struct 'M::S' has no member 'missing'"),
        (5, 24, "key[]: member 'a' is listed twice"),
        (6, 9, "key[] names a const, not a struct: 'K'"),
        (7, 5, "key[S] must list at least one member"),
        (8, 9, "key[] names unknown struct 'Other::S'"),
    )


def test_key_given_twice(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            struct S { 0 require int a; 1 require int b; };
            key[S, a];
            key[S, b];
        };
        """,
        (4, 5, "struct 'M::S' already has a key[]"),
    )


def test_key_on_a_member_whose_type_failed_reports_only_the_type(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            struct S { 0 require Nope a; };
            key[S, a];
        };
        """,
        (2, 26, "unknown type 'Nope'"),
    )


def test_misplaced_definitions(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        struct Loose { 0 require int a; };
        module Outer {
            module Inner { struct S { 0 require int a; }; };
            #include "other.tars"
        };
        """,
        (1, 1, "struct 'Loose' must be declared inside a module"),
        (3, 5, "modules cannot be nested"),
        (4, 5, "#include must be at file level, outside any module"),
    )


def test_bad_literals(tmp_path: Path) -> None:
    check(
        tmp_path,
        """
        module M {
            const int OCT = 089;
            const string ESC = "a\\qb";
        };
        """,
        (2, 21, "invalid octal literal '089' (a leading 0 means octal)"),
        (3, 24, "unknown escape sequence '\\q' in string literal"),
    )


def test_errors_are_collected_across_files_in_include_order(tmp_path: Path) -> None:
    lib = write(tmp_path, "lib.tars", "module L {\n  struct A { 0 require Nope n; };\n};")
    main = write(
        tmp_path,
        "main.tars",
        '#include "lib.tars"\nmodule M {\n  struct B { 0 require Gone g; 0 optional int x; };\n};',
    )
    assert errors_of([main]) == [
        f"{lib}:2:24: unknown type 'Nope'",
        f"{main}:3:24: unknown type 'Gone'",
        f"{main}:3:32: duplicate tag 0 in struct 'B': members 'g' and 'x' both use it",
    ]


# ---- the error type -----------------------------------------------------------------------------


def test_idl_error_format_and_pickling() -> None:
    diagnostics = [
        Diagnostic(model.Location("/x/a.tars", 3, 7), "first"),
        Diagnostic(model.Location("/x/a.tars", 9, 1), "second"),
    ]
    err = IdlError(diagnostics)
    assert str(err) == "/x/a.tars:3:7: first\n/x/a.tars:9:1: second"
    copy = pickle.loads(pickle.dumps(err))
    assert copy.diagnostics == diagnostics
    assert str(copy) == str(err)
