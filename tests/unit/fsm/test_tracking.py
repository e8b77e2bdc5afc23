"""Effective priority arithmetic and fault conditions as tables (spec §4.3, §10 item 16)."""

from __future__ import annotations

import pytest

from pykad.config.model import TrackInterface, TrackRef, VirtualRoute
from pykad.fsm.machine import VrrpMachine
from pykad.fsm.tracking import (
    Relation,
    TrackedObject,
    Tracking,
    effective_priority,
    file_contribution,
    relations_for,
    weighted_contribution,
)
from pykad.testing.builders import instance, vip


@pytest.mark.parametrize(
    ("base", "adjustment", "effective"),
    [
        (100, 0, 100),
        (100, 50, 150),
        (100, 200, 254),  # never 255 by tracking
        (100, -99, 1),
        (100, -150, 1),  # never 0 by tracking
        (254, 10, 254),
        (255, -100, 255),  # the owner is immutable
        (255, 0, 255),
    ],
)
def test_effective_priority_clamps(base: int, adjustment: int, effective: int) -> None:
    assert effective_priority(base, adjustment) == effective


@pytest.mark.parametrize(
    ("weight", "reverse", "up", "contribution"),
    [
        (10, False, True, 10),  # w > 0 adds while up
        (10, False, False, 0),
        (-10, False, True, 0),
        (-10, False, False, -10),  # w < 0 subtracts while down
        (10, True, True, -10),  # reverse: subtract while up
        (10, True, False, 0),
        (-10, True, False, 10),  # reverse: add while down
        (-10, True, True, 0),
    ],
)
def test_weighted_contribution(weight: int, reverse: bool, up: bool, contribution: int) -> None:
    assert weighted_contribution(weight, reverse, up) == contribution


@pytest.mark.parametrize(
    ("value", "weight", "reverse", "contribution"),
    [
        (0, 10, False, 0),
        (3, 10, False, 30),
        (100, 10, False, 253),  # clamped to 253
        (-3, 10, False, -30),
        (-25, 10, False, -250),
        (-26, 10, False, None),  # <= -254 means FAULT
        (3, 10, True, -30),
        (30, -10, False, None),
    ],
)
def test_file_contribution(
    value: int, weight: int, reverse: bool, contribution: int | None
) -> None:
    assert file_contribution(value, weight, reverse) == contribution


def test_relations_include_implicit_interfaces() -> None:
    cfg = instance(
        interface="eth0",
        virtual_addresses=(vip("192.0.2.100/24"), vip("192.0.2.101/24", dev="eth1")),
        excluded_addresses=(vip("198.51.100.1/24", dev="eth2", no_track=True),),
        virtual_routes=(VirtualRoute(dst=None, dev="eth3"),),
        track_interfaces=(TrackInterface(name="eth1", weight=10),),
        track_scripts=(TrackRef(name="chk", weight=-5),),
        track_files=(TrackRef(name="f", weight=2),),
        track_processes=(TrackRef(name="p"),),
        track_bfds=(TrackRef(name="b", reverse=True),),
    )
    assert relations_for(cfg) == (
        Relation("interface", "eth0"),
        Relation("interface", "eth1", 10),
        Relation("interface", "eth1"),
        Relation("interface", "eth3"),
        Relation("script", "chk", -5),
        Relation("process", "p"),
        Relation("bfd", "b", 0, True),
        Relation("file", "f", 2),
    )


def test_dont_track_primary_drops_the_own_interface() -> None:
    assert relations_for(instance(dont_track_primary=True)) == ()
    assert relations_for(instance(interface=None)) == ()


def test_tracking_sums_and_faults() -> None:
    rels = (
        Relation("interface", "eth0"),
        Relation("script", "up10", 10),
        Relation("script", "down20", -20),
        Relation("process", "p", 0, True),
        Relation("file", "f", 5),
        Relation("file", "z", 0),
    )
    tr = Tracking(rels, {("script", "up10"): True, ("script", "down20"): False}, {"f": 2})
    assert tr.adjustment() == 10 - 20 + 10
    # process with weight 0 and reverse: up (assumed at start) means FAULT
    assert tr.fault_reasons() == ["process p"]
    assert tr.set_state("process", "p", False)
    assert tr.fault_reasons() == []
    assert tr.set_state("interface", "eth0", False)
    assert tr.fault_reasons() == ["interface eth0 down"]
    assert tr.set_file("z", 1)
    assert tr.fault_reasons() == ["interface eth0 down", "track_file z value 1"]
    assert tr.set_file("f", -60)  # -300 <= -254: FAULT, no priority contribution
    assert tr.adjustment() == 10 - 20
    assert "track_file f value -60" in tr.fault_reasons()
    assert not tr.set_state("script", "unknown", True)
    assert not tr.set_file("unknown", 1)
    assert tr.state("interface", "eth0") is False


def test_reverse_interface_up_is_a_fault_reason() -> None:
    tr = Tracking((Relation("interface", "eth9", 0, True),))
    assert tr.fault_reasons() == ["interface eth9 up"]


def test_weight0_file_reverse_faults_on_zero() -> None:
    tr = Tracking((Relation("file", "f", 0, True),))
    assert tr.fault_reasons() == ["track_file f value 0"]
    tr.set_file("f", 7)
    assert tr.fault_reasons() == []


def test_scripts_start_unknown_and_pending() -> None:
    tr = Tracking((Relation("script", "gate"), Relation("script", "w", 30)))
    assert tr.pending() == ["gate"]
    assert tr.adjustment() == 0  # unknown weighted scripts contribute nothing yet
    assert tr.fault_reasons() == []
    tr.set_state("script", "gate", True)
    tr.set_state("script", "w", True)
    assert (tr.pending(), tr.adjustment()) == ([], 30)


def test_rebind_keeps_known_states() -> None:
    tr = Tracking((Relation("script", "s", 10),), {("script", "s"): True}, None)
    new = tr.rebind((Relation("script", "s", 20), Relation("script", "t", 5)))
    assert new.adjustment() == 20
    assert new.state("script", "t") is None


def test_snapshot_shows_states_values_and_contributions() -> None:
    rels = (
        Relation("interface", "eth0"),
        Relation("script", "chk", 10),
        Relation("script", "new", -5),
        Relation("file", "f", 3),
        Relation("file", "deep", 100),
        Relation("file", "z", 0),
    )
    tr = Tracking(
        rels, {("script", "chk"): True, ("interface", "eth0"): False}, {"f": 2, "deep": -9}
    )
    assert tr.snapshot() == (
        TrackedObject("interface", "eth0", 0, False, False, None, 0),
        TrackedObject("script", "chk", 10, False, True, None, 10),
        TrackedObject("script", "new", -5, False, None, None, 0),  # no result yet
        TrackedObject("file", "f", 3, False, None, 2, 6),
        TrackedObject("file", "deep", 100, False, None, -9, 0),  # FAULT: no contribution
        TrackedObject("file", "z", 0, False, None, 0, 0),
    )


def test_machine_exposes_its_tracked_objects() -> None:
    cfg = instance(track_interfaces=(TrackInterface(name="eth1", weight=-20),))
    machine = VrrpMachine(cfg, initial_trackers={("interface", "eth1"): False})
    assert machine.tracked == (
        TrackedObject("interface", "eth0", 0, False, True, None, 0),
        TrackedObject("interface", "eth1", -20, False, False, None, -20),
    )
