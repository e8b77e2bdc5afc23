"""The checker half in its own process (issue 8, spec §7.1-§7.4): a pykad with virtual servers
and neither -P nor -C runs VRRP itself and supervises a checker child.

This kernel has no IPVS: the child logs the missing ip_vs module and runs on (its checkers
are disabled); the process contract (pid files, signals, respawn, -R, stop, parent death) is
what these tests check, with a second pykad as the VRRP peer that must stay BACKUP throughout.
The IPVS path of the same daemon is exercised by the vm layer (tests/vm).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pykad.testing.keepalived import PykadFixture, StartDaemon, entering, pykad_argv0
from pykad.testing.netns import Lab

pytestmark = pytest.mark.netns

VRRP = """\
vrrp_instance VI_1 {{
  state {state}
  interface eth0
  virtual_router_id 71
  priority {priority}
  advert_int 1
  virtual_ipaddress {{
    192.0.2.71/24
  }}
}}
"""
VS = """\
virtual_server 192.0.2.71 80 {
  delay_loop 2
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 192.0.2.2 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
"""
MASTER = VRRP.format(state="MASTER", priority=150)
BACKUP = VRRP.format(state="BACKUP", priority=100)
NO_IPVS = "ip_vs kernel module not available"


def wait_until(what: str, check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        threading.Event().wait(0.05)


def gone(pid: int) -> bool:
    """No such process, or a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def child_of(daemon: PykadFixture, *, other_than: int | None = None) -> int:
    """The live checker child named by the daemon's checkers pid file (a new one if
    ``other_than`` is given)."""
    path = daemon.pidfile("checkers")
    found: list[int] = []

    def live() -> bool:
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        if pid == other_than or gone(pid):
            return False
        found.append(pid)
        return True

    wait_until(f"a checker child in {path}", live)
    return found[-1]


def ppid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


@pytest.mark.timeout(120)
def test_checker_child_runs_reloads_respawns_and_stops_while_vrrp_elects(
    lab: Lab, start: StartDaemon
) -> None:
    r1, r2 = lab.routers
    one = start(PykadFixture, r1, MASTER + VS)  # type: ignore[arg-type]
    assert isinstance(one, PykadFixture)
    one.wait_for_log(entering("MASTER"), timeout=30)
    two = start(PykadFixture, r2, BACKUP)  # type: ignore[arg-type]
    two.wait_for_log(entering("BACKUP"), timeout=30)

    # the child: the checker half of the same program and config, started by the parent
    child = child_of(one)
    assert ppid(child) == one.pid
    argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    assert b"pykad" in argv
    assert b"-C" in argv
    assert str(one.conf_path).encode() in argv
    # what it runs is the configuration the parent validated (spec §7.1), in a private dir
    snapshot = Path(argv[argv.index(b"--config-snapshot") + 1].decode())
    assert snapshot.stat().st_mode & 0o777 == 0o600
    assert snapshot.parent.stat().st_mode & 0o777 == 0o700
    assert Path(f"/proc/{child}/comm").read_text().strip() == "pykad_checkers"
    assert one.pidfile("main").read_text() == f"{one.pid}\n"
    assert one.pidfile("vrrp").read_text() == f"{one.pid}\n"
    assert b"NOTIFY_SOCKET=" not in Path(f"/proc/{child}/environ").read_bytes()
    # it logs to the same stderr, named; IPVS is missing here and the child says so
    line = one.wait_for_log(NO_IPVS, timeout=30)
    assert f"pykad_checkers[{child}]: " in line
    assert one.found(f"Starting Healthcheck child process, pid={child}")

    # SIGHUP to the parent reaches the child, which reloads its half; so does `pykad reload`
    # (the control socket's reload); `pykad status` answers from the parent
    mark = one.reload()
    one.wait_for_log(f"pykad_checkers[{child}]: Reload complete", timeout=20, since=mark)
    mark = one.mark()
    ctl = ["--control-socket", str(one.control_socket)]
    done = subprocess.run([*pykad_argv0(), "reload", *ctl], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    one.wait_for_log(f"pykad_checkers[{child}]: Reload complete", timeout=20, since=mark)
    status = subprocess.run([*pykad_argv0(), "status", "--json", *ctl], capture_output=True)
    assert json.loads(status.stdout)["daemon"]["pid"] == one.pid

    # a killed child is restarted, even with the file broken on disk meanwhile (it runs the
    # parent's configuration, not the file); VRRP is not disturbed
    one.conf_path.write_text("vrrp_instance {\n")
    mark = one.mark()
    os.kill(child, signal.SIGKILL)
    one.wait_for_log(f"Healthcheck child process({child}) died: Respawning", since=mark)
    new = child_of(one, other_than=child)
    one.wait_for_log(f"Starting Healthcheck child process, pid={new}", since=mark)
    line = one.wait_for_log(NO_IPVS, since=mark)  # its LVS half runs
    assert f"pykad_checkers[{new}]: " in line
    assert ppid(new) == one.pid
    threading.Event().wait(3.5)  # three advert intervals: a backup would have taken over
    assert r1.has_address("192.0.2.71")
    assert not r2.has_address("192.0.2.71")
    assert two.count(entering("MASTER")) == 0
    assert one.count(entering("BACKUP"), since=mark) == 0

    # SIGTERM stops both; the parent waits for the child; nothing is left
    assert one.stop() == 0
    assert gone(new)
    assert one.found(f"pykad_checkers[{new}]: Stopped pykad")
    assert not one.found("permanent error")
    assert not snapshot.parent.exists()
    assert not any(one.pidfile(w).exists() for w in ("main", "vrrp", "checkers"))
    two.wait_for_log(entering("MASTER"), timeout=10)


@pytest.mark.timeout(120)
def test_reload_starts_and_stops_the_child_and_it_dies_with_the_parent(
    lab: Lab, start: StartDaemon
) -> None:
    r1 = lab.routers[0]
    one = start(PykadFixture, r1, MASTER)  # type: ignore[arg-type]
    assert isinstance(one, PykadFixture)
    one.wait_for_log(entering("MASTER"), timeout=30)
    assert not one.found("Healthcheck child")
    assert not one.pidfile("checkers").exists()

    # the first virtual server starts the child
    mark = one.reload(MASTER + VS)
    child = child_of(one)
    one.wait_for_log(f"pykad_checkers[{child}]: ", since=mark)
    one.wait_for_log(NO_IPVS, since=mark)

    # the last one leaving stops it (and it removes its pid file)
    mark = one.reload(MASTER)
    one.wait_for_log("No virtual server left - stopping the Healthcheck child process", since=mark)
    wait_until("the child gone", lambda: gone(child))
    wait_until("its pid file gone", lambda: not one.pidfile("checkers").exists())
    assert not one.found("died: Respawning", since=mark)

    # again, then the parent crashes: the child follows it (PR_SET_PDEATHSIG)
    one.reload(MASTER + VS)
    child = child_of(one, other_than=child)
    argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    snapshots = Path(argv[argv.index(b"--config-snapshot") + 1].decode()).parent
    one.kill()
    wait_until("the orphaned child gone", lambda: gone(child), timeout=15)
    # a SIGKILLed parent cannot remove its snapshot directory: the test does
    shutil.rmtree(snapshots)


@pytest.mark.timeout(120)
def test_dont_respawn_stops_the_daemon_when_the_child_dies(lab: Lab, tmp_path: Path) -> None:
    r1 = lab.routers[0]
    with PykadFixture(r1, MASTER + VS, workdir=tmp_path / "r1", extra_args=("-R",)) as one:
        one.wait_for_log(entering("MASTER"), timeout=30)
        child = child_of(one)
        r1.wait_address("192.0.2.71", timeout=10)
        os.kill(child, signal.SIGKILL)
        one.wait_for_log(f"Healthcheck child process({child}) died: Exiting", timeout=10)
        assert one.proc is not None
        assert one.proc.wait(timeout=20) == 1  # keepalived stops too; systemd may restart it
        assert not one.found("Respawning")
        assert not r1.has_address("192.0.2.71")  # a clean stop: the VIP released
