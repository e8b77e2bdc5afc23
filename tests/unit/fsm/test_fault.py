"""FAULT entry and recovery, effective-priority changes in the machine (spec §4.3, §5.8)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from pykad.config.model import Notify as NotifyCfg
from pykad.config.model import TrackInterface, TrackRef, UnicastPeer
from pykad.fsm.effects import Announce, Log, Notify, RemoveVips, SendAdvert, Transition
from pykad.fsm.events import (
    AdvertReceived,
    SourceAddressChanged,
    Startup,
    TimersDue,
    TrackerChanged,
    TrackFileChanged,
)
from pykad.fsm.machine import State, VrrpMachine
from pykad.testing.builders import instance, vip
from pykad.testing.fakelan import FakeLan

PEER = ipaddress.ip_address("192.0.2.200")


def machine(**kw: Any) -> VrrpMachine:
    init = kw.pop("initial_trackers", None)
    files = kw.pop("initial_files", None)
    present = kw.pop("source_present", True)
    return VrrpMachine(
        instance(**kw), initial_trackers=init, initial_files=files, source_present=present
    )


def to_master(m: VrrpMachine, now: float = 0.0) -> None:
    m.handle(Startup(), now)
    deadline = m.next_deadline()
    assert deadline is not None
    m.handle(TimersDue(), deadline)
    assert m.state is State.MASTER


def test_interface_down_from_master_resigns_and_releases() -> None:
    m = machine()
    to_master(m)
    effects = m.handle(TrackerChanged("interface", "eth0", up=False), 10.0)
    assert effects == [
        Log("entering FAULT state (interface eth0 down)"),
        Log("Entering FAULT STATE"),
        SendAdvert(0),
        RemoveVips(m.cfg.virtual_addresses),
        Transition("MASTER", "FAULT", "interface eth0 down"),
        Notify("FAULT", 100),
    ]
    assert m.next_deadline() is None  # timers disabled in FAULT
    assert m.handle(AdvertReceived(PEER, 50, 100), 11.0) == []  # adverts ignored


def test_recovery_goes_through_backup_with_full_down_timer() -> None:
    m = machine()
    to_master(m)
    m.handle(TrackerChanged("interface", "eth0", up=False), 10.0)
    effects = m.handle(TrackerChanged("interface", "eth0", up=True), 20.0)
    assert effects == [
        Log("Entering BACKUP STATE"),
        Transition("FAULT", "BACKUP", "interface eth0 recovered"),
        Notify("BACKUP", 100),
    ]
    assert m.next_deadline() == 20.0 + 3 + 156 / 256


def test_owner_recovers_with_short_down_timer() -> None:
    m = machine(state="MASTER", priority=255)
    m.handle(Startup(), 0.0)
    m.handle(TrackerChanged("interface", "eth0", up=False), 1.0)
    m.handle(TrackerChanged("interface", "eth0", up=True), 2.0)
    assert m.state is State.BACKUP
    assert m.wantstate is State.MASTER
    assert m.next_deadline() == 2.0 + 1 + 1 / 256  # A + skew (spec §5.8)


def test_backup_fault_has_no_advert() -> None:
    m = machine()
    m.handle(Startup(), 0.0)
    effects = m.handle(TrackerChanged("interface", "eth0", up=False), 1.0)
    assert SendAdvert(0) not in effects
    assert Notify("FAULT", 100) in effects


def test_fault_at_startup_notifies_fault_init() -> None:
    m = machine(initial_trackers={("interface", "eth0"): False})
    effects = m.handle(Startup(), 0.0)
    assert effects == [
        Log("entering FAULT state (interface eth0 down)"),
        Log("Entering FAULT STATE (init)"),
        Transition("INIT", "FAULT", "init: interface eth0 down"),
        Notify("FAULT", 100),
    ]


def test_dont_track_primary() -> None:
    m = machine(dont_track_primary=True)
    to_master(m)
    assert m.handle(TrackerChanged("interface", "eth0", up=False), 10.0) == []
    assert m.state is State.MASTER


def test_vip_interface_down_unless_no_track() -> None:
    m = machine(
        vips=(),
        virtual_addresses=(
            vip("192.0.2.100/24", dev="eth1"),
            vip("192.0.2.101/24", dev="eth2", no_track=True),
        ),
    )
    m.handle(Startup(), 0.0)
    assert m.handle(TrackerChanged("interface", "eth2", up=False), 1.0) == []
    m.handle(TrackerChanged("interface", "eth1", up=False), 1.0)
    assert m.state is State.FAULT


def test_source_address_lost_and_back_with_new_address() -> None:
    m = machine(interface="eth0")
    m.handle(Startup(), 0.0)
    effects = m.handle(SourceAddressChanged(present=False), 1.0)
    assert effects[0] == Log("entering FAULT state (no IPv4 address for interface)")
    new = ipaddress.ip_address("192.0.2.77")
    m.handle(SourceAddressChanged(present=True, address=new), 2.0)
    assert m.state is State.BACKUP
    assert m.own_ip == new


def test_missing_source_at_startup() -> None:
    m = machine(source_present=False)
    m.handle(Startup(), 0.0)
    assert m.state is State.FAULT
    assert m.fault_reasons == ("no IPv4 address for interface",)


def test_unicast_fault_no_peer_and_unicast_recovery_garp() -> None:
    m = machine(unicast_fault_no_peer=True, unicast_src_ip=ipaddress.ip_address("192.0.2.3"))
    m.handle(Startup(), 0.0)
    assert m.fault_reasons == ("no unicast peers",)
    # a unicast instance leaving FAULT announces its own address once (spec §5.8)
    u = machine(
        unicast_src_ip=ipaddress.ip_address("192.0.2.3"),
        unicast_peers=(UnicastPeer(address=PEER),),
    )
    u.handle(Startup(), 0.0)
    u.handle(TrackerChanged("interface", "eth0", up=False), 1.0)
    effects = u.handle(TrackerChanged("interface", "eth0", up=True), 2.0)
    assert effects[-1] == Announce((vip("192.0.2.3/32"),), 1)


def test_weight0_script_pending_holds_instance_silently() -> None:
    m = machine(track_scripts=(TrackRef(name="gate"),))
    assert m.handle(Startup(), 0.0) == [Log("waiting for track script(s) gate", logging.DEBUG)]
    assert m.state is State.INIT
    assert m.next_deadline() is None
    effects = m.handle(TrackerChanged("script", "gate", up=True), 5.0)
    assert effects[0] == Log("Entering BACKUP STATE (init)")
    assert m.next_deadline() == 5.0 + 3 + 156 / 256


def test_weight0_script_first_failure_faults() -> None:
    m = machine(track_scripts=(TrackRef(name="gate"),))
    m.handle(Startup(), 0.0)
    m.handle(TrackerChanged("script", "gate", up=False), 1.0)
    assert m.state is State.FAULT


def test_untracked_events_are_ignored() -> None:
    m = machine()
    m.handle(Startup(), 0.0)
    assert m.handle(TrackerChanged("interface", "eth7", up=False), 1.0) == []
    assert m.handle(TrackFileChanged("nofile", 3), 1.0) == []


def test_tracker_before_startup_only_records() -> None:
    m = machine()
    assert m.handle(TrackerChanged("interface", "eth0", up=False), 0.0) == []
    assert m.last_transition is None  # still INIT
    m.handle(Startup(), 1.0)
    assert m.state is State.FAULT


def test_weighted_change_in_backup_shifts_down_timer_and_notifies() -> None:
    m = machine(
        track_interfaces=(TrackInterface(name="eth1", weight=50),),
        notify=NotifyCfg(priority_changes=True),
    )
    assert m.effective_priority == 150
    m.handle(Startup(), 0.0)
    assert m.next_deadline() == 3 + 106 / 256
    effects = m.handle(TrackerChanged("interface", "eth1", up=False), 1.0)
    assert effects == [
        Log("Changing effective priority from 150 to 100"),
        Notify("BACKUP_PRIORITY", 100),
    ]
    assert m.next_deadline() == 3 + 156 / 256


def test_weighted_change_in_master_only_changes_next_advert() -> None:
    m = machine(
        track_scripts=(TrackRef(name="chk", weight=-30),), notify=NotifyCfg(priority_changes=True)
    )
    m.handle(TrackerChanged("script", "chk", up=True), 0.0)
    to_master(m)
    effects = m.handle(TrackerChanged("script", "chk", up=False), 5.0)
    assert effects == [
        Log("Changing effective priority from 100 to 70"),
        Notify("MASTER_PRIORITY", 70),
    ]
    deadline = m.next_deadline()
    assert deadline is not None
    assert m.handle(TimersDue(), deadline) == [SendAdvert(70)]


def test_priority_change_without_notify_priority_changes() -> None:
    m = machine(track_files=(TrackRef(name="f", weight=10),))
    m.handle(Startup(), 0.0)
    assert m.handle(TrackFileChanged("f", 5), 1.0) == [
        Log("Changing effective priority from 100 to 150")
    ]
    # -300 <= -254 means FAULT, not a priority change: the contribution drops to 0
    effects = m.handle(TrackFileChanged("f", -30), 2.0)
    assert effects[0] == Log("Changing effective priority from 150 to 100")
    assert effects[-1] == Notify("FAULT", 100)
    assert m.state is State.FAULT


def test_priority_change_in_fault_is_logged_without_notify() -> None:
    m = machine(
        initial_trackers={("interface", "eth0"): False},
        track_interfaces=(TrackInterface(name="eth1", weight=5),),
        notify=NotifyCfg(priority_changes=True),
    )
    m.handle(Startup(), 0.0)
    assert m.handle(TrackerChanged("interface", "eth1", up=False), 1.0) == [
        Log("Changing effective priority from 105 to 100")
    ]


def test_backup_with_higher_effective_priority_preempts_on_next_advert() -> None:
    lan = FakeLan()
    lan.add(instance("VI_m", priority=150, primary="192.0.2.1"))
    b = lan.add(
        instance(
            "VI_b",
            priority=100,
            primary="192.0.2.2",
            track_interfaces=(TrackInterface(name="eth1", weight=100),),
        ),
        initial_trackers={("interface", "eth1"): False},
    )
    lan.run_until(10.0)
    assert lan.masters() == ["VI_m"]
    lan.at(10.2, "VI_b", TrackerChanged("interface", "eth1", up=True))
    lan.run_until(30.0)
    assert b.effective_priority == 200
    assert lan.masters() == ["VI_b"]


def test_fault_and_recovery_on_a_lan() -> None:
    lan = FakeLan()
    a = lan.add(instance("VI_a", priority=200, primary="192.0.2.1"))
    b = lan.add(instance("VI_b", priority=100, primary="192.0.2.2"))
    lan.run_until(10.0)
    lan.at(10.0, "VI_a", TrackerChanged("interface", "eth0", up=False))
    lan.run_until(12.0)
    # a resigned with priority 0: b takes over after its skew time only
    assert b.state is State.MASTER
    assert lan.transition_times("VI_b")[-1] == (10.0 + 156 / 256, "MASTER")
    lan.at(12.0, "VI_a", TrackerChanged("interface", "eth0", up=True))
    lan.run_until(30.0)
    assert (a.state, b.state) == (State.MASTER, State.BACKUP)
    assert lan.transitions("VI_a")[-3:] == [
        ("MASTER", "FAULT"),
        ("FAULT", "BACKUP"),
        ("BACKUP", "MASTER"),
    ]
