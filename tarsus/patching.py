"""Is a package install finished, and how did it end: one reading of ``getPatchPercent``.

A node installs a package in the background after ``patchPro``; whoever started it polls
``getPatchPercent`` (``AdminReg.tars``, answered by the node through the admin registry) and
reads the ``PatchInfo``. Upstream's node (``NodeImp::getPatchPercent``) answers 0 while it
installs or once it succeeded, else -1; it sets ``iPercent`` to 100 whatever the outcome, so
``bSucc`` tells success from failure, and ``sResult`` carries the reason of a failure.
Upstream's admin registry (its task engine, ``AdminRegistryServer/ExecuteTask.cpp``) stops at
``iPercent == 100 && bSucc`` or at a non-zero return.

The operator CLI (``tarsus server deploy|publish``), the admin registry's own wait
(``Lifecycle.wait_installed``: task patch items) and ``tarsus up`` all judge an answer with
:func:`patch_progress`, so they agree on when an install is over and on its reason; the two
asynchronous ones poll with :func:`wait_patch`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["PatchProgress", "patch_progress", "wait_patch"]


@dataclass(frozen=True)
class PatchProgress:
    """One ``getPatchPercent`` answer, judged."""

    #: the node is done with it (succeeded or failed): stop polling
    finished: bool
    succeeded: bool
    #: 0..100
    percent: int
    #: the node's ``sResult``: what it did, or why it failed ("" when it said nothing)
    reason: str

    @property
    def failed(self) -> bool:
        return self.finished and not self.succeeded


def patch_progress(ret: int, info: Any) -> PatchProgress:
    """Judge ``getPatchPercent``'s return code ``ret`` and its ``PatchInfo`` ``info``.

    Success: ``bSucc`` at 100 %. Failure: a non-zero return (the node, or the admin registry
    when it could not ask the node), or a node that is no longer installing without success
    at 100 % or with a reason. Anything else is still running.
    """
    percent = max(0, min(100, int(info.iPercent)))
    reason = str(info.sResult).strip()
    if info.bSucc and percent >= 100:
        return PatchProgress(True, True, percent, reason)
    if ret != 0 or (not info.bPatching and not info.bSucc and (percent >= 100 or reason)):
        return PatchProgress(True, False, percent, reason)
    return PatchProgress(False, False, percent, reason)


async def wait_patch(
    percent: Callable[[], Awaitable[tuple[int, Any]]],
    *,
    timeout: float,
    interval: float,
    on_percent: Callable[[int], None] | None = None,
) -> tuple[PatchProgress, int, Any]:
    """Ask ``percent()`` (a ``getPatchPercent``: its code and ``PatchInfo``) every ``interval``
    s until the install is finished or ``timeout`` s have passed. Returns the last judgement
    (not ``finished``: timed out) with the code and the ``PatchInfo`` it was made from."""
    deadline = time.monotonic() + timeout
    while True:
        code, info = await percent()
        judged = patch_progress(code, info)
        if on_percent is not None:
            on_percent(judged.percent)
        if judged.finished or time.monotonic() >= deadline:
            return judged, code, info
        await asyncio.sleep(interval)
