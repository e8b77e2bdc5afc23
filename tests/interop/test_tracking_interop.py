"""Tracking between pykad and keepalived 2.2.7 (issue 5: the tracking is local, but the
priority changes it causes must move the VIP between mixed nodes).

Both daemons get the same tracking configuration (a track_file with weight 1, or a
vrrp_script with weight -60); the tracked object changes on the current master, whichever
implementation it is, and the VIP must move to the other node and come back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pykad.testing.keepalived import (
    DaemonConfig,
    DaemonFixture,
    Instance,
    KeepalivedFixture,
    PykadFixture,
    StartDaemon,
    elect,
    entering,
    pair_configs,
)
from pykad.testing.netns import Lab

pytestmark = pytest.mark.interop

VIP = "192.0.2.254"
WAIT_S = 30.0
TEMPLATE = Instance(version=3, advert_int=0.2, vips=(f"{VIP}/24",))


@dataclass(frozen=True)
class Tracker:
    """A tracking setup: its config for a node, and how to make it report good or bad."""

    id: str
    blocks: Callable[[Path], tuple[str, ...]]
    instance_lines: tuple[str, ...]
    bad: str  # what goes into the node's control file to lower its priority by 60
    good: str


def _file_blocks(d: Path) -> tuple[str, ...]:
    return (f"track_file tf {{\n    file {d / 'control'}\n    weight 1\n}}\n",)


def _script_blocks(d: Path) -> tuple[str, ...]:
    return (
        f'vrrp_script chk {{\n    script "{d / "check.sh"}"\n    interval 1\n    weight -60\n}}\n',
    )


TRACKERS = [
    Tracker("track_file", _file_blocks, ("track_file {", "    tf", "}"), "-60\n", "0\n"),
    Tracker("vrrp_script", _script_blocks, ("track_script {", "    chk", "}"), "1\n", "0\n"),
]


def node_dir(tmp_path: Path, name: str, control: str) -> Path:
    """Per-node files: ``control`` (the track file, or the script's exit status) and a
    root-only check script (``enable_script_security`` is on for both daemons)."""
    d = tmp_path / f"track-{name}"
    d.mkdir(mode=0o755)
    (d / "control").write_text(control)
    script = d / "check.sh"
    script.write_text(f'#!/bin/sh\nexit "$(cat {d / "control"})"\n')
    script.chmod(0o755)
    return d


def tracked(config: DaemonConfig, tracker: Tracker, d: Path) -> DaemonConfig:
    inst = config.instances[0]
    return replace(
        config,
        instances=(replace(inst, extra=inst.extra + tracker.instance_lines),),
        blocks=tracker.blocks(d),
        global_extra=("enable_script_security", "script_user root"),
    )


KINDS = [(PykadFixture, KeepalivedFixture), (KeepalivedFixture, PykadFixture)]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("tracker", TRACKERS, ids=lambda t: t.id)
@pytest.mark.parametrize("kinds", KINDS, ids=["pykad-master", "keepalived-master"])
def test_tracking_moves_the_vip_between_pykad_and_keepalived(
    lab: Lab,
    start: StartDaemon,
    tmp_path: Path,
    tracker: Tracker,
    kinds: tuple[type[DaemonFixture], type[DaemonFixture]],
) -> None:
    r1, r2 = lab.routers
    d1, d2 = node_dir(tmp_path, "r1", tracker.good), node_dir(tmp_path, "r2", tracker.good)
    c1, c2 = pair_configs(r1, r2, TEMPLATE)
    c1, c2 = tracked(c1, tracker, d1), tracked(c2, tracker, d2)
    one, two = elect(start, (kinds[0], r1, c1), (kinds[1], r2, c2))
    r1.wait_address(VIP, timeout=WAIT_S)

    def flip(value: str, r1_state: str, r2_state: str, change: str) -> None:
        m1, m2 = one.mark(), two.mark()
        tmp = d1 / "control.new"
        tmp.write_text(value)
        tmp.rename(d1 / "control")
        one.wait_for_log(f"(VI_1) Changing effective priority from {change}", WAIT_S, m1)
        one.wait_for_log(entering(r1_state), timeout=WAIT_S, since=m1)
        two.wait_for_log(entering(r2_state), timeout=WAIT_S, since=m2)

    # 150 - 60 = 90 < 100: the other implementation takes over
    flip(tracker.bad, "BACKUP", "MASTER", "150 to 90")
    r2.wait_address(VIP, timeout=WAIT_S)
    r1.wait_address(VIP, present=False, timeout=WAIT_S)
    # back to 150: preemption returns the VIP
    flip(tracker.good, "MASTER", "BACKUP", "90 to 150")
    r1.wait_address(VIP, timeout=WAIT_S)
    r2.wait_address(VIP, present=False, timeout=WAIT_S)
