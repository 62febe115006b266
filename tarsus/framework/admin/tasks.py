"""The task engine behind ``addTaskReq`` / ``getTaskRsp`` (upstream ``ExecuteTask.cpp``).

A task is a list of items, each one command (``start``, ``stop``, ``restart``, ``patch_tars``,
``grace_patch_tars``, ``undeploy_tars``) on one server instance. It runs in one of four ways:

* **serial**: one item after the other; after the first failure the rest are cancelled;
* **parallel**: all items at once, at most ``max_parallel`` (5) running at a time;
* **batches** (ours; ``serial`` false, ``eachNum`` > 1, not elegant): ``eachNum`` items at a
  time, each batch's items together, the next batch once the previous one has ended; after a
  batch with a failed item the rest are cancelled, as in a serial task;
* **elegant** (lossless): batches of ``eachNum`` items; for each batch the instances' traffic
  is closed (``flow_state='inactive'``), the engine waits ``elegant_wait_second`` so clients
  drop them from their route lists, runs the batch, and opens each instance's traffic again
  once it is Active and answers on its servants (docs/admin.md, "Lossless publish and
  restart").

Every task is stored in ``t_task``/``t_task_item`` before ``addTaskReq`` answers, and every
status, time and log change of an item is written as it happens; upstream stores only publish
tasks (``DbProxy::addTaskReq``). Tasks live in memory until ``task_timeout`` seconds after they end;
``getTaskRsp`` reads older ones from the database. A task runs as an asyncio task: one item
failing, even by a bug, marks that item FAILED and never stops the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tarsus.framework.admin.errors import AdminError, ErrCode, Outcome
from tarsus.framework.admin.settings import AdminSettings
from tarsus.protocol.gen import AdminReg
from tarsus.rpc.periodic import Periodic
from tarsus.store.errors import Conflict, InvalidInput, StoreError
from tarsus.store.tasks import TaskItemRecord, TaskRecord, Tasks

__all__ = ["COMMANDS", "TaskEngine", "TaskOperations", "derive_status"]

log = logging.getLogger("tarsus.framework.admin.tasks")

#: The commands a task item may carry.
COMMANDS = ("start", "stop", "restart", "patch_tars", "grace_patch_tars", "undeploy_tars")
PATCH_COMMANDS = ("patch_tars", "grace_patch_tars")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# EMTaskItemStatus / EMTaskStatus values (AdminReg.tars).
I_NOT_START, I_PREPARE, I_RUNNING, I_SUCCESS, I_FAILED, I_CANCEL, I_PAUSE_FLOW = range(7)
T_NOT_START, T_PREPARE, T_RUNNING, T_SUCCESS, T_FAILED, T_CANCEL, T_PARIAL = range(7)
_ITEM_STATUS_NAMES = (
    "EM_I_NOT_START",
    "EM_I_PREPARE",
    "EM_I_RUNNING",
    "EM_I_SUCCESS",
    "EM_I_FAILED",
    "EM_I_CANCEL",
    "EM_I_PAUSE_FLOW",
)
_UNFINISHED = (I_NOT_START, I_PREPARE, I_RUNNING, I_PAUSE_FLOW)
#: Commands after which the instance runs: a lossless task waits until it answers.
_RUNS_AFTER = ("start", "restart", "patch_tars", "grace_patch_tars")


class Reporter(Protocol):
    """Where a task's outcomes are reported (:meth:`~tarsus.framework.service.
    FrameworkService.report`)."""

    def __call__(self, message: str, *, application: str, server: str, node: str) -> None: ...


class TaskOperations(Protocol):
    """What items do; implemented by :class:`tarsus.framework.admin.lifecycle.Lifecycle`."""

    async def start(self, application: str, server: str, node: str) -> Outcome: ...

    async def stop(self, application: str, server: str, node: str) -> Outcome: ...

    async def restart(
        self, application: str, server: str, node: str, *, reset_flow: bool = False
    ) -> Outcome: ...

    async def grace_restart(self, application: str, server: str, node: str) -> Outcome: ...

    async def undeploy(self, application: str, server: str, node: str, user: str) -> Outcome: ...

    async def prepare_patch(self, item: AdminReg.TaskItemReq) -> Outcome: ...

    async def patch(
        self, item: AdminReg.TaskItemReq, on_percent: Callable[[int], None]
    ) -> Outcome: ...

    async def set_flow(
        self, application: str, server: str, nodes: list[str], active: bool
    ) -> int: ...

    async def answers(
        self, application: str, server: str, node: str, timeout: float
    ) -> Outcome: ...


def derive_status(item_statuses: Iterable[int]) -> int:
    """The task's ``EMTaskStatus`` from its items' (upstream ``checkTaskRspStatus``): a status
    all items share, RUNNING when all run or pause for flow, else PARIAL."""
    statuses = [int(s) for s in item_statuses]
    n = len(statuses)
    running = sum(1 for s in statuses if s in (I_RUNNING, I_PAUSE_FLOW))
    for item, task in (
        (I_NOT_START, T_NOT_START),
        (I_PREPARE, T_PREPARE),
    ):
        if statuses.count(item) == n:
            return task
    if running == n:
        return T_RUNNING
    for item, task in ((I_SUCCESS, T_SUCCESS), (I_FAILED, T_FAILED), (I_CANCEL, T_CANCEL)):
        if statuses.count(item) == n:
            return task
    return T_PARIAL


def status_name(status: int) -> str:
    """``etos(EMTaskItemStatus)``: what ``statusInfo`` says."""
    return _ITEM_STATUS_NAMES[status] if 0 <= status < len(_ITEM_STATUS_NAMES) else str(status)


def _now_text(now: datetime) -> str:
    return now.strftime(TIME_FORMAT)


@dataclass(eq=False)
class Task:
    """One task in memory: its request, its answer being filled in, and its runner."""

    req: AdminReg.TaskReq
    rsp: AdminReg.TaskRsp
    timeout: float
    created: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    cancelled: bool = False
    runner: asyncio.Task[None] | None = None
    #: items of a lossless task whose instance's traffic is closed by the task
    flow_off: set[int] = field(default_factory=set)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def items(self) -> list[AdminReg.TaskItemRsp]:
        return list(self.rsp.taskItemRsp)

    def expired(self, now: float) -> bool:
        return self.finished_at is not None and now - self.created >= self.timeout


class TaskEngine:
    """Runs tasks; ``store`` keeps them (None: in memory only, for tools and tests)."""

    def __init__(
        self,
        ops: TaskOperations,
        store: Tasks | None,
        settings: AdminSettings,
        *,
        clock: Callable[[], datetime] = datetime.now,
        report: Reporter | None = None,
    ) -> None:
        self.ops = ops
        #: hears how each item ended, for ``t_server_notifys`` (publish results, failures)
        self.report = report
        self.store = store
        self.settings = settings
        self.clock = clock
        self.tasks: dict[str, Task] = {}
        #: App.Server -> task number of its latest elegant task (superseded ones are cancelled)
        self._elegant: dict[str, str] = {}
        self._sweeper = Periodic(
            "tarsus-admin-task-sweeper", lambda: self.settings.task_sweep_interval, self._sweep
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the sweeper that forgets expired tasks."""
        self._sweeper.start()

    async def stop(self) -> None:
        """Stop the sweeper and every running task; unfinished items become CANCEL."""
        await self._sweeper.stop()
        runners = [t.runner for t in self.tasks.values() if t.runner and not t.runner.done()]
        for runner in runners:
            runner.cancel()
        if runners:
            await asyncio.gather(*runners, return_exceptions=True)

    async def _sweep(self) -> None:
        self.sweep()

    def sweep(self, now: float | None = None) -> list[str]:
        """Forget finished tasks older than their timeout; returns their numbers."""
        now = time.monotonic() if now is None else now
        gone = [no for no, task in self.tasks.items() if task.expired(now)]
        for no in gone:
            del self.tasks[no]
            log.debug("task %s dropped from memory", no)
        return gone

    # ------------------------------------------------------------------ requests
    async def add(self, req: AdminReg.TaskReq) -> None:
        """Validate, store and start a task (``addTaskReq``). Raises :class:`AdminError`."""
        items = list(req.taskItemReq)
        if not req.taskNo:
            raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, "addTaskReq: taskNo is empty")
        if not items:
            raise AdminError(
                ErrCode.EM_TARS_PARAMETER_ERR, f"addTaskReq {req.taskNo}: the task has no items"
            )
        if req.taskNo in self.tasks:
            raise AdminError(
                ErrCode.EM_TARS_REQ_ALREADY_ERR, f"task {req.taskNo} has already been added"
            )
        for item in items:
            item.taskNo = req.taskNo
            if not item.itemNo:
                item.itemNo = uuid.uuid4().hex
            if not item.userName:
                item.userName = req.userName
        record = TaskRecord(
            task_no=req.taskNo,
            serial=bool(req.serial),
            user_name=req.userName,
            items=[
                TaskItemRecord(
                    item_no=item.itemNo,
                    application=item.application,
                    server_name=item.serverName,
                    node_name=item.nodeName,
                    set_name=item.setName,
                    command=item.command,
                    parameters=dict(item.parameters),
                )
                for item in items
            ],
        )
        created = self.clock().replace(microsecond=0)
        record.create_time = created
        if self.store is not None:
            try:
                await self.store.add(record)
            except Conflict as e:
                raise AdminError(ErrCode.EM_TARS_REQ_ALREADY_ERR, str(e)) from None
            except InvalidInput as e:
                raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, str(e)) from None
            except StoreError as e:
                raise AdminError(
                    ErrCode.EM_TARS_UNKNOWN_ERR, f"task {req.taskNo} could not be stored: {e}"
                ) from None
        rsp = AdminReg.TaskRsp(
            taskItemRsp=[
                AdminReg.TaskItemRsp(
                    req=item, status=I_NOT_START, statusInfo=status_name(I_NOT_START)
                )
                for item in items
            ],
            taskNo=req.taskNo,
            serial=bool(req.serial),
            userName=req.userName,
            status=T_NOT_START,
            createTime=_now_text(created),
        )
        elegant = bool(req.isElegant)
        timeout = self.settings.elegant_task_timeout if elegant else self.settings.task_timeout
        task = Task(req=req, rsp=rsp, timeout=timeout)
        self.tasks[req.taskNo] = task
        if elegant:
            # upstream: a new elegant task for a server cancels what the unfinished older one
            # has not started (the server is the first item's, as upstream's key)
            server_id = f"{items[0].application}.{items[0].serverName}"
            previous = self.tasks.get(self._elegant.get(server_id, ""))
            if previous is not None and not previous.finished:
                log.info("task %s supersedes elegant task %s", req.taskNo, previous.req.taskNo)
                await self._cancel(previous)
            self._elegant[server_id] = req.taskNo
        task.runner = asyncio.get_running_loop().create_task(
            self._run(task), name=f"tarsus-admin-task-{req.taskNo}"
        )
        log.info(
            "task %s added: %d items, %s, by %r",
            req.taskNo,
            len(items),
            _mode_name(req),
            req.userName,
        )

    def get(self, task_no: str) -> AdminReg.TaskRsp | None:
        """The task's ``TaskRsp`` from memory (a copy, status derived), or None."""
        task = self.tasks.get(task_no)
        return None if task is None else _snapshot(task.rsp)

    async def get_rsp(self, task_no: str) -> AdminReg.TaskRsp | None:
        """``getTaskRsp``: from memory, else rebuilt from the database, else None."""
        rsp = self.get(task_no)
        if rsp is not None or self.store is None:
            return rsp
        record = await self.store.get(task_no)
        return None if record is None else _from_record(record)

    async def history(self, application: str, server: str, command: str) -> list[AdminReg.TaskRsp]:
        """``getTaskHistory``: stored tasks of one server and command, newest first."""
        if self.store is None:
            return []
        return [_from_record(r) for r in await self.store.history(application, server, command)]

    async def set_item_info(self, item_no: str, info: dict[str, str]) -> int:
        """``setTaskItemInfo``: keys ``start_time``, ``end_time`` (``YYYY-MM-DD HH:MM:SS``),
        ``status`` (an ``EMTaskItemStatus`` number) and ``log``; returns rows changed."""
        times: dict[str, datetime] = {}
        for key in ("start_time", "end_time"):
            if info.get(key):
                try:
                    times[key] = datetime.strptime(info[key], TIME_FORMAT)
                except ValueError:
                    raise AdminError(
                        ErrCode.EM_TARS_PARAMETER_ERR,
                        f"setTaskItemInfo {item_no}: {key} {info[key]!r} is not "
                        "'YYYY-MM-DD HH:MM:SS'",
                    ) from None
        status: int | None = None
        if info.get("status", "") != "":
            try:
                status = int(info["status"])
            except ValueError:
                status = -1
            if not 0 <= status <= I_PAUSE_FLOW:
                raise AdminError(
                    ErrCode.EM_TARS_PARAMETER_ERR,
                    f"setTaskItemInfo {item_no}: status {info['status']!r} is not an "
                    "EMTaskItemStatus (0-6)",
                )
        for task in self.tasks.values():
            for item in task.rsp.taskItemRsp:
                if item.req.itemNo == item_no:
                    if "start_time" in info:
                        item.startTime = info["start_time"]
                    if "end_time" in info:
                        item.endTime = info["end_time"]
                    if status is not None:
                        item.status = status
                        item.statusInfo = status_name(status)
                    if "log" in info:
                        item.executeLog = info["log"]
        if self.store is None:
            return 0
        return await self.store.update_item(
            item_no,
            start_time=times.get("start_time"),
            end_time=times.get("end_time"),
            status=status,
            log=info.get("log"),
        )

    # ------------------------------------------------------------------ running
    async def _run(self, task: Task) -> None:
        try:
            if await self._prepare(task):
                if task.req.isElegant:
                    await self._run_elegant(task)
                elif task.req.serial:
                    await self._run_in_order(task, list(range(len(task.items))))
                elif _batch_size(task.req) > 1:
                    await self._run_in_batches(task, _batch_size(task.req))
                else:
                    await self._run_together(task, list(range(len(task.items))))
        except asyncio.CancelledError:
            await self._abandon(task, I_CANCEL, "the admin registry stopped before this ran")
            raise
        except Exception as e:
            log.exception("task %s failed", task.req.taskNo)
            await self._abandon(task, I_FAILED, f"internal error: {type(e).__name__}: {e}")
        finally:
            task.finished_at = time.monotonic()
            log.info(
                "task %s finished: %s",
                task.req.taskNo,
                _task_status_name(derive_status(i.status for i in task.items)),
            )

    async def _prepare(self, task: Task) -> bool:
        """Patch items: stage their packages before anything runs (upstream prepareFile),
        once per distinct application, server or group, and package. A package that cannot
        be found or staged fails every item of the task."""
        done: dict[tuple[str, ...], dict[str, str]] = {}
        for index, item in enumerate(task.items):
            if item.req.command not in PATCH_COMMANDS:
                continue
            await self._set_status(task, index, I_PREPARE, start=True)
            params = item.req.parameters
            key = (
                item.req.application,
                params.get("group_name") or item.req.serverName,
                params.get("patch_id", ""),
                params.get("filepath", ""),
            )
            if key in done:  # the same package, staged already: take its md5
                params.update(done[key])
                continue
            outcome = await self._guarded(self.ops.prepare_patch, item.req)
            if outcome.ok:
                done[key] = {"md5": params.get("md5", "")}
                continue
            for i in range(len(task.items)):
                if not task.items[i].executeLog:
                    await self._set_log(task, i, outcome.result)
                await self._set_status(task, i, I_FAILED, end=True)
            return False
        return True

    async def _run_in_order(self, task: Task, indexes: list[int]) -> bool:
        """Items one at a time; after a failure (or a cancel) the rest become CANCEL.
        Returns True when every item succeeded."""
        for pos, index in enumerate(indexes):
            if task.cancelled or await self._run_item(task, index) != I_SUCCESS:
                for rest in indexes[pos + (0 if task.cancelled else 1) :]:
                    if task.items[rest].status in _UNFINISHED:
                        await self._set_status(task, rest, I_CANCEL, end=True)
                return False
        return True

    async def _run_together(self, task: Task, indexes: list[int], limit: int = 0) -> None:
        gate = asyncio.Semaphore(
            min(limit or self.settings.max_parallel, self.settings.max_parallel)
        )

        async def one(index: int) -> None:
            async with gate:
                await self._run_item(task, index)

        await asyncio.gather(*(one(i) for i in indexes))

    async def _run_in_batches(
        self,
        task: Task,
        each: int,
        run_batch: Callable[[list[int]], Awaitable[None]] | None = None,
    ) -> None:
        """``each`` items at a time, together (or as ``run_batch`` runs a batch); a batch
        starts once the previous one has ended. After a batch with a failed item, or a
        cancel, the rest become CANCEL."""
        n = len(task.items)
        for first in range(0, n, each):
            if task.cancelled:
                await self._cancel_from(task, first)
                return
            batch = list(range(first, min(n, first + each)))
            if run_batch is None:
                await self._run_together(task, batch, limit=each)
            else:
                await run_batch(batch)
            if any(task.items[i].status != I_SUCCESS for i in batch):
                await self._cancel_from(task, batch[-1] + 1)
                return

    async def _cancel_from(self, task: Task, first: int) -> None:
        """Items from ``first`` on that have not ended become CANCEL."""
        for index in range(first, len(task.items)):
            if task.items[index].status in _UNFINISHED:
                await self._set_status(task, index, I_CANCEL, end=True)

    async def _run_elegant(self, task: Task) -> None:
        """Lossless: batches of ``eachNum``. Per batch the instances' traffic is closed, the
        engine waits ``elegant_wait_second`` for callers to drop them and for their calls to
        end, runs the batch; each item then opens its instance's traffic again once it is
        Active and answers (:meth:`_reopen`). After a batch with a failed item, or a cancel,
        the rest become CANCEL: a publish going wrong takes no more instances out."""
        each = _batch_size(task.req)

        async def run_batch(batch: list[int]) -> None:
            for index in batch:
                await self._set_status(task, index, I_PAUSE_FLOW)
            changed = 0
            for (app, server), nodes in _by_server(task, batch).items():
                changed += await self.ops.set_flow(app, server, nodes, False)
            task.flow_off.update(batch)
            wait = self.settings.elegant_wait_second
            if changed > 0 and wait > 0:
                log.info(
                    "task %s: traffic closed on %d instances, waiting %gs for callers",
                    task.req.taskNo,
                    changed,
                    wait,
                )
                await asyncio.sleep(wait)
            if task.req.serial:
                await self._run_in_order(task, batch)
            else:
                await self._run_together(task, batch, limit=each)
            for index in batch:
                if index in task.flow_off and task.items[index].status == I_CANCEL:
                    # never ran (a serial batch stopped before it): as it was, traffic on
                    await self._open_flow(task, index)

        await self._run_in_batches(task, each, run_batch)

    async def _reopen(self, task: Task, index: int, outcome: Outcome) -> Outcome:
        """After an item of a lossless task: open its instance's traffic again, if it should
        run, only once it is Active and answers on its servants (waiting at most
        ``elegant_ready_timeout``; a failed item is asked once: an instance whose new
        version failed to install still runs the old one and gets its traffic back). An
        instance that does not answer keeps its traffic off, and the item's log and the
        task's say so; ``updateServerFlowState`` opens it by hand."""
        req = task.items[index].req
        app, server, node = req.application, req.serverName, req.nodeName
        standby = req.command in PATCH_COMMANDS and req.parameters.get("bak_flag") == "1"
        lines = [outcome.result] if outcome.result else []
        if req.command in _RUNS_AFTER and not standby:
            timeout = self.settings.elegant_ready_timeout if outcome.ok else 0.0
            ready = await self.ops.answers(app, server, node, timeout)
            if not ready.ok:
                text = (
                    f"{ready.result}; its traffic stays off (updateServerFlowState opens it "
                    "once it answers)"
                )
                self._task_log(task, f"{app}.{server} on {node}: {text}")
                lines.append(text)
                return Outcome(outcome.code if not outcome.ok else ready.code, "\n".join(lines))
            lines.append(ready.result)
        await self._open_flow(task, index)
        lines.append("traffic open again")
        return Outcome(outcome.code, "\n".join(lines))

    async def _open_flow(self, task: Task, index: int) -> None:
        req = task.items[index].req
        await self.ops.set_flow(req.application, req.serverName, [req.nodeName], True)
        task.flow_off.discard(index)

    def _task_log(self, task: Task, text: str) -> None:
        log.warning("task %s: %s", task.req.taskNo, text)
        task.rsp.executeLog = "\n".join(t for t in (task.rsp.executeLog, text) if t)

    async def _run_item(self, task: Task, index: int) -> int:
        await self._set_status(task, index, I_RUNNING, start=True)
        req = task.items[index].req
        log.info(
            "task %s item %s: %s %s.%s on %s",
            req.taskNo,
            req.itemNo,
            req.command,
            req.application,
            req.serverName,
            req.nodeName,
        )
        outcome = await self._guarded(self._execute, task, index)
        if task.req.isElegant and index in task.flow_off:
            outcome = await self._guarded(self._reopen, task, index, outcome)
        status = I_SUCCESS if outcome.ok else I_FAILED
        await self._set_log(task, index, outcome.result)
        await self._set_status(task, index, status, end=True)
        return status

    async def _execute(self, task: Task, index: int) -> Outcome:
        req = task.items[index].req
        app, server, node = req.application, req.serverName, req.nodeName
        command = req.command
        ops = self.ops
        if command == "start":
            return await ops.start(app, server, node)
        if command == "stop":
            return await ops.stop(app, server, node)
        # a lossless task opens the traffic itself, once the instance answers
        reset_flow = not task.req.isElegant
        if command == "restart":
            return await ops.restart(app, server, node, reset_flow=reset_flow)
        if command == "undeploy_tars":
            return await ops.undeploy(app, server, node, req.userName)
        if command in PATCH_COMMANDS:

            def on_percent(percent: int) -> None:
                task.items[index].percent = percent

            patched = await ops.patch(req, on_percent)
            if not patched.ok or req.parameters.get("bak_flag") == "1":
                return patched  # a standby instance is patched but not restarted
            if command == "patch_tars":
                activated = await ops.restart(app, server, node, reset_flow=reset_flow)
            else:
                activated = await ops.grace_restart(app, server, node)
            text = "\n".join(t for t in (patched.result, activated.result) if t)
            return Outcome(activated.code, text)
        return Outcome(ErrCode.EM_TARS_UNKNOWN_ERR, "command not support!")

    async def _guarded(self, fn: Callable[..., Any], *args: Any) -> Outcome:
        """Run one step; an unexpected exception becomes a failed outcome, never a dead task."""
        try:
            outcome: Outcome = await fn(*args)
            return outcome
        except AdminError as e:
            return Outcome(e.code, e.message)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("task step %s failed", getattr(fn, "__name__", fn))
            return Outcome(ErrCode.EM_TARS_UNKNOWN_ERR, f"internal error: {type(e).__name__}: {e}")

    async def _cancel(self, task: Task) -> None:
        """Cancel what has not started (a newer elegant task for the same server)."""
        task.cancelled = True
        for index, item in enumerate(task.items):
            if item.status == I_NOT_START:
                await self._set_status(task, index, I_CANCEL, end=True)

    async def _abandon(self, task: Task, status: int, text: str) -> None:
        for index in sorted(task.flow_off):
            req = task.items[index].req
            self._task_log(
                task,
                f"{req.application}.{req.serverName} on {req.nodeName}: its traffic stays off "
                "(updateServerFlowState opens it)",
            )
        for index, item in enumerate(task.items):
            if item.status in _UNFINISHED:
                why = text
                if index in task.flow_off:
                    why += "; its traffic stays off (updateServerFlowState opens it)"
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._set_log(task, index, why))
                    await asyncio.shield(self._set_status(task, index, status, end=True))

    # ------------------------------------------------------------------ recording
    async def _set_status(
        self, task: Task, index: int, status: int, *, start: bool = False, end: bool = False
    ) -> None:
        item = task.items[index]
        now = self.clock().replace(microsecond=0)
        item.status = status
        item.statusInfo = status_name(status)
        if start:
            item.startTime = _now_text(now)
        if end:
            item.endTime = _now_text(now)
            self._report_end(item)
        await self._persist(
            task,
            item,
            status=status,
            start_time=now if start else None,
            end_time=now if end else None,
        )

    def _report_end(self, item: AdminReg.TaskItemRsp) -> None:
        """How an item ended, as a notification about its instance (upstream's admin
        registry reports failed operations, the node the result of a patch; a publish that
        fails before reaching the node, a package that cannot be staged, is only ours): a
        publish, either way; another command, when it failed."""
        req = item.req
        if self.report is None or item.status not in (I_SUCCESS, I_FAILED):
            return
        what = req.command
        if req.command in PATCH_COMMANDS:
            version = req.parameters.get("patch_id", "")
            what = f"publish of version {version}" if version else "publish"
        elif item.status == I_SUCCESS:
            return
        by = f" (by {req.userName})" if req.userName else ""
        if item.status == I_SUCCESS:
            text = f"{what} succ: task {req.taskNo}{by}"
        else:
            text = f"[fail] {what} failed: task {req.taskNo}{by}: {item.executeLog}"
        self.report(text, application=req.application, server=req.serverName, node=req.nodeName)

    async def _set_log(self, task: Task, index: int, text: str) -> None:
        item = task.items[index]
        item.executeLog = text
        await self._persist(task, item, log=text)

    async def _persist(self, task: Task, item: AdminReg.TaskItemRsp, **values: Any) -> None:
        if self.store is None:
            return
        try:
            await self.store.update_item(item.req.itemNo, task_no=task.req.taskNo, **values)
        except Exception as e:
            # The task goes on; what it did is still in memory and in the logs.
            log.warning(
                "task %s item %s: could not store %s: %s",
                task.req.taskNo,
                item.req.itemNo,
                sorted(values),
                e,
            )


def _by_server(task: Task, indexes: list[int]) -> dict[tuple[str, str], list[str]]:
    """``(App, Server) -> nodes`` of the items at ``indexes``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for index in indexes:
        req = task.items[index].req
        groups.setdefault((req.application, req.serverName), []).append(req.nodeName)
    return groups


def _mode_name(req: AdminReg.TaskReq) -> str:
    if req.isElegant:
        return f"elegant in batches of {_batch_size(req)}"
    if req.serial:
        return "serial"
    if _batch_size(req) > 1:
        return f"in batches of {_batch_size(req)}"
    return "parallel"


def _batch_size(req: AdminReg.TaskReq) -> int:
    """``eachNum`` as a batch size: at least 1 (TarsWeb sends 0 or nothing when it has none)."""
    return max(1, int(req.eachNum or 1))


def _task_status_name(status: int) -> str:
    names = ("NOT_START", "PREPARE", "RUNNING", "SUCCESS", "FAILED", "CANCEL", "PARIAL")
    return names[status] if 0 <= status < len(names) else str(status)


def _snapshot(rsp: AdminReg.TaskRsp) -> AdminReg.TaskRsp:
    items = [
        AdminReg.TaskItemRsp(
            req=i.req,
            startTime=i.startTime,
            endTime=i.endTime,
            status=i.status,
            statusInfo=i.statusInfo,
            executeLog=i.executeLog,
            percent=i.percent,
        )
        for i in rsp.taskItemRsp
    ]
    return AdminReg.TaskRsp(
        taskItemRsp=items,
        taskNo=rsp.taskNo,
        serial=rsp.serial,
        userName=rsp.userName,
        status=derive_status(i.status for i in items),
        createTime=rsp.createTime,
        executeLog=rsp.executeLog,
    )


def _time_text(value: datetime | None) -> str:
    return "" if value is None else value.strftime(TIME_FORMAT)


def _from_record(record: TaskRecord) -> AdminReg.TaskRsp:
    items = [
        AdminReg.TaskItemRsp(
            req=AdminReg.TaskItemReq(
                taskNo=record.task_no,
                itemNo=i.item_no,
                application=i.application,
                serverName=i.server_name,
                nodeName=i.node_name,
                setName=i.set_name,
                command=i.command,
                userName=record.user_name,
                parameters=dict(i.parameters),
            ),
            startTime=_time_text(i.start_time),
            endTime=_time_text(i.end_time),
            status=i.status,
            statusInfo=status_name(i.status),
            executeLog=i.log,
            percent=100 if i.status == I_SUCCESS else 0,
        )
        for i in record.items
    ]
    return AdminReg.TaskRsp(
        taskItemRsp=items,
        taskNo=record.task_no,
        serial=record.serial,
        userName=record.user_name,
        status=derive_status(i.status for i in items),
        createTime=_time_text(record.create_time),
    )
