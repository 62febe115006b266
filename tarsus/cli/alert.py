"""``tarsus alert``: alert rules of the alert service ``tars.tarsalarm.AlarmObj``.

    tarsus alert list
    tarsus alert add api-failures --kind failure_rate --server Shop.Api --threshold 5 \\
        --windows 3 --webhook http://hooks.example/tars
    tarsus alert add shop-down --kind server_down --server Shop --webhook http://...
    tarsus alert test api-failures        # POSTs a test payload to the rule's webhook now
    tarsus alert events [api-failures]    # what fired and resolved, and its delivery
    tarsus alert delete api-failures

The service is called over Tars RPC (``tarsus.AlertExt``, TarsusAlert.tars): ``--alarm`` names
it (default ``$TARSUS_ALARM``, else 127.0.0.1:18893), or ``--locator`` finds it through the
registry. Exit status: 0 done, 1 refused or unreachable, 2 a wrong command line.
See docs/alerts.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tarsus.cli.admin_client import CommandFailed, Output, UsageError, _fail, client_keys
from tarsus.cli.call import describe_failure
from tarsus.codec.constants import ALARM_OBJ, ALARM_PORT
from tarsus.ops.alerts import MEANINGS, event_doc, rule_doc
from tarsus.protocol.gen import TarsusAlert
from tarsus.rpc.endpoint import EndpointError, parse_proxy
from tarsus.rpc.errors import TarsError
from tarsus.rpc.sync import SyncCommunicator

app = typer.Typer(
    name="alert",
    help="Alert rules (tars.tarsalarm): list, add, delete, test, events.",
    no_args_is_help=True,
)

ALARM_ENV = "TARSUS_ALARM"
DEFAULT_ALARM = f"{ALARM_OBJ}@tcp -h 127.0.0.1 -p {ALARM_PORT}"

AlarmOption = Annotated[
    str | None,
    typer.Option(
        "--alarm",
        metavar="PROXY",
        help=f"the alert service, '{ALARM_OBJ}@tcp -h HOST -p {ALARM_PORT}' "
        f"(default ${ALARM_ENV}, else 127.0.0.1:{ALARM_PORT})",
        show_default=False,
    ),
]
LocatorOption = Annotated[
    str | None,
    typer.Option(
        "--locator",
        metavar="PROXY",
        help="find the alert service through the registry "
        "('tars.tarsregistry.QueryObj@tcp -h HOST -p 17890')",
        show_default=False,
    ),
]
TimeoutOption = Annotated[int, typer.Option("--timeout-ms", metavar="MS", min=1)]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON document")]
NameArgument = Annotated[str, typer.Argument(metavar="NAME", show_default=False)]


class AlarmClient:
    def __init__(self, alarm: str | None, locator: str | None, timeout_ms: int) -> None:
        proxy = (alarm or os.environ.get(ALARM_ENV) or "").strip()
        if not proxy:
            proxy = ALARM_OBJ if locator else DEFAULT_ALARM
        if proxy.split(" ", 1)[0] in ("tcp", "ssl"):
            proxy = f"{ALARM_OBJ}@{proxy}"
        try:
            if not parse_proxy(proxy).endpoints and not locator:
                raise UsageError(f"--alarm {proxy!r} names no endpoint; give one, or --locator")
        except EndpointError as e:
            raise UsageError(f"bad --alarm {proxy!r}: {e}") from None
        self.where = proxy
        self.comm = SyncCommunicator(
            locator,
            timeout_ms=timeout_ms,
            connect_timeout_ms=min(timeout_ms, 1500),
            security=client_keys(),  # keys of a secured install (docs/security.md)
        )
        self.proxy = self.comm.string_to_proxy(TarsusAlert.AlertExtProxy, proxy)

    def call(self, method: str, *args: Any, doing: str) -> Any:
        try:
            answer = getattr(self.proxy, method)(*args)
        except TarsError as e:
            raise CommandFailed(
                f"cannot reach the alert service {self.where}: {describe_failure(e)}", e.code
            ) from None
        ret = answer[0] if isinstance(answer, tuple) else answer
        if ret != 0:
            text = answer[1] if isinstance(answer, tuple) and isinstance(answer[1], str) else ""
            message = f"{doing} failed: {MEANINGS.get(ret, f'code {ret}')} ({ret})"
            raise CommandFailed(f"{message}: {text}" if text else message, ret, result=text)
        return answer

    def close(self) -> None:
        self.comm.close()


@contextmanager
def _session(
    alarm: str | None, locator: str | None, timeout_ms: int, as_json: bool
) -> Iterator[tuple[AlarmClient, Output]]:
    out = Output(as_json)
    client: AlarmClient | None = None
    try:
        client = AlarmClient(alarm, locator, timeout_ms)
        yield client, out
    except UsageError as e:
        _fail(str(e), 2)
    except CommandFailed as e:
        if as_json:
            typer.echo(json.dumps({"error": e.as_json()}, indent=2))
        _fail(str(e), 1)
    finally:
        if client is not None:
            client.close()


def _watches(d: dict[str, Any]) -> str:
    what = ".".join(p for p in (d["application"], d["server"], d["interface"]) if p) or "*"
    if d["property"]:
        what += f" {d['property']}/{d['policy']}"
    if d["node"]:
        what += f" @{d['node']}"
    return what


@app.command("list")
def list_(
    alarm: AlarmOption = None,
    locator: LocatorOption = None,
    timeout_ms: TimeoutOption = 5000,
    as_json: JsonOption = False,
) -> None:
    """Every rule: what it watches, its threshold and its webhook."""
    with _session(alarm, locator, timeout_ms, as_json) as (client, out):
        _ret, rules = client.call("listRules", doing="listing the rules")
        docs = [rule_doc(r) for r in rules]

        def human(console: Console) -> None:
            if not docs:
                console.print("no alert rules")
                return
            table = Table("rule", "kind", "watches", "when", "webhook", box=None)
            for d in docs:
                when = (
                    "down/lost"
                    if d["kind"] in ("server_down", "node_lost")
                    else f"{d['comparison']} {d['threshold']:g}"
                )
                when += f" x{d['windows']}" + ("" if d["enabled"] else " (disabled)")
                table.add_row(d["name"], d["kind"], _watches(d), when, d["webhook"])
            console.print(table)

        out.emit({"rules": docs}, human)


@app.command(no_args_is_help=True)
def add(
    name: NameArgument,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="failure_rate, timeout_rate, avg_latency, property, server_down, node_lost",
        ),
    ],
    webhook: Annotated[str, typer.Option("--webhook", metavar="URL", help="http(s) URL")],
    server: Annotated[
        str, typer.Option("--server", metavar="APP[.SERVER]", help="what it watches")
    ] = "",
    interface: Annotated[str, typer.Option("--interface", help="stat kinds: one interface")] = "",
    node: Annotated[str, typer.Option("--node", help="node_lost/server_down: one node")] = "",
    property_name: Annotated[str, typer.Option("--property", help="property: its name")] = "",
    policy: Annotated[str, typer.Option("--policy", help="property: Sum, Avg, Max...")] = "",
    threshold: Annotated[
        float, typer.Option("--threshold", help="percent for rates, ms for latency")
    ] = 0.0,
    below: Annotated[bool, typer.Option("--below", help="fire when under the threshold")] = False,
    windows: Annotated[int, typer.Option("--windows", help="consecutive windows")] = 1,
    disabled: Annotated[bool, typer.Option("--disabled", help="store it, not evaluated")] = False,
    alarm: AlarmOption = None,
    locator: LocatorOption = None,
    timeout_ms: TimeoutOption = 5000,
    as_json: JsonOption = False,
) -> None:
    """Add a rule (the service checks every field)."""
    app_name, _dot, server_name = server.partition(".")
    rule = TarsusAlert.AlertRule(
        name=name,
        kind=kind,
        application=app_name,
        serverName=server_name,
        interfaceName=interface,
        nodeName=node,
        propertyName=property_name,
        policy=policy,
        comparison="<" if below else ">",
        threshold=threshold,
        windows=windows,
        webhook=webhook,
        enabled=not disabled,
    )
    with _session(alarm, locator, timeout_ms, as_json) as (client, out):
        try:
            _ret, rule_id = client.call("addRule", rule, doing=f"adding rule {name}")
        except (ValueError, OverflowError) as e:  # a value the wire cannot carry
            raise UsageError(str(e)) from None
        out.emit(
            {"added": name, "id": int(rule_id)},
            lambda c: c.print(f"added alert rule {name} (id {rule_id})"),
        )


@app.command(no_args_is_help=True)
def delete(
    name: NameArgument,
    alarm: AlarmOption = None,
    locator: LocatorOption = None,
    timeout_ms: TimeoutOption = 5000,
    as_json: JsonOption = False,
) -> None:
    """Delete a rule (what it had firing is resolved at the next window)."""
    with _session(alarm, locator, timeout_ms, as_json) as (client, out):
        client.call("deleteRule", name, doing=f"deleting rule {name}")
        out.emit({"deleted": name}, lambda c: c.print(f"deleted alert rule {name}"))


@app.command(no_args_is_help=True)
def test(
    name: NameArgument,
    alarm: AlarmOption = None,
    locator: LocatorOption = None,
    timeout_ms: TimeoutOption = 10000,
    as_json: JsonOption = False,
) -> None:
    """POST a test payload ("status": "test") to the rule's webhook now."""
    with _session(alarm, locator, timeout_ms, as_json) as (client, out):
        _ret, text = client.call("testRule", name, doing=f"testing rule {name}")
        out.emit({"tested": name, "result": text}, lambda c: c.print(f"{name}: {text}"))


@app.command()
def events(
    rule: Annotated[str, typer.Argument(metavar="[RULE]", show_default=False)] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    alarm: AlarmOption = None,
    locator: LocatorOption = None,
    timeout_ms: TimeoutOption = 5000,
    as_json: JsonOption = False,
) -> None:
    """The newest events (firing, resolved, test) and their delivery, newest first."""
    with _session(alarm, locator, timeout_ms, as_json) as (client, out):
        _ret, found = client.call("listEvents", rule, limit, doing="listing events")
        docs = [event_doc(e) for e in found]

        def human(console: Console) -> None:
            if not docs:
                console.print("no alert events")
                return
            table = Table("time", "rule", "state", "target", "delivery", "message", box=None)
            for d in docs:
                delivery = d["delivery"] + (f" ({d['last_error']})" if d["last_error"] else "")
                table.add_row(d["time"], d["rule"], d["state"], d["target"], delivery, d["message"])
            console.print(table)

        out.emit({"events": docs}, human)
