"""Tracking for real: two pykad routers whose priorities follow scripts, interfaces, files and
processes (spec §4.2-4.4, issue 5 "Tracking" evidence).

Every router is a real ``pykad`` process in its own namespace; scripts are real files run by
pykad, HTTP servers and tracked processes are real processes in the router namespaces. The
tests wait for keepalived's log lines and for the VIP on the wire-facing interface, never for a
wall-clock duration.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import pytest

from pykad.testing.keepalived import (
    DaemonConfig,
    DaemonFixture,
    Instance,
    PykadFixture,
    StartDaemon,
    daemon_starter,
    elect,
    entering,
    pair_configs,
)
from pykad.testing.netns import Lab, LabError, Node

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
NGINX_PAIR = ROOT / "configs" / "nginx-pair"
VIP = "192.0.2.254"
WAIT_S = 30.0  # generous: the host is shared and loaded


@pytest.fixture
def start_text(tmp_path: Path) -> Iterator[StartText]:
    """Start pykad on a node with a keepalived.conf text (the configs/ files as they are)."""
    with daemon_starter(tmp_path) as start:

        def _start(node: Node, text: str) -> DaemonFixture:
            return start(PykadFixture, node, text)

        yield _start


class StartText(Protocol):
    def __call__(self, node: Node, text: str) -> DaemonFixture: ...


def moved_to(new: Node, old: Node, address: str = VIP) -> None:
    """The VIP is on ``new`` and no longer on ``old``."""
    new.wait_address(address, timeout=WAIT_S)
    old.wait_address(address, present=False, timeout=WAIT_S)


def secure_script(tmp_path: Path, name: str, body: str | None = None) -> str:
    """A script pykad may run as root under enable_script_security: root-owned, 0755, in a
    directory nobody else can write (tmp_path's parents are root's and 0700/sticky)."""
    directory = tmp_path / "scripts"
    directory.mkdir(mode=0o755, exist_ok=True)
    path = directory / name
    if body is None:
        shutil.copy(NGINX_PAIR / name, path)
    else:
        path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


# ------------------------------------------------------------------------ configs/nginx-pair


def http_server(node: Node, docroot: Path) -> subprocess.Popen[bytes]:
    """A real HTTP server on the node's 127.0.0.1:80 (what check_nginx.sh asks for)."""
    proc = node.spawn(
        [sys.executable, "-m", "http.server", "80", "--bind", "127.0.0.1", "-d", str(docroot)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            node.run(["curl", "-fsS", "--max-time", "1", "-o", "/dev/null", "http://127.0.0.1/"])
            return proc
        except LabError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            threading.Event().wait(0.1)


@pytest.mark.timeout(180)
def test_nginx_pair_vip_follows_the_http_server(
    lab: Lab, start_text: StartText, tmp_path: Path
) -> None:
    """configs/nginx-pair as shipped (check_nginx.sh really asks the local server): the VIP
    leaves the node whose server stops after fall x interval, and comes back (preemption)
    after rise x interval once it serves again."""
    r1, r2 = lab.routers
    check = secure_script(tmp_path, "check_nginx.sh")
    conf = {
        r: (NGINX_PAIR / f"node{i}.conf")
        .read_text()
        .replace("/etc/keepalived/check_nginx.sh", check)
        for i, r in ((1, r1), (2, r2))
    }
    docroot = tmp_path / "www"
    docroot.mkdir()
    (docroot / "index.html").write_text("hello\n")
    server1 = http_server(r1, docroot)
    http_server(r2, docroot)
    vip = "192.0.2.10"

    one = start_text(r1, conf[r1])
    one.wait_for_log(entering("MASTER", "VI_WEB"), timeout=WAIT_S)
    two = start_text(r2, conf[r2])
    two.wait_for_log(entering("BACKUP", "VI_WEB"), timeout=WAIT_S)
    r1.wait_address(vip, timeout=WAIT_S)
    assert one.found("VRRP_Script(check_nginx) succeeded")
    assert not one.found("SECURITY VIOLATION")

    # nginx dies on the master: 3 failed checks (fall 3), 150 - 30 = 120 < 130
    mark1, mark2 = one.mark(), two.mark()
    lab.stop(server1)
    one.wait_for_log("VRRP_Script(check_nginx) failed", timeout=WAIT_S, since=mark1)
    one.wait_for_log("(VI_WEB) Changing effective priority from 150 to 120", since=mark1)
    two.wait_for_log(entering("MASTER", "VI_WEB"), timeout=WAIT_S, since=mark2)
    one.wait_for_log(entering("BACKUP", "VI_WEB"), timeout=WAIT_S, since=mark1)
    moved_to(r2, r1, vip)
    # the failure was counted, not decided by one check: fall 3 means 3 runs went by
    assert one.count("failed", since=mark1) == 1

    # it serves again: 2 good checks (rise 2) and r1 preempts with 150 > 130
    mark1, mark2 = one.mark(), two.mark()
    http_server(r1, docroot)
    one.wait_for_log("VRRP_Script(check_nginx) succeeded", timeout=WAIT_S, since=mark1)
    one.wait_for_log("(VI_WEB) Changing effective priority from 120 to 150", since=mark1)
    one.wait_for_log(entering("MASTER", "VI_WEB"), timeout=WAIT_S, since=mark1)
    two.wait_for_log(entering("BACKUP", "VI_WEB"), timeout=WAIT_S, since=mark2)
    moved_to(r1, r2, vip)


# ------------------------------------------------------------------------ track_interface

FAST = Instance(version=3, advert_int=0.1, vips=(f"{VIP}/24",))


def with_tracking(
    config: DaemonConfig, extra: tuple[str, ...], blocks: tuple[str, ...] = ()
) -> DaemonConfig:
    inst = config.instances[0]
    return replace(config, instances=(replace(inst, extra=inst.extra + extra),), blocks=blocks)


def add_link(node: Node, ifname: str) -> None:
    """A veth pair with both ends in the router's namespace (no dummy module here): the
    tracked end is up and running while both ends are up."""
    node.run(["ip", "link", "add", ifname, "type", "veth", "peer", "name", f"{ifname}p"])
    node.run(["ip", "link", "set", f"{ifname}p", "up"])
    node.run(["ip", "link", "set", ifname, "up"])


@pytest.mark.timeout(180)
def test_track_interface_down_faults_the_master_and_weights_move_the_vip(
    lab: Lab, start: StartDaemon
) -> None:
    r1, r2 = lab.routers
    for ifname in ("trk0", "trk1"):
        add_link(r1, ifname)
    c1, c2 = pair_configs(r1, r2, FAST)
    c1 = with_tracking(c1, ("track_interface {", "    trk0", "    trk1 weight -60", "}"))
    one, two = elect(start, (PykadFixture, r1, c1), (PykadFixture, r2, c2))
    r1.wait_address(VIP, timeout=WAIT_S)

    def step(cmd: list[str], r1_state: str, r2_state: str, *logs: str) -> None:
        m1, m2 = one.mark(), two.mark()
        r1.run(cmd)
        for line in logs:
            one.wait_for_log(line, timeout=WAIT_S, since=m1)
        one.wait_for_log(entering(r1_state), timeout=WAIT_S, since=m1)
        two.wait_for_log(entering(r2_state), timeout=WAIT_S, since=m2)

    # weight 0: link down is FAULT (the master resigns), link up recovers and preempts back
    step(["ip", "link", "set", "trk0", "down"], "FAULT", "MASTER")
    moved_to(r2, r1)
    step(["ip", "link", "set", "trk0", "up"], "MASTER", "BACKUP")
    moved_to(r1, r2)
    # the interface disappears and comes back (a new ifindex)
    step(["ip", "link", "del", "trk0"], "FAULT", "MASTER")
    moved_to(r2, r1)
    r1.run(["ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk0p"])
    r1.run(["ip", "link", "set", "trk0p", "up"])
    step(["ip", "link", "set", "trk0", "up"], "MASTER", "BACKUP")
    moved_to(r1, r2)
    # weight -60: down is 150 - 60 = 90 < 100, a priority change, not a fault
    step(
        ["ip", "link", "set", "trk1", "down"],
        "BACKUP",
        "MASTER",
        "(VI_1) Changing effective priority from 150 to 90",
    )
    moved_to(r2, r1)
    step(
        ["ip", "link", "set", "trk1", "up"],
        "MASTER",
        "BACKUP",
        "(VI_1) Changing effective priority from 90 to 150",
    )
    moved_to(r1, r2)
    assert one.count(entering("FAULT")) == 2  # the two weight-0 events, not the weighted one


# ------------------------------------------------------------------------ track_file, process


def sleeper(tmp_path: Path) -> Path:
    """A copy of sleep with a name no other process on the host has (comm is 15 chars)."""
    binary = tmp_path / ("pkt" + secrets.token_hex(5))
    shutil.copy("/bin/sleep", binary)
    return binary


@pytest.mark.timeout(180)
def test_track_file_and_track_process_move_the_vip(
    lab: Lab, start: StartDaemon, tmp_path: Path
) -> None:
    r1, r2 = lab.routers
    weight_file = tmp_path / "weight"
    weight_file.write_text("0\n")
    binary = sleeper(tmp_path)
    service = r1.spawn([str(binary), "600"])
    c1, c2 = pair_configs(r1, r2, FAST)
    c1 = with_tracking(
        c1,
        ("track_file {", "    tf", "}", "track_process {", "    svc", "}"),
        (
            f"track_file tf {{\n    file {weight_file}\n    weight 1\n}}\n",
            f"vrrp_track_process svc {{\n    process {binary.name}\n    weight -60\n}}\n",
        ),
    )
    one, two = elect(start, (PykadFixture, r1, c1), (PykadFixture, r2, c2))
    r1.wait_address(VIP, timeout=WAIT_S)

    def change(action: object, r1_state: str, r2_state: str, *logs: str) -> None:
        m1, m2 = one.mark(), two.mark()
        assert callable(action)
        action()
        for line in logs:
            one.wait_for_log(line, timeout=WAIT_S, since=m1)
        one.wait_for_log(entering(r1_state), timeout=WAIT_S, since=m1)
        two.wait_for_log(entering(r2_state), timeout=WAIT_S, since=m2)

    def write(value: str) -> None:
        tmp = weight_file.with_suffix(".new")
        tmp.write_text(value)
        tmp.rename(weight_file)  # the usual atomic replace: a rename into the directory

    # file value x weight: -60 -> 90 < 100
    change(lambda: write("-60\n"), "BACKUP", "MASTER", "priority from 150 to 90")
    moved_to(r2, r1)
    change(lambda: weight_file.write_text("0\n"), "MASTER", "BACKUP", "from 90 to 150")
    moved_to(r1, r2)
    # -254 or below means FAULT (spec §4.3)
    change(lambda: write("-254"), "FAULT", "MASTER")
    moved_to(r2, r1)
    change(lambda: weight_file.unlink(), "MASTER", "BACKUP")  # a missing file reads 0
    moved_to(r1, r2)

    # the tracked process dies: quorum lost, weight -60
    def kill_service() -> None:
        lab.stop(service, signal.SIGKILL)

    change(
        kill_service,
        "BACKUP",
        "MASTER",
        "Quorum lost for tracked process svc",
        "priority from 150 to 90",
    )
    moved_to(r2, r1)
    change(
        lambda: r1.spawn([str(binary), "600"]),
        "MASTER",
        "BACKUP",
        "Quorum gained for tracked process svc",
    )
    moved_to(r1, r2)


# ------------------------------------------------------------------------ a hanging script


def stats_received(daemon: DaemonFixture, path: Path) -> int:
    """The peer's view: SIGUSR2 -> stats dump -> "Advertisements: Received: N" (spec §7.2)."""
    mark = daemon.mark()
    if path.exists():
        path.unlink()
    os.kill(daemon.pid, signal.SIGUSR2)
    daemon.wait_for_log("Printing VRRP stats", since=mark, timeout=WAIT_S)
    text = path.read_text()
    match = re.search(r"Advertisements:\s*\n\s*Received: (\d+)", text)
    assert match is not None, text
    return int(match.group(1))


@pytest.mark.timeout(180)
def test_hanging_script_never_delays_adverts(lab: Lab, start: StartDaemon, tmp_path: Path) -> None:
    """A vrrp_script that hangs is killed at its timeout (a failure, logged "timed_out"),
    the next tick is skipped while it runs, and meanwhile the master's adverts keep coming:
    with 0.25 s adverts the backup would take over after ~0.8 s of silence, and each hang
    lasts 2 s."""
    r1, r2 = lab.routers
    pids = tmp_path / "pids"
    hang = secure_script(tmp_path, "hang.sh", f"echo $$ >> {pids}\nexec sleep 600\n")
    stats = tmp_path / "r2.stats"
    c1, c2 = pair_configs(r1, r2, replace(FAST, advert_int=0.25))
    c1 = with_tracking(
        c1,
        ("track_script {", "    hang", "}"),
        (
            f'vrrp_script hang {{\n    script "{hang}"\n    interval 1\n    timeout 2\n'
            "    weight -10\n}\n",
        ),
    )
    c2 = replace(c2, global_extra=(*c2.global_extra, f"stats_dump_file {stats}"))
    one, two = elect(start, (PykadFixture, r1, c1), (PykadFixture, r2, c2))
    mark1, mark2 = one.mark(), two.mark()
    elected = mark1

    # one dump after each timeout: consecutive dumps are a whole hang (2 s) apart
    received: list[int] = []
    for _ in range(3):
        one.wait_for_log("VRRP_Script(hang) timed_out", timeout=WAIT_S, since=mark1)
        mark1 = one.mark()
        received.append(stats_received(two, stats))
    assert one.found("Track script hang is already running, expect idle - skipping run")
    # the failure lowers the priority (150 - 10 = 140 > 100): no takeover, no flap
    assert one.found("(VI_1) Changing effective priority from 150 to 140")
    assert not two.found(entering("MASTER"), since=mark2)
    assert not one.found(entering("BACKUP"), since=elected)
    # the peer kept receiving adverts across every hang
    assert all(a < b for a, b in itertools.pairwise(received)), received
    # every hung run was killed (its process group got SIGTERM)
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) >= 3
    for pid in started[:-1]:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid), pid


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
