"""What the lab benchmarks share: the machine's description, JSON results, /proc accounting.

Every benchmark runs pykad and keepalived 2.2.7 on the same lab in the same run, through
:mod:`pykad.testing` (``netns.Lab``, ``keepalived.PykadFixture``/``KeepalivedFixture``,
``prober.Prober``). Results go to ``bench/results/<name>.json`` (git-ignored) with the machine
and the load average at the start and the end; ``bench/report.py`` turns them into the
tables of BENCHMARKS.md. Timings are time.monotonic() (CLOCK_MONOTONIC is shared by every
network namespace, so the prober's times and ours compare directly).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from pykad.testing.keepalived import DaemonFixture, KeepalivedFixture, PykadFixture

ROOT: Final = Path(__file__).resolve().parent.parent
RESULTS: Final = ROOT / "bench" / "results"
DAEMONS: Final[dict[str, type[DaemonFixture]]] = {
    "pykad": PykadFixture,
    "keepalived": KeepalivedFixture,
}
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
PYCACHE: Final = RESULTS / "pycache"


def with_bytecode_cache(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a Python child that reads and writes compiled bytecode, as an installed
    package does (pip and Debian compile at install time).

    The environment the suite may run in sets PYTHONDONTWRITEBYTECODE, which makes every
    pykad process compile its sources again (about 0.1 s of a start-up); the cache goes
    under bench/results/ (git-ignored), never into the source tree.
    """
    out = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return out


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    model = "unknown"
    m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    if m:
        model = m.group(1).strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git_commit() -> str:
    """The commit measured, with ``+dirty`` when the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            # the report's own outputs do not make the measured code dirty
            [
                *("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"),
                *("--", ".", ":!BENCHMARKS.md", ":!bench/failover.png"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


class Recorder:
    """One benchmark's result file: opened with the load at the start, saved with the end."""

    def __init__(self, name: str, argv: Sequence[str] | None = None) -> None:
        self.name = name
        self.data: dict[str, Any] = {
            "name": name,
            "command": " ".join(
                shlex.quote(a) for a in ["bench/" + Path(sys.argv[0]).name, *(argv or sys.argv[1:])]
            ),
            "machine": machine(),
            "commit": git_commit(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "load_start": loadavg(),
        }

    def save(self) -> Path:
        self.data["load_end"] = loadavg()
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1) + "\n")
        os.replace(tmp, path)
        print(f"{self.name}: results in {path.relative_to(ROOT)}", flush=True)
        return path


def load_result(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def median(xs: Iterable[float]) -> float | None:
    vals = list(xs)
    return statistics.median(vals) if vals else None


# -- /proc accounting: keepalived forks a VRRP child, so a daemon is a process tree ---------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses: the fields start after the last ')'
    return text.rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its living descendants (from /proc/*/stat's ppid field)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parent[int(entry.name)] = int(fields[1])
    tree = [root]
    frontier = [root]
    while frontier:
        kids = [p for p, pp in parent.items() if pp in frontier]
        tree += kids
        frontier = kids
    return [p for p in tree if p in parent]


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """utime + stime of each process, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    out: dict[int, float] = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def vm_hwm_kib(pids: Iterable[int]) -> int:
    """Peak resident set size (VmHWM) summed over ``pids``, in KiB."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        if m:
            total += int(m.group(1))
    return total


def daemon_pids(daemon: DaemonFixture) -> list[int]:
    """The daemon's processes. ``ip netns exec`` execs the daemon, so the fixture's PID is
    the daemon's own; keepalived's VRRP child is a descendant."""
    return process_tree(daemon.pid)


# -- sd_notify(3) receiver: what systemd would hear from a Type=notify service -------------


class NotifyListener:
    """A datagram socket for ``NOTIFY_SOCKET``; records (monotonic time, message) pairs."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="pykad-bench-notify-")
        self.path = str(Path(self._dir.name) / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, name="notify", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            now = time.monotonic()
            with self._cond:
                self.messages.append((now, data.decode("utf-8", "replace")))
                self._cond.notify_all()

    def wait_for(self, field: str, after: float, timeout: float) -> float | None:
        """Monotonic time of the first message at or after ``after`` that carries ``field``
        (``READY=1``) as one of its lines; None if none came within ``timeout``."""

        def hit() -> float | None:
            for t, msg in self.messages:
                if t >= after and field in msg.splitlines():
                    return t
            return None

        with self._cond:
            self._cond.wait_for(lambda: hit() is not None, timeout)
            return hit()

    def close(self) -> None:
        self.sock.close()
        self._dir.cleanup()
