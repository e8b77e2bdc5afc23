"""Benchmark: ``pykad --check-config`` against ``keepalived -t`` on one large generated config.

The config has 255 vrrp_instances of 20 VIPs each and 100 virtual_servers of 10 real_servers
each (TCP_CHECK). Both programs check the same file in the same run, several times each; the
median wall-clock time is reported and written to a section of BENCHMARKS.md.

Usage: .venv/bin/python bench/config_check.py [--repeat N] [--no-write]
Results: bench/results/config_check.json; bench/report.py writes its BENCHMARKS.md section.
Nothing here touches the network: both programs only parse and validate.

pykad runs with its bytecode cached, as installed (benchlib.with_bytecode_cache); each program
runs once untimed first, which fills that cache and the page cache for both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report
from benchlib import Recorder, with_bytecode_cache


def generate(interface: str) -> str:
    out = ["global_defs {", "    router_id bench", "}"]
    for i in range(255):
        out += [
            f"vrrp_instance VI_{i} {{",
            "    state BACKUP",
            f"    interface {interface}",
            f"    virtual_router_id {i + 1}",
            f"    priority {100 + i % 50}",
            "    advert_int 1",
            "    virtual_ipaddress {",
        ]
        out += [f"        2001:db8:{i:x}::{j + 1:x}/64" for j in range(20)]
        out += ["    }", "}"]
    for v in range(100):
        out += [
            f"virtual_server 192.0.2.{v + 1} 80 {{",
            "    delay_loop 6",
            "    lb_algo rr",
            "    lb_kind DR",
            "    protocol TCP",
        ]
        for r in range(10):
            out += [
                f"    real_server 198.51.100.{r + 1} 80 {{",
                "        weight 1",
                "        TCP_CHECK {",
                "            connect_timeout 3",
                "            retry 3",
                "            delay_before_retry 3",
                "        }",
                "    }",
            ]
        out.append("}")
    return "\n".join(out) + "\n"


def time_cmd(cmd: list[str], repeat: int, env: dict[str, str]) -> tuple[float, int, str]:
    subprocess.run(cmd, capture_output=True, check=False, env=env)  # warm-up, untimed
    times = []
    rc = 0
    err = ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        times.append(time.perf_counter() - t0)
        rc, err = proc.returncode, proc.stderr
    return statistics.median(times), rc, err


# What `pykad -t` does, timed in one process: its imports (pykad.cli and the config modules),
# the parse (source + grammar), the lowering, then the host checks (interfaces, scripts).
STAGES = """
import gc, sys, time
t0 = time.perf_counter()
import pykad.cli
from pykad.config import grammar, load as ld, lower, security
t1 = time.perf_counter()
gc.disable()  # as load() does
parsed = grammar.parse_file(sys.argv[1])
t2 = time.perf_counter()
config, _ = lower.lower(parsed.blocks)
t3 = time.perf_counter()
lower.check_interfaces(config, ld.host_interfaces())
security.check_scripts(config)
t4 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f} {t4 - t3:.3f}")
"""


def stages(conf: Path, env: dict[str, str]) -> str:
    """In-process split of one run (the median of five)."""
    runs = [
        [
            float(x)
            for x in subprocess.run(
                [sys.executable, "-c", STAGES, str(conf)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout.split()
        ]
        for _ in range(5)
    ]
    imports, parse, low, host = (statistics.median(col) for col in zip(*runs, strict=True))
    return (
        f"imports {imports:.3f} s, parse {parse:.3f} s, lower {low:.3f} s, host checks "
        f"{host:.3f} s (median of 5 runs each; bytecode cached, as installed)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args()
    rec = Recorder("config_check")
    pykad = str(Path(sys.executable).parent / "pykad")
    keepalived = shutil.which("keepalived") or "/usr/sbin/keepalived"
    iface = "eth0" if Path("/sys/class/net/eth0").exists() else "lo"
    with tempfile.TemporaryDirectory(prefix="pykad-bench-") as tmp:
        conf = Path(tmp) / "big.conf"
        conf.write_text(generate(iface))
        nlines = conf.read_text().count("\n")
        rows = []
        env = with_bytecode_cache(os.environ)
        p_t, p_rc, p_err = time_cmd([pykad, "--check-config", "-f", str(conf)], args.repeat, env)
        rows.append({"program": "pykad --check-config", "median_s": p_t, "status": p_rc})
        if Path(keepalived).exists():
            k_t, k_rc, _ = time_cmd([keepalived, "-t", "-f", str(conf)], args.repeat, env)
            rows.append({"program": "keepalived -t (2.2.7)", "median_s": k_t, "status": k_rc})
        split = stages(conf, env)
    if p_rc != 0:
        print(p_err[:2000], file=sys.stderr)
    for row in rows:
        print(f"{row['program']}: median {row['median_s']:.3f} s, exit status {row['status']}")
    print(f"pykad stages: {split}")
    rec.data.update(repeat=args.repeat, lines=nlines, interface=iface, rows=rows, stages=split)
    rec.save()
    if not args.no_write:
        report.render(figure_case="v3-0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
