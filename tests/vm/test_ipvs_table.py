"""pykad.adapters.ipvs against a real IPVS table (the VM guest's own, thrown away with it).

Everything pykad can ask of IPVS - address, fwmark and IPv6 services, every forwarding
method including a GUE tunnel with checksums, persistence with granularity, scheduler flags,
thresholds - is written, read back through pyroute2 and through ``ipvsadm -Ln``, edited by
re-adding, and removed idempotently.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import subprocess
from collections.abc import Iterator

import pytest

from pykad.adapters.ipvs import (
    FWD_DROUTE,
    FWD_MASQ,
    FWD_TUNNEL,
    SVC_F_PERSISTENT,
    SVC_F_SCHED1,
    SVC_F_SCHED2,
    TUN_F_CSUM,
    TUN_GUE,
    IpvsDest,
    IpvsService,
    IpvsTable,
)

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
TCP = IpvsService(
    family=socket.AF_INET, protocol=socket.IPPROTO_TCP, address=V4("192.0.2.50"), port=80
)
UDP = IpvsService(
    family=socket.AF_INET,
    protocol=socket.IPPROTO_UDP,
    address=V4("192.0.2.50"),
    port=53,
    scheduler="sh",
    flags=SVC_F_PERSISTENT | SVC_F_SCHED1 | SVC_F_SCHED2,
    timeout=300,
    netmask=24,
)
FWM = IpvsService(family=socket.AF_INET, fwmark=7, scheduler="rr")
TCP6 = IpvsService(
    family=socket.AF_INET6,
    protocol=socket.IPPROTO_TCP,
    address=V6("2001:db8::50"),
    port=443,
    scheduler="lc",
    flags=SVC_F_PERSISTENT,
    timeout=60,
    netmask=64,
)
SCTP = IpvsService(
    family=socket.AF_INET,
    protocol=socket.IPPROTO_SCTP,
    address=V4("192.0.2.51"),
    port=9,
    scheduler="rr",
)
NAT = IpvsDest(address=V4("198.51.100.21"), port=8080, forward=FWD_MASQ, weight=3)
DR = IpvsDest(address=V4("192.0.2.22"), port=80, forward=FWD_DROUTE, weight=1, u_threshold=50)
GUE = IpvsDest(
    address=V4("203.0.113.7"),
    port=80,
    forward=FWD_TUNNEL,
    tun_type=TUN_GUE,
    tun_port=6080,
    tun_flags=TUN_F_CSUM,
)
DR6 = IpvsDest(address=V6("2001:db8::22"), port=443, forward=FWD_DROUTE, weight=2)
PLAN = {TCP: [NAT, DR, GUE], UDP: [DR], FWM: [DR], TCP6: [DR6], SCTP: [NAT]}


@pytest.fixture
def ns() -> Iterator[None]:
    """The guest's root namespace: a namespace of our own would need the test process to
    move into it (setns), and IPVS destination requests then fail with EINVAL here."""
    assert os.environ.get("PYKAD_IN_VM") == "1", "only inside the throwaway VM guest"
    subprocess.run(["ipvsadm", "-C"], check=True)
    yield None
    subprocess.run(["ipvsadm", "-C"], check=True)


def ipvsadm(*args: str) -> str:
    return subprocess.run(
        ["ipvsadm", "-Ln", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


async def _exercise() -> dict[str, object]:
    table = IpvsTable()
    await table.open()
    seen: dict[str, object] = {}
    try:
        for svc, dests in PLAN.items():
            await table.add_service(svc)
            for d in dests:
                await table.add_dest(svc, d)
        seen["written"] = await table.read()
        seen["ipvsadm"] = ipvsadm()
        # adding what exists edits it (idempotent like the netlink adapter)
        await table.add_service(IpvsService(**{**_fields(TCP), "scheduler": "wrr"}))
        await table.add_dest(TCP, IpvsDest(**{**_fields(NAT), "weight": 9}))
        seen["edited"] = await table.read()
        # deleting what is gone is success
        for _ in range(2):
            await table.delete_dest(TCP, GUE)
            await table.delete_service(SCTP)
        seen["deleted"] = await table.read()
        await table.flush()
        seen["flushed"] = await table.read()
    finally:
        table.close()
    return seen


def _fields(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}  # type: ignore[attr-defined]


def _sorted(table: object) -> dict[IpvsService, list[IpvsDest]]:
    assert isinstance(table, dict)
    return {svc: sorted(dests, key=repr) for svc, dests in table.items()}


@pytest.mark.vm_inner
@pytest.mark.usefixtures("ns")
def test_every_kind_of_service_and_destination_round_trips() -> None:
    seen = asyncio.run(_exercise())
    assert _sorted(seen["written"]) == {svc: sorted(d, key=repr) for svc, d in PLAN.items()}

    text = str(seen["ipvsadm"])

    def line(start: str) -> str:
        found = [ln for ln in text.splitlines() if ln.startswith(start)]
        assert len(found) == 1, (start, text)
        return found[0]

    assert line("TCP  192.0.2.50:80 ").split()[2:] == ["wlc"]
    udp = line("UDP  192.0.2.50:53 ")
    assert re.search(r" sh \((flag-1,flag-2|sh-fallback,sh-port)\) ", udp), udp
    assert udp.endswith("persistent 300 mask 255.255.255.0"), udp
    assert line("FWM  7 ").split()[2:] == ["rr"]
    assert line("TCP  [2001:db8::50]:443 ").split()[2:] == ["lc", "persistent", "60", "mask", "64"]
    assert line("SCTP 192.0.2.51:9 ").split()[2:] == ["rr"]
    assert re.search(r"-> 198\.51\.100\.21:8080\s+Masq\s+3\s", text)
    assert re.search(r"-> 192\.0\.2\.22:80\s+Route\s+1\s", text)
    assert re.search(r"-> 203\.0\.113\.7:80\s+Tunnel\s+1\s", text)
    assert re.search(r"-> \[2001:db8::22\]:443\s+Route\s+2\s", text)

    edited = _sorted(seen["edited"])
    (tcp,) = [s for s in edited if s.key == TCP.key]
    assert tcp.scheduler == "wrr"
    assert {d.address: d.weight for d in edited[tcp]}[NAT.address] == 9

    deleted = _sorted(seen["deleted"])
    assert SCTP.key not in {s.key for s in deleted}
    assert GUE not in next(d for s, d in deleted.items() if s.key == TCP.key)
    assert seen["flushed"] == {}
