"""Dead-node shielding, walked with explicit times (seconds), as C++ AdapterProxy behaves."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarsus.rpc.health import AdapterHealth, ShieldPolicy, ShieldReason

V2_4 = ShieldPolicy.V2_4
V3_0_16 = ShieldPolicy.V3_0_16
V3_0_22 = ShieldPolicy.V3_0_22


def as_tuple(policy: ShieldPolicy) -> tuple[float, ...]:
    return dataclasses.astuple(policy)


def test_presets_are_upstreams_check_timeout_info_defaults() -> None:
    # (minTimeoutInvoke, checkTimeoutInterval, frequenceFailInvoke, minFrequenceFailTime,
    #  radio, tryTimeInterval, maxConnectExc), read from servant/servant/Message.h at each tag.
    assert as_tuple(ShieldPolicy.V2_4) == (2, 60, 5, 5, 0.5, 10, 1)
    assert as_tuple(ShieldPolicy.V3_0) == (2, 60, 2, 5, 0.5, 10, 1)
    assert as_tuple(ShieldPolicy.V3_0_16) == (2, 5, 3, 2, 0.3, 10, 1)
    assert as_tuple(ShieldPolicy.V3_0_22) == (1, 5, 1, 3, 0.05, 5, 1)


def test_default_is_v3_0_16_and_fields_override() -> None:
    assert ShieldPolicy() == ShieldPolicy.DEFAULT == V3_0_16
    assert AdapterHealth().policy == V3_0_16
    assert ShieldPolicy(try_time_interval=30).try_time_interval == 30


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_timeout_invoke": 0},
        {"frequence_fail_invoke": 1.5},
        {"max_connect_exc": True},
        {"radio": 1.5},
        {"try_time_interval": -1},
        {"check_timeout_interval": float("nan")},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="ShieldPolicy"):
        ShieldPolicy(**kwargs)  # type: ignore[arg-type]


def test_v3_0_22_shields_on_a_single_failure_and_probes_after_5s() -> None:
    h = AdapterHealth(V3_0_22)
    h.finish_invoke(False, 100.0)
    h.finish_invoke(True, 101.0)
    assert h.shielded and h.reason is ShieldReason.STREAK
    assert not h.available(101.0)
    assert not h.available(105.9)
    assert h.available(106.0)  # tryTimeInterval 5 s
    h.begin_probe(106.0)  # the probe goes out; nobody else gets through
    assert not h.available(106.0)
    assert not h.available(110.9)
    h.finish_invoke(False, 106.2)  # probe succeeded
    assert not h.shielded and h.reason is None
    assert (h.total, h.timeouts, h.streak) == (1, 0, 0)
    assert h.available(106.2)


def test_failed_probe_keeps_it_shielded_until_the_next_interval() -> None:
    h = AdapterHealth(V3_0_22)
    h.finish_invoke(True, 0.0)
    h.begin_probe(5.0)
    h.finish_invoke(True, 5.5)
    assert h.shielded
    assert not h.available(9.9)
    assert h.available(10.0)  # one probe per tryTimeInterval, counted from the last probe


def test_lost_probe_allows_another_after_an_interval() -> None:
    h = AdapterHealth(V3_0_22)
    h.finish_invoke(True, 0.0)
    h.begin_probe(5.0)  # no result ever arrives
    assert not h.available(9.0)
    assert h.available(10.0)


def test_default_keeps_a_briefly_slow_node() -> None:
    h = AdapterHealth()
    t = 0.0
    for _ in range(3):
        for _ in range(9):
            h.finish_invoke(False, t)
            t += 0.2
        h.finish_invoke(True, t)  # one timeout in ten calls
        t += 0.2
    assert not h.shielded


def test_streak_needs_the_count_and_the_minimum_duration() -> None:
    h = AdapterHealth(V3_0_16)  # 3 failures in a row, lasting at least 2 s
    h.finish_invoke(False, 0.0)
    h.finish_invoke(True, 10.0)  # streak starts: deadline 12.0
    h.finish_invoke(True, 10.5)
    h.finish_invoke(True, 11.0)
    assert h.streak == 3 and not h.shielded  # three, but within 2 s
    h.finish_invoke(True, 12.0)
    assert h.shielded and h.reason is ShieldReason.STREAK
    assert h.retry_at == 22.0


def test_a_success_breaks_the_streak() -> None:
    h = AdapterHealth(V3_0_16)
    h.finish_invoke(False, 0.0)
    for t in (1.0, 1.5, 4.0):  # spans 3 s, but a success comes between
        h.finish_invoke(True, t)
        h.finish_invoke(False, t + 0.1)
    assert h.streak == 0 and not h.shielded


def test_windowed_ratio_shields_at_the_first_failing_call_after_the_window() -> None:
    h = AdapterHealth(V2_4)  # window 60 s, >= 2 failures and >= 50 %; streak needs 5
    h.finish_invoke(False, 0.0)  # closes the initial window; the next ends at 60
    assert (h.total, h.timeouts) == (0, 0)
    for t, failed in [(1, True), (2, False), (3, True), (4, False), (5, True), (6, False)]:
        h.finish_invoke(failed, float(t))
    assert (h.total, h.timeouts) == (6, 3) and not h.shielded  # no check inside the window
    h.finish_invoke(True, 61.0)  # window over, this call failed: 4 of 7 >= 50 %
    assert h.shielded and h.reason is ShieldReason.RATIO
    assert h.available(71.0) and not h.available(70.9)


def test_windowed_ratio_needs_the_closing_call_to_fail() -> None:
    h = AdapterHealth(V2_4)
    h.finish_invoke(False, 0.0)
    for t in range(1, 7):
        h.finish_invoke(t % 2 == 1, float(t))
    h.finish_invoke(False, 61.0)  # a success closes the window: counters start over
    assert not h.shielded
    assert (h.total, h.timeouts) == (0, 0)


def test_ratio_compares_in_single_precision_like_cxx() -> None:
    # C++: ``timeouts >= float radio * total``; with radio 0.3f, 15 of 50 is below the
    # threshold (15.000001), 16 of 50 is not. Double arithmetic would shield at 15.
    for failures, shielded in [(15, False), (16, True)]:
        h = AdapterHealth(V3_0_16)
        h.finish_invoke(False, 0.0)  # window now ends at 5.0
        outcomes = [True] * (failures - 1) + [False] * (50 - failures)
        # spread the failures so no three come in a row
        ordered = sorted(range(49), key=lambda i: (i % 3 == 2, i))
        calls = [False] * 49
        for slot, outcome in zip(ordered, outcomes, strict=True):
            calls[slot] = outcome
        for i, failed in enumerate(calls):
            h.finish_invoke(failed, 0.01 * (i + 1))
        assert not h.shielded
        h.finish_invoke(True, 5.5)  # the 50th call, after the window
        assert (h.total, h.timeouts) == ((50, failures) if shielded else (0, 0))
        assert h.shielded is shielded


def test_failures_of_a_shielded_node_are_not_counted() -> None:
    h = AdapterHealth(V3_0_22)
    h.finish_invoke(True, 0.0)
    before = (h.total, h.timeouts, h.streak)
    h.finish_invoke(True, 1.0)
    h.finish_invoke(True, 2.0)
    assert (h.total, h.timeouts, h.streak) == before


def test_a_late_success_restores_like_cxx() -> None:
    h = AdapterHealth(V3_0_22)
    h.finish_invoke(True, 0.0)
    h.finish_invoke(False, 0.5)  # an answer to a call sent before the shield
    assert not h.shielded


def test_connect_failure_shields_at_once_and_connect_ok_restores() -> None:
    h = AdapterHealth()
    h.connect_failed(1.0)
    assert h.shielded and h.reason is ShieldReason.CONNECT and h.connect_broken
    assert not h.available(10.9) and h.available(11.0)
    h.begin_probe(11.0)
    h.connect_ok(11.2)
    assert not h.shielded and not h.connect_broken
    assert h.available(11.2)


def test_connect_failures_count_until_max_connect_exc() -> None:
    h = AdapterHealth(ShieldPolicy(max_connect_exc=3))
    h.connect_failed(0.0)
    h.connect_failed(1.0)
    assert not h.shielded
    h.connect_ok(2.0)  # resets the count
    h.connect_failed(3.0)
    h.connect_failed(4.0)
    assert not h.shielded
    h.connect_failed(5.0)
    assert h.shielded and h.connect_broken
    h.connect_failed(20.0)  # already broken: the shield is not renewed
    assert h.retry_at == 15.0


def test_a_timeout_shield_survives_a_reconnect() -> None:
    # Deliberate difference from C++ (which re-activates on connect): the probe is a call.
    h = AdapterHealth(V3_0_22)
    h.finish_invoke(True, 0.0)
    h.begin_probe(5.0)
    h.connect_ok(5.1)
    assert h.shielded and h.reason is ShieldReason.STREAK
    h.finish_invoke(False, 5.2)
    assert not h.shielded


def test_a_successful_call_clears_connect_broken() -> None:
    h = AdapterHealth()
    h.connect_failed(0.0)
    h.begin_probe(10.0)
    h.finish_invoke(False, 10.5)
    assert not h.shielded and not h.connect_broken


def test_repr_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    h = AdapterHealth(V3_0_22, label="App.S.Obj@tcp -h a -p 1")
    assert repr(h) == "<AdapterHealth App.S.Obj@tcp -h a -p 1 active total=0 timeouts=0 streak=0>"
    with caplog.at_level(logging.WARNING, logger="tarsus.rpc.health"):
        h.finish_invoke(True, 3.0)
    assert "App.S.Obj@tcp -h a -p 1" in caplog.text
    assert repr(h) == (
        "<AdapterHealth App.S.Obj@tcp -h a -p 1 shielded (consecutive failures) retry_at=8"
        " total=1 timeouts=1 streak=1>"
    )


events = st.lists(
    st.tuples(
        st.floats(0.0, 3.0),
        st.sampled_from(["ok", "fail", "connect_fail", "connect_ok"]),
    ),
    max_size=200,
)


@given(events, st.sampled_from([V2_4, ShieldPolicy.V3_0, V3_0_16, V3_0_22]))
def test_at_most_one_probe_per_try_interval(
    steps: list[tuple[float, str]], policy: ShieldPolicy
) -> None:
    """Whatever happens, a shielded node lets one request through per tryTimeInterval."""
    h = AdapterHealth(policy)
    now = 0.0
    last_probe: float | None = None
    for dt, event in steps:
        now += dt
        if h.shielded and h.available(now):
            if last_probe is not None:
                assert now - last_probe >= policy.try_time_interval
            h.begin_probe(now)
            last_probe = now
        if not h.shielded:
            assert h.available(now)
            last_probe = None
        if event == "ok":
            h.finish_invoke(False, now)
        elif event == "fail":
            h.finish_invoke(True, now)
        elif event == "connect_fail":
            h.connect_failed(now)
        else:
            h.connect_ok(now)
