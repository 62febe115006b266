"""``tarsus config``: business configuration files in the config center.

    tarsus config add Test.HelloServer hello.conf --reason "first version"
    tarsus config edit Test.HelloServer hello.conf --file hello.conf --reason "more workers"
    tarsus config show Test.HelloServer hello.conf --merged --node 10.0.0.7
    tarsus config history Test.HelloServer hello.conf
    tarsus config diff 12 15
    tarsus config restore 12 --reason "back to yesterday's"
    tarsus config push Test.HelloServer hello.conf --all

A file is named as the console names it: its owner (``APP`` for an application file, with
``--set NAME.AREA.GROUP`` a set file; ``APP.SERVER`` for a server file, with ``--node N`` a
node file) and its file name; or by its id (``tarsus config list``). Writes and reads go to
``tarsus.ConfigExt`` on ``tars.tarsconfig.ConfigExtObj`` (:mod:`tarsus.cli.config_center`);
``push`` asks each chosen instance, through the admin registry's ``notifyServer``, to run
``tars.loadconfig FILE`` and prints each one's answer.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tarsus.cli.admin_client import (
    EXIT_FAILED,
    AdminClient,
    Output,
    UsageError,
    admin_command,
    current_user,
    print_text,
    read_text_file,
    split_server_id,
)
from tarsus.cli.config_center import (
    LEVEL_WORDS,
    ConfigCenter,
    ConfigObjOption,
    FileSpec,
    Level,
    check_file_name,
    check_node,
    check_set,
    config_address,
)
from tarsus.protocol.gen import TarsusConfig

app = typer.Typer(
    name="config",
    help="Configuration files in the config center: add, edit, show, list, history, diff, "
    "restore, delete, push.",
    no_args_is_help=True,
)
reference_app = typer.Typer(
    name="reference",
    help="Let a server or node file include an application file (t_config_references).",
    no_args_is_help=True,
)
app.add_typer(reference_app)

WhereArgument = Annotated[
    str,
    typer.Argument(
        metavar="APP[.SERVER]|ID",
        help="the owner (APP: an application or set file; APP.SERVER: a server or node file), "
        "or the file's id alone",
        show_default=False,
    ),
]
NameArgument = Annotated[
    str | None,
    typer.Argument(metavar="[FILE]", help="the file name, e.g. hello.conf", show_default=False),
]
NodeFileOption = Annotated[
    str,
    typer.Option("--node", metavar="NODE", help="a node file: the one of this node"),
]
SetOption = Annotated[
    str,
    typer.Option("--set", metavar="NAME.AREA.GROUP", help="a set file: the one of this set"),
]
ReasonOption = Annotated[
    str,
    typer.Option("--reason", metavar="TEXT", help="why, kept in the file's history"),
]
UserOption = Annotated[
    str | None,
    typer.Option("--user", help="who does it, as recorded (default: you)"),
]
VersionArgument = Annotated[
    int,
    typer.Argument(metavar="VERSION", help="a version id (`tarsus config history`)", min=1),
]
LEVELS = ("app", "set", "server", "node")


def _center(client: AdminClient, config_obj: str | None) -> ConfigCenter:
    return ConfigCenter(client, config_address(config_obj, client.address))


def _file_id(center: ConfigCenter, where: str, name: str | None, node: str, set_: str) -> int:
    """The id of the file the command line names: ``ID`` alone, or owner and name."""
    if name is None:
        if where.isdigit():
            if node or set_:
                raise UsageError("a file given by id needs no --node or --set")
            return int(where)
        raise UsageError(f"give the file name after {where} (or the file's id alone)")
    return center.file_id(FileSpec.parse(where, name, set_division=set_, node=node))


def _file_doc(f: TarsusConfig.ConfigFile, *, content: bool = False) -> dict[str, Any]:
    level = Level(f.level) if f.level in Level._value2member_map_ else None
    word = LEVEL_WORDS.get(level, str(f.level)) if level is not None else str(f.level)
    if level == Level.APP and f.setDivision:
        word = "set"
    doc: dict[str, Any] = {
        "id": int(f.id),
        "level": word,
        "server": f.serverName,
        "name": f.fileName,
        "set": f.setDivision,
        "node": f.host,
        "post_time": f.postTime,
        "last_user": f.lastUser,
        "references": [int(r) for r in f.references],
    }
    if content:
        doc["content"] = f.content
    return doc


def _version_doc(v: TarsusConfig.ConfigVersion, *, content: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": int(v.id),
        "file_id": int(v.configId),
        "post_time": v.postTime,
        "user": v.lastUser,
        "reason": v.reason,
    }
    if content:
        doc["content"] = v.content
    return doc


def _said(console: Console, text: str) -> None:
    console.print(text, markup=False)


# --------------------------------------------------------------------------- writing


@admin_command(app, no_args_is_help=True)
def add(
    client: AdminClient,
    out: Output,
    where: Annotated[
        str,
        typer.Argument(
            metavar="APP[.SERVER]",
            help="APP: an application file (with --set, a set file); APP.SERVER: a server "
            "file (with --node, a node file)",
            show_default=False,
        ),
    ],
    file: Annotated[
        str,
        typer.Argument(metavar="FILE", help="the file to store ('-': standard input)"),
    ],
    reason: ReasonOption,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="its name in the center (default: FILE's)"),
    ] = None,
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            metavar="|".join(LEVELS),
            help="the level, checked against the owner (by default what the owner says)",
        ),
    ] = None,
    set_: SetOption = "",
    node: NodeFileOption = "",
    user: UserOption = None,
    config_obj: ConfigObjOption = None,
) -> None:
    """Store a new config file (application, set, server or node level) from FILE."""
    if name is None:
        if file == "-":
            raise UsageError("reading standard input: give the file's name with --name")
        name = file.replace("\\", "/").rsplit("/", 1)[-1]
    spec = FileSpec.parse(where, name, set_division=set_, node=node)
    if level is not None:
        _check_level(level, spec)
    content = read_text_file(file, "FILE")
    center = _center(client, config_obj)
    who = user or current_user()
    new = TarsusConfig.ConfigFile(
        id=0,
        level=int(spec.level),
        serverName=spec.server_name,
        fileName=spec.name,
        setDivision=spec.set_division,
        host=spec.node,
        content=content,
    )
    file_id = center.call("addConfigFile", new, reason, who, doing=f"adding {spec.describe()}")
    doc = {"id": int(file_id), "file": spec.describe(), "level": _level_word(spec), "user": who}
    out.emit(doc, lambda c: _said(c, f"added {spec.describe()}: id {file_id}"))


def _level_word(spec: FileSpec) -> str:
    if spec.level == Level.APP and spec.set_division:
        return "set"
    return LEVEL_WORDS[spec.level]


def _check_level(level: str, spec: FileSpec) -> None:
    if level not in LEVELS:
        raise UsageError(f"--level {level!r}: one of {', '.join(LEVELS)}")
    needs = {
        "app": "APP and no --set",
        "set": "APP and --set NAME.AREA.GROUP",
        "server": "APP.SERVER and no --node",
        "node": "APP.SERVER and --node NODE",
    }
    if _level_word(spec) != level:
        raise UsageError(f"--level {level} needs {needs[level]}")


@admin_command(app, no_args_is_help=True)
def edit(
    client: AdminClient,
    out: Output,
    where: WhereArgument,
    file: Annotated[
        str,
        typer.Option("--file", metavar="FILE", help="the new content ('-': standard input)"),
    ],
    reason: ReasonOption,
    name: NameArgument = None,
    node: NodeFileOption = "",
    set_: SetOption = "",
    user: UserOption = None,
    config_obj: ConfigObjOption = None,
) -> None:
    """Replace a file's content with FILE's; the old one stays in its history."""
    content = read_text_file(file)
    center = _center(client, config_obj)
    file_id = _file_id(center, where, name, node, set_)
    current = center.call("getConfigFile", file_id, doing=f"reading config file {file_id}")
    label = f"{current.fileName} of {current.serverName} (id {file_id})"
    if current.content == content:
        same: dict[str, Any] = {"id": file_id, "changed": False}
        out.emit(same, lambda c: _said(c, f"{label} already has this content: nothing changed"))
        return
    who = user or current_user()
    center.call("updateConfigFile", file_id, content, reason, who, doing=f"changing {label}")
    doc = {"id": file_id, "changed": True, "user": who}
    out.emit(doc, lambda c: _said(c, f"changed {label}"))


@admin_command(app, no_args_is_help=True)
def restore(
    client: AdminClient,
    out: Output,
    version: VersionArgument,
    reason: Annotated[
        str,
        typer.Option("--reason", metavar="TEXT", help="why (default: 'restore VERSION')"),
    ] = "",
    user: UserOption = None,
    config_obj: ConfigObjOption = None,
) -> None:
    """Make an old VERSION of a file its content again (a new version itself)."""
    center = _center(client, config_obj)
    old = center.call("getConfigHistory", version, doing=f"reading version {version}")
    who = user or current_user()
    center.call("restoreConfigHistory", version, reason, who, doing=f"restoring version {version}")
    doc = {"version": version, "file_id": int(old.configId), "user": who}
    out.emit(doc, lambda c: _said(c, f"restored version {version} of config file {old.configId}"))


@admin_command(app, no_args_is_help=True)
def delete(
    client: AdminClient,
    out: Output,
    where: WhereArgument,
    name: NameArgument = None,
    node: NodeFileOption = "",
    set_: SetOption = "",
    user: UserOption = None,
    config_obj: ConfigObjOption = None,
) -> None:
    """Delete a file with its history; refused while other files reference it."""
    center = _center(client, config_obj)
    file_id = _file_id(center, where, name, node, set_)
    who = user or current_user()
    center.call("deleteConfigFile", file_id, who, doing=f"deleting config file {file_id}")
    out.emit({"id": file_id, "deleted": True}, lambda c: _said(c, f"deleted config file {file_id}"))


# --------------------------------------------------------------------------- reading


@admin_command(app, no_args_is_help=True)
def show(
    client: AdminClient,
    out: Output,
    where: WhereArgument,
    name: NameArgument = None,
    node: NodeFileOption = "",
    set_: SetOption = "",
    merged: Annotated[
        bool,
        typer.Option(
            "--merged",
            help="what the instance on --node gets (referenced, server and node files "
            "joined, as loadConfigByInfo answers it)",
        ),
    ] = False,
    config_obj: ConfigObjOption = None,
) -> None:
    """Print one file's content as stored (--merged --node N: what that instance loads)."""
    center = _center(client, config_obj)
    if merged:
        _show_merged(client, center, out, where, name, node, set_)
        return
    file_id = _file_id(center, where, name, node, set_)
    f = center.call("getConfigFile", file_id, doing=f"reading config file {file_id}")
    doc = _file_doc(f, content=True)
    where_ = f" on node {f.host}" if f.host else (f" set {f.setDivision}" if f.setDivision else "")
    refs = f", references {', '.join(str(r) for r in doc['references'])}" if f.references else ""
    changed = f", last changed {f.postTime} by {f.lastUser or '?'}" if f.postTime else ""
    # stderr, so that stdout is the text `config edit --file` takes back
    out.note(f"# {f.fileName} of {f.serverName}{where_}: id {f.id}, {doc['level']}{changed}{refs}")
    out.emit(doc, lambda _console: print_text(f.content))


def _show_merged(
    client: AdminClient,
    center: ConfigCenter,
    out: Output,
    where: str,
    name: str | None,
    node: str,
    set_: str,
) -> None:
    if name is None:
        raise UsageError("--merged names the file: give APP.SERVER FILE --node NODE")
    check_file_name(name)
    if "." in where:
        app_name, server = split_server_id(where)
        if not node:
            raise UsageError("--merged: give --node NODE, the instance whose view to show")
        check_node(node)
    else:
        app_name, server = where, ""
        if node:
            raise UsageError("--merged of an application file has no node: give APP.SERVER")
    division = (
        check_set(set_) if set_ else (_set_of(client, app_name, server, node) if server else "")
    )
    text = center.call(
        "mergedConfig",
        app_name,
        server,
        name,
        node,
        division,
        doing=f"merging {name} for {where}" + (f" on node {node}" if node else ""),
    )
    doc = {"server": where, "node": node, "set": division, "name": name, "content": text}
    out.note(
        f"# {name} as {where}" + (f" on node {node}" if node else "") + " loads it"
        + (f" (set {division})" if division else "")
    )  # fmt: skip
    out.emit(doc, lambda _console: print_text(text))


def _set_of(client: AdminClient, app_name: str, server: str, node: str) -> str:
    """The set the instance on ``node`` runs in, "" for none (:func:`tarsus.ops.configs.set_of`,
    as the console's merged view finds it)."""
    from tarsus.ops.configs import set_of

    return client.run_plain(lambda platform: set_of(platform, app_name, server, node))


@admin_command(app, name="list", no_args_is_help=True)
def list_(
    client: AdminClient,
    out: Output,
    where: Annotated[
        str,
        typer.Argument(metavar="APP[.SERVER]", help="an application, or one of its servers"),
    ],
    level: Annotated[
        str | None,
        typer.Option("--level", metavar="|".join(LEVELS), help="only files of this level"),
    ] = None,
    node: Annotated[str, typer.Option("--node", metavar="NODE", help="only this node's")] = "",
    set_: Annotated[
        str, typer.Option("--set", metavar="NAME.AREA.GROUP", help="only this set's")
    ] = "",
    name: Annotated[str, typer.Option("--name", metavar="FILE", help="only this file")] = "",
    config_obj: ConfigObjOption = None,
) -> None:
    """The config files of an application or a server: level, set, node, last change."""
    app_name, _, server = where.partition(".")
    if "." in where:
        app_name, server = split_server_id(where)
    if level is not None and level not in LEVELS:
        raise UsageError(f"--level {level!r}: one of {', '.join(LEVELS)}")
    number = {"app": 1, "set": 1, "server": 2, "node": 3}.get(level or "", 0)
    filter_ = TarsusConfig.ConfigFilter(
        application=app_name,
        serverName=server,
        level=number,
        fileName=check_file_name(name) if name else "",
        setDivision=check_set(set_) if set_ else "",
        host=check_node(node) if node else "",
    )
    center = _center(client, config_obj)
    files = center.call("listConfigFiles", filter_, doing=f"listing the config files of {where}")
    docs = [_file_doc(f) for f in files]
    if level in ("app", "set"):
        docs = [d for d in docs if d["level"] == level]
    docs.sort(key=lambda d: (d["server"], d["name"], d["level"], d["set"], d["node"]))

    def human(console: Console) -> None:
        if not docs:
            _said(console, f"no config files of {where}")
            return
        table = Table(
            "id", "level", "owner", "file", "set/node", "last change", "user",
            box=None, pad_edge=False,
        )  # fmt: skip
        for d in docs:
            table.add_row(
                str(d["id"]), d["level"], Text(d["server"]), Text(d["name"]),
                Text(d["node"] or d["set"] or "-"), d["post_time"] or "-",
                Text(d["last_user"] or "-"),
            )  # fmt: skip
        console.print(table)

    out.emit({"files": docs}, human)


@admin_command(app, no_args_is_help=True)
def history(
    client: AdminClient,
    out: Output,
    where: WhereArgument,
    name: NameArgument = None,
    node: NodeFileOption = "",
    set_: SetOption = "",
    config_obj: ConfigObjOption = None,
) -> None:
    """A file's versions, newest first: when, who and why (ids for diff and restore)."""
    center = _center(client, config_obj)
    file_id = _file_id(center, where, name, node, set_)
    versions = center.call(
        "listConfigHistory", file_id, doing=f"reading the history of config file {file_id}"
    )
    docs = [_version_doc(v) for v in versions]

    def human(console: Console) -> None:
        if not docs:
            _said(console, f"config file {file_id} has no saved versions")
            return
        table = Table("version", "time", "user", "reason", box=None, pad_edge=False)
        for d in docs:
            table.add_row(
                str(d["version"]), d["post_time"] or "-", Text(d["user"] or "-"), Text(d["reason"])
            )
        console.print(table)

    out.emit({"id": file_id, "versions": docs}, human)


@admin_command(app, no_args_is_help=True)
def diff(
    client: AdminClient,
    out: Output,
    old: VersionArgument,
    new: Annotated[
        int | None,
        typer.Argument(
            metavar="[NEW]",
            help="the version to compare with (default: the file's content now)",
            min=1,
        ),
    ] = None,
    config_obj: ConfigObjOption = None,
) -> None:
    """A unified diff from version OLD to version NEW (or to the file's current content)."""
    center = _center(client, config_obj)
    before = center.call("getConfigHistory", old, doing=f"reading version {old}")
    old_label = _version_label(before)
    if new is None:
        f = center.call(
            "getConfigFile", before.configId, doing=f"reading config file {before.configId}"
        )
        after_text = f.content
        new_label = f"{f.fileName} now (id {f.id})"
    else:
        after = center.call("getConfigHistory", new, doing=f"reading version {new}")
        after_text = after.content
        new_label = _version_label(after)
        if after.configId != before.configId:
            out.note(
                f"note: versions {old} and {new} are of different files "
                f"({before.configId} and {after.configId})"
            )
    from tarsus.ops.configs import text_diff

    text = text_diff(before.content, after_text, old_label, new_label).unified
    doc = {"old": old, "new": new, "diff": text, "same": not text}
    if not text:
        out.note("no differences")
    out.emit(doc, lambda _console: print_text(text) if text else None)


def _version_label(v: TarsusConfig.ConfigVersion) -> str:
    when = f" {v.postTime}" if v.postTime else ""
    who = f" by {v.lastUser}" if v.lastUser else ""
    return f"version {v.id}{when}{who}"


# --------------------------------------------------------------------------- references


def _reference_ids(
    center: ConfigCenter, where: str, name: str | None, node: str, set_: str, ref: str
) -> tuple[int, int]:
    file_id = _file_id(center, where, name, node, set_)
    if ref.isdigit():
        return file_id, int(ref)
    app_name = where.split(".", 1)[0] if not where.isdigit() else ""
    if not app_name:
        raise UsageError("with a file given by id, give the referenced file's id too (--ref ID)")
    return file_id, center.file_id(FileSpec.parse(app_name, ref))


RefOption = Annotated[
    str,
    typer.Option(
        "--ref",
        metavar="FILE|ID",
        help="the application file (level 1) to include: its name or its id",
        show_default=False,
    ),
]


@admin_command(reference_app, name="add", no_args_is_help=True)
def reference_add(
    client: AdminClient,
    out: Output,
    where: WhereArgument,
    ref: RefOption,
    name: NameArgument = None,
    node: NodeFileOption = "",
    set_: SetOption = "",
    config_obj: ConfigObjOption = None,
) -> None:
    """Make a server or node file include an application file (--ref) before its own text."""
    center = _center(client, config_obj)
    file_id, ref_id = _reference_ids(center, where, name, node, set_, ref)
    doing = f"letting config file {file_id} reference {ref_id}"
    center.call("addConfigReference", file_id, ref_id, doing=doing)
    doc = {"id": file_id, "reference": ref_id}
    out.emit(doc, lambda c: _said(c, f"config file {file_id} now references {ref_id}"))


@admin_command(reference_app, name="remove", no_args_is_help=True)
def reference_remove(
    client: AdminClient,
    out: Output,
    where: WhereArgument,
    ref: RefOption,
    name: NameArgument = None,
    node: NodeFileOption = "",
    set_: SetOption = "",
    config_obj: ConfigObjOption = None,
) -> None:
    """Stop a server or node file including an application file (--ref)."""
    center = _center(client, config_obj)
    file_id, ref_id = _reference_ids(center, where, name, node, set_, ref)
    doing = f"removing the reference of config file {file_id} to {ref_id}"
    center.call("removeConfigReference", file_id, ref_id, doing=doing)
    doc = {"id": file_id, "reference": ref_id, "removed": True}
    out.emit(doc, lambda c: _said(c, f"config file {file_id} no longer references {ref_id}"))


# --------------------------------------------------------------------------- pushing


@admin_command(app, no_args_is_help=True)
def push(
    client: AdminClient,
    out: Output,
    server_id: Annotated[str, typer.Argument(metavar="APP.SERVER", help="e.g. Test.HelloServer")],
    name: Annotated[str, typer.Argument(metavar="FILE", help="the file name, e.g. hello.conf")],
    nodes: Annotated[
        list[str] | None,
        typer.Option("--node", metavar="NODE", help="an instance to push to (repeatable)"),
    ] = None,
    all_nodes: Annotated[bool, typer.Option("--all", help="every instance of the server")] = False,
) -> None:
    """Have instances load FILE again (tars.loadconfig FILE) and print each one's answer."""
    from tarsus.cli.publish import select_nodes
    from tarsus.ops import configs

    app_name, server = split_server_id(server_id)
    check_file_name(name)
    chosen = select_nodes(client, app_name, server, nodes or [], all_nodes)
    command = f"tars.loadconfig {name}"
    pushed = client.run(configs.push, None, app_name, server, name, chosen)
    answers = [dataclasses.asdict(a) for a in pushed]
    failed = [a["node"] for a in answers if not a["ok"]]
    doc = {"server": server_id, "file": name, "command": command, "instances": answers}

    def human(console: Console) -> None:
        table = Table("node", "", "answer", box=None, pad_edge=False)
        for a in answers:
            table.add_row(Text(a["node"]), "ok" if a["ok"] else "FAILED", Text(a["answer"]))
        console.print(table)

    out.emit(doc, human)
    if failed:
        typer.secho(
            f"error: {len(failed)} of {len(answers)} instances did not load {name}: "
            + ", ".join(failed),
            fg="red",
            err=True,
        )
        raise typer.Exit(EXIT_FAILED)
