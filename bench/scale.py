"""Benchmark: CPU and peak RSS with many instances, and the jitter of the advert intervals.

Lab: routers r1 and r2 on one bridge, both running the same daemon (pykad, or keepalived
2.2.7) with the same N VRRPv3 instances on eth0 (VRIDs 1..N, one /32 VIP each): r1 at
priority 150 is master of all of them (it sends N adverts per interval), r2 at 100 is backup
of all of them (it receives and validates them). Once every instance has settled, a fixed
window measures, for each daemon, every process of it (keepalived forks a VRRP child):

* CPU: utime + stime from /proc/PID/stat over the window, per second of wall time (1.0 is a
  whole core);
* peak RSS: VmHWM from /proc/PID/status at the end, summed over the processes;
* jitter: tcpdump on the bridge (pcap timestamps) records every advert of the window; for
  each VRID, the interval between consecutive adverts minus advert_int; p50/p99/max of its
  absolute value over all VRIDs; ``late`` counts intervals over 1.5 x advert_int;
* flaps: state changes on either router during the window (there should be none).

Usage: .venv/bin/python bench/scale.py [--window S] [--cases 1x1 50x1 255x1 1x0.05 255x0.05]
       [--daemons pykad keepalived] [--profile S]
``--profile S`` also samples the pykad master and backup of the 255-instance cases with py-spy
for S seconds after the window (not during it: a sampler costs the sampled process) and keeps
the top functions.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import itertools
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

from benchlib import DAEMONS, Recorder, cpu_seconds, daemon_pids, vm_hwm_kib

from pykad.testing.keepalived import (
    DaemonConfig,
    DaemonFixture,
    Instance,
    LogTimeout,
    entering,
)
from pykad.testing.netns import BRIDGE, Lab, LabError, Node, sweep_orphans

CASES: Final[dict[str, tuple[int, float]]] = {
    "1x1": (1, 1.0),
    "50x1": (50, 1.0),
    "255x1": (255, 1.0),
    "1x0.05": (1, 0.05),
    "255x0.05": (255, 0.05),
}
SETTLE_S: Final = 2.0  # after the last instance settled, before the window opens
VRRP_PROTO: Final = 112
PROFILE_MIN_INSTANCES: Final = 255  # --profile samples the 255-instance cases only


def vip(i: int) -> str:
    """A documentation address per instance (RFC 5737): 198.51.100.1-254, then 203.0.113.x."""
    return f"198.51.100.{i}/32" if i < 255 else f"203.0.113.{i - 254}/32"


def configs(n: int, advert_int: float) -> tuple[DaemonConfig, DaemonConfig]:
    def one(priority: int) -> tuple[Instance, ...]:
        return tuple(
            Instance(
                name=f"VI_{i}",
                vrid=i,
                priority=priority,
                version=3,
                advert_int=advert_int,
                vips=(vip(i),),
            )
            for i in range(1, n + 1)
        )

    return (
        DaemonConfig(router_id="r1", instances=one(150)),
        DaemonConfig(router_id="r2", instances=one(100)),
    )


def wait_all(daemon: DaemonFixture, state: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for i in range(1, n + 1):
        daemon.wait_for_log(
            entering(state, f"VI_{i}"), timeout=max(1.0, deadline - time.monotonic())
        )


# -- the capture ---------------------------------------------------------------------------


def start_capture(lab: Lab, path: Path, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """tcpdump on the bridge itself (it gets every flooded multicast frame), VRRP only.
    Its messages go to a file next to the capture (a pipe nobody reads could fill up).
    Stop it with :func:`stop_capture`."""
    log = path.with_suffix(".log")
    with log.open("wb") as err:
        proc = lab.spawn(
            lab.bridge_ns,
            [
                *("tcpdump", "-i", BRIDGE, "-n", "-s", "96", "-U"),
                "--time-stamp-precision=micro",
                *("-w", str(path)),
                f"ip proto {VRRP_PROTO}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + timeout
    while b"listening on" not in log.read_bytes():  # tcpdump's "listening on br0, ..."
        if proc.poll() is not None or time.monotonic() > deadline:
            lab.stop(proc)
            raise LabError(f"tcpdump did not start: {log.read_text(errors='replace').strip()}")
        threading.Event().wait(0.05)
    return proc


def stop_capture(lab: Lab, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """SIGTERM and wait for the exit, patiently: closing tcpdump's packet socket waits for an
    RCU grace period in the kernel (uninterruptible, SIGKILL does not shorten it), which took
    over 15 s here under keepalived at 255 x 0.05. The pcap is complete before that (``-U``
    writes every packet as it comes). The lab must not close while tcpdump still runs."""
    lab.stop(proc, timeout=timeout)
    if proc.poll() is None:
        proc.wait(timeout=timeout)


def read_pcap(path: Path) -> list[tuple[float, str, int]]:
    """(timestamp, IPv4 source, VRID) of each VRRP packet in a pcap (Ethernet link type)."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = struct.unpack_from(endian + "I", data)[0] == 0xA1B23C4D
    out: list[tuple[float, str, int]] = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", data, off)
        pkt = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 14 + 20 + 2 or pkt[12:14] != b"\x08\x00":
            continue
        ihl = (pkt[14] & 0x0F) * 4
        if pkt[14 + 9] != VRRP_PROTO or len(pkt) < 14 + ihl + 2:
            continue
        src = str(ipaddress.IPv4Address(pkt[14 + 12 : 14 + 16]))
        out.append((sec + frac / (1e9 if nano else 1e6), src, pkt[14 + ihl + 1]))
    return out


def percentile(sorted_xs: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_xs)))
    return sorted_xs[rank - 1]


def jitter(packets: list[tuple[float, str, int]], source: str, advert_int: float) -> dict[str, Any]:
    by_vrid: dict[int, list[float]] = collections.defaultdict(list)
    for t, src, vrid in packets:
        if src == source:
            by_vrid[vrid].append(t)
    intervals = [b - a for ts in by_vrid.values() for a, b in itertools.pairwise(ts)]
    if not intervals:
        return {"adverts": 0}
    dev = sorted(abs(x - advert_int) for x in intervals)
    return {
        "adverts": sum(len(ts) for ts in by_vrid.values()),
        "vrids": len(by_vrid),
        "intervals": len(intervals),
        "mean_interval_s": round(sum(intervals) / len(intervals), 6),
        "p50_ms": round(percentile(dev, 50) * 1000, 3),
        "p99_ms": round(percentile(dev, 99) * 1000, 3),
        "max_ms": round(dev[-1] * 1000, 3),
        "late": sum(x > 1.5 * advert_int for x in intervals),
    }


# -- profiles ------------------------------------------------------------------------------


def profile(pids: dict[str, int], seconds: float, tmp: Path) -> dict[str, Any]:
    """py-spy samples of each process (all at once): the functions with the most samples
    on top of the stack (self) and anywhere on it (inclusive), as shares of the samples."""
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if pyspy is None:
        return {
            role: {"error": "py-spy is not installed (pip install -e '.[bench]')"} for role in pids
        }
    procs = {
        role: subprocess.Popen(
            [
                *(pyspy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"),
                *("--nonblocking", "-f", "raw", "-o", str(tmp / f"{role}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role, pid in pids.items()
    }
    return {role: _summarise(proc, tmp / f"{role}.txt") for role, proc in procs.items()}


def _summarise(proc: subprocess.Popen[str], out: Path) -> dict[str, Any]:
    _, err = proc.communicate()
    if proc.returncode != 0 or not out.exists():
        return {"error": err.strip()[-500:]}
    self_n: collections.Counter[str] = collections.Counter()
    incl_n: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";") if f]
        total += n
        if frames:
            self_n[frames[-1]] += n
        for f in set(frames):
            incl_n[f] += n
    if total == 0:
        return {"error": "no samples"}

    def top(c: collections.Counter[str]) -> list[list[Any]]:
        return [[f, round(k / total, 4)] for f, k in c.most_common(60)]

    return {"samples": total, "self": top(self_n), "inclusive": top(incl_n)}


def _frame(raw: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (pykad/x/file.py)``, without the line."""
    func, _, where = raw.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{func} ({where})" if where else func


# -- one case ------------------------------------------------------------------------------


def run_case(
    kind: str, n: int, advert_int: float, window: float, profile_s: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"errors": []}
    c1, c2 = configs(n, advert_int)
    fixture = DAEMONS[kind]
    startup_timeout = 60 + 4 * advert_int
    with (
        tempfile.TemporaryDirectory(prefix="pykad-bench-scale-") as tmpdir,
        Lab(2, client=False) as lab,
    ):
        tmp = Path(tmpdir)
        r1, r2 = lab.routers
        d2: DaemonFixture | None = None
        try:
            d1 = _start(fixture, r1, c1, tmp)
            wait_all(d1, "MASTER", n, startup_timeout)
            d2 = _start(fixture, r2, c2, tmp)
            wait_all(d2, "BACKUP", n, startup_timeout)
        except LogTimeout as exc:
            # A daemon that cannot settle is a result too: measure it anyway (flaps tell)
            out["errors"].append(f"not settled: {str(exc).splitlines()[0]}")
            print(f"  {kind}: not settled: {str(exc).splitlines()[0]}", file=sys.stderr)
        except (AssertionError, LabError, OSError) as exc:
            out["errors"].append(f"{type(exc).__name__}: {exc}"[:2000])
            return out
        try:
            if d2 is None:
                raise LabError("the master never settled: no backup was started")
            threading.Event().wait(SETTLE_S)
            marks = (d1.mark(), d2.mark())
            pcap = tmp / "window.pcap"
            capture = start_capture(lab, pcap)
            pids = (daemon_pids(d1), daemon_pids(d2))
            cpu0 = (cpu_seconds(pids[0]), cpu_seconds(pids[1]))
            t0 = time.monotonic()
            threading.Event().wait(window)
            cpu1 = (cpu_seconds(pids[0]), cpu_seconds(pids[1]))
            t1 = time.monotonic()
            stop_capture(lab, capture)
            for role, i in (("master", 0), ("backup", 1)):
                used = sum(cpu1[i][p] - cpu0[i][p] for p in cpu1[i] if p in cpu0[i])
                out[role] = {
                    "processes": len(pids[i]),
                    "cpu": round(used / (t1 - t0), 4),
                    "rss_kib": vm_hwm_kib(pids[i]),
                }
            out["flaps"] = d1.count("Entering", marks[0]) + d2.count("Entering", marks[1])
            out["jitter"] = jitter(read_pcap(pcap), str(r1.ip4), advert_int)
            if profile_s > 0 and kind == "pykad" and n >= PROFILE_MIN_INSTANCES:
                out["profile"] = profile({"master": d1.pid, "backup": d2.pid}, profile_s, tmp)
        except (AssertionError, LabError, LogTimeout, OSError, subprocess.SubprocessError) as exc:
            out["errors"].append(f"{type(exc).__name__}: {exc}"[:2000])
            print(f"  {kind}: failed: {exc}", file=sys.stderr, flush=True)
    return out


def _start(
    fixture: type[DaemonFixture], node: Node, config: DaemonConfig, tmp: Path
) -> DaemonFixture:
    return fixture(node, config, workdir=tmp / node.name).start()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=10.0, help="measuring window, seconds")
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--daemons", nargs="+", choices=list(DAEMONS), default=list(DAEMONS))
    ap.add_argument("--profile", type=float, default=0.0, metavar="S")
    args = ap.parse_args()
    sweep_orphans()
    rec = Recorder("scale")
    rec.data.update(window_s=args.window, cases={})
    for case in args.cases:
        n, advert_int = CASES[case]
        entry: dict[str, Any] = {"instances": n, "advert_int": advert_int}
        for kind in args.daemons:
            print(f"scale {case} {kind}", flush=True)
            res = entry[kind] = run_case(kind, n, advert_int, args.window, args.profile)
            if "master" in res:
                j = res["jitter"]
                print(
                    f"  cpu master {res['master']['cpu']:.3f} backup {res['backup']['cpu']:.3f}"
                    f", rss {res['master']['rss_kib']} / {res['backup']['rss_kib']} KiB"
                    f", jitter p50/p99/max {j.get('p50_ms')}/{j.get('p99_ms')}/"
                    f"{j.get('max_ms')} ms, late {j.get('late')}, flaps {res['flaps']}",
                    flush=True,
                )
        rec.data["cases"][case] = entry
        rec.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
