"""Test kit for LVS scenarios in network namespaces (the vm layer, tests/vm).

Real servers run busybox ``httpd`` and the client ``curl``: native programs start
at once even under QEMU's CPU emulation, where every Python process costs tens of seconds.
Directors are :class:`~pykad.testing.keepalived.PykadFixture` daemons on the first routers of a
:class:`~pykad.testing.netns.Lab`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pykad.adapters.ipvs import IpvsDest, IpvsService, IpvsTable
from pykad.testing.keepalived import LogTimeout, PykadFixture
from pykad.testing.netns import IFNAME, Lab, LabError, Node

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
CURL = shutil.which("curl") or "/usr/bin/curl"


class Web:
    """busybox httpd on a real server, answering every GET with the server's name."""

    def __init__(self, node: Node, name: str, port: int = 80) -> None:
        self.node, self.name, self.port = node, name, port
        self.root = Path(tempfile.mkdtemp(prefix=f"pykad-web-{node.ns}-"))
        (self.root / "index.html").write_text(name + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = self.node.spawn(
            [BUSYBOX, "httpd", "-f", "-p", str(self.port), "-h", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.node.lab.stop(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def fetch(client: Node, url: str, timeout_s: int = 3) -> str | None:
    """One HTTP GET from the client (a new connection each time): the body, or None.

    curl, not busybox wget: Debian's static busybox wget crashes (SIGSEGV) on every fetch."""
    try:
        out = client.run([CURL, "-s", "--max-time", str(timeout_s), url], timeout=timeout_s + 10)
    except LabError:
        return None
    return out.strip()


def wait_until(what: str, probe: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        threading.Event().wait(0.5)


def ipvsadm(node: Node) -> list[str]:
    """``ipvsadm -Ln`` in the node's namespace, as lines without the two header lines."""
    return node.run(["ipvsadm", "-Ln"]).splitlines()[3:]


def ipvsadm_table(node: Node) -> dict[str, list[tuple[str, str, int]]]:
    """``ipvsadm -Ln`` parsed: ``"TCP 192.0.2.10:80 rr"`` -> [(rs, forward, weight)]."""
    table: dict[str, list[tuple[str, str, int]]] = {}
    current = ""
    for line in ipvsadm(node):
        if m := re.match(r"^(TCP|UDP|SCTP|FWM)\s+(\S+)\s+(\S+)(.*)$", line):
            current = " ".join(part for part in m.groups()[:3])
            table[current] = []
        elif m := re.match(r"^\s+->\s+(\S+)\s+(\S+)\s+(\d+)", line):
            table[current].append((m[1], m[2], int(m[3])))
    return table


def real_server_dr(node: Node, address: str, vip: str) -> None:
    """A direct-routing real server: its address on eth0, the VIP on lo, and ARP kept quiet
    about the VIP (arp_ignore=1, arp_announce=2 - inside its own namespace only)."""
    node.run(["ip", "addr", "add", f"{address}/24", "dev", IFNAME])
    node.run(["ip", "addr", "add", f"{vip}/32", "dev", "lo"])
    for conf in ("all", IFNAME):
        node.run(["sysctl", "-q", "-w", f"net.ipv4.conf.{conf}.arp_ignore=1"])
        node.run(["sysctl", "-q", "-w", f"net.ipv4.conf.{conf}.arp_announce=2"])


def start_directors(
    lab: Lab, configs: list[str], *, timeout_s: float = 240.0
) -> list[PykadFixture]:
    """Start pykad on the first routers with these configuration texts, all at once (each
    Python start costs tens of seconds under emulation), then wait for the election:
    director 1 MASTER, the others BACKUP."""
    daemons = [
        PykadFixture(node, text, label=f"director{i}")
        for i, (node, text) in enumerate(zip(lab.routers, configs, strict=False), 1)
    ]
    for d in daemons:
        d.start()
    try:
        daemons[0].wait_for_log("Entering MASTER STATE", timeout=timeout_s)
        for d in daemons[1:]:
            d.wait_for_log("Entering BACKUP STATE", timeout=timeout_s)
    except LogTimeout:
        for d in daemons:
            print(d.tail(60))
        raise
    return daemons


def read_ipvs(node: Node) -> dict[IpvsService, list[IpvsDest]]:
    """The IPVS table of ``node``'s namespace read back through pykad's adapter (pyroute2),
    by a Python process started in that namespace (an in-process setns does not work for
    IPVS destination requests here)."""
    out = node.run(
        [sys.executable, "-c", "from pykad.testing.lvs import print_ipvs; print_ipvs()"],
        timeout=300,
    )
    table: dict[IpvsService, list[IpvsDest]] = {}
    for entry in json.loads(out):
        svc = IpvsService(**_typed(entry["service"]))
        table[svc] = [IpvsDest(**_typed(d)) for d in entry["dests"]]
    return table


def _typed(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ipaddress.ip_address(v) if k == "address" and v is not None else v
        for k, v in fields.items()
    }


def print_ipvs() -> None:
    """Print this namespace's IPVS table as JSON (the other half of :func:`read_ipvs`)."""

    async def read() -> dict[IpvsService, list[IpvsDest]]:
        table = IpvsTable(modprobe=False)
        await table.open()
        try:
            return await table.read()
        finally:
            table.close()

    def plain(obj: IpvsService | IpvsDest) -> dict[str, Any]:
        fields = dataclasses.asdict(obj)
        if fields.get("address") is not None:
            fields["address"] = str(fields["address"])
        return fields

    entries = [
        {"service": plain(svc), "dests": [plain(d) for d in dests]}
        for svc, dests in asyncio.run(read()).items()
    ]
    sys.stdout.write(json.dumps(entries) + "\n")
