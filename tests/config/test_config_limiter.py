"""The config center's rate limit (upstream ``ConfigImp``): ``limit + 1`` calls per caller and
window, then 429 until the window ends; bounded memory whatever callers claim to be."""

from __future__ import annotations

from tarsus.framework.config import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_limit_plus_one_calls_per_window_then_a_new_window() -> None:
    clock = Clock()
    limiter = RateLimiter(60.0, 10, clock=clock)
    assert [limiter.allow("Test", "Hello", "10.0.0.1", "a.conf") for _ in range(12)] == [
        True
    ] * 11 + [False]
    assert limiter.allow("Test", "Hello", "10.0.0.2", "a.conf")  # another caller
    assert limiter.allow("Test", "Hello", "10.0.0.1", "b.conf")  # another file
    clock.now += 59
    assert not limiter.allow("Test", "Hello", "10.0.0.1", "a.conf")
    clock.now += 2
    assert limiter.allow("Test", "Hello", "10.0.0.1", "a.conf")
    assert limiter.refused == 2


def test_zero_turns_it_off() -> None:
    limiter = RateLimiter(60.0, 0)
    assert all(limiter.allow("A", "B", "ip", "f") for _ in range(1000))
    assert len(limiter) == 0


def test_a_flood_of_made_up_callers_stays_bounded() -> None:
    limiter = RateLimiter(60.0, 10, max_callers=1000)
    for i in range(50_000):
        assert limiter.allow("Test", "Hello", f"10.0.{i // 256}.{i % 256}", "a.conf")
    assert len(limiter) == 1000
