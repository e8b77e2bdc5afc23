"""Shutdown (spec §5.8, §6.1), reload (spec §5.2 step 6), the transition table."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest

from pykad.config.model import Notify as NotifyCfg
from pykad.config.model import TrackInterface, VirtualRoute, VirtualRule
from pykad.errors import InvalidTransition
from pykad.fsm.effects import Announce, InstallVips, Log, Notify, RemoveVips, SendAdvert, Transition
from pykad.fsm.events import (
    GroupForce,
    Reconfigure,
    Shutdown,
    Startup,
    TimersDue,
    TrackerChanged,
)
from pykad.fsm.machine import ALLOWED, State, VrrpMachine
from pykad.testing.builders import instance, vip


def master_machine(**kw: Any) -> VrrpMachine:
    m = VrrpMachine(instance(**kw))
    m.handle(Startup(), 0.0)
    m.handle(TimersDue(), 3.609375)
    assert m.state is State.MASTER
    return m


def test_master_shutdown_resigns_releases_and_notifies_stop() -> None:
    m = master_machine()
    effects = m.handle(Shutdown(), 10.0)
    assert effects == [
        SendAdvert(0),
        RemoveVips(m.cfg.virtual_addresses),
        Transition("MASTER", "INIT", "shutdown"),
        Notify("STOP", 100),
    ]
    # inert afterwards
    assert m.next_deadline() is None
    assert m.handle(TimersDue(), 11.0) == []
    assert m.handle(Startup(), 12.0) == []


def test_backup_shutdown_only_notifies() -> None:
    m = VrrpMachine(instance())
    m.handle(Startup(), 0.0)
    assert m.handle(Shutdown(), 1.0) == [
        Transition("BACKUP", "INIT", "shutdown"),
        Notify("STOP", 100),
    ]


def test_shutdown_before_startup_notifies_stop() -> None:
    m = VrrpMachine(instance())
    assert m.handle(Shutdown(), 0.0) == [Notify("STOP", 100)]


def test_deleted_with_notify_deleted() -> None:
    m = master_machine(notify=NotifyCfg(deleted_enabled=True))
    assert m.handle(Shutdown(deleted=True), 5.0)[-1] == Notify("DELETED", 100)


def test_deleted_without_notify_deleted_reports_fault_unless_already_fault() -> None:
    m = master_machine()
    assert m.handle(Shutdown(deleted=True), 5.0)[-1] == Notify("FAULT", 100)
    f = VrrpMachine(instance())
    f.handle(Startup(), 0.0)
    f.handle(TrackerChanged("interface", "eth0", up=False), 1.0)
    assert f.handle(Shutdown(deleted=True), 2.0) == [Transition("FAULT", "INIT", "deleted")]


def test_reload_keeps_master_and_diffs_addresses() -> None:
    route = VirtualRoute(dst=ipaddress.ip_network("203.0.113.0/24"))
    rule = VirtualRule(table=7)
    m = master_machine(vips=("192.0.2.100/24", "192.0.2.101/24"), virtual_rules=(rule,))
    new = dataclasses.replace(
        m.cfg,
        virtual_addresses=(vip("192.0.2.100/24"), vip("192.0.2.102/24")),
        virtual_routes=(route,),
        virtual_rules=(),
    )
    effects = m.handle(Reconfigure(new), 5.0)
    assert effects == [
        SendAdvert(100),
        RemoveVips((vip("192.0.2.101/24"),), (), (rule,)),
        InstallVips((vip("192.0.2.102/24"),), (route,), ()),
        Announce((vip("192.0.2.102/24"),), 5),  # only the added VIP, garp_master_repeat times
    ]
    assert m.state is State.MASTER
    assert m.next_deadline() == 6.0
    assert not [e for e in effects if isinstance(e, Notify | Transition)]  # no duplicate notify


def test_reload_adding_only_a_route_announces_nothing() -> None:
    m = master_machine()
    route = VirtualRoute(dst=ipaddress.ip_network("203.0.113.0/24"))
    effects = m.handle(Reconfigure(dataclasses.replace(m.cfg, virtual_routes=(route,))), 5.0)
    assert effects == [SendAdvert(100), InstallVips((), (route,), ())]


def test_reload_unchanged_master_only_adverts() -> None:
    m = master_machine()
    assert m.handle(Reconfigure(m.cfg), 5.0) == [SendAdvert(100)]


def test_reload_backup_changes_priority() -> None:
    m = VrrpMachine(instance(priority=100))
    m.handle(Startup(), 0.0)
    effects = m.handle(Reconfigure(dataclasses.replace(m.cfg, priority=150)), 1.0)
    assert effects == [Log("Changing effective priority from 100 to 150")]
    assert m.state is State.BACKUP


def test_reload_can_fault_and_recover() -> None:
    m = master_machine()
    tracked = dataclasses.replace(m.cfg, track_interfaces=(TrackInterface(name="eth5"),))
    m.handle(TrackerChanged("interface", "eth5", up=False), 1.0)  # not tracked yet: ignored
    m.handle(Reconfigure(tracked), 2.0)
    assert m.fault_reasons == ()  # eth5 unknown, assumed up: still MASTER
    effects = m.handle(TrackerChanged("interface", "eth5", up=False), 3.0)
    assert Transition("MASTER", "FAULT", "interface eth5 down") in effects
    m.handle(Reconfigure(dataclasses.replace(tracked, track_interfaces=())), 4.0)
    assert m.state is State.BACKUP


def test_allowed_table_is_enforced() -> None:
    m = VrrpMachine(instance())
    m.handle(Startup(), 0.0)
    m.handle(TrackerChanged("interface", "eth0", up=False), 1.0)
    assert State.MASTER not in ALLOWED[State.FAULT]
    with pytest.raises(InvalidTransition, match="FAULT -> MASTER"):
        m._become_master(2.0, "bug")  # FAULT -> MASTER must go through BACKUP
    assert m.state is State.FAULT


def test_group_force_to_init_is_a_bug() -> None:
    m = VrrpMachine(instance())
    m.handle(Startup(), 0.0)
    with pytest.raises(InvalidTransition):
        m.handle(GroupForce("INIT"), 1.0)
    with pytest.raises(ValueError):
        m.handle(GroupForce("STOP"), 1.0)


def test_every_state_has_a_row() -> None:
    assert set(ALLOWED) == set(State)
    assert all(s not in ALLOWED[s] for s in State)
    assert [s.value for s in State] == ["INIT", "BACKUP", "MASTER", "FAULT"]
