"""Benchmark: the client's outage on a master crash, a graceful handover and a preemption.

Lab (pykad.testing.netns.Lab): routers r1 (priority 150) and r2 (priority 100) running the
same daemon (pykad, or keepalived 2.2.7), one instance with the VIP 192.0.2.254/24, and a
client probing the VIP over UDP every 5 ms (pykad.testing.prober; a responder on each router
answers with its name). The outage of an event is the longest gap between two answered
probes around it (``Prober.outage``). One run is four events, in this order:

1. crash: r1's bridge port goes down and its daemon is SIGKILLed at the same instant (the
   recipe's crash model); r2 takes over after its master-down timer. Bound (RFC 5798 6.4.2,
   spec §5.1): 3 x advert_int + skew, skew = (256 - 100) / 256 x advert_int (v3) or
   (256 - 100) / 256 s (v2). The crash comes right after the client's namespace has seen
   one of r1's adverts (:class:`AdvertWatch`): r2's timer then always starts about when the
   outage does, the bound's worst case, for both daemons alike. (At a random moment the
   outage would be the bound minus a random part of an interval: at advert_int 0.1 the
   median of five such crashes moves by tens of ms from run to run, more than the 5%
   compared.)
2. preemption: r1 "reboots" (its stale VIP removed, link up, daemon started); it becomes
   master over r2 (preempt is the default). No timer bounds this gap: ideally 0.
3. graceful: r1's daemon gets SIGTERM; it sends priority 0 and r2 takes over after its skew
   time (RFC 5798 6.4.2). Bound: skew.
4. preemption again (as 2).

Usage: .venv/bin/python bench/failover.py [--runs N] [--cases v2-1 v3-0.1 v3-0.02]
       [--daemons pykad keepalived] [--timeline]
``--timeline`` also captures each crash and graceful handover on the bridge (tcpdump) and
reports where the time goes, in ms after r1's last advert (crash: the master-down timer runs
from it) or after its priority-0 advert (graceful: the skew timer runs from it): r2's first
advert (the timer expired), r2's first gratuitous ARP for the VIP, r2's first answer to the
client. The timer's own precision is r2's first advert against the bound.
Needs root; every namespace and process is removed when it ends (the Lab closes).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import re
import select
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

from benchlib import DAEMONS, Recorder, median

from pykad.adapters.rawsock import open_socket, sock_ifindex
from pykad.testing.keepalived import (
    DaemonConfig,
    DaemonFixture,
    Instance,
    LogTimeout,
    entering,
    pair_configs,
)
from pykad.testing.netns import BRIDGE, Lab, LabError, Node, sweep_orphans
from pykad.testing.prober import Prober, start_responders

VIP: Final = "192.0.2.254/24"
BACKUP_PRIORITY: Final = 100  # r2, the one whose timers decide the takeover
CASES: Final[dict[str, tuple[int, float]]] = {
    "v2-1": (2, 1.0),
    "v3-0.1": (3, 0.1),
    "v3-0.02": (3, 0.02),
}
SETTLE_S: Final = 0.2  # steady traffic before each event
PROBE_TIMEOUT_S: Final = 0.2  # an answer later than this is a lost probe (RTT here < 1 ms)
TRACE_MARGIN_S: Final = 0.25  # probes kept around the first crash for the figure


def skew(version: int, advert_int: float, priority: int = BACKUP_PRIORITY) -> float:
    """RFC 3768 6.1 / RFC 5798 6.1: Skew_Time (v2 in seconds, v3 scaled by the interval)."""
    return (256 - priority) / 256 * (advert_int if version == 3 else 1.0)


def bounds(version: int, advert_int: float) -> dict[str, float]:
    s = skew(version, advert_int)
    return {"crash": 3 * advert_int + s, "graceful": s, "preempt": 0.0}


class Pair:
    """The two daemons of one case; r1 is restarted across events, r2 runs throughout."""

    def __init__(self, lab: Lab, kind: str, template: Instance, tmp: Path) -> None:
        self.lab = lab
        self.fixture = DAEMONS[kind]
        self.tmp = tmp
        self.r1, self.r2 = lab.routers
        self.c1, self.c2 = pair_configs(self.r1, self.r2, template)
        self.d1 = self.start(self.r1, self.c1)
        self.d1.wait_for_log(entering("MASTER"), timeout=30)
        self.r1.wait_address(ipaddress.ip_interface(VIP).ip, timeout=10)
        self.d2 = self.start(self.r2, self.c2)
        self.d2.wait_for_log(entering("BACKUP"), timeout=30)

    def start(self, node: Node, config: DaemonConfig) -> DaemonFixture:
        workdir = self.tmp / f"{node.name}-{time.monotonic_ns()}"
        return self.fixture(node, config, workdir=workdir).start()


def _event_outage(prober: Prober, t: float, answered_by: str) -> tuple[float, set[str]]:
    """Wait until ``answered_by`` answers a probe sent after ``t`` and 0.2 s more of traffic
    is in; return the outage around ``t`` and who answered after the first such answer."""
    ans = prober.wait_for_answer(answered_by, after=t, timeout=30)
    prober.wait_until(ans.t + 0.2)
    return prober.outage(t), prober.answers_after(ans.t)


def _settle(prober: Prober) -> None:
    prober.wait_until(time.monotonic() + SETTLE_S)


class AdvertWatch:
    """A raw VRRP socket in the client's namespace, joined to 224.0.0.18: :meth:`wait_from`
    returns when an advert of the given router arrives (the crash is timed on it)."""

    def __init__(self, node: Node) -> None:
        self.sock = open_socket(socket.AF_INET, socket.SOCK_RAW, 112, node.ns)
        index = sock_ifindex(self.sock, node.ifname)
        group = ipaddress.IPv4Address("224.0.0.18").packed
        mreqn = struct.pack("=4s4si", group, bytes(4), index)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        self.sock.setblocking(False)

    def wait_from(self, src: ipaddress.IPv4Address, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:  # what is queued is old: only an advert read while waiting counts
            try:
                self.sock.recv(2048)
            except BlockingIOError:
                break
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                break
            data = self.sock.recv(2048)
            if data[12:16] == src.packed:
                return
        raise LabError(f"no advert from {src} within {timeout} s")

    def close(self) -> None:
        self.sock.close()


class Timeline:
    """tcpdump on the bridge around one handover (``--timeline``): text lines with
    link-layer addresses and absolute timestamps, read back by :meth:`marks`."""

    def __init__(self, lab: Lab, path: Path) -> None:
        self.lab, self.path = lab, path
        self.macs = {r.mac(): r.name for r in lab.routers}
        log = path.with_suffix(".log")
        with path.open("wb") as out, log.open("wb") as err:
            self.proc = lab.spawn(
                lab.bridge_ns,
                [
                    *("tcpdump", "-i", BRIDGE, "-n", "-e", "-tt", "-l", "-U"),
                    *("--time-stamp-precision=micro", "vrrp or arp or udp"),
                ],
                stdout=out,
                stderr=err,
            )
        deadline = time.monotonic() + 10.0
        while b"listening on" not in log.read_bytes():  # tcpdump's "listening on br0, ..."
            if self.proc.poll() is not None or time.monotonic() > deadline:
                lab.stop(self.proc)
                raise LabError(f"tcpdump did not start: {log.read_text(errors='replace')}")
            threading.Event().wait(0.05)

    def marks(self, vip: str, event: str) -> dict[str, float]:
        """ms after r1's priority-0 advert (``event`` "graceful") or its last advert before
        r2's first one ("crash") of: r2's first advert, r2's first ARP naming the VIP, r2's
        first UDP answer; empty when that advert of r1 was not captured. "preempt": the new
        master is r1: ms after its first advert of its first ARP naming the VIP, r2's last
        UDP answer and r1's first one."""
        self.lab.stop(self.proc, timeout=60.0)
        if event == "preempt":
            return self._preempt_marks(vip)
        first: dict[str, float] = {}
        last_r1: float | None = None
        for line in self.path.read_text(errors="replace").splitlines():
            fields = line.split(maxsplit=2)
            if len(fields) < 3 or not fields[0][:1].isdigit():
                continue
            t, who = float(fields[0]), self.macs.get(fields[1])
            if "VRRP" in line:
                prio = re.search(r"prio (\d+)", line)
                if who == "r1" and prio is not None:
                    if prio.group(1) == "0":
                        first.setdefault("prio0", t)
                    elif "advert" not in first:
                        last_r1 = t
                elif who == "r2":
                    first.setdefault("advert", t)
            elif "ARP" in line and who == "r2" and vip in line:
                first.setdefault("garp", t)
            elif "UDP" in line and who == "r2":
                first.setdefault("answer", t)
        t0 = first.pop("prio0", None) if event == "graceful" else last_r1
        if t0 is None:
            return {}
        return {k: round((t - t0) * 1000, 2) for k, t in first.items() if t >= t0}

    def _preempt_marks(self, vip: str) -> dict[str, float]:
        t0: float | None = None
        seen: dict[str, float] = {}
        for line in self.path.read_text(errors="replace").splitlines():
            fields = line.split(maxsplit=2)
            if len(fields) < 3 or not fields[0][:1].isdigit():
                continue
            t, who = float(fields[0]), self.macs.get(fields[1])
            if who == "r1" and "VRRP" in line and t0 is None:
                t0 = t
            elif who == "r1" and "ARP" in line and vip in line and t0 is not None:
                seen.setdefault("garp", t)
            elif "UDP" in line and who == "r2" and "r1_answer" not in seen:
                seen["r2_last_answer"] = t
            elif "UDP" in line and who == "r1":
                seen.setdefault("r1_answer", t)
        if t0 is None:
            return {}
        return {k: round((t - t0) * 1000, 2) for k, t in seen.items()}


def run_case(
    kind: str, version: int, advert_int: float, runs: int, timeline: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {"crash": [], "graceful": [], "preempt": [], "errors": [], "split": 0}
    if timeline:
        out["timeline"] = {"crash": [], "graceful": [], "preempt": []}
    template = Instance(version=version, advert_int=advert_int, vips=(VIP,))
    vip = str(ipaddress.ip_interface(VIP).ip)
    master, backup = entering("MASTER"), entering("BACKUP")
    with tempfile.TemporaryDirectory(prefix="pykad-bench-failover-") as tmpdir, Lab(2) as lab:
        try:
            start_responders(lab)
            pair = Pair(lab, kind, template, Path(tmpdir))
            with (
                contextlib.closing(AdvertWatch(lab.client)) as watch,
                Prober(lab.client, vip, timeout=PROBE_TIMEOUT_S) as prober,
            ):
                prober.wait_for_answer("r1", timeout=10)

                def record(event: str, t: float, by: str) -> None:
                    gap, who = _event_outage(prober, t, by)
                    out[event].append(round(gap, 6))
                    out["split"] += who != {by}

                def preempt(i: int) -> None:
                    _settle(prober)
                    tl = capture("preempt", i)
                    mark, t = pair.d2.mark(), time.monotonic()
                    pair.d1 = pair.start(pair.r1, pair.c1)
                    pair.d1.wait_for_log(master, timeout=30)
                    pair.d2.wait_for_log(backup, timeout=30, since=mark)
                    record("preempt", t, "r1")
                    marks("preempt", tl)

                def capture(event: str, i: int) -> Timeline | None:
                    if not timeline:
                        return None
                    tl = Timeline(lab, Path(tmpdir) / f"{event}-{i}.txt")
                    # r1's last advert before the event must be in the capture
                    prober.wait_until(time.monotonic() + advert_int + SETTLE_S)
                    return tl

                def marks(event: str, tl: Timeline | None) -> None:
                    if tl is not None:
                        out["timeline"][event].append(tl.marks(vip, event))
                        print(f"    {event}, ms after r1's advert: {out['timeline'][event][-1]}")

                for i in range(runs):
                    _settle(prober)
                    tl = capture("crash", i)
                    watch.wait_from(pair.r1.ip4)
                    mark, t = pair.d2.mark(), time.monotonic()
                    lab.cut(pair.r1)
                    pair.d1.kill()
                    pair.d2.wait_for_log(master, timeout=30, since=mark)
                    record("crash", t, "r2")
                    marks("crash", tl)
                    if i == 0:
                        out["trace"] = [
                            [round(s.t - t, 4), s.responder]
                            for s in prober.samples()
                            if t - TRACE_MARGIN_S <= s.t <= t + out["crash"][0] + TRACE_MARGIN_S
                        ]
                    pair.d1.close()
                    # the crashed host comes back as after a reboot: no stale VIP
                    pair.r1.run(["ip", "addr", "del", VIP, "dev", pair.r1.ifname], check=False)
                    lab.restore(pair.r1)
                    preempt(i)

                    _settle(prober)
                    tl = capture("graceful", i)
                    mark, t = pair.d2.mark(), time.monotonic()
                    pair.d1.stop()
                    pair.d2.wait_for_log(master, timeout=30, since=mark)
                    record("graceful", t, "r2")
                    marks("graceful", tl)
                    pair.d1.close()
                    preempt(i)
                    print(f"  {kind} run {i + 1}/{runs}: " + summary(out), flush=True)
        except (AssertionError, LabError, LogTimeout, OSError) as exc:
            out["errors"].append(f"{type(exc).__name__}: {exc}"[:2000])
            print(f"  {kind}: failed: {exc}", file=sys.stderr, flush=True)
    return out


def summary(out: dict[str, Any]) -> str:
    parts = []
    for event in ("crash", "preempt", "graceful"):
        m = median(out[event])
        parts.append(f"{event} {m * 1000:.1f} ms" if m is not None else f"{event} -")
    return ", ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--daemons", nargs="+", choices=list(DAEMONS), default=list(DAEMONS))
    ap.add_argument("--timeline", action="store_true", help="capture each handover (tcpdump)")
    args = ap.parse_args()
    sweep_orphans()
    rec = Recorder("failover")
    rec.data.update(runs=args.runs, vip=VIP, probe_interval_s=0.005, cases={})
    for case in args.cases:
        version, advert_int = CASES[case]
        entry: dict[str, Any] = {
            "version": version,
            "advert_int": advert_int,
            "bound": bounds(version, advert_int),
        }
        for kind in args.daemons:
            print(f"failover {case} {kind}", flush=True)
            entry[kind] = run_case(kind, version, advert_int, args.runs, args.timeline)
        rec.data["cases"][case] = entry
        rec.save()  # after each case: an interrupted run keeps what it measured
    return 0


if __name__ == "__main__":
    sys.exit(main())
