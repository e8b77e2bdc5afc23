"""Benchmark: do hundreds of health checks delay the VRRP adverts of the same process?

Issue 8: "Checking hundreds of real servers must not delay VRRP adverts". Lab: r1 runs ONE
Python process (re-executed inside r1 with ``--inner``) holding a pykad VRRP master
(``runtime.daemon.Daemon``, one VRRPv2 instance, priority 150) and a
``check.checkerset.CheckerSet`` with N TCP_CHECKs; r2 runs the TCP server the checks hit
(pykad.testing.checkservers). Half of the real servers answer (port 8000 listens), a quarter
are refused (closed port) and a quarter time out (an address nobody has), so the checker
has connects in flight, failures, and retries all the time. tcpdump on the bridge
timestamps every advert of the window; the jitter of the advert intervals is computed with
the same code as bench/scale.py, for N = 0 (baseline) and each requested N.

Usage: .venv/bin/python bench/checkers_vs_adverts.py [--checks 0 300] [--window 20]
       [--advert-int 1] [--delay-loop 1]
Results: bench/results/checkers_vs_adverts.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from benchlib import Recorder
from scale import jitter, read_pcap, start_capture

from pykad.check.checkerset import CheckerSet, RsChange
from pykad.config.load import load_text
from pykad.config.model_lvs import LvsConfig, RealServer, TcpCheck, VirtualServer
from pykad.runtime.daemon import Daemon
from pykad.testing.checkservers import server_argv, wait_ready
from pykad.testing.netns import Lab, sweep_orphans

R2 = ipaddress.ip_address("192.0.2.2")
NOBODY = ipaddress.ip_address("192.0.2.77")
OPEN_PORT, CLOSED_PORT = 8000, 8001
CONFIG = """
vrrp_instance VI_1 {{
    interface eth0
    state BACKUP
    virtual_router_id 51
    priority 150
    advert_int {advert_int}
    virtual_ipaddress {{
        192.0.2.250/24
    }}
}}
"""


def checks(n: int, delay_loop: float) -> LvsConfig:
    servers = []
    for i in range(n):
        kind = i % 4
        target, port = (
            (NOBODY, OPEN_PORT) if kind == 3 else (R2, CLOSED_PORT if kind == 2 else OPEN_PORT)
        )
        check = TcpCheck(
            connect_ip=target,
            connect_port=port,
            connect_timeout_s=3.0,
            delay_loop_s=delay_loop,
            delay_before_retry_s=delay_loop / 2,
            retry=2,
            warmup_s=delay_loop,
        )
        servers.append(RealServer(address=ipaddress.ip_address(f"198.51.100.{i % 250 + 1}"),
                                  port=10000 + i, checkers=(check,)))  # fmt: skip
    vs = VirtualServer(
        address=ipaddress.ip_address("192.0.2.250"), port=80, real_servers=tuple(servers)
    )
    return LvsConfig(virtual_servers=(vs,))


async def inner(args: argparse.Namespace) -> None:
    """Inside r1: the VRRP daemon and the checkers on one event loop for ``duration`` s."""
    loaded = load_text(CONFIG.format(advert_int=args.advert_int))
    assert loaded.config is not None, loaded.diagnostics
    daemon = Daemon(loaded.config)
    changes = 0

    def on_change(_c: RsChange) -> None:
        nonlocal changes
        changes += 1

    checker = CheckerSet(checks(args.n, args.delay_loop), on_change)
    d_task = asyncio.create_task(daemon.run())
    c_task = asyncio.create_task(checker.run())
    await asyncio.sleep(args.duration)
    daemon.request_stop()
    await d_task
    c_task.cancel()
    await asyncio.gather(c_task, return_exceptions=True)
    print(f"RS_CHANGES {changes}", flush=True)


def run_case(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Lab(routers=2, client=False) as lab:
        r1, r2 = lab.routers
        server = r2.spawn(server_argv("tcp", "--port", str(OPEN_PORT)), stdout=subprocess.PIPE)
        wait_ready(server)
        settle = 3 * args.advert_int + 2.0 + args.delay_loop
        proc = r1.spawn(
            [sys.executable, __file__, "--inner", "--n", str(n),
             "--duration", str(settle + args.window), "--advert-int", str(args.advert_int),
             "--delay-loop", str(args.delay_loop)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        )  # fmt: skip
        r1.wait_address("192.0.2.250", timeout=settle + 10)
        threading.Event().wait(args.delay_loop + 1.0)  # every checker has started
        pcap = tmp / f"adverts-{n}.pcap"
        cap = start_capture(lab, pcap)
        threading.Event().wait(args.window)
        lab.stop(cap, timeout=5)
        out, _ = proc.communicate(timeout=settle + args.window + 60)
        lab.stop(server)
        if server.stdout is not None:
            server.stdout.close()
        result = jitter(read_pcap(pcap), "192.0.2.1", args.advert_int)
        result["checks"] = n
        result["rs_changes"] = next(
            (int(line.split()[1]) for line in out.decode().splitlines() if line.startswith("RS_")),
            None,
        )
        return result


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--checks", type=int, nargs="+", default=[0, 300])
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--advert-int", type=float, default=1.0)
    p.add_argument("--delay-loop", type=float, default=1.0)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=0.0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        asyncio.run(inner(args))
        return 0
    sweep_orphans()
    rec = Recorder("checkers_vs_adverts")
    cases = []
    with tempfile.TemporaryDirectory(prefix="pykad-bench-") as tmp:
        for n in args.checks:
            case = run_case(n, args, Path(tmp))
            cases.append(case)
            print(
                f"{n:5d} TCP checks (delay_loop {args.delay_loop:g}s):"
                f" adverts {case.get('adverts')}"
                f" mean {case.get('mean_interval_s')}s  |interval-{args.advert_int:g}s| p50 "
                f"{case.get('p50_ms')} ms p99 {case.get('p99_ms')} ms max {case.get('max_ms')} ms"
                f" late {case.get('late')}  RS changes {case.get('rs_changes')}",
                flush=True,
            )
    rec.data["params"] = {
        k: v for k, v in vars(args).items() if k not in ("inner", "n", "duration")
    }
    rec.data["cases"] = cases
    rec.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
