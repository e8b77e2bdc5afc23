"""``VrrpMachine.absorbs_repeats``: each answer, and that a "yes" holds its promise.

The promise (the runtime absorbs byte-identical repeats and delivers only the latest): a
copy of the advert handled later returns no effect and moves only the master-down
deadline. tests/property/test_absorbed_repeats.py checks it over random histories; these
pin every branch with the history that reaches it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from pykad.config.model import TrackInterface
from pykad.fsm.events import AdvertReceived, Startup, TrackerChanged
from pykad.fsm.machine import State, VrrpMachine
from pykad.testing.builders import instance
from pykad.testing.repeats import check_repeat

OWN = ipaddress.IPv4Address("192.0.2.2")
PEER = ipaddress.IPv4Address("192.0.2.1")
OTHER = ipaddress.IPv4Address("192.0.2.3")
ETH1 = (TrackInterface(name="eth1", weight=-60),)


def backup(**cfg: Any) -> VrrpMachine:
    machine = VrrpMachine(
        instance(primary=str(OWN), priority=100, track_interfaces=ETH1, **cfg), own_ip=OWN
    )
    machine.handle(Startup(), 0.0)
    assert machine.state is State.BACKUP
    return machine


def adv(prio: int, src: ipaddress.IPv4Address = PEER, interval_cs: int = 100) -> AdvertReceived:
    return AdvertReceived(src=src, priority=prio, adver_int_cs=interval_cs)


def test_the_followed_master_at_or_above_our_priority_is_absorbed() -> None:
    machine = backup()
    for prio in (100, 200):
        machine.handle(adv(prio), 1.0)
        assert machine.absorbs_repeats(adv(prio))
        check_repeat(machine, adv(prio), 2.0)


@pytest.mark.parametrize(
    ("what", "candidate"),
    [
        ("priority 0 (a resignation)", adv(0)),
        ("another source", adv(200, src=OTHER)),
        ("another priority", adv(150)),
    ],
)
def test_anything_but_the_followed_master_is_not_absorbed(
    what: str, candidate: AdvertReceived
) -> None:
    machine = backup()
    machine.handle(adv(200), 1.0)
    assert not machine.absorbs_repeats(candidate), what


def test_before_any_master_nothing_is_absorbed() -> None:
    assert not backup().absorbs_repeats(adv(200))


def test_v3_a_new_interval_is_not_absorbed() -> None:
    machine = backup(version=3)
    machine.handle(adv(200, interval_cs=100), 1.0)
    assert machine.absorbs_repeats(adv(200, interval_cs=100))
    assert not machine.absorbs_repeats(adv(200, interval_cs=50))


def test_v2_ignores_the_interval_field() -> None:
    machine = backup(version=2)
    machine.handle(adv(200), 1.0)
    assert machine.absorbs_repeats(adv(200, interval_cs=50))
    check_repeat(machine, adv(200, interval_cs=50), 2.0)


def test_lower_priority_with_preemption_is_never_absorbed() -> None:
    """It is discarded and the down timer runs on (we preempt): not a deadline push. The
    master was followed at 50 while we were at 40; we are back at 100."""
    machine = backup()
    machine.handle(TrackerChanged("interface", "eth1", up=False), 0.5)  # 100 - 60 = 40
    machine.handle(adv(50), 1.0)
    assert machine.absorbs_repeats(adv(50))
    machine.handle(TrackerChanged("interface", "eth1", up=True), 1.5)
    assert not machine.absorbs_repeats(adv(50))


def test_lower_priority_under_nopreempt_is_absorbed() -> None:
    machine = backup(preempt=False)
    machine.handle(adv(50), 1.0)
    assert machine.absorbs_repeats(adv(50))
    check_repeat(machine, adv(50), 2.0)


def test_nopreempt_with_preempt_delay_absorbs_once_the_delay_started() -> None:
    machine = backup(preempt=False, preempt_delay_s=2.0)
    machine.handle(adv(50), 1.0)  # starts the delay (logged): the first one is a change
    assert machine.absorbs_repeats(adv(50))
    check_repeat(machine, adv(50), 2.0)


def test_nopreempt_with_preempt_delay_not_yet_started_is_not_absorbed() -> None:
    """The master was followed at 50 while we were at 40 (no delay then); back at 100 the
    next advert starts the delay, with a log: a change."""
    machine = backup(preempt=False, preempt_delay_s=2.0)
    machine.handle(TrackerChanged("interface", "eth1", up=False), 0.5)
    machine.handle(adv(50), 1.0)
    machine.handle(TrackerChanged("interface", "eth1", up=True), 1.5)
    assert not machine.absorbs_repeats(adv(50))
    machine.handle(adv(50), 2.0)
    assert machine.absorbs_repeats(adv(50))
    check_repeat(machine, adv(50), 3.0)


def test_a_running_preempt_delay_is_a_change_for_a_master_now_above_us() -> None:
    """A lower master started the delay; then our priority fell below it: the next advert
    clears the delay, so it is not absorbed."""
    machine = backup(preempt_delay_s=2.0)
    machine.handle(adv(50), 1.0)  # in the delay: accepted, the delay starts
    machine.handle(TrackerChanged("interface", "eth1", up=False), 1.5)  # we are 40 now
    assert not machine.absorbs_repeats(adv(50))
    machine.handle(adv(50), 2.0)  # clears the delay
    assert machine.absorbs_repeats(adv(50))
    check_repeat(machine, adv(50), 3.0)


def test_lower_priority_in_a_preempt_delay_is_not_absorbed() -> None:
    """Accepted only until the delay ends: depends on the time."""
    machine = backup(preempt_delay_s=2.0)
    machine.handle(adv(50), 1.0)
    assert not machine.absorbs_repeats(adv(50))


def test_master_fault_and_init_absorb_nothing() -> None:
    machine = backup()
    machine.handle(adv(200), 1.0)
    machine.handle(TrackerChanged("interface", "eth0", up=False), 1.5)
    assert machine.state is State.FAULT
    assert not machine.absorbs_repeats(adv(200))
    master = VrrpMachine(instance(primary=str(OWN), priority=255, state="MASTER"), own_ip=OWN)
    assert not master.absorbs_repeats(adv(200))  # INIT
    master.handle(Startup(), 0.0)
    assert master.state is State.MASTER
    assert not master.absorbs_repeats(adv(200))


def test_a_backup_that_wants_master_absorbs_nothing() -> None:
    """A sync-group member held in BACKUP while it wants MASTER (spec §4.1)."""
    machine = backup()
    machine.handle(adv(200), 1.0)
    machine._set_wantstate(State.MASTER)
    assert not machine.absorbs_repeats(adv(200))
