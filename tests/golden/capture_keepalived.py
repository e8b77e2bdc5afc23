#!/usr/bin/env python3
"""Capture golden VRRP / GARP / NA packets from the real keepalived 2.2.7 (run as root).

Builds a throwaway lab that never touches the root namespace (every veth is created inside
its namespaces)::

    <p>-r1 eth0 192.0.2.1, 02:00:00:00:00:01  --- p1 [<p>-sw br0] p2 ---  eth0 <p>-r2
    (keepalived, all instances MASTER)                                   192.0.2.2 and .3

runs keepalived as master of the instances in ``INSTANCES`` (v2 no auth, v2 PASS, v3 IPv4,
v3 IPv6, v3 IPv4 unicast to two peers), captures r1's traffic with ``tcpdump -w`` on the
bridge port for a few seconds, stops keepalived with SIGTERM (so the priority-0 adverts are
captured too), then tcpdump, each by the PID recorded at start, and deletes the namespaces
(also on failure).

Writes ``captures/keepalived-2.2.7.pcap`` and ``captures/keepalived-2.2.7.json`` (the
configuration as data: what the test expects in every packet). keepalived 2.2.7 has no
``v3_checksum_as_v2``; that mode's vectors come from scapy and a hand-computed vector in
``tests/unit/proto``.

    sudo .venv/bin/python tests/golden/capture_keepalived.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "captures"
NAME = "keepalived-2.2.7"
R1_MAC = "02:00:00:00:00:01"
R2_MAC = "02:00:00:00:00:02"
CAPTURE_S = 4.5  # a few adverts of each instance, both GARP/NA bursts' first rounds
TCPDUMP_DRAIN_S = 0.5  # tcpdump reads the last frames after keepalived has exited

# Every instance becomes master: state MASTER with priority 255 at once, the others after
# the master-down interval (spec §5.2), which is < 3 s here.
INSTANCES: list[dict[str, Any]] = [
    {
        "name": "V2_NOAUTH",
        "version": 2,
        "family": 4,
        "vrid": 51,
        "priority": 255,
        "advert_int_cs": 100,
        "vips": ["192.0.2.51", "192.0.2.151"],
        "auth": None,
    },
    {
        "name": "V2_PASS",
        "version": 2,
        "family": 4,
        "vrid": 52,
        "priority": 200,
        "advert_int_cs": 100,
        "vips": ["192.0.2.52"],
        "auth": "pykad",
    },
    {
        "name": "V3_IPV4",
        "version": 3,
        "family": 4,
        "vrid": 53,
        "priority": 150,
        "advert_int_cs": 50,
        "vips": ["192.0.2.53", "192.0.2.153", "192.0.2.253"],
        "auth": None,
    },
    {
        "name": "V3_IPV6",
        "version": 3,
        "family": 6,
        "vrid": 54,
        "priority": 255,
        "advert_int_cs": 100,
        "vips": ["2001:db8::54", "2001:db8::154"],
        "auth": None,
    },
    {
        "name": "V3_UNICAST",
        "version": 3,
        "family": 4,
        "vrid": 55,
        "priority": 255,
        "advert_int_cs": 100,
        "vips": ["192.0.2.55"],
        "auth": None,
        "unicast_src": "192.0.2.1",
        "unicast_peers": ["192.0.2.2", "192.0.2.3"],
    },
]


def sh(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def render(instances: list[dict[str, Any]]) -> str:
    lines = ["global_defs {", "    router_id pykad_golden", "}"]
    for inst in instances:
        state = "MASTER" if inst["priority"] == 255 else "BACKUP"
        lines += [
            f"vrrp_instance {inst['name']} {{",
            f"    state {state}",
            "    interface eth0",
            f"    virtual_router_id {inst['vrid']}",
            f"    priority {inst['priority']}",
            f"    advert_int {inst['advert_int_cs'] / 100}",
            f"    version {inst['version']}",
        ]
        if inst["auth"]:
            lines += ["    authentication {", "        auth_type PASS"]
            lines += [f"        auth_pass {inst['auth']}", "    }"]
        if "unicast_src" in inst:
            lines.append(f"    unicast_src_ip {inst['unicast_src']}")
            lines += ["    unicast_peer {", *(f"        {p}" for p in inst["unicast_peers"])]
            lines.append("    }")
        lines += ["    virtual_ipaddress {", *(f"        {v}" for v in inst["vips"]), "    }"]
        lines.append("}")
    return "\n".join(lines) + "\n"


def build_lab(prefix: str) -> tuple[str, str, str]:
    sw, r1, r2 = f"{prefix}-sw", f"{prefix}-r1", f"{prefix}-r2"
    for ns in (sw, r1, r2):
        sh("ip", "netns", "add", ns)
    for ns in (r1, r2):
        # IPv6 link-local addresses usable at once (VRRPv3 over IPv6 sends from them)
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
    sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
    for ns, port, mac in ((r1, "p1", R1_MAC), (r2, "p2", R2_MAC)):
        sh(
            "ip",
            "-n",
            ns,
            "link",
            "add",
            "eth0",
            "address",
            mac,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            sw,
        )
        sh("ip", "-n", sw, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", sw, "link", "set", "br0", "up")
    sh("ip", "-n", r1, "addr", "add", "192.0.2.1/24", "dev", "eth0")
    sh("ip", "-n", r2, "addr", "add", "192.0.2.2/24", "dev", "eth0")
    sh("ip", "-n", r2, "addr", "add", "192.0.2.3/24", "dev", "eth0")
    return sw, r1, r2


def pause(seconds: float) -> None:
    """Wall-clock wait: this tool drives real daemons (no unit test runs it)."""
    threading.Event().wait(seconds)


def stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def main() -> int:
    if os.geteuid() != 0:
        print("must run as root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    prefix = f"h4cap{os.getpid()}"
    namespaces: list[str] = []
    tcpdump: subprocess.Popen[bytes] | None = None
    daemon: subprocess.Popen[bytes] | None = None
    OUT.mkdir(exist_ok=True)
    pcap = OUT / f"{NAME}.pcap"
    with tempfile.TemporaryDirectory(prefix="pykad-golden-") as tmp:
        work = Path(tmp)
        try:
            namespaces = [f"{prefix}-{n}" for n in ("sw", "r1", "r2")]
            sw, r1, _r2 = build_lab(prefix)
            pause(1.0)  # IPv6 link-local addresses and the bridge port settle
            tcpdump = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    sw,
                    "tcpdump",
                    "-U",
                    "-n",
                    "-i",
                    "p1",
                    "-w",
                    str(work / "raw.pcap"),
                    "vrrp or ip6 proto 112 or arp or icmp6",
                ],
                stderr=subprocess.PIPE,
            )
            assert tcpdump.stderr is not None
            line = tcpdump.stderr.readline().decode()  # "listening on p1 ..." once ready
            if "listening" not in line:
                raise RuntimeError(f"tcpdump did not start: {line}")
            conf = work / "keepalived.conf"
            conf.write_text(render(INSTANCES))
            daemon = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    r1,
                    "/usr/sbin/keepalived",
                    "-n",
                    "-l",
                    "-D",
                    "-P",
                    "-f",
                    str(conf),
                    "-p",
                    str(work / "k.pid"),
                    "-r",
                    str(work / "v.pid"),
                    "-c",
                    str(work / "c.pid"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                code = daemon.wait(timeout=CAPTURE_S)
            except subprocess.TimeoutExpired:
                pass
            else:
                raise RuntimeError(f"keepalived exited early with {code}")
            stop(daemon)  # SIGTERM, wait for its exit: priority-0 adverts (spec §5.8)
            pause(TCPDUMP_DRAIN_S)
            stop(tcpdump, signal.SIGINT)
            pcap.write_bytes((work / "raw.pcap").read_bytes())
        finally:
            stop(daemon)
            stop(tcpdump, signal.SIGINT)
            for ns in namespaces:
                sh("ip", "netns", "del", ns, check=False)
    proc = subprocess.run(
        ["/usr/sbin/keepalived", "--version"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    version = (proc.stdout + proc.stderr).strip().splitlines()[0]
    meta = {
        "keepalived": version,
        "r1_mac": R1_MAC,
        "r1_ipv4": "192.0.2.1",
        "instances": INSTANCES,
    }
    (OUT / f"{NAME}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {pcap} ({pcap.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
