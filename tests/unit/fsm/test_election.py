"""Elections on a FakeLan: priority, address ties, three routers, preemption (RFC 5798 6.4)."""

from __future__ import annotations

from pykad.fsm.effects import InstallVips, RemoveVips, SendAdvert
from pykad.fsm.machine import State
from pykad.testing.builders import instance
from pykad.testing.fakelan import FakeLan

# v2, advert_int 1 s: Master_Down_Interval = 3 + (256 - p)/256 (RFC 3768 6.1)
DOWN_100 = 3 + 156 / 256
DOWN_200 = 3 + 56 / 256


def test_single_router_becomes_master_after_exactly_master_down_interval() -> None:
    lan = FakeLan()
    lan.add(instance("VI_a", priority=100, primary="192.0.2.1"))
    lan.run_until(10.0)
    assert lan.transition_times("VI_a") == [(0.0, "BACKUP"), (DOWN_100, "MASTER")]
    assert DOWN_100 == 3.609375  # the spec's example (§5.1): 3.609 s


def test_higher_priority_wins_simultaneous_start() -> None:
    lan = FakeLan()
    low = lan.add(instance("VI_low", priority=100, primary="192.0.2.1"))
    high = lan.add(instance("VI_high", priority=200, primary="192.0.2.2"))
    lan.run_until(30.0)
    assert (low.state, high.state) == (State.BACKUP, State.MASTER)
    assert lan.transitions("VI_low") == [("INIT", "BACKUP")]
    assert lan.transition_times("VI_high") == [(0.0, "BACKUP"), (DOWN_200, "MASTER")]


def test_late_higher_priority_router_preempts() -> None:
    lan = FakeLan()
    low = lan.add(instance("VI_low", priority=100, primary="192.0.2.1"))
    high = lan.add(instance("VI_high", priority=200, primary="192.0.2.2"), start_at=5.0)
    lan.run_until(30.0)
    assert (low.state, high.state) == (State.BACKUP, State.MASTER)
    assert lan.transitions("VI_low") == [
        ("INIT", "BACKUP"),
        ("BACKUP", "MASTER"),
        ("MASTER", "BACKUP"),
    ]
    # the newcomer ignores the lower-priority adverts and takes over when its timer expires
    assert lan.transition_times("VI_high")[-1] == (5.0 + DOWN_200, "MASTER")
    assert lan.effects("VI_low").count(RemoveVips(low.cfg.virtual_addresses)) == 1
    # the old master steps down silently: no priority-0 advert (spec §5.6)
    assert SendAdvert(0) not in lan.effects("VI_low")


def test_equal_priority_tie_goes_to_higher_address() -> None:
    lan = FakeLan()
    a = lan.add(instance("VI_a", priority=100, primary="192.0.2.1"))
    b = lan.add(instance("VI_b", priority=100, primary="192.0.2.9"))
    lan.run_until(30.0)
    # both time out together, both become MASTER; the lower address yields (RFC 5798 6.4.3)
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)
    assert lan.transitions("VI_a")[-1] == ("MASTER", "BACKUP")


def test_three_routers_elect_the_highest() -> None:
    lan = FakeLan()
    for name, prio, ip in (
        ("r1", 150, "192.0.2.1"),
        ("r2", 250, "192.0.2.2"),
        ("r3", 50, "192.0.2.3"),
    ):
        lan.add(instance(name, priority=prio, primary=ip))
    lan.run_until(60.0)
    assert lan.masters() == ["r2"]
    assert lan.effects("r2").count(InstallVips(lan.machine("r2").cfg.virtual_addresses)) == 1
