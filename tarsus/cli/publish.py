"""Publishing across nodes: one admin registry task, followed live (``tarsus server publish``).

The CLI sends what upstream's web console sends when an operator clicks "publish" (TarsWeb
``add_task``; docs/release.md): ``AdminReg.addTaskReq`` with one
item per chosen node, command ``patch_tars``, parameters ``patch_id`` (the package's id in the
package store), ``bak_flag`` (``1``: install but do not restart), ``update_text`` (the comment)
and ``group_name``; ``serial``, ``eachNum`` (batches of K) and ``isElegant`` (lossless) say how
the admin registry's task engine runs them (:func:`tarsus.release.patch_task` builds it, for
the HTTP app's upload-and-publish too). The task and every item are kept by the admin
registry, so ``tarsus server task TASKNO`` and ``tarsus server history`` read them back.

While the task runs, ``getTaskRsp`` is read every 0.5 s and each node's line shows its status
and percent (rich on a terminal, one plain line per change otherwise). Ctrl-C stops following,
not the task.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tarsus import release
from tarsus.cli.admin_client import AdminClient, CommandFailed, Output, UsageError
from tarsus.ops import tasks
from tarsus.ops.tasks import (
    I_CANCEL,
    I_FAILED,
    I_NOT_START,
    I_SUCCESS,
    ItemView,
    Rollout,
    TaskOutcome,
    previous_versions,
    read_task,
    status_word,
)
from tarsus.protocol.gen import AdminReg
from tarsus.rpc.errors import Ret

__all__ = [
    "FOLLOW_INTERVAL_S",
    "ItemView",
    "PatchSource",
    "Rollout",
    "TaskOutcome",
    "deployed_nodes",
    "follow_task",
    "previous_versions",
    "read_task",
    "rollout_from_options",
    "select_nodes",
    "status_word",
    "wait_answering",
]

FOLLOW_INTERVAL_S = 0.5
#: how often a canary is asked whether it answers, while waiting for it
ACTIVE_POLL_S = 1.0

# --------------------------------------------------------------------------- what to run


def rollout_from_options(
    *, serial: bool, parallel: bool, batch: int | None, lossless: bool
) -> Rollout:
    """``--serial`` / ``--parallel`` / ``--batch K`` (one of them) and ``--lossless``."""
    chosen = [name for name, on in (("--serial", serial), ("--parallel", parallel)) if on]
    if batch is not None:
        chosen.append("--batch")
        if batch < 1:
            raise UsageError("--batch takes a number of nodes, 1 or more")
    if len(chosen) > 1:
        raise UsageError(f"choose one of --serial, --parallel, --batch K (not {chosen})")
    if batch is not None:
        return Rollout(serial=False, each=batch, lossless=lossless)
    # lossless without --batch: one node at a time, as upstream's default "nodes per batch"
    return Rollout(serial=not parallel, each=1, lossless=lossless)


@dataclass(frozen=True)
class PatchSource:
    """What a task installs: a package of the store (``patch_id``), or, without a store, a
    path every node can read (``filepath``, our parameter; shared disks only)."""

    patch_id: int | None = None
    filepath: str = ""
    md5: str = ""
    label: str = ""

    def parameters(self) -> dict[str, str]:
        if self.patch_id is not None:
            return {"patch_id": str(self.patch_id)}
        return {"filepath": self.filepath, "md5": self.md5}

    def describe(self) -> str:
        if self.label:
            return self.label
        return f"version {self.patch_id}" if self.patch_id is not None else self.filepath


# --------------------------------------------------------------------------- which nodes


def deployed_nodes(client: AdminClient, app: str, server: str) -> list[str]:
    """The nodes ``App.Server`` is deployed on (``getAllServerIds``), in name order."""
    rows, result = client.call("getAllServerIds")
    if not rows and result.strip():  # it failed (its database down): not "deployed nowhere"
        raise CommandFailed(
            f"cannot list the nodes {app}.{server} is deployed on: {result.strip()}"
        )
    prefix = f"{app}.{server}_"
    found = {str(row[0])[len(prefix) :] for row in rows if row and str(row[0]).startswith(prefix)}
    return sorted(n for n in found if n)


def select_nodes(
    client: AdminClient, app: str, server: str, nodes: Sequence[str], all_nodes: bool
) -> list[str]:
    """``--node N ...`` (each checked to have the server) or ``--all``, in the order given."""
    if all_nodes and nodes:
        raise UsageError("give --node N (repeatable) or --all, not both")
    if not all_nodes and not nodes:
        raise UsageError("give the nodes: --node N (repeatable), or --all for every instance")
    seen: list[str] = []
    for node in nodes:
        if not node or any(c.isspace() for c in node):
            raise UsageError(f"--node {node!r} is not a node name")
        if node not in seen:
            seen.append(node)
    deployed = deployed_nodes(client, app, server)
    if all_nodes:
        if not deployed:
            raise CommandFailed(f"{app}.{server} is deployed on no node: nothing to publish to")
        return deployed
    missing = [n for n in seen if n not in deployed]
    if missing:
        raise CommandFailed(
            f"{app}.{server} is not deployed on node {', '.join(missing)}"
            + (f" (it is on {', '.join(deployed)})" if deployed else " (nor on any node)")
            + "; deploy it there first (`tarsus server deploy`)"
        )
    return seen


# --------------------------------------------------------------------------- following


class _Lines:
    """Progress without a terminal: one line per node whenever its status changes."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.seen: dict[str, int] = {}

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def show(self, outcome: TaskOutcome) -> None:
        for item in outcome.items:
            if self.seen.get(item.node) != item.status:
                self.seen[item.node] = item.status
                line = f"{item.node}: {status_word(item.status)} {item.percent}%"
                if item.status == I_FAILED and item.log:
                    line += f": {item.log}"
                self.out.note(line)


class _Bars:
    """Progress on a terminal: a rich bar per node, with its status."""

    def __init__(self, out: Output, nodes: Sequence[str]) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[word]}"),
            console=out.err_console,
            refresh_per_second=4,
        )
        self.bars = {
            n: self.progress.add_task(n, total=100, word=status_word(I_NOT_START)) for n in nodes
        }

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, outcome: TaskOutcome) -> None:
        for item in outcome.items:
            bar = self.bars.get(item.node)
            if bar is None:
                bar = self.bars[item.node] = self.progress.add_task(item.node, total=100, word="")
            percent = 100 if item.status == I_SUCCESS else item.percent
            self.progress.update(bar, completed=percent, word=status_word(item.status))


def follow_task(
    client: AdminClient,
    out: Output,
    task_no: str,
    nodes: Sequence[str],
    *,
    stall_timeout_s: float,
    interval_s: float | None = None,
) -> TaskOutcome:
    """Read ``getTaskRsp`` every ``interval_s`` until every item is finished, showing each
    node's progress; gives up following (``CommandFailed``) when nothing changed for
    ``stall_timeout_s``. Ctrl-C stops following and says how to go on (exit status 130)."""
    view: _Lines | _Bars
    if out.as_json:
        view = _Lines(out)  # notes are silent with --json
    elif out.err_console.is_terminal:
        view = _Bars(out, nodes)
    else:
        view = _Lines(out)
    interval = FOLLOW_INTERVAL_S if interval_s is None else interval_s
    last: tuple[Any, ...] | None = None
    changed = time.monotonic()
    try:
        with view:
            while True:
                ret, rsp = client.call("getTaskRsp", task_no)
                if ret != 0:
                    raise CommandFailed(
                        f"the admin registry does not know the task {task_no} any more "
                        f"(getTaskRsp answered {ret})",
                        ret,
                    )
                outcome = read_task(rsp)
                view.show(outcome)
                if outcome.finished:
                    return outcome
                state = tuple((i.status, i.percent) for i in outcome.items)
                now = time.monotonic()
                if state != last:
                    last, changed = state, now
                elif now - changed >= stall_timeout_s:
                    raise CommandFailed(
                        f"task {task_no}: no progress for {stall_timeout_s:g} s; it goes on in "
                        f"the admin registry: `tarsus server task {task_no}` shows it",
                        extra={"task": task_no, **outcome.as_json()},
                    )
                time.sleep(interval)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; task {task_no} goes on in the admin registry.\n"
            f"follow it: tarsus server task {task_no} --follow",
            file=sys.stderr,
        )
        raise SystemExit(130) from None


def wait_answering(
    client: AdminClient,
    app: str,
    server: str,
    nodes: Iterable[str],
    *,
    timeout_s: float,
) -> tuple[dict[str, str], bool]:
    """Wait until ``App.Server`` is Active on every node and answers there: the admin
    registry's ``AdminExt.checkServerAnswers`` (Active as its node sees it, and each servant
    answering ``tars_ping`` on its own endpoint; the lossless task's check). Returns the nodes
    that do not, with why (empty: all answer), and whether answering was checked: an
    upstream admin registry has no ``checkServerAnswers``, and then only Active (with a pid,
    ``getServerState``) is waited for."""
    deadline = time.monotonic() + timeout_s
    waiting = list(nodes)
    why: dict[str, str] = {}
    answers = True
    while True:
        for node in list(waiting):
            judged = _answers(client, app, server, node) if answers else None
            if judged is None:
                answers = False
                judged = _active(client, app, server, node)
            ok, reason = judged
            if ok:
                waiting.remove(node)
                why.pop(node, None)
            else:
                why[node] = reason
        if not waiting or time.monotonic() >= deadline:
            return {n: why[n] for n in waiting}, answers
        time.sleep(ACTIVE_POLL_S)


def _answers(client: AdminClient, app: str, server: str, node: str) -> tuple[bool, str] | None:
    """``checkServerAnswers``: does ``App.Server`` answer on ``node``, and if not, why. None:
    the admin registry has no such function (upstream's)."""
    try:
        ret, result = client.call_ext("checkServerAnswers", app, server, node)
    except CommandFailed as e:
        if e.code == Ret.SERVER_NO_FUNC:
            return None
        raise
    return ret == 0, str(result).strip() or f"error {ret}"


def _active(client: AdminClient, app: str, server: str, node: str) -> tuple[bool, str]:
    """Is ``App.Server`` active on ``node`` as its node sees it (``getServerState``: present
    state ``Active``, with a pid)? And if not, what it is."""
    ret, state, result = client.call("getServerState", app, server, node)
    present = str(state.presentStateInNode or state.presentStateInReg or "")
    # the node says "Active" (upstream's etos), the registry "active"
    if ret == 0 and present.lower() == "active" and int(state.processId) > 0:
        return True, ""
    return False, present or (str(result).strip() or f"error {ret}")


def failure_message(doing: str, outcome: TaskOutcome) -> str:
    """One line: which nodes failed and why (``doing`` says what was being done)."""
    failed = [i for i in outcome.items if i.status == I_FAILED]
    cancelled = [i for i in outcome.items if i.status == I_CANCEL]
    total = len(outcome.items)
    if total == 1 and failed:
        item = failed[0]
        return (
            f"{doing} on node {item.node} failed at {item.percent}%: "
            f"{item.log or 'the admin registry gave no reason'}"
        )
    parts = [f"node {i.node}: {i.log or 'no reason given'}" for i in failed]
    message = f"{doing} failed on {len(failed)} of {total} nodes"
    if parts:
        message += ": " + "; ".join(parts)
    if cancelled:
        message += f" (not done, after the failure: {', '.join(i.node for i in cancelled)})"
    return message + f"; task {outcome.task_no}"


# --------------------------------------------------------------------------- one publish


@dataclass(frozen=True)
class Canary:
    """``--canary N``: the first N nodes first, then (``go_on``) the rest."""

    count: int
    go_on: bool = True
    wait_s: float = 60.0


def add_task(client: AdminClient, req: AdminReg.TaskReq, doing: str) -> None:
    """:func:`tarsus.ops.tasks.add_task`, as the console adds its tasks."""
    client.run_plain(lambda platform: tasks.add_task(platform, req, doing))


def run_publish(
    client: AdminClient,
    out: Output,
    app: str,
    server: str,
    nodes: Sequence[str],
    source: PatchSource,
    rollout: Rollout,
    *,
    user: str,
    comment: str,
    restart: bool,
    stall_timeout_s: float,
    canary: Canary | None = None,
    verb: str = "publishing",
) -> dict[str, Any]:
    """Publish ``source`` to ``nodes`` as one task (two with a canary), following each; the
    document of what happened. ``CommandFailed`` (with that document) if any node failed."""
    server_id = f"{app}.{server}"
    doing = f"{verb} {source.describe()} to {server_id}"
    phases: list[tuple[str, list[str]]] = [("all", list(nodes))]
    if canary is not None:
        if not 0 < canary.count < len(nodes):
            raise UsageError(
                f"--canary {canary.count}: give fewer nodes than the {len(nodes)} chosen, 1 or more"
            )
        phases = [("canary", list(nodes[: canary.count])), ("rest", list(nodes[canary.count :]))]
    doc: dict[str, Any] = {
        "server": server_id,
        "source": {"patch_id": source.patch_id, "filepath": source.filepath or None},
        "rollout": rollout.as_json(),
        "nodes": list(nodes),
        "restart": restart,
        "tasks": [],
    }
    for phase, phase_nodes in phases:
        req = release.patch_task(
            app, server, phase_nodes, source.parameters(), user=user, comment=comment,
            restart=restart, serial=rollout.serial, each=rollout.each, lossless=rollout.lossless,
        )  # fmt: skip
        add_task(client, req, doing)
        out.note(
            f"task {req.taskNo}: {doing} on {len(phase_nodes)} node"
            f"{'s' if len(phase_nodes) != 1 else ''}"
            + (f" ({rollout.describe()})" if len(phase_nodes) > 1 else "")
            + (" [canary]" if phase == "canary" else "")
        )
        outcome = follow_task(client, out, req.taskNo, phase_nodes, stall_timeout_s=stall_timeout_s)
        doc["tasks"].append({"phase": phase, **outcome.as_json()})
        if not outcome.succeeded:
            raise CommandFailed(failure_message(doing, outcome), extra=doc)
        if phase == "canary" and canary is not None:
            not_ready, checked = wait_answering(
                client, app, server, phase_nodes, timeout_s=canary.wait_s
            )
            ready = "active and answering" if checked else "active"
            doc["canary"] = {"nodes": phase_nodes, "not_ready": not_ready, "checked": ready}
            if not_ready:
                states = "; ".join(f"node {n}: {s}" for n, s in not_ready.items())
                raise CommandFailed(
                    f"canary: {server_id} is not {ready} after {canary.wait_s:g} s ({states}); "
                    f"the other {len(nodes) - len(phase_nodes)} nodes were not touched",
                    extra=doc,
                )
            if not checked:
                out.note(
                    "canary: this admin registry cannot tell whether the server answers "
                    "(no AdminExt.checkServerAnswers): only its state was checked"
                )
            out.note(f"canary: {server_id} is {ready} on {', '.join(phase_nodes)}")
            if not canary.go_on:
                rest = list(nodes[canary.count :])
                doc["stopped_after_canary"] = True
                doc["rest"] = rest
                return doc
    return doc


def go_on_command(server_id: str, source: PatchSource, rest: Sequence[str]) -> str:
    """The command that publishes the same package to the nodes a canary left."""
    what = f"--version {source.patch_id}" if source.patch_id is not None else "--package PATH"
    return f"tarsus server publish {server_id} {what} " + " ".join(f"--node {n}" for n in rest)


# --------------------------------------------------------------------------- history


def publish_history(client: AdminClient, app: str, server: str) -> list[TaskOutcome]:
    """The server's publish tasks, newest first (:func:`tarsus.ops.release.publish_tasks`,
    what the console's history shows)."""
    from tarsus.ops.release import publish_tasks

    return client.run_plain(lambda platform: publish_tasks(platform, app, server))
