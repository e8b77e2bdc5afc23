"""The pure retry/scheduling core of the checkers on a fake clock (spec §9.4, §9.6)."""

from __future__ import annotations

import pytest

from pykad.check.core import (
    BOOTSTRAP_DELAY_S,
    INT32_MAX,
    INT32_MIN,
    Report,
    RetrySchedule,
    RsHealth,
    RsState,
    Timing,
    clamp_weight,
    file_check_delta,
    misc_dynamic_delta,
)

LOOP, RETRY_DELAY = 10.0, 2.0


def run(
    s: RetrySchedule, results: list[bool], now: float = 0.0
) -> list[tuple[float, bool, Report]]:
    """Feed ``results`` at the deadlines the schedule asks for: (time, up, report) each."""
    seen = []
    for ok in results:
        deadline = s.next_deadline()
        assert deadline is not None
        now = deadline
        assert s.start(now)
        assert s.next_deadline() is None  # nothing else is due while a probe runs
        out = s.finish(ok, now)
        seen.append((now, out.up, out.report))
    return seen


def schedule(retry: int = 2, alpha: bool = False, **kw: float | bool) -> RetrySchedule:
    timing = Timing(
        retry=retry, delay_loop_s=LOOP, delay_before_retry_s=RETRY_DELAY, warmup_s=0.0,
        alpha=alpha, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return RetrySchedule(timing, now=0.0, rand=0.0)


def test_first_run_after_bootstrap_delay_plus_injected_warmup() -> None:
    t = Timing(warmup_s=30.0)
    assert RetrySchedule(t, now=100.0, rand=0.0).next_deadline() == 100.0 + BOOTSTRAP_DELAY_S
    assert RetrySchedule(t, now=100.0, rand=0.5).next_deadline() == 100.0 + 1.0 + 15.0
    assert RetrySchedule(t, now=100.0, rand=1.0).next_deadline() == 100.0 + 1.0 + 30.0
    with pytest.raises(ValueError, match="rand"):
        RetrySchedule(t, now=0.0, rand=1.5)


def test_non_alpha_starts_up_and_the_first_failure_marks_it_down_at_once() -> None:
    s = schedule(retry=3)
    assert s.is_up
    assert run(s, [False]) == [(1.0, False, Report.FAILED)]
    assert s.next_deadline() == 1.0 + LOOP  # no retries spent on the first failure


def test_first_success_is_logged_even_though_already_up() -> None:
    s = schedule()
    assert run(s, [True, True]) == [(1.0, True, Report.SUCCESS), (11.0, True, Report.NONE)]


def test_retries_use_delay_before_retry_then_down_after_retry_failures() -> None:
    s = schedule(retry=2)
    timeline = run(s, [True, False, False, False, False])
    assert timeline == [
        (1.0, True, Report.SUCCESS),
        (11.0, True, Report.NONE),  # retry 1 of 2
        (13.0, True, Report.NONE),  # retry 2 of 2
        (15.0, False, Report.FAILED_RETRIES),  # no retries left: DOWN
        (25.0, False, Report.NONE),  # down: back to delay_loop, no new report
    ]


def test_success_during_retries_resets_the_counter() -> None:
    s = schedule(retry=2)
    timeline = run(s, [True, False, True, False, False, False])
    assert [t for t, _, _ in timeline] == [1.0, 11.0, 13.0, 23.0, 25.0, 27.0]
    assert timeline[-1][1:] == (False, Report.FAILED_RETRIES)


def test_flapping_reports_each_transition_once() -> None:
    s = schedule(retry=0)
    reports = [r for _, _, r in run(s, [True, False, False, True, True, False])]
    assert reports == [
        Report.SUCCESS, Report.FAILED, Report.NONE, Report.SUCCESS, Report.NONE, Report.FAILED,
    ]  # fmt: skip


def test_alpha_starts_down_until_the_first_success() -> None:
    s = schedule(retry=2, alpha=True)
    assert not s.is_up
    out = run(s, [False, False, True])
    assert out == [
        (1.0, False, Report.FAILED),  # alpha: the first failure is logged at once
        (11.0, False, Report.NONE),  # already down: retry, quietly
        (13.0, True, Report.SUCCESS),
    ]


def test_fast_recovery_retries_quickly_while_down() -> None:
    s = schedule(retry=0, fast_recovery=True)
    times = [t for t, _, _ in run(s, [False, False, True, True])]
    assert times == [1.0, 3.0, 5.0, 15.0]


def test_disabled_checker_reschedules_without_probing() -> None:
    s = schedule()
    s.enabled = False
    assert not s.start(1.0)
    assert s.next_deadline() == 1.0 + LOOP
    s.enabled = True
    assert s.start(11.0)
    assert s.finish(True, 11.0).changed is False


def test_misuse_raises_and_cancel_reschedules() -> None:
    s = schedule()
    with pytest.raises(RuntimeError, match="without start"):
        s.finish(True, 0.0)
    assert s.start(1.0)
    with pytest.raises(RuntimeError, match="already running"):
        s.start(1.0)
    s.cancel(2.0)
    assert s.next_deadline() == 2.0  # the abandoned probe is due again at once


def test_rs_alive_iff_all_checkers_up_and_weight_with_deltas() -> None:
    h = RsHealth(5, [True, True])
    assert h.state == RsState(True, 5)
    assert h.update(0, up=False) == RsState(False, 5)
    assert h.failed == 1
    assert h.update(0, up=False) is None  # no change, no report
    assert h.update(0, up=True, delta=3) == RsState(True, 8)
    assert h.update(1, up=True, delta=-100) == RsState(True, 0)  # clamped at 0
    assert h.checker_up(1)
    assert RsHealth(1, []).state == RsState(True, 1)  # no checkers: always alive
    with pytest.raises(ValueError, match="one delta"):
        RsHealth(1, [True], [])


def test_misc_dynamic_weight_is_exit_minus_two() -> None:
    assert misc_dynamic_delta(2, 10) == -10  # weight 0
    assert misc_dynamic_delta(52, 10) == 40  # weight 50
    assert misc_dynamic_delta(255, 1) == 252
    assert misc_dynamic_delta(0, 10) is None
    assert misc_dynamic_delta(1, 10) is None


def test_file_check_delta_weight_reverse_and_faults() -> None:
    assert file_check_delta(3, 10, False) == 30
    assert file_check_delta(3, 10, True) == -30
    assert file_check_delta(0, 0, False) == 0  # weight 0: zero is up
    assert file_check_delta(1, 0, False) is None  # ... non-zero is down
    assert file_check_delta(0, 0, True) is None  # reversed
    assert file_check_delta(7, 0, True) == 0
    assert file_check_delta(INT32_MIN, 1, False) is None  # IPVS_WEIGHT_FAULT
    assert file_check_delta(2**40, 1, False) == INT32_MAX
    assert clamp_weight(2**40) == INT32_MAX
