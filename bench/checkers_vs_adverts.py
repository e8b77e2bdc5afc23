"""Benchmark: do hundreds of health checks delay the VRRP adverts of the pykad daemon?

Issue 8: "Checking hundreds of real servers must not delay VRRP adverts". pykad runs the
checker half in a child process (pykad/runtime/checker_child.py); this measures the adverts
of the real daemon while N TCP_CHECKs run in that child.

Lab: r1 runs pykad from the command line (``pykad -f FILE``, through :func:`parent` below):
one VRRPv2 instance, priority 150, and one virtual server with N real servers, each with a
TCP_CHECK; r2 runs the TCP server the checks hit (pykad.testing.checkservers). Half of the
real servers answer (port 8000 listens), a quarter are refused (closed port) and a quarter
time out (an address nobody has), so the checkers have connects in flight, failures and
retries all the time. tcpdump on the bridge timestamps every advert of the window; the
jitter of the advert intervals is computed with the same code as bench/scale.py.

What is not the shipped program, and why. This kernel has no IPVS, and without it the
checker half disables its virtual servers and runs no checks at all. So the child the
daemon starts is pykad's own command line (:func:`checker_half`) with one substitution:
``pykad.runtime.lvs.IpvsTable`` is :class:`MemoryIpvsTable`, which keeps the table in a dict
and counts the operations instead of sending them to the kernel (the counts are printed at
exit and reported as ``ipvs_ops``: a run without health changes did not check). The parent
is pykad's command line unchanged, except that ``checker_child.CHILD_ARGV0`` names this
file's ``--checker-half`` entry instead of ``python -m pykad``. Everything else - the
configuration parser, the parent's VRRP, the supervisor, the child's checkers, balancer and
IPVS worker - is the code pykad runs. The IPVS netlink calls themselves are not measured
here (the vm layer runs them on a real kernel; their cost is in the child anyway).

``--modes child in-process`` (the default: both) also measures the previous design for
comparison: the same daemon with the checker half in the parent's event loop
(``daemon.splits`` patched to refuse the child, so the daemon runs its LvsManager itself, as
before issue 8's split), the same in-memory table.

Why no keepalived column: keepalived's checker process needs IPVS in the kernel to check at
all (without it the virtual servers are dropped), and this kernel has none; the vm layer's
kernel has IPVS, but under software emulation its timings say nothing about this machine.

With N = 0 there is no virtual server: the daemon then runs no child (the baseline).

Usage: .venv/bin/python bench/checkers_vs_adverts.py [--checks 0 300] [--window 20]
       [--advert-int 1] [--delay-loop 1] [--modes child in-process]
Results: bench/results/checkers_vs_adverts.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from benchlib import Recorder
from scale import jitter, read_pcap, start_capture

from pykad.adapters.ipvs import IpvsDest, IpvsService
from pykad.testing.checkservers import server_argv, wait_ready
from pykad.testing.netns import Lab, sweep_orphans

R2 = ipaddress.ip_address("192.0.2.2")
NOBODY = ipaddress.ip_address("192.0.2.77")
OPEN_PORT, CLOSED_PORT = 8000, 8001
VIP = "192.0.2.250"
VRRP = f"""
vrrp_instance VI_1 {{{{
    interface eth0
    state BACKUP
    virtual_router_id 51
    priority 150
    advert_int {{advert_int}}
    virtual_ipaddress {{{{
        {VIP}/24
    }}}}
}}}}
"""
OPS_TAG = "IPVS_OPS "


def config_text(n: int, delay_loop: float, advert_int: float) -> str:
    """The daemon's keepalived.conf: the VRRP instance and, for n > 0, one virtual server
    with n real servers and a TCP_CHECK each (connect_timeout 3, retry 2)."""
    text = VRRP.format(advert_int=advert_int)
    if n == 0:
        return text
    lines = [f"virtual_server {VIP} 80 {{", f"    delay_loop {delay_loop:g}", "    lb_algo rr"]
    lines += ["    lb_kind NAT", "    protocol TCP"]
    for i in range(n):
        kind = i % 4
        target, port = (
            (NOBODY, OPEN_PORT) if kind == 3 else (R2, CLOSED_PORT if kind == 2 else OPEN_PORT)
        )
        lines += [
            f"    real_server 198.51.100.{i % 250 + 1} {10000 + i} {{",
            "        TCP_CHECK {",
            f"            connect_ip {target}",
            f"            connect_port {port}",
            "            connect_timeout 3",
            "            retry 2",
            f"            delay_before_retry {delay_loop / 2:g}",
            f"            warmup {delay_loop:g}",
            "        }",
            "    }",
        ]
    lines.append("}")
    return text + "\n".join(lines) + "\n"


class MemoryIpvsTable:
    """``pykad.adapters.ipvs.IpvsTable``'s interface on a dict: no kernel, operations
    counted. Prints the counts (one ``IPVS_OPS {json}`` line on stdout) when closed."""

    def __init__(self, *, modprobe: bool = True) -> None:
        del modprobe
        self.table: dict[IpvsService, dict[tuple[object, int], IpvsDest]] = {}
        self.ops: collections.Counter[str] = collections.Counter()

    async def open(self) -> None:
        self.ops["open"] += 1

    def close(self) -> None:
        print(OPS_TAG + json.dumps(dict(self.ops)), flush=True)

    async def add_service(self, svc: IpvsService) -> None:
        self.ops["add_service"] += 1
        self.table.setdefault(svc, {})

    async def edit_service(self, svc: IpvsService) -> None:
        self.ops["edit_service"] += 1

    async def delete_service(self, svc: IpvsService) -> None:
        self.ops["delete_service"] += 1
        self.table.pop(svc, None)

    async def add_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        self.ops["add_dest"] += 1
        self.table.setdefault(svc, {})[dest.key] = dest

    async def edit_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        self.ops["edit_dest"] += 1
        self.table.setdefault(svc, {})[dest.key] = dest

    async def delete_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        self.ops["delete_dest"] += 1
        self.table.get(svc, {}).pop(dest.key, None)

    async def flush(self) -> None:
        self.ops["flush"] += 1
        self.table.clear()

    async def services(self) -> list[IpvsService]:
        return list(self.table)

    async def dests(self, svc: IpvsService) -> list[IpvsDest]:
        return list(self.table.get(svc, {}).values())

    async def read(self) -> dict[IpvsService, list[IpvsDest]]:
        return {svc: list(d.values()) for svc, d in self.table.items()}


def _use_memory_ipvs() -> None:
    import pykad.runtime.lvs

    pykad.runtime.lvs.IpvsTable = MemoryIpvsTable  # type: ignore[assignment,misc]


def _pykad_cli(argv: list[str]) -> None:
    from pykad.cli import cli

    sys.argv = ["pykad", *argv]
    cli.main(args=argv, prog_name="pykad")


def parent(argv: list[str], in_process: bool) -> None:
    """r1's daemon: pykad's command line; its checker child is :func:`checker_half`."""
    import pykad.runtime.checker_child

    pykad.runtime.checker_child.CHILD_ARGV0 = [sys.executable, __file__, "--checker-half"]
    if in_process:  # the design before the split: the checker half in this event loop
        import pykad.runtime.daemon

        pykad.runtime.daemon.splits = lambda _opts: False
        _use_memory_ipvs()
    _pykad_cli(argv)


def checker_half(argv: list[str]) -> None:
    """The checker child: pykad's command line (``-C ...`` as the parent built it) with the
    in-memory IPVS table."""
    _use_memory_ipvs()
    _pykad_cli(argv)


def run_case(n: int, args: argparse.Namespace, tmp: Path, in_process: bool) -> dict[str, Any]:
    conf = tmp / f"pykad-{n}.conf"
    conf.write_text(config_text(n, args.delay_loop, args.advert_int))
    with Lab(routers=2, client=False) as lab:
        r1, r2 = lab.routers
        server = r2.spawn(server_argv("tcp", "--port", str(OPEN_PORT)), stdout=subprocess.PIPE)
        wait_ready(server)
        settle = 3 * args.advert_int + 2.0 + args.delay_loop
        log = (tmp / f"pykad-{n}.log").open("wb")
        pykad_args = [
            *("-n", "-l", "-f", str(conf), "--control-socket", ""),
            *("-p", str(tmp / "main.pid"), "-r", str(tmp / "vrrp.pid")),
            *("-c", str(tmp / "checkers.pid")),
        ]
        mode = ["--parent", "--in-process"] if in_process else ["--parent"]
        proc = r1.spawn(
            [sys.executable, __file__, *mode, "--", *pykad_args],
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        )
        r1.wait_address(VIP, timeout=settle + 10)
        threading.Event().wait(args.delay_loop + 1.0)  # every checker has started
        pcap = tmp / f"adverts-{n}.pcap"
        cap = start_capture(lab, pcap)
        threading.Event().wait(args.window)
        lab.stop(cap, timeout=5)
        lab.stop(proc, timeout=30)
        out = proc.stdout.read().decode() if proc.stdout is not None else ""
        log.close()
        lab.stop(server)
        if server.stdout is not None:
            server.stdout.close()
        result = jitter(read_pcap(pcap), "192.0.2.1", args.advert_int)
        result["checks"] = n
        result["exit_status"] = proc.returncode
        ops = [json.loads(x[len(OPS_TAG) :]) for x in out.splitlines() if x.startswith(OPS_TAG)]
        result["ipvs_ops"] = ops[-1] if ops else None
        return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--checker-half":
        checker_half(sys.argv[2:])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--parent":
        rest = sys.argv[2:]
        in_process = rest[:1] == ["--in-process"]
        rest = rest[1:] if in_process else rest
        parent(rest[1:] if rest[:1] == ["--"] else rest, in_process)
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("--checks", type=int, nargs="+", default=[0, 300])
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--advert-int", type=float, default=1.0)
    p.add_argument("--delay-loop", type=float, default=1.0)
    p.add_argument(
        "--modes",
        nargs="+",
        choices=["child", "in-process"],
        default=["child", "in-process"],
        help="where the checker half runs: its own process (pykad), or the parent's loop",
    )
    p.add_argument("--keep", type=Path, default=None, help="keep configs, logs, pcaps here")
    args = p.parse_args()
    sweep_orphans()
    rec = Recorder("checkers_vs_adverts")
    cases = []
    with tempfile.TemporaryDirectory(prefix="pykad-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs = [(w, n) for w in args.modes for n in args.checks if not (w != "child" and n == 0)]
        for where, n in runs:  # n = 0 runs no checker half: one baseline is enough
            case = run_case(n, args, work, in_process=where == "in-process")
            case["where"] = where if n else "none"
            cases.append(case)
            print(
                f"{n:5d} TCP checks ({where}, delay_loop {args.delay_loop:g}s):"
                f" adverts {case.get('adverts')}"
                f" mean {case.get('mean_interval_s')}s  |interval-{args.advert_int:g}s| p50 "
                f"{case.get('p50_ms')} ms p99 {case.get('p99_ms')} ms max {case.get('max_ms')} ms"
                f" late {case.get('late')}  IPVS ops {case.get('ipvs_ops')}"
                f"  exit {case.get('exit_status')}",
                flush=True,
            )
    rec.data["params"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    rec.data["cases"] = cases
    rec.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
