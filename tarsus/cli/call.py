"""``tarsus call``: call one method of a running servant from the shell (grpcurl for Tars).

    tarsus call --idl Hello.tars 'Test.HelloServer.HelloObj@tcp -h 127.0.0.1 -p 18601' \\
        sayHello '{"name": "bob"}'

The IDL gives the method's signature; arguments and results are JSON as
``tarsus.codec.jsonvalue`` maps them. Exit status: 0 the call succeeded (whatever the method's
own return value), 1 the call failed (the Tars return code is in the message), 2 the command
could not be made into a call (usage, IDL, JSON, unknown method).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from tarsus.codec import EncodeError, jsonproto, tup
from tarsus.codec.constants import TARSVERSION
from tarsus.codec.jsonvalue import JsonValueError, from_jsonable, to_jsonable, zero_jsonable
from tarsus.codec.operation import Operation
from tarsus.idl import IdlError, load
from tarsus.idl.codegen import py_name
from tarsus.rpc.endpoint import EndpointError, parse_proxy
from tarsus.rpc.errors import Ret, TarsError, describe
from tarsus.rpc.proxy import ServantProxy
from tarsus.rpc.security import client_keys_from_env
from tarsus.rpc.sync import SyncCommunicator

EXIT_CALL_FAILED = 1
EXIT_USAGE = 2
RETURN_KEY = "return"


class UsageError(Exception):
    """The command line cannot be turned into a call (exit status 2)."""


@dataclass(frozen=True)
class Target:
    """The method to call: the generated proxy class of its interface and its operation."""

    proxy_cls: type[ServantProxy]
    op: Operation


def load_interfaces(idl: list[Path], include: list[Path]) -> dict[str, type[ServantProxy]]:
    """Every interface the IDL files (and their includes) declare: qualified name → proxy."""
    missing = [str(f) for f in idl if not f.is_file()]
    if missing:
        raise UsageError(f"no such IDL file: {', '.join(missing)}")
    try:
        ns = load(idl, include)
    except IdlError as e:
        raise UsageError(f"cannot load the IDL:\n{e}") from None
    found: dict[str, type[ServantProxy]] = {}
    for module in vars(ns).values():
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, ServantProxy)
                and obj.__module__ == module.__name__
            ):
                found[obj._tars_interface_] = obj
    return found


def find_method(interfaces: dict[str, type[ServantProxy]], spec: str, obj_name: str) -> Target:
    """Resolve ``method``, ``Interface.method`` or ``Module.Interface.method``.

    A bare method declared by several interfaces is taken from the one the object is named
    after (``...HelloObj`` or ``...Hello`` → interface ``Hello``), else it is an error.
    """
    iface_part, _, method = spec.rpartition(".")
    if iface_part:
        scope = {
            q: cls
            for q, cls in interfaces.items()
            if q == iface_part or q.rpartition(".")[2] == iface_part
        }
        if not scope:
            raise UsageError(
                f"no interface {iface_part!r} in the IDL (interfaces: {_list(interfaces)})"
            )
        if len(scope) > 1:
            raise UsageError(
                f"interface name {iface_part!r} is ambiguous: {_list(scope)}; "
                "write Module.Interface.method"
            )
    else:
        scope = interfaces
    candidates = [
        Target(cls, cls._tars_ops_[method]) for cls in scope.values() if method in cls._tars_ops_
    ]
    if not candidates:
        known = [f"{q.rpartition('.')[2]}.{m}" for q, cls in scope.items() for m in cls._tars_ops_]
        where = f"interface {next(iter(scope))}" if iface_part else "the IDL"
        raise UsageError(f"no method {method!r} in {where} (methods: {', '.join(known) or 'none'})")
    if len(candidates) == 1:
        return candidates[0]
    last = obj_name.rpartition(".")[2]
    named = [t for t in candidates if last in (_short(t.proxy_cls), _short(t.proxy_cls) + "Obj")]
    if len(named) == 1:
        return named[0]
    raise UsageError(
        f"method {method!r} is declared by several interfaces: "
        f"{', '.join(t.proxy_cls._tars_interface_ for t in candidates)}; "
        f"write Interface.{method} (e.g. {_short(candidates[0].proxy_cls)}.{method})"
    )


def parse_arguments(op: Operation, text: str) -> tuple[Any, ...]:
    """The in-arguments, in order, from a JSON object keyed by parameter name."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"the arguments are not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise UsageError(
            f"the arguments must be a JSON object keyed by parameter name, e.g. {_template(op)}"
        )
    names = [p.name for p in op.inputs]
    extra = [k for k in obj if k not in names]
    if extra:
        outs = [k for k in extra if k in {p.name for p in op.outputs}]
        note = f" ({', '.join(map(repr, outs))}: out parameter, set by the server)" if outs else ""
        raise UsageError(
            f"{op.name} has no in-parameter {', '.join(map(repr, extra))}{note}; "
            f"its in-parameters: {', '.join(map(repr, names)) or 'none'}"
        )
    missing = [n for n in names if n not in obj]
    if missing:
        raise UsageError(
            f"missing argument {', '.join(map(repr, missing))} for {op.name}; "
            f"arguments look like {_template(op)}"
        )
    try:
        return tuple(from_jsonable(obj[p.name], p.type, p.name) for p in op.inputs)
    except JsonValueError as e:
        raise UsageError(f"argument {e.where}: {e.reason}") from None


def render_result(op: Operation, result: Any) -> dict[str, Any]:
    """``{"return": ..., "<out>": ...}`` from a result in the proxy's shape."""
    types = ([op.return_type] if op.return_type is not None else []) + [p.type for p in op.outputs]
    keys = ([RETURN_KEY] if op.return_type is not None else []) + [p.name for p in op.outputs]
    if len(keys) == 0:
        values: list[Any] = []
    elif len(keys) == 1:
        values = [result]
    else:
        values = list(result)
    return {k: to_jsonable(v, t) for k, t, v in zip(keys, types, values, strict=True)}


def describe_failure(e: TarsError) -> str:
    """``ServerError -3 SERVER_NO_FUNC: no function 'x'``: the kind, the code, its name."""
    try:
        name = f" {Ret(e.code).name}"
        detail = e.message or describe(e.code).partition(": ")[2]
    except ValueError:
        name, detail = "", e.message
    return f"{type(e).__name__} {e.code}{name}" + (f": {detail}" if detail else "")


def call(
    proxy: Annotated[
        str,
        typer.Argument(
            metavar="PROXY",
            help="'Obj@tcp -h HOST -p PORT' or a bare 'App.Server.Obj' (needs --locator)",
            show_default=False,
        ),
    ],
    method: Annotated[
        str,
        typer.Argument(
            metavar="METHOD",
            help="method, or Interface.method when several declare it",
            show_default=False,
        ),
    ],
    arguments: Annotated[
        str | None,
        typer.Argument(
            metavar="JSON",
            help="the in-parameters as a JSON object keyed by name; '-' reads stdin",
            show_default=False,
        ),
    ] = None,
    idl: Annotated[
        list[Path] | None,
        typer.Option(
            "--idl", metavar="FILE.tars", help=".tars file declaring the interface (repeatable)"
        ),
    ] = None,
    include: Annotated[
        list[Path] | None,
        typer.Option(
            "-I", "--include", metavar="DIR", help="where to look for #include files (repeatable)"
        ),
    ] = None,
    locator: Annotated[
        str | None,
        typer.Option(
            "--locator",
            metavar="PROXY",
            envvar="TARSUS_LOCATOR",
            help="registry query proxy, for bare object names",
            show_default=False,
        ),
    ] = None,
    use_tup: Annotated[
        bool, typer.Option("--tup", help="call with TUP (iVersion 3) instead of plain Tars")
    ] = False,
    use_json: Annotated[
        bool, typer.Option("--json-protocol", help="call with the JSON protocol (iVersion 5)")
    ] = False,
    timeout: Annotated[
        int, typer.Option("--timeout", metavar="MS", help="call timeout in milliseconds", min=1)
    ] = 3000,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", metavar="KEY=VALUE", help="request context entry (repeatable)"),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="log what the client runtime does (stderr)")
    ] = False,
) -> None:
    """Call METHOD on the servant PROXY and print the result as one JSON object.

    The result has "return" for the return value and one key per out parameter. Exit status:
    0 success, 1 the call failed (Tars return code in the message), 2 bad usage, IDL or JSON.
    """
    try:
        if use_tup and use_json:
            raise UsageError("--tup and --json-protocol exclude each other")
        if not idl:
            raise UsageError("give the interface's IDL with --idl FILE.tars")
        ctx = _parse_context(context or [])
        try:
            target_name = parse_proxy(proxy)
        except EndpointError as e:
            raise UsageError(f"bad proxy {proxy!r}: {e}") from None
        if not target_name.endpoints and not locator:
            raise UsageError(
                f"{proxy!r} names no endpoint: add '@tcp -h HOST -p PORT', or give --locator "
                "(or set TARSUS_LOCATOR) to ask the registry"
            )
        target = find_method(load_interfaces(idl, include or []), method, target_name.obj_name)
        text = sys.stdin.read() if arguments == "-" else arguments
        args = parse_arguments(target.op, "{}" if text is None else text)
    except UsageError as e:
        _fail(str(e), EXIT_USAGE)

    # The runtime's warnings (a shielded endpoint...) repeat what the error message says.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.ERROR, stream=sys.stderr)
    version = tup.TUP_SIMPLE if use_tup else jsonproto.JSONVERSION if use_json else TARSVERSION
    try:
        comm = SyncCommunicator(
            locator or None,
            timeout_ms=timeout,
            connect_timeout_ms=min(timeout, 1500),
            security=client_keys_from_env(),  # keys of a secured install (docs/security.md)
        )
    except ValueError as e:  # a locator that names no registry endpoint
        _fail(str(e), EXIT_USAGE)
    try:
        with comm:
            stub = comm.string_to_proxy(target.proxy_cls, proxy, version=version)
            stub = stub.with_options(timeout_ms=timeout, context=ctx or None)
            result = getattr(stub, py_name(target.op.name))(*args)
    except TarsError as e:
        _fail(describe_failure(e), EXIT_CALL_FAILED)
    except EncodeError as e:  # from_jsonable checks ranges; this is a safety net
        _fail(f"the arguments cannot be encoded: {e}", EXIT_USAGE)
    typer.echo(json.dumps(render_result(target.op, result), indent=2, ensure_ascii=False))


def _parse_context(items: list[str]) -> dict[str, str]:
    ctx: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"--context takes KEY=VALUE, not {item!r}")
        ctx[key] = value
    return ctx


def _template(op: Operation) -> str:
    body = {p.name: zero_jsonable(p.type) for p in op.inputs}
    return f"'{json.dumps(body, ensure_ascii=False)}'"


def _short(cls: type[ServantProxy]) -> str:
    return cls._tars_interface_.rpartition(".")[2]


def _list(interfaces: dict[str, Any]) -> str:
    return ", ".join(interfaces) or "none"


def _fail(message: str, code: int) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)
