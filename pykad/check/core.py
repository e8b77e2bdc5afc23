"""The pure part of the health checkers: retry scheduling and real-server health (spec §9.4).

Nothing here reads a clock, draws a random number or does I/O: time is the ``now`` argument,
the warmup randomness is a number in ``[0, 1]`` handed in by the caller, and the results of
the probes arrive as booleans. :class:`~pykad.check.checkerset.CheckerSet` runs the probes
and feeds this core, like the VRRP driver feeds :class:`~pykad.fsm.machine.VrrpMachine`.

Per checker (:class:`RetrySchedule`, keepalived ``check_tcp.c tcp_epilog`` and the other
epilogues, ``check_data.c validate_check_config``, ``check_api.c register_checkers_thread``):

* the first run is after ``BOOTSTRAP_DELAY`` (1 s) plus ``warmup * random`` (0 disables the
  randomisation), so hundreds of checkers of one real server do not fire together;
* on success, or on a failure with no retries left (``retry_it >= retry``), the next run is
  after ``delay_loop`` and ``retry_it := 0``; otherwise ``retry_it += 1`` and the next run is
  after ``delay_before_retry``;
* the checker goes DOWN only on a failure with no retries left, and UP on any success;
* at startup ``retry_it`` starts at ``retry`` (keepalived: "For non alpha mode, one failure is
  enough initially. For alpha mode, log failure after one failure"), so the very first
  failure decides; a non-``alpha`` checker starts UP, an ``alpha`` one DOWN;
* a disabled checker (``ha_suspend`` while the VIP is not here) does not probe: it just
  reschedules itself after ``delay_loop``;
* HTTP_GET/SSL_GET ``fast_recovery``: while the checker is DOWN (or has never run) the next
  check after a failure is after ``delay_before_retry`` instead of ``delay_loop`` so that a
  recovered server comes back quickly.

Per real server (:class:`RsHealth`, keepalived ``update_svr_checker_state`` /
``update_svr_wgt``, spec §9.6): alive iff every checker is up; effective weight =
configured weight + the dynamic deltas of MISC_CHECK ``misc_dynamic`` and FILE_CHECK,
clamped to 0..INT32_MAX.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pykad.config.model_lvs import IPVS_WEIGHT_LIMIT, CheckerBase

BOOTSTRAP_DELAY_S: Final = 1.0  # keepalived BOOTSTRAP_DELAY (TIMER_HZ)
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """The effective timing options of one runnable checker (already inherited VS->RS)."""

    retry: int = 1
    delay_before_retry_s: float = 1.0
    delay_loop_s: float = 60.0
    warmup_s: float = 60.0
    alpha: bool = False
    fast_recovery: bool = False

    @classmethod
    def of(cls, checker: CheckerBase, *, fast_recovery: bool = False) -> Timing:
        return cls(
            retry=checker.retry,
            delay_before_retry_s=checker.delay_before_retry_s,
            delay_loop_s=checker.delay_loop_s,
            warmup_s=checker.warmup_s,
            alpha=checker.alpha,
            fast_recovery=fast_recovery,
        )


class Report(StrEnum):
    """What a finished probe means for the log (keepalived logs only these three)."""

    NONE = "none"  # nothing to say: same state, or a failure with retries left
    SUCCESS = "success"  # "TCP connection to [ip]:tcp:80 success."
    FAILED = "failed"  # "TCP_CHECK on service [ip]:tcp:80 failed."
    FAILED_RETRIES = "failed_retries"  # "... failed after N retries."


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of :meth:`RetrySchedule.finish`."""

    up: bool  # the checker's state after this probe
    changed: bool  # it differs from the state before
    report: Report
    next_at: float


class RetrySchedule:
    """``retry_it``/``is_up``/``has_run`` and the next run time of one checker (spec §9.4)."""

    __slots__ = ("_due", "_running", "enabled", "has_run", "is_up", "retry_it", "timing")

    def __init__(self, timing: Timing, *, now: float, rand: float, enabled: bool = True) -> None:
        if not 0.0 <= rand <= 1.0:
            raise ValueError(f"rand must be in [0, 1], not {rand}")
        self.timing = timing
        self.is_up = not timing.alpha
        self.has_run = False
        # check_data.c: "For non alpha mode, one failure is enough initially" - and alpha
        # checkers, already DOWN, log their first failure at once too.
        self.retry_it = timing.retry
        self.enabled = enabled
        self._running = False
        # check_api.c register_checkers_thread: BOOTSTRAP_DELAY + warmup * random() / RAND_MAX
        self._due = now + BOOTSTRAP_DELAY_S + timing.warmup_s * rand

    def next_deadline(self) -> float | None:
        """When the next probe is due; None while a probe is running."""
        return None if self._running else self._due

    def due(self, now: float) -> bool:
        return not self._running and now >= self._due

    def start(self, now: float) -> bool:
        """The timer fired: True when a probe should run now (then call :meth:`finish`).

        A disabled checker does not probe; like keepalived's ``if (!checker->enabled)`` it
        reschedules itself after ``delay_loop``.
        """
        if self._running:
            raise RuntimeError("probe already running")
        if not self.enabled:
            self._due = now + self.timing.delay_loop_s
            return False
        self._running = True
        return True

    def finish(self, ok: bool, now: float) -> Outcome:
        """A probe started by :meth:`start` ended with ``ok`` at ``now``."""
        if not self._running:
            raise RuntimeError("finish() without start()")
        self._running = False
        t = self.timing
        was_up, first = self.is_up, not self.has_run
        report = Report.NONE
        if ok or self.retry_it >= t.retry:
            delay = t.delay_loop_s
            self.retry_it = 0
            if ok and (not was_up or first):
                report = Report.SUCCESS
                self.is_up = True
            elif not ok and (was_up or first):
                report = Report.FAILED_RETRIES if t.retry and not first else Report.FAILED
                self.is_up = False
        else:
            delay = t.delay_before_retry_s
            self.retry_it += 1
        if not ok and t.fast_recovery and (first or not self.is_up):
            # check_http.c: "If the checker is not up ... don't delay the checks if
            # fast_recovery option specified."
            delay = t.delay_before_retry_s
        self.has_run = True
        self._due = now + delay
        return Outcome(self.is_up, self.is_up != was_up, report, self._due)

    def cancel(self, now: float) -> None:
        """A running probe was abandoned (shutdown/reload) without a verdict: it is due again
        at once, so a reload that migrates this schedule (spec §9.6) does not skip a check."""
        self._running = False
        self._due = now


# --------------------------------------------------------------------------------------------
# Dynamic weights


def misc_dynamic_delta(exit_status: int, configured_weight: int) -> int | None:
    """MISC_CHECK ``misc_dynamic``: exit 2..255 sets the weight to ``exit - 2`` (spec §9.5).

    Returned as the delta to the configured weight (keepalived's ``cur_weight``); None when
    the exit status carries no weight (0 keeps the delta as it was reset to 0, 1 = down).
    """
    if 2 <= exit_status <= 255:
        return exit_status - 2 - configured_weight
    return None


def file_check_delta(value: int, weight: int, reverse: bool) -> int | None:
    """FILE_CHECK: the weight delta from a track file value; None means DOWN (spec §9.5).

    keepalived ``process_update_checker_track_file_status``: with weight 0 a non-zero value
    (a zero one with ``reverse``) is a fault; otherwise ``value * weight * (-1 if reverse)``
    clamped to the int range, where INT_MIN (IPVS_WEIGHT_FAULT) is a fault.
    """
    if weight == 0:
        return None if (value != 0) != reverse else 0
    raw = value * weight * (-1 if reverse else 1)
    if raw <= INT32_MIN:
        return None
    return min(raw, INT32_MAX)


def clamp_weight(weight: int) -> int:
    """spec §9.6: the effective IPVS weight is clamped to 0..INT32_MAX."""
    return max(0, min(IPVS_WEIGHT_LIMIT, weight))


@dataclass(frozen=True, slots=True)
class RsState:
    """A real server's health as the load balancer sees it."""

    alive: bool
    weight: int  # effective weight: configured + dynamic deltas, clamped 0..INT32_MAX


class RsHealth:
    """The checkers of one real server folded into alive + effective weight (spec §9.6).

    A real server without checkers is always alive. Each checker has a slot (its index in
    ``RealServer.checkers``) holding ``up`` and its weight delta (``cur_weight``).
    """

    __slots__ = ("_deltas", "_up", "configured_weight")

    def __init__(
        self, configured_weight: int, initial_up: list[bool], deltas: list[int] | None = None
    ) -> None:
        self.configured_weight = configured_weight
        self._up = list(initial_up)
        self._deltas = [0] * len(initial_up) if deltas is None else list(deltas)
        if len(self._deltas) != len(self._up):
            raise ValueError("one delta per checker")

    @property
    def state(self) -> RsState:
        return RsState(all(self._up), clamp_weight(self.configured_weight + sum(self._deltas)))

    def checker_delta(self, index: int) -> int:
        """Checker ``index``'s weight delta (``cur_weight``)."""
        return self._deltas[index]

    @property
    def failed(self) -> int:
        """keepalived's count of failed checkers."""
        return self._up.count(False)

    def checker_up(self, index: int) -> bool:
        return self._up[index]

    def update(self, index: int, *, up: bool, delta: int | None = None) -> RsState | None:
        """Set one checker's state (and delta when given); the new state if it changed."""
        before = self.state
        self._up[index] = up
        if delta is not None:
            self._deltas[index] = delta
        after = self.state
        return None if after == before else after
