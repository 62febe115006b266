"""Config files of a server, per level: list, view, add, edit, delete, the merged view (what an
instance gets), history, diff between versions, restore a version, and push to instances.

Writes and reads go through the config center's ``tarsus.ConfigExt`` (on
``tars.tarsconfig.ConfigExtObj``; docs/config-center.md), as ``tarsus config`` does; upstream's
console writes ``t_config_files`` itself. Levels are upstream's: 1 an application file (or a
set file: level 1 with its set), 2 a server file, 3 a node file (one per instance, holding
what that node adds). A push asks each chosen instance, through the admin registry's
``notifyServer``, to run ``tars.loadconfig FILE``, and answers what each one said.

Permissions: looking needs ``view`` on the server; an application (or set) file belongs to
the application, so changing one needs ``config_edit`` on the application, a server or node
file ``config_edit`` on the server; a push needs ``config_push`` on the server.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tarsus.ops import adminreg, audit
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Conflict, Invalid, NotFound, OpError, Unavailable, UpstreamFailed
from tarsus.ops.platform import Platform
from tarsus.ops.release import check_names, instances
from tarsus.ops.tasks import MAX_NODES
from tarsus.ops.upstream import need, refused
from tarsus.protocol.gen import AdminReg, TarsusConfig
from tarsus.rpc.errors import TarsError

__all__ = [
    "LEVELS",
    "ConfigFile",
    "Diff",
    "Merged",
    "PushAnswer",
    "Version",
    "add_file",
    "delete_file",
    "diff",
    "edit_file",
    "explain_code",
    "file",
    "files",
    "history",
    "merged",
    "push",
    "refusal",
    "restore",
    "set_of",
    "text_diff",
    "version",
]

CENTER = "the config center (tars.tarsconfig)"
ADMIN = "the admin registry"
#: ``t_config_files.level`` in words (a set file is level 1 with its set)
LEVELS = {1: "app", 2: "server", 3: "node"}
#: characters of a file's content at most (a config answer must fit one Tars packet)
MAX_CONTENT = 4 * 1024 * 1024
MAX_REASON = 500
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_NODE = re.compile(r"[A-Za-z0-9._:-]{1,50}")
#: what a node puts before a server's answer to notifyServer, and a failed load's answer
NODE_SUCC = "succ:"
LOAD_FAILED = "[fail]"

_C = TarsusConfig.ConfigExtCode
_MAPPED: dict[int, type[OpError]] = {
    _C.CONFIG_NOT_FOUND: NotFound,
    _C.CONFIG_BAD_INPUT: Invalid,
    _C.CONFIG_EXISTS: Conflict,
    _C.CONFIG_REFERENCED: Conflict,
}
#: ``ConfigExtCode`` in words (the console and ``tarsus config`` say the same)
MEANINGS: dict[int, str] = {
    _C.CONFIG_NOT_FOUND: "not found",
    _C.CONFIG_BAD_INPUT: "refused as bad input",
    _C.CONFIG_EXISTS: "the file already exists",
    _C.CONFIG_REFERENCED: "other files reference it",
    _C.CONFIG_DB_ERROR: "the config center's database failed; nothing was changed",
}


@dataclass(frozen=True)
class ConfigFile:
    id: int
    level: str
    #: ``App`` (an application or set file) or ``App.Server``
    owner: str
    name: str
    set: str
    node: str
    post_time: str
    last_user: str
    content: str = ""
    references: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Version:
    id: int
    file_id: int
    reason: str
    post_time: str
    last_user: str
    content: str = ""


@dataclass(frozen=True)
class Merged:
    server: str
    name: str
    node: str
    set: str
    content: str


@dataclass(frozen=True)
class Diff:
    """From ``old`` to ``new`` (labels), as a unified diff and as side-by-side rows
    ``(kind, left line no, left, right line no, right)``, kind one of ``same``, ``changed``,
    ``removed``, ``added``."""

    old: str
    new: str
    unified: str
    rows: list[tuple[str, int | None, str, int | None, str]]

    @property
    def same(self) -> bool:
        return not self.unified


@dataclass(frozen=True)
class PushAnswer:
    node: str
    ok: bool
    answer: str


def _file(f: TarsusConfig.ConfigFile, *, content: bool = False) -> ConfigFile:
    return ConfigFile(
        id=int(f.id), level=LEVELS.get(int(f.level), str(f.level)), owner=f.serverName,
        name=f.fileName, set=f.setDivision or "", node=f.host or "",
        post_time=f.postTime or "", last_user=f.lastUser or "",
        content=f.content if content else "", references=[int(r) for r in f.references],
    )  # fmt: skip


def _version(v: TarsusConfig.ConfigVersion, *, content: bool = False) -> Version:
    return Version(
        id=int(v.id), file_id=int(v.configId), reason=v.reason or "", post_time=v.postTime or "",
        last_user=v.lastUser or "", content=v.content if content else "",
    )  # fmt: skip


def check_file_name(name: str) -> str:
    if not _FILE_NAME.fullmatch(name) or name in (".", ".."):
        raise Invalid(
            f"{name[:80]!r} is not a config file name: letters, digits, '.', '_' and '-' only "
            "(at most 128)"
        )
    return name


def _check_text(content: str, reason: str) -> None:
    if len(content) > MAX_CONTENT:
        raise Invalid(f"the file is {len(content)} characters; at most {MAX_CONTENT}")
    if "\x00" in content:
        raise Invalid("the file holds a NUL character: a config file is text")
    if len(reason) > MAX_REASON:
        raise Invalid(f"the reason is {len(reason)} characters; at most {MAX_REASON}")


async def _call(platform: Platform, method: str, *args: object, doing: str) -> Any:
    """``ConfigExt.<method>``'s first output after its code (None if none); its refusals as
    :class:`OpError` (not found 404, bad input 400, exists / referenced 409)."""
    center = need(platform.config, CENTER)
    try:
        code, *outs = await getattr(center, method)(*args)
    except TarsError as e:
        raise Unavailable(f"{CENTER} cannot be reached: {e}") from None
    if code != 0:
        raise refusal(doing, int(code), str(outs[-1]))
    return outs[0] if len(outs) == 2 else None


def refusal(doing: str, code: int, result: str = "") -> OpError:
    """The config center's non-zero ``ConfigExtCode`` for ``doing`` as an op error, in words
    (not found 404, bad input 400, exists / referenced 409, the rest 502)."""
    name, meaning = explain_code(code)
    return refused(_MAPPED.get(code, UpstreamFailed), doing, code, name, meaning, result)


def explain_code(code: int) -> tuple[str, str]:
    """``(ConfigExtCode name, meaning)`` of a code; the name is empty for other codes."""
    try:
        name = _C(code).name
    except ValueError:
        name = ""
    return name, MEANINGS.get(code, f"error code {code}")


def _belongs(f: ConfigFile, app: str, server: str) -> bool:
    """The file is the server's (level 2, 3) or its application's (level 1)."""
    return f.owner in (app, f"{app}.{server}")


def _edit_scope(f: ConfigFile, app: str, server: str) -> tuple[str, str | None]:
    return (app, None) if f.owner == app else (app, server)


# --------------------------------------------------------------------------- reading


async def files(platform: Platform, actor: Actor, app: str, server: str) -> list[ConfigFile]:
    """The files an instance of ``App.Server`` may get: the application's (and its sets'),
    the server's, and its node files; by level, name, set, node."""
    actor.require(Perm.VIEW, app, server)
    app, server = check_names(app, server)
    doing = f"listing the config files of {app}.{server}"
    own = await _call(
        platform, "listConfigFiles",
        TarsusConfig.ConfigFilter(application=app, serverName=server), doing=doing,
    )  # fmt: skip
    shared = await _call(
        platform, "listConfigFiles", TarsusConfig.ConfigFilter(application=app, level=1),
        doing=doing,
    )  # fmt: skip
    assert isinstance(own, list) and isinstance(shared, list)
    found = [_file(f) for f in [*shared, *own]]
    order = {"app": 0, "server": 1, "node": 2}
    return sorted(found, key=lambda f: (order.get(f.level, 3), f.name, f.set, f.node))


async def file(platform: Platform, actor: Actor, app: str, server: str, file_id: int) -> ConfigFile:
    """One file with its content (:class:`NotFound` if it is not one of this server's)."""
    actor.require(Perm.VIEW, app, server)
    f = await _call(platform, "getConfigFile", file_id, doing=f"reading config file {file_id}")
    assert isinstance(f, TarsusConfig.ConfigFile)
    found = _file(f, content=True)
    if not _belongs(found, app, server):
        raise NotFound(f"config file {file_id} is not one of {app}.{server}'s")
    return found


async def history(
    platform: Platform, actor: Actor, app: str, server: str, file_id: int
) -> list[Version]:
    """The file's versions, newest first, without their content."""
    await file(platform, actor, app, server, file_id)
    found = await _call(
        platform, "listConfigHistory", file_id, doing=f"reading the history of {file_id}"
    )
    assert isinstance(found, list)
    return [_version(v) for v in found]


async def version(
    platform: Platform, actor: Actor, app: str, server: str, file_id: int, version_id: int
) -> Version:
    """One version of the file, with its content."""
    await file(platform, actor, app, server, file_id)
    return await _version_of(platform, file_id, version_id)


async def _version_of(platform: Platform, file_id: int, version_id: int) -> Version:
    v = await _call(platform, "getConfigHistory", version_id, doing=f"reading version {version_id}")
    assert isinstance(v, TarsusConfig.ConfigVersion)
    if int(v.configId) != file_id:
        raise NotFound(f"version {version_id} is not a version of config file {file_id}")
    return _version(v, content=True)


def _label(v: Version) -> str:
    return f"version {v.id} {v.post_time} {v.last_user}".rstrip()


def text_diff(old: str, new: str, old_label: str, new_label: str) -> Diff:
    """A unified diff and side-by-side rows (difflib) of two texts."""
    a, b = old.splitlines(), new.splitlines()
    unified = "\n".join(
        difflib.unified_diff(a, b, fromfile=old_label, tofile=new_label, lineterm="")
    )
    rows: list[tuple[str, int | None, str, int | None, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [
                ("same", i + 1, a[i], j + 1, b[j])
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            ]
            continue
        left, right = list(range(i1, i2)), list(range(j1, j2))
        for k in range(max(len(left), len(right))):
            i = left[k] if k < len(left) else None
            j = right[k] if k < len(right) else None
            kind = (
                "changed"
                if i is not None and j is not None
                else "removed"
                if j is None
                else "added"
            )
            rows.append(
                (kind, None if i is None else i + 1, "" if i is None else a[i],
                 None if j is None else j + 1, "" if j is None else b[j])
            )  # fmt: skip
    return Diff(old_label, new_label, unified + ("\n" if unified else ""), rows)


async def diff(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    file_id: int,
    old: int,
    new: int | None = None,
) -> Diff:
    """From version ``old`` to version ``new`` (None: the file's content now)."""
    current = await file(platform, actor, app, server, file_id)
    before = await _version_of(platform, file_id, old)
    if new is None:
        after_text, after_label = current.content, f"{current.name} now"
    else:
        after = await _version_of(platform, file_id, new)
        after_text, after_label = after.content, _label(after)
    return text_diff(before.content, after_text, _label(before), after_label)


async def set_of(platform: Platform, app: str, server: str, node: str) -> str:
    """The set the instance on ``node`` runs in, "" for none (:class:`Invalid` if the server
    is not deployed there, naming where it is); no permission check (:func:`merged` is the
    actor's view, ``tarsus config show --merged`` the local operator's)."""
    admin = need(platform.admin, ADMIN)
    doing = f"reading where {app}.{server} is deployed"
    async with adminreg.calling(doing):
        code, rows = await admin.getServerNameList(
            [AdminReg.ApplicationServerName(application=app, serverName=server)]
        )
    if code != 0:
        raise adminreg.refusal(doing, int(code))
    rows = [r for r in rows if r.get("server_name") == server]
    mine = [r for r in rows if r.get("node_name") == node]
    if not mine:
        nodes = sorted({r.get("node_name", "") for r in rows} - {""})
        raise Invalid(
            f"{app}.{server} is not deployed on node {node[:64]}"
            + (f" (it is on {', '.join(nodes[:20])})" if nodes else " (nor on any node)")
        )
    row = mine[0]
    if row.get("enable_set", "N").upper() != "Y":
        return ""
    return ".".join(row.get(k, "") for k in ("set_name", "set_area", "set_group"))


async def merged(
    platform: Platform, actor: Actor, app: str, server: str, name: str, node: str
) -> Merged:
    """What the instance of ``App.Server`` on ``node`` gets for file ``name``: its references,
    the server file and the node file joined (``Config.loadConfigByInfo``'s answer)."""
    actor.require(Perm.VIEW, app, server)
    app, server = check_names(app, server)
    check_file_name(name)
    if not _NODE.fullmatch(node):
        raise Invalid(f"{node[:64]!r} is not a node name")
    division = await set_of(platform, app, server, node)
    text = await _call(
        platform, "mergedConfig", app, server, name, node, division,
        doing=f"merging {name} for {app}.{server} on node {node}",
    )  # fmt: skip
    return Merged(f"{app}.{server}", name, node, division, str(text))


# --------------------------------------------------------------------------- changing


async def add_file(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    name: str,
    content: str,
    *,
    level: str = "server",
    reason: str = "",
) -> ConfigFile:
    """A new server file (``level`` ``server``; its node files come with it) or application
    file (``app``)."""
    if level not in ("server", "app"):
        raise Invalid(f"level {level[:20]!r}: add a 'server' or an 'app' file")
    actor.require(Perm.CONFIG_EDIT, app, server if level == "server" else None)
    app, server = check_names(app, server)
    check_file_name(name)
    _check_text(content, reason)
    new = TarsusConfig.ConfigFile(
        id=0, level=2 if level == "server" else 1,
        serverName=f"{app}.{server}" if level == "server" else app,
        fileName=name, content=content,
    )  # fmt: skip
    file_id = await _call(platform, "addConfigFile", new, reason, actor.uid, doing=f"adding {name}")
    added = ConfigFile(
        id=int(file_id), level=level, owner=new.serverName, name=name, set="", node="",
        post_time="", last_user=actor.uid, content=content,
    )  # fmt: skip
    await audit.record(
        platform, actor, "config.add", f"{new.serverName}/{name}",
        after={"id": added.id, "level": level, "content": content, "reason": reason},
    )  # fmt: skip
    return added


async def edit_file(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    file_id: int,
    content: str,
    reason: str,
) -> ConfigFile:
    """Replace the file's content; the new content becomes a version. A reason is required
    (as upstream's console asks)."""
    actor.require(Perm.VIEW, app, server)
    _check_text(content, reason)
    if not reason.strip():
        raise Invalid("say why: a reason is required to change a config file")
    before = await file(platform, actor, app, server, file_id)
    actor.require(Perm.CONFIG_EDIT, *_edit_scope(before, app, server))
    await _call(
        platform, "updateConfigFile", file_id, content, reason, actor.uid,
        doing=f"changing config file {file_id}",
    )  # fmt: skip
    await audit.record(
        platform, actor, "config.edit", f"{before.owner}/{before.name}#{file_id}",
        before={"content": before.content}, after={"content": content, "reason": reason},
    )  # fmt: skip
    return await file(platform, actor, app, server, file_id)


async def delete_file(
    platform: Platform, actor: Actor, app: str, server: str, file_id: int
) -> ConfigFile:
    """Remove the file and its history (:class:`Conflict` while others reference it)."""
    before = await file(platform, actor, app, server, file_id)
    actor.require(Perm.CONFIG_EDIT, *_edit_scope(before, app, server))
    await _call(platform, "deleteConfigFile", file_id, actor.uid, doing=f"deleting {file_id}")
    await audit.record(
        platform, actor, "config.delete", f"{before.owner}/{before.name}#{file_id}",
        before=before,
    )  # fmt: skip
    return before


async def restore(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    file_id: int,
    version_id: int,
    reason: str = "",
) -> ConfigFile:
    """Make version ``version_id`` the file's content again (itself a new version)."""
    before = await file(platform, actor, app, server, file_id)
    actor.require(Perm.CONFIG_EDIT, *_edit_scope(before, app, server))
    _check_text("", reason)
    await _version_of(platform, file_id, version_id)
    await _call(
        platform, "restoreConfigHistory", version_id, reason, actor.uid,
        doing=f"restoring version {version_id}",
    )  # fmt: skip
    after = await file(platform, actor, app, server, file_id)
    await audit.record(
        platform, actor, "config.restore", f"{before.owner}/{before.name}#{file_id}",
        before={"content": before.content},
        after={"content": after.content, "version": version_id, "reason": reason},
    )  # fmt: skip
    return after


async def push(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    name: str,
    nodes: Sequence[str] = (),
) -> list[PushAnswer]:
    """Have the instances on ``nodes`` (default: every one) load ``name`` again
    (``tars.loadconfig``); each one's answer. An instance that fails does not stop the
    others."""
    actor.require(Perm.CONFIG_PUSH, app, server)
    app, server = check_names(app, server)
    check_file_name(name)
    if len(nodes) > MAX_NODES:
        raise Invalid(f"{len(nodes)} nodes: at most {MAX_NODES}")
    deployed = [i.node for i in await instances(platform, app, server)]
    chosen = list(dict.fromkeys(nodes)) if nodes else deployed
    missing = [n for n in chosen if n not in deployed]
    if missing:
        raise Invalid(
            f"{app}.{server} is not deployed on node {', '.join(m[:64] for m in missing[:5])}"
        )
    if not chosen:
        raise NotFound(f"{app}.{server} is not deployed on any node")
    admin = need(platform.admin, ADMIN)
    command = f"tars.loadconfig {name}"
    answers: list[PushAnswer] = []
    for node in chosen:
        doing = f"notifying {app}.{server} on node {node}"
        try:  # this instance's call; the others still get theirs
            async with adminreg.calling(doing):
                code, result = await admin.notifyServer(app, server, node, command)
            if code != 0:
                raise adminreg.refusal(doing, int(code), result)
        except OpError as e:
            answers.append(PushAnswer(node, False, e.message))
            continue
        answer = str(result).removeprefix(NODE_SUCC).strip()
        answers.append(PushAnswer(node, not answer.startswith(LOAD_FAILED), answer))
    await audit.record(
        platform, actor, "config.push", f"{app}.{server}/{name}",
        after=[{"node": a.node, "ok": a.ok} for a in answers],
    )  # fmt: skip
    return answers
