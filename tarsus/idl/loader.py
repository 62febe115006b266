"""Compile ``.tars`` files at run time into importable modules (``tarsus.idl.load``).

The generated source is exactly what ``tarsus idl gen`` writes; here it is executed into
fresh module objects under a private package, so relative imports between IDL modules work
and tracebacks point at readable code. Results are cached by file contents' modification
times: loading the same files again returns the same classes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tarsus.idl.codegen import GeneratedModule, generate, py_name
from tarsus.idl.errors import Diagnostic, IdlError
from tarsus.idl.model import Location
from tarsus.idl.parser import parse_files

_PACKAGE_PREFIX = "tarsus._idl_loaded"
_lock = threading.Lock()
_cache: dict[tuple[Any, ...], IdlNamespace] = {}


class IdlNamespace(types.SimpleNamespace):
    """What ``load`` returns: one attribute per IDL module (``ns.Test.User``)."""

    def __repr__(self) -> str:
        return f"<tarsus idl: {', '.join(sorted(vars(self)))}>"


def load(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    include_dirs: Sequence[str | os.PathLike[str]] = (),
) -> Any:
    """Parse ``.tars`` file(s) and everything they include; return the IDL modules.

    >>> m = load("Hello.tars")           # doctest: +SKIP
    >>> m.Test.User(name="x")            # doctest: +SKIP
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    roots = tuple(str(Path(p).resolve()) for p in paths)
    incs = tuple(str(Path(d).resolve()) for d in include_dirs)
    with _lock:
        for key, ns in _cache.items():
            if key[0] == roots and key[1] == incs and _fresh(key[2]):
                return ns
        program = parse_files(roots, incs)
        stamps = tuple((p, _mtime(p)) for p in program.files)
        ns = _execute(program, roots, incs)
        _cache[(roots, incs, stamps)] = ns
        return ns


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _fresh(stamps: tuple[tuple[str, int], ...]) -> bool:
    return all(_mtime(p) == m for p, m in stamps)


def _execute(program: Any, roots: tuple[str, ...], incs: tuple[str, ...]) -> IdlNamespace:
    modules = generate(program)
    digest = hashlib.sha1(repr((roots, incs, sorted(program.files))).encode()).hexdigest()[:12]
    pkg_name = f"{_PACKAGE_PREFIX}_{digest}_{len(_cache)}"
    pkg = types.ModuleType(pkg_name)
    pkg.__path__ = []
    sys.modules[pkg_name] = pkg
    created: dict[str, types.ModuleType] = {}
    for gm in modules:
        mod = types.ModuleType(f"{pkg_name}.{py_name(gm.name)}")
        mod.__package__ = pkg_name
        mod.__file__ = f"<tarsus idl {gm.name}>"
        sys.modules[mod.__name__] = mod
        setattr(pkg, py_name(gm.name), mod)
        created[gm.name] = mod
    for gm in _dependency_order(modules):
        mod = created[gm.name]
        exec(compile(gm.source, mod.__file__ or gm.filename, "exec"), mod.__dict__)
    return IdlNamespace(**{py_name(name): mod for name, mod in created.items()})


def _dependency_order(modules: list[GeneratedModule]) -> list[GeneratedModule]:
    """Modules after the modules they refer to (their names are used at import time)."""
    by_name = {m.name: m for m in modules}
    order: list[GeneratedModule] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*chain[chain.index(name) :], name])
            raise IdlError(
                [Diagnostic(Location("<modules>", 0, 0), f"modules refer to each other: {cycle}")]
            )
        state[name] = 1
        for dep in sorted(by_name[name].imports):
            visit(dep, [*chain, name])
        state[name] = 2
        order.append(by_name[name])

    for m in modules:
        visit(m.name, [])
    return order
