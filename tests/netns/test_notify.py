"""Notifications end to end: two pykad routers in namespaces, recording scripts (spec §6).

What a recording script and the FIFO reader saw is compared with the transitions, in order,
for plain instances and a sync group, through a failover and back; ``notify_master`` must see
the instance's addresses already installed (a group's, all its members' addresses); and a
notify script that sleeps for seconds must neither delay the adverts (the peer stays BACKUP)
nor be overtaken by the next notification of its instance.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import pytest

from pykad.testing.keepalived import (
    DaemonConfig,
    Instance,
    LogTimeout,
    PykadFixture,
    StartDaemon,
    entering,
)
from pykad.testing.netns import Lab, Node

WAIT_S = 30.0
IP = shutil.which("ip") or "/usr/sbin/ip"
VIPS = {"VI_A": "192.0.2.61", "VI_B": "192.0.2.62", "VI_C": "192.0.2.63"}

# tag + arguments, then the VIPs present on eth0 when the script ran
RECORDER = f"""#!/bin/sh
log=$1; shift
vips=$({IP} -o -4 addr show dev eth0 | grep -o '192\\.0\\.2\\.6[0-9]' | sort | paste -sd, -)
echo "$* | ${{vips:-none}}" >> "$log"
"""
# vrrp_notify_fifo_script: pykad appends the FIFO path. TERM is ignored so that the lines
# still in the pipe are read until pykad closes the FIFO (it SIGKILLs us 1 s later).
FIFO_READER = """#!/bin/sh
trap '' TERM
while IFS= read -r line; do printf '%s\\n' "$line" >> "$1"; done < "$2"
"""


def _script(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(0o755)
    return path


def _config(node: Node, prio: int, d: Path, scripts: Path, *, track: bool) -> DaemonConfig:
    rec = f"{scripts / 'rec.sh'} {d / 'notify.log'}"
    insts = []
    for name, vrid in (("VI_A", 61), ("VI_B", 62), ("VI_C", 63)):
        extra = [f'notify "{rec} notify"', f'notify_master "{rec} master {name}"']
        if name == "VI_C":
            extra.append("notify_priority_changes")
            if track:
                extra += ["track_file {", "    prio", "}"]
        inst = Instance(
            name=name,
            vrid=vrid,
            priority=prio,
            advert_int=0.5,
            vips=(f"{VIPS[name]}/24",),
            extra=tuple(extra),
        )
        insts.append(inst)
    blocks = [
        "vrrp_sync_group G1 {\n    group {\n        VI_A\n        VI_B\n    }\n"
        f'    notify "{rec} gnotify"\n    notify_master "{rec} gmaster"\n}}\n'
    ]
    if track:
        blocks.append(f"vrrp_track_file prio {{\n    file {d / 'prio'}\n    weight 1\n}}\n")
    return DaemonConfig(
        router_id=node.name,
        instances=tuple(insts),
        global_extra=(
            "enable_script_security",
            "script_user root",
            f"vrrp_notify_fifo {d / 'fifo'}",
            f'vrrp_notify_fifo_script "{scripts / "fifo.sh"} {d / "fifo.log"}"',
        ),
        blocks=tuple(blocks),
    )


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _events(path: Path, name: str) -> list[str]:
    """The generic notify lines of INSTANCE|GROUP ``name``: 'STATE PRIO'."""
    out = []
    for line in _lines(path):
        words = line.split(" | ")[0].split()
        if words[0] in ("notify", "gnotify") and words[2] == name:
            out.append(f"{words[3]} {words[4]}")
    return out


def _fifo(path: Path, name: str) -> list[str]:
    prefix = f'"{name}" '
    return [
        line.split(prefix, 1)[1]
        for line in _lines(path)
        if line.split(" ", 1)[1].startswith(prefix)
    ]


def _wait_recorded(path: Path, text: str, count: int = 1) -> None:
    """Scripts run after the log line that triggers them: poll (bounded) for their record,
    since a file written by a child process has no event to wait on."""
    deadline = time.monotonic() + WAIT_S
    while sum(text in line for line in _lines(path)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never recorded in {path}: {_lines(path)}")
        threading.Event().wait(0.05)


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_notify_arguments_and_fifo_lines_follow_the_transitions(
    lab: Lab, start: StartDaemon, tmp_path: Path
) -> None:
    r1, r2 = lab.routers
    scripts = tmp_path / "scripts"
    scripts.mkdir(mode=0o755)
    _script(scripts / "rec.sh", RECORDER)
    _script(scripts / "fifo.sh", FIFO_READER)
    d1, d2 = tmp_path / "r1", tmp_path / "r2"
    for d in (d1, d2):
        d.mkdir(mode=0o755)
    (d1 / "prio").write_text("0\n")
    c1 = _config(r1, 150, d1, scripts, track=True)
    c2 = _config(r2, 100, d2, scripts, track=False)

    one = start(PykadFixture, r1, c1)
    for name in VIPS:
        one.wait_for_log(entering("MASTER", name), timeout=WAIT_S)
    two = start(PykadFixture, r2, c2)
    for name in VIPS:
        two.wait_for_log(entering("BACKUP", name), timeout=WAIT_S)

    # 1. VI_C fails over by priority (track_file -100: 150 -> 50) and comes back
    m1, m2 = one.mark(), two.mark()
    (d1 / "prio").write_text("-100\n")
    two.wait_for_log(entering("MASTER", "VI_C"), timeout=WAIT_S, since=m2)
    one.wait_for_log(entering("BACKUP", "VI_C"), timeout=WAIT_S, since=m1)
    # Each notify_master records the VIPs it sees when it runs, and scripts run after the
    # transition (asynchronously, in order): let it run before the VIP moves on again.
    n1, n2 = d1 / "notify.log", d2 / "notify.log"
    _wait_recorded(n2, "master VI_C")
    m1, m2 = one.mark(), two.mark()
    (d1 / "prio").write_text("0\n")
    one.wait_for_log(entering("MASTER", "VI_C"), timeout=WAIT_S, since=m1)
    two.wait_for_log(entering("BACKUP", "VI_C"), timeout=WAIT_S, since=m2)
    _wait_recorded(n1, "master VI_C", count=2)

    # 2. the sync group fails over when r1 stops, and comes back when it restarts (preempt)
    m2 = two.mark()
    assert one.stop() == 0
    for name in VIPS:
        two.wait_for_log(entering("MASTER", name), timeout=WAIT_S, since=m2)
    for text, count in (("master VI_A", 1), ("master VI_B", 1), ("master VI_C", 2)):
        _wait_recorded(n2, text, count)
    _wait_recorded(n2, "gmaster")
    m2 = two.mark()
    one = start(PykadFixture, r1, c1)
    for name in ("VI_A", "VI_B"):
        one.wait_for_log(entering("MASTER", name), timeout=WAIT_S)
        two.wait_for_log(entering("BACKUP", name), timeout=WAIT_S, since=m2)
    one.wait_for_log(entering("MASTER", "VI_C"), timeout=WAIT_S)
    for text, count in (("master VI_A", 2), ("master VI_B", 2), ("master VI_C", 3), ("gmaster", 2)):
        _wait_recorded(n1, text, count)  # r1's second start
    assert two.stop() == 0  # the backup first: r1 stays MASTER until its own STOP
    assert one.stop() == 0

    up = ["BACKUP 150", "MASTER 150"]  # spec §6.1: BACKUP (init) is notified too
    assert _events(n1, "VI_A") == [*up, "STOP 150", *up, "STOP 150"]
    assert _events(n1, "VI_B") == [*up, "STOP 150", *up, "STOP 150"]
    assert _events(n1, "VI_C") == [*up, "BACKUP 50", "MASTER 150", "STOP 150", *up, "STOP 150"]
    assert _events(n1, "G1") == ["BACKUP 0", "MASTER 0", "STOP 0"] * 2
    assert _events(n2, "VI_A") == ["BACKUP 100", "MASTER 100", "BACKUP 100", "STOP 100"]
    # r2 took VI_C twice: from the priority drop, then while r1 was stopped
    assert _events(n2, "VI_C") == ["BACKUP 100", *["MASTER 100", "BACKUP 100"] * 2, "STOP 100"]
    assert _events(n2, "G1") == ["BACKUP 0", "MASTER 0", "BACKUP 0", "STOP 0"]

    # notify_master only ran once its addresses were up; the group's, once all members' were
    for path in (n1, n2):
        for line in _lines(path):
            args, vips = line.split(" | ")
            tag = args.split()
            if tag[0] == "master":
                assert VIPS[tag[1]] in vips.split(","), line
            elif tag[0] == "gmaster":
                assert {VIPS["VI_A"], VIPS["VI_B"]} <= set(vips.split(",")), line

    # the FIFO got the same transitions, plus VI_C's priority changes (notify_priority_changes)
    f1, f2 = d1 / "fifo.log", d2 / "fifo.log"
    for path in (f1, f2):
        lines = _lines(path)
        assert all(line.startswith(("INSTANCE ", "GROUP ")) for line in lines), lines
    assert _fifo(f1, "VI_A") == _events(n1, "VI_A")
    assert _fifo(f1, "G1") == _events(n1, "G1")
    assert _fifo(f1, "VI_C") == [
        *up,
        "MASTER_PRIORITY 50",
        "BACKUP 50",
        "BACKUP_PRIORITY 150",
        "MASTER 150",
        "STOP 150",
        *up,
        "STOP 150",
    ]
    assert _fifo(f2, "VI_A") == _events(n2, "VI_A")
    assert _fifo(f2, "G1") == _events(n2, "G1")


SLOW = """#!/bin/sh
echo "$1 start" >> {log}
[ "$1" = master ] && sleep 5
echo "$1 end" >> {log}
"""


@pytest.mark.netns
@pytest.mark.timeout(180)
def test_a_slow_notify_script_delays_neither_adverts_nor_order(
    lab: Lab, start: StartDaemon, tmp_path: Path
) -> None:
    """A notify_master that sleeps 5 s: the peer keeps seeing adverts (it would take over
    after 3 x 0.5 s + skew without them), a transition during the sleep happens at once, and
    its notify_backup starts only after the slow script has finished."""
    r1, r2 = lab.routers
    log = tmp_path / "slow.log"
    slow = _script(tmp_path / "slow.sh", SLOW.format(log=log))
    prio = tmp_path / "prio"
    prio.write_text("0\n")
    base = Instance(advert_int=0.5, vips=("192.0.2.71/24",), vrid=71)
    c1 = DaemonConfig(
        router_id="r1",
        instances=(
            Instance(
                advert_int=0.5,
                vips=("192.0.2.71/24",),
                vrid=71,
                priority=150,
                extra=(
                    f'notify_master "{slow} master"',
                    f'notify_backup "{slow} backup"',
                    "track_file {",
                    "    prio",
                    "}",
                ),
            ),
        ),
        global_extra=("enable_script_security", "script_user root"),
        blocks=(f"vrrp_track_file prio {{\n    file {prio}\n    weight 1\n}}\n",),
    )
    c2 = DaemonConfig(router_id="r2", instances=(base,))

    two = start(PykadFixture, r2, c2)
    two.wait_for_log(entering("MASTER"), timeout=WAIT_S)
    m2 = two.mark()
    one = start(PykadFixture, r1, c1)
    one.wait_for_log(entering("MASTER"), timeout=WAIT_S)  # preempts r2 (150 > 100)
    two.wait_for_log(entering("BACKUP"), timeout=WAIT_S, since=m2)
    _wait_recorded(log, "master start")
    m1, m2 = one.mark(), two.mark()
    assert _lines(log)[-1] == "master start"

    # during the 5 s sleep r1's adverts keep r2 BACKUP for longer than its master-down
    # interval (3 x 0.5 s + skew); then r1 drops to 50 and r2 takes over at once
    with pytest.raises(LogTimeout):
        two.wait_for_log(entering("MASTER"), timeout=2.5, since=m2)
    assert "master end" not in _lines(log), "the window must fall inside the 5 s script"
    prio.write_text("-100\n")
    two.wait_for_log(entering("MASTER"), timeout=WAIT_S, since=m2)
    one.wait_for_log(entering("BACKUP"), timeout=WAIT_S, since=m1)
    assert "master end" not in _lines(log), "the transition waited for the notify script"
    _wait_recorded(log, "backup end", count=2)
    init = ["backup start", "backup end"]  # spec §6.1: BACKUP (init) is notified too
    assert _lines(log) == [*init, "master start", "master end", *init]
    assert one.stop() == 0


@pytest.mark.netns
@pytest.mark.timeout(120)
def test_fifo_write_vrrp_states_on_reload_resends_instance_and_group_states(
    lab: Lab, start: StartDaemon, tmp_path: Path
) -> None:
    r1 = lab.routers[0]
    scripts = tmp_path / "scripts"
    scripts.mkdir(mode=0o755)
    _script(scripts / "rec.sh", RECORDER)
    _script(scripts / "fifo.sh", FIFO_READER)
    d = tmp_path / "r1"
    d.mkdir(mode=0o755)
    base = _config(r1, 150, d, scripts, track=False)
    config = dataclasses.replace(
        base, global_extra=(*base.global_extra, "fifo_write_vrrp_states_on_reload")
    )
    one = start(PykadFixture, r1, config)
    for name in VIPS:
        one.wait_for_log(entering("MASTER", name), timeout=WAIT_S)
    _wait_recorded(d / "fifo.log", 'GROUP "G1" MASTER 0')
    before = _lines(d / "fifo.log")
    mark = one.reload()
    one.wait_for_log("Reload complete", timeout=WAIT_S, since=mark)
    _wait_recorded(d / "fifo.log", 'GROUP "G1" MASTER 0', count=2)
    assert one.stop() == 0
    resent = _lines(d / "fifo.log")[len(before) :]
    assert sorted(resent[:4]) == [
        'GROUP "G1" MASTER 0',
        'INSTANCE "VI_A" MASTER 150',
        'INSTANCE "VI_B" MASTER 150',
        'INSTANCE "VI_C" MASTER 150',
    ]
    for name in VIPS:  # FIFO only: no notify script runs again on reload
        assert _events(d / "notify.log", name) == ["BACKUP 150", "MASTER 150", "STOP 150"]
    assert _events(d / "notify.log", "G1") == ["BACKUP 0", "MASTER 0", "STOP 0"]
