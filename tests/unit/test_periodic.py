"""``Periodic``: background loops started and stopped one way."""

from __future__ import annotations

import asyncio

from tarsus.rpc.periodic import Backoff, Periodic
from tarsus.testing import eventually


async def test_a_failing_round_does_not_end_the_loop() -> None:
    calls = 0
    errors: list[Exception] = []

    async def action() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away")

    loop = Periodic("test", 0.001, action, run_first=True, on_error=errors.append)
    loop.start()
    await eventually(lambda: calls >= 3, "three rounds")
    await loop.stop()
    assert [str(e) for e in errors] == ["the database went away"]
    assert not loop.running


async def test_stop_cancels_a_round_in_progress_and_leaves_no_task() -> None:
    entered, cancelled = asyncio.Event(), asyncio.Event()

    async def action() -> None:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop = Periodic("test", 3600, action, run_first=True)
    loop.start()
    await entered.wait()
    await loop.stop()
    assert cancelled.is_set() and not loop.running
    await loop.stop()  # again: nothing to do


async def test_the_first_round_waits_an_interval_unless_run_first_or_run_now() -> None:
    rounds = 0

    async def action() -> None:
        nonlocal rounds
        rounds += 1

    loop = Periodic("test", 3600, action)
    loop.start()
    await asyncio.sleep(0.01)
    assert rounds == 0
    loop.run_now()
    await eventually(lambda: rounds == 1, "the round run_now asked for")
    await loop.stop()


async def test_the_interval_is_read_before_every_wait() -> None:
    intervals = iter([0.001, 0.001, 3600.0])
    rounds = 0

    async def action() -> None:
        nonlocal rounds
        rounds += 1

    loop = Periodic("test", lambda: next(intervals), action, run_first=True)
    loop.start()
    await eventually(lambda: rounds == 3, "three rounds")
    await asyncio.sleep(0.01)
    await loop.stop()
    assert rounds == 3  # the third wait is an hour


async def test_start_twice_runs_one_loop() -> None:
    rounds = 0

    async def action() -> None:
        nonlocal rounds
        rounds += 1

    loop = Periodic("test", 3600, action, run_first=True)
    loop.start()
    loop.start()
    await eventually(lambda: rounds >= 1, "a round")
    await asyncio.sleep(0.01)
    await loop.stop()
    assert rounds == 1


def test_backoff_doubles_up_to_its_limit_and_starts_over_when_reset() -> None:
    backoff = Backoff(0.1, 1.0)
    assert [backoff.next() for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next() == 0.1


async def test_finish_lets_the_round_in_progress_end_and_starts_no_other() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    finished = 0

    async def action() -> None:
        nonlocal finished
        entered.set()
        await release.wait()
        finished += 1

    loop = Periodic("test", 0.001, action, run_first=True)
    loop.start()
    await entered.wait()
    loop.finish()  # returns at once: the round is still waiting for `release`
    assert loop.running
    release.set()
    await eventually(lambda: not loop.running, "the loop to end")
    assert finished == 1 and loop.rounds == 1
    await loop.stop()


async def test_fixed_rate_rounds_keep_to_their_grid_and_skip_missed_ticks() -> None:
    loop_time = asyncio.get_running_loop().time
    starts: list[float] = []

    async def action() -> None:
        starts.append(loop_time())
        if len(starts) == 1:
            await asyncio.sleep(0.25)  # overruns two ticks

    periodic = Periodic("test", 0.1, action, fixed_rate=True)
    begin = loop_time()
    periodic.start()
    await eventually(lambda: len(starts) >= 3, "three rounds")
    await periodic.stop()
    # Only lower bounds, which load cannot break: the first round waits for the first tick;
    # the ticks at 0.2 and 0.3 pass during its 0.25 s and are not caught up (a loop that
    # caught up would start the third round right after the second); the grid goes on from
    # the end of the late round.
    first, second, third = starts[:3]
    assert first >= begin + 0.1
    assert second >= first + 0.25
    assert third >= first + 0.25 + 0.1


async def test_stop_ends_a_loop_whose_round_turns_the_cancellation_into_an_error() -> None:
    """A database driver interrupted in a query may raise its own error instead of
    CancelledError: the loop still ends, and stop() returns (it waited forever before)."""
    entered = asyncio.Event()
    rounds = 0

    async def action() -> None:
        nonlocal rounds
        rounds += 1
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("connection lost while reading the answer") from None

    loop = Periodic("test", 0.001, action, run_first=True, on_error=lambda e: None)
    loop.start()
    await entered.wait()
    await asyncio.wait_for(loop.stop(), 30)  # a guard against hanging, not a timing assert
    assert not loop.running and rounds == 1
