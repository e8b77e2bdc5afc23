"""Sync groups: members move together (spec §4.1)."""

from __future__ import annotations

import pytest

from pykad.fsm.effects import GroupNotify, GroupSync, Notify, SendAdvert
from pykad.fsm.events import GroupForce, Startup, TimersDue, TrackerChanged
from pykad.fsm.machine import State, VrrpMachine
from pykad.fsm.syncgroup import SyncGroup
from pykad.testing.builders import instance
from pykad.testing.fakelan import FakeLan


def group_lan(*, prio_a: int = 100, prio_b: int = 100) -> FakeLan:
    """Router 1 runs VI_a + VI_b in group G; router 2 runs plain VI_a2/VI_b2 peers."""
    lan = FakeLan()
    lan.sync_group("G", ("VI_a", "VI_b"))
    lan.add(instance("VI_a", vrid=1, priority=prio_a, primary="192.0.2.1", sync_group="G"))
    lan.add(
        instance(
            "VI_b",
            vrid=2,
            priority=prio_b,
            primary="192.0.2.1",
            sync_group="G",
            vips=("198.51.100.100/24",),
        )
    )
    return lan


def test_members_become_master_together() -> None:
    lan = group_lan()
    lan.run_until(20.0)
    assert sorted(lan.masters()) == ["VI_a", "VI_b"]
    group_notifies = [e for _, _, e in lan.log if isinstance(e, GroupNotify)]
    assert group_notifies == [GroupNotify("G", "BACKUP"), GroupNotify("G", "MASTER")]
    # instance notifies are still per member
    assert Notify("MASTER", 100) in lan.effects("VI_a")
    assert Notify("MASTER", 100) in lan.effects("VI_b")


def test_member_waits_until_every_member_wants_master() -> None:
    lan = FakeLan()
    lan.sync_group("G", ("VI_a", "VI_b"))
    lan.add(instance("VI_a", vrid=1, priority=200, primary="192.0.2.1", sync_group="G"))
    lan.add(instance("VI_b", vrid=2, priority=100, primary="192.0.2.1", sync_group="G"))
    # a peer router is master for VRID 2 only, so VI_b keeps accepting its adverts
    lan.add(instance("peer2", vrid=2, priority=150, primary="192.0.2.9"))
    lan.run_until(30.0)
    a = lan.machine("VI_a")
    assert a.state is State.BACKUP
    assert a.wantstate is State.MASTER  # VI_a wants MASTER but VI_b does not
    assert sorted(lan.masters()) == ["peer2"]


def test_member_leaving_master_pulls_the_group_to_backup() -> None:
    lan = group_lan()
    lan.run_until(10.0)
    lan.add(instance("peer1", vrid=1, priority=250, primary="192.0.2.9"), start_at=10.0)
    lan.run_until(30.0)
    assert lan.machine("VI_a").state is State.BACKUP
    assert lan.machine("VI_b").state is State.BACKUP
    assert GroupSync("G", "BACKUP") in lan.effects("VI_a")


def test_member_fault_faults_the_group_and_recovery_needs_all_clear() -> None:
    lan = group_lan()
    lan.run_until(10.0)
    lan.at(10.0, "VI_a", TrackerChanged("interface", "eth0", up=False))
    lan.run_until(11.0)
    a, b = lan.machine("VI_a"), lan.machine("VI_b")
    assert (a.state, b.state) == (State.FAULT, State.FAULT)
    assert SendAdvert(0) in lan.effects("VI_b")  # the forced master resigned too
    lan.at(12.0, "VI_a", TrackerChanged("interface", "eth0", up=True))
    lan.run_until(12.5)
    assert (a.state, b.state) == (State.BACKUP, State.BACKUP)
    lan.run_until(30.0)
    assert sorted(lan.masters()) == ["VI_a", "VI_b"]


def test_forced_fault_member_cannot_leave_while_another_is_faulted() -> None:
    lan = group_lan()
    lan.run_until(10.0)
    lan.at(10.0, "VI_a", TrackerChanged("interface", "eth0", up=False))
    lan.run_until(11.0)
    b = lan.machine("VI_b")
    # an unrelated change on VI_b does not let it leave FAULT while VI_a is faulted
    lan.at(11.0, "VI_b", TrackerChanged("interface", "eth0", up=True))
    lan.run_until(12.0)
    assert b.state is State.FAULT


def test_owners_start_master_only_if_all_members_are_owners() -> None:
    g = SyncGroup("G", ("o1", "o2"))
    o1 = VrrpMachine(instance("o1", state="MASTER", priority=255), sync=g)
    o2 = VrrpMachine(instance("o2", vrid=2, state="MASTER", priority=255), sync=g)
    o1.handle(Startup(), 0.0)
    assert o1.state is State.MASTER
    assert o2.handle(Startup(), 0.0)[0] == SendAdvert(255)

    mixed = SyncGroup("M", ("o", "b"))
    o = VrrpMachine(instance("o", state="MASTER", priority=255), sync=mixed)
    VrrpMachine(instance("b", vrid=2), sync=mixed)
    o.handle(Startup(), 0.0)
    assert o.state is State.BACKUP
    # it wants MASTER in a BACKUP group: down timer is M + skew_min (spec §5.2)
    assert o.next_deadline() == 1 + 1 / 256


def test_member_starting_in_a_faulted_group_enters_fault() -> None:
    g = SyncGroup("G", ("a", "b"))
    a = VrrpMachine(instance("a"), sync=g, initial_trackers={("interface", "eth0"): False})
    b = VrrpMachine(instance("b", vrid=2), sync=g)
    assert a.handle(Startup(), 0.0)[-2:] == [GroupNotify("G", "FAULT"), GroupSync("G", "FAULT")]
    b.handle(Startup(), 0.0)
    assert b.state is State.FAULT
    assert b.fault_reasons == ()  # forced by the group, not its own fault


def test_group_force_in_init_and_master_from_fault_are_ignored() -> None:
    g = SyncGroup("G", ("a", "b"))
    a = VrrpMachine(instance("a"), sync=g)
    VrrpMachine(instance("b", vrid=2), sync=g)
    assert a.handle(GroupForce("MASTER"), 0.0) == []  # not started yet
    a.handle(Startup(), 0.0)
    a.handle(TrackerChanged("interface", "eth0", up=False), 1.0)
    assert a.handle(GroupForce("MASTER"), 2.0) == []
    assert a.handle(GroupForce("FAULT"), 2.0) == []
    assert a.handle(GroupForce("BACKUP"), 2.0) == []  # own fault still present


def test_group_stop_notified_once() -> None:
    lan = group_lan()
    lan.run_until(10.0)
    lan.stop("VI_a", at=10.0)
    lan.stop("VI_b", at=10.0)
    lan.run_until(11.0)
    stops = [(n, e) for _, n, e in lan.log if e == GroupNotify("G", "STOP")]
    assert stops == [("VI_a", GroupNotify("G", "STOP"))]


def test_register_unknown_member_is_a_bug() -> None:
    with pytest.raises(ValueError, match="not a member"):
        VrrpMachine(instance("x"), sync=SyncGroup("G", ("a",)))


def test_refused_member_rearms_its_timer() -> None:
    g = SyncGroup("G", ("a", "b"))
    a = VrrpMachine(instance("a"), sync=g)
    VrrpMachine(instance("b", vrid=2), sync=g)
    a.handle(Startup(), 0.0)
    deadline = a.next_deadline()
    assert deadline is not None
    a.handle(TimersDue(), deadline)
    assert a.state is State.BACKUP
    assert a.next_deadline() == deadline * 2
