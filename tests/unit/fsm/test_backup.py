"""BACKUP rules (RFC 5798 6.4.2, spec §5.3) and startup (RFC 5798 6.4.1, spec §5.2)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from pykad.config.model import IPAddress
from pykad.fsm.effects import Log, Notify, SendAdvert, Transition
from pykad.fsm.events import AdvertReceived, Startup, TimersDue
from pykad.fsm.machine import State, VrrpMachine
from pykad.testing.builders import instance
from pykad.testing.fakelan import FakeLan

PEER = ipaddress.ip_address("192.0.2.200")


def started(**kw: Any) -> VrrpMachine:
    m = VrrpMachine(instance(**kw))
    m.handle(Startup(), 0.0)
    return m


def adv(priority: int, interval_cs: int = 100, src: IPAddress = PEER) -> AdvertReceived:
    return AdvertReceived(src, priority, interval_cs)


def test_startup_enters_backup_with_notify_and_full_down_timer() -> None:
    m = VrrpMachine(instance(priority=100))
    effects = m.handle(Startup(), 10.0)
    assert effects == [
        Log("Entering BACKUP STATE (init)"),
        Transition("INIT", "BACKUP", "init"),
        Notify("BACKUP", 100),
    ]
    assert m.next_deadline() == 10.0 + 3 + 156 / 256
    assert m.last_transition == (10.0, "init")
    assert m.handle(Startup(), 11.0) == []  # idempotent


def test_state_master_below_255_still_waits_a_full_down_interval() -> None:
    m = started(state="MASTER", priority=200)
    assert m.state is State.BACKUP
    assert m.next_deadline() == 3 + 56 / 256


def test_timer_expiry_makes_master() -> None:
    m = started()
    deadline = m.next_deadline()
    assert deadline is not None
    assert m.handle(TimersDue(), deadline - 0.001) == []  # not due yet: nothing happens
    effects = m.handle(TimersDue(), deadline)
    assert effects[0] == Log("Receive advertisement timeout", logging.DEBUG)
    assert effects[1] == SendAdvert(100)
    assert m.state is State.MASTER
    assert m.wantstate is State.MASTER


def test_priority_zero_takes_over_after_skew() -> None:
    m = started(priority=100)
    m.handle(adv(200), 1.0)
    assert m.handle(adv(0), 2.0) == []
    assert m.next_deadline() == 2.0 + 156 / 256  # RFC 5798 6.4.2 (385)


def test_higher_or_equal_priority_is_accepted_and_recorded() -> None:
    m = started(priority=100)
    assert m.handle(adv(100), 1.0) == []  # equal is accepted in BACKUP (spec §5.3)
    assert m.next_deadline() == 1.0 + 3 + 156 / 256
    assert (m.master_ip, m.master_priority) == (PEER, 100)
    m.handle(adv(150), 2.0)
    assert m.master_priority == 150


def test_lower_priority_is_discarded_and_timer_keeps_running() -> None:
    m = started(priority=100)
    m.handle(adv(150), 1.0)
    before = m.next_deadline()
    effects = m.handle(adv(50), 2.0)
    assert effects == [Log(f"received lower priority (50) advert from {PEER} - discarding")]
    assert m.next_deadline() == before


def test_nopreempt_accepts_lower_priority() -> None:
    m = started(priority=100, preempt=False)
    m.handle(adv(50), 2.0)
    assert m.next_deadline() == 2.0 + 3 + 156 / 256


def test_v2_does_not_learn_the_interval() -> None:
    m = started(priority=100, advert_int=1.0)
    m.handle(adv(200, interval_cs=300), 0.5)
    assert m.master_adver_int_cs == 100


def test_v3_learns_master_interval_and_resets_it_on_becoming_master() -> None:
    m = started(priority=100, version=3, advert_int=1.0)
    m.handle(adv(200, interval_cs=50), 1.0)
    assert m.master_adver_int_cs == 50
    # RFC 5798 6.4.2 (400)-(410): down = 3 * 0.5 + (156 * 0.5)/256
    assert m.next_deadline() == 1.0 + 1.5 + 156 * 50 / 25600
    m.handle(TimersDue(), 10.0)
    assert m.state is State.MASTER
    assert m.master_adver_int_cs == 100  # M := A on becoming master (spec §5.1)
    assert m.next_deadline() == 11.0


def test_down_timer_adverts_scales_master_down() -> None:
    m = started(priority=100, down_timer_adverts=5)
    assert m.next_deadline() == 5 + 156 / 256


def test_preempt_delay_window() -> None:
    m = started(priority=200, preempt_delay_s=10.0)
    # first lower advert: accepted, the preempt-delay deadline starts
    assert m.handle(adv(100), 1.0) == [Log("start preempt delay", logging.DEBUG)]
    assert m.next_deadline() == 1.0 + 3 + 56 / 256
    m.handle(adv(100), 5.0)  # still within the window: accepted
    assert m.next_deadline() == 5.0 + 3 + 56 / 256
    effects = m.handle(adv(100), 11.0)  # window over: discarded, we preempt
    assert effects[0].message.startswith("received lower priority")  # type: ignore[union-attr]
    assert m.next_deadline() == 5.0 + 3 + 56 / 256


def test_preempt_delay_cleared_by_higher_priority_master() -> None:
    m = started(priority=200, preempt_delay_s=10.0)
    m.handle(adv(100), 1.0)
    m.handle(adv(250), 2.0)  # P >= E clears the deadline
    assert m.handle(adv(100), 20.0) == [Log("start preempt delay", logging.DEBUG)]


def test_adverts_ignored_in_init() -> None:
    m = VrrpMachine(instance())
    assert m.handle(adv(200), 0.0) == []
    assert m.state is State.INIT
    assert m.next_deadline() is None


def test_priority_zero_handover_on_the_lan_after_exactly_skew() -> None:
    lan = FakeLan()
    lan.add(instance("VI_m", priority=200, primary="192.0.2.1"))
    b = lan.add(instance("VI_b", priority=100, primary="192.0.2.2"))
    lan.run_until(10.0)
    assert lan.masters() == ["VI_m"]
    lan.stop("VI_m", at=10.5)
    lan.run_until(20.0)
    assert b.state is State.MASTER
    assert lan.transition_times("VI_b")[-1] == (10.5 + 156 / 256, "MASTER")


def test_master_crash_detected_after_exactly_master_down_interval() -> None:
    lan = FakeLan()
    lan.add(instance("VI_m", priority=200, primary="192.0.2.1"))
    b = lan.add(instance("VI_b", priority=100, primary="192.0.2.2"))
    lan.run_until(10.0)
    last_advert = max(t for t, e in lan.timed("VI_m") if e == SendAdvert(200))
    lan.crash("VI_m")
    lan.run_until(30.0)
    assert b.state is State.MASTER
    assert lan.transition_times("VI_b")[-1] == (last_advert + 3 + 156 / 256, "MASTER")
