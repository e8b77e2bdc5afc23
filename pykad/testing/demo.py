"""The newcomer's first command (``scripts/demo``): VRRP failover you can watch, in namespaces.

Builds a lab (two routers and a client on one bridge, :mod:`pykad.testing.netns`), starts
two pykad daemons from ``configs/vrrp-pair/node{1,2}.conf``, shows the VIP on the master and
the client's traffic to it (a UDP probe every 5 ms, :mod:`pykad.testing.prober`), crashes the
master (link cut + SIGKILL), shows the traffic moving to the backup with the measured outage,
brings the master back (it preempts), then stops everything and deletes the namespaces.

Ctrl-C at any point unwinds through the lab's context manager: every daemon is stopped by PID
and every namespace deleted before the exit status 130 is returned.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pykad.testing.keepalived import (
    DaemonConfig,
    DaemonFixture,
    Instance,
    KeepalivedFixture,
    PykadFixture,
)
from pykad.testing.netns import Lab, Node, list_namespaces, process_gone, sweep_orphans
from pykad.testing.prober import Prober, start_responders

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIGS = REPO / "configs" / "vrrp-pair"


@dataclass(frozen=True, slots=True)
class Plan:
    """What the demo needs to know about the pair's configuration."""

    texts: tuple[str, str]  # node1.conf, node2.conf
    instance: str
    vip: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    source: str  # where the configs came from, for the narration


def plan_from(configs: Path) -> Plan:
    """Read node1/node2.conf, or generate an equivalent pair when they are not there."""
    files = (configs / "node1.conf", configs / "node2.conf")
    if all(f.exists() for f in files):
        texts = (files[0].read_text(encoding="utf-8"), files[1].read_text(encoding="utf-8"))
        name, vip = _first_instance(files[0])
        return Plan(texts, name, vip, str(configs))
    one = Instance(priority=150, state="MASTER", version=3, advert_int=0.2)
    two = Instance(priority=100, state="BACKUP", version=3, advert_int=0.2)
    texts = (
        DaemonConfig(router_id="node1", instances=(one,)).render(),
        DaemonConfig(router_id="node2", instances=(two,)).render(),
    )
    return Plan(texts, one.name, ipaddress.ip_interface(one.vips[0]), "generated")


def _first_instance(path: Path) -> tuple[str, ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    """The first vrrp_instance's name and first VIP, read with pykad's own parser."""
    from pykad.config.grammar import parse_file

    for block in parse_file(path).blocks:
        if block.keyword == "vrrp_instance" and block.args:
            for child in block.children or ():
                if child.keyword == "virtual_ipaddress":
                    for line in child.children or ():
                        return block.args[0], ipaddress.ip_interface(line.keyword)
    raise SystemExit(f"demo: {path}: no vrrp_instance with a virtual_ipaddress")


class Narrator:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:5.2f}s] {text}", flush=True)


def run_demo(configs: Path, daemon: type[DaemonFixture], pause: float) -> int:
    say = Narrator().say
    plan = plan_from(configs)
    swept = sweep_orphans()
    if swept:
        say(f"removed {len(swept)} namespaces left by an earlier run that was killed")
    with tempfile.TemporaryDirectory(prefix="pykad-demo-") as tmpdir, Lab(routers=2) as lab:
        tmp = Path(tmpdir)
        r1, r2 = lab.routers
        say(
            f"lab {lab.prefix}-*: routers r1 {r1.ip4} and r2 {r2.ip4}, client {lab.client.ip4}"
            f", one bridge"
        )
        start_responders(lab)
        kind = daemon.__name__.removesuffix("Fixture").lower()
        cfg1, cfg2 = plan.texts
        d1 = _start(daemon, r1, cfg1, tmp)
        d2 = _start(daemon, r2, cfg2, tmp)
        say(f"{kind} on r1 (pid {d1.pid}) and r2 (pid {d2.pid}), configs: {plan.source}")
        master = f"({plan.instance}) Entering MASTER STATE"
        say(f"r1: {_bare(d1.wait_for_log(master, timeout=30))}")
        say(f"r1 holds the VIP: {_vip_line(r1, plan.vip)}")

        with Prober(lab.client, str(plan.vip.ip)) as prober:
            prober.wait_for_answer("r1", timeout=10)
            say(f"client -> {plan.vip.ip}:udp every 5 ms, answered by r1")
            _let_traffic_run(prober, pause)

            crash = time.monotonic()
            say("crash r1: its link is cut and its daemon killed with SIGKILL")
            mark = d2.mark()
            lab.cut(r1)
            d1.kill()
            say(f"r2: {_bare(d2.wait_for_log(master, timeout=30, since=mark))}")
            moved = prober.wait_for_answer("r2", after=crash, timeout=30)
            prober.wait_until(moved.t + 0.2)
            lost = sum(1 for s in prober.samples() if crash <= s.t < moved.t and not s.responder)
            say(
                f"client traffic moved to r2 after an outage of {prober.outage(crash):.3f} s "
                f"({lost} probes lost); answering now: {sorted(prober.answers_after(moved.t))}"
            )
            mac = lab.client.neighbours().get(str(plan.vip.ip), "?")
            say(f"client neighbour table: {plan.vip.ip} -> {mac} (r2's MAC is {r2.mac()})")
            _let_traffic_run(prober, pause)

            back = time.monotonic()
            say("r1 comes back: link up, daemon restarted")
            lab.restore(r1)
            d1 = _start(daemon, r1, cfg1, tmp)
            say(f"r1: {_bare(d1.wait_for_log(master, timeout=30))} (pid {d1.pid}, preemption)")
            home = prober.wait_for_answer("r1", after=back, timeout=30)
            prober.wait_until(home.t + 0.2)
            say(
                f"client traffic back on r1, longest gap {prober.outage(back):.3f} s; "
                f"answering now: {sorted(prober.answers_after(home.t))}"
            )
        say("stopping the daemons (the master releases with priority 0), deleting the lab")
        for d in (d1, d2):
            d.close()
        pids = [p.pid for p in lab.processes]
    left = [ns for ns in list_namespaces() if ns.startswith(lab.prefix + "-")]
    running = [pid for pid in pids if not process_gone(pid)]
    if left or running:
        say(f"left behind: namespaces {left}, processes {running}")
        return 1
    say(f"done: all {len(pids)} processes stopped, the lab's namespaces deleted")
    return 0


def _start(daemon: type[DaemonFixture], node: Node, text: str, tmp: Path) -> DaemonFixture:
    # Started through the lab: if anything below raises (Ctrl-C included), the lab's close()
    # kills it by PID; its workdir lives in the demo's temporary directory.
    return daemon(node, text, workdir=tmp / f"{node.name}-{time.monotonic_ns()}").start()


def _bare(line: str) -> str:
    """A log line without keepalived's timestamp prefix."""
    return line.split(": ", 1)[1] if line[:3].isalpha() and ": " in line else line


def _vip_line(node: Node, vip: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> str:
    for line in node.run(["ip", "-brief", "addr", "show", "dev", node.ifname]).splitlines():
        return " ".join(line.split())
    return str(vip)


def _let_traffic_run(prober: Prober, seconds: float) -> None:
    """Let the client's probes run for a while so the viewer sees steady traffic."""
    if seconds > 0:
        prober.wait_until(time.monotonic() + seconds, timeout=seconds + 10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=Path, default=DEFAULT_CONFIGS)
    parser.add_argument(
        "--daemon",
        choices=("pykad", "keepalived"),
        default="pykad",
        help="run keepalived 2.2.7 instead, to compare",
    )
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between acts")
    args = parser.parse_args(argv)
    daemon = PykadFixture if args.daemon == "pykad" else KeepalivedFixture
    try:
        return run_demo(args.configs, daemon, args.pause)
    except KeyboardInterrupt:
        print("\ninterrupted: the lab was cleaned up", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
