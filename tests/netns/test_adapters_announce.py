"""Gratuitous ARP / unsolicited NA from PacketAnnouncer, seen on the wire by a peer namespace.

The peer captures with its own AF_PACKET socket (an independent witness), and its kernel's
neighbour table is the end-to-end proof: the entries for the VIPs move to the sender's MAC.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import selectors
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from pykad.adapters.announce import PacketAnnouncer
from pykad.adapters.garp import build_garp, build_unsolicited_na
from pykad.adapters.netlink import NetlinkAddresses
from pykad.adapters.rawsock import open_socket
from pykad.config.model import VirtualAddress
from pykad.errors import AdapterError
from pykad.testing.netns import Lab, Node

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build network namespaces"),
]

VIP4 = ipaddress.IPv4Address("192.0.2.200")
VIP6 = ipaddress.IPv6Address("2001:db8::200")
BOGUS_MAC = "02:00:00:00:00:99"
ETH_P_ALL = 0x0003
WAIT_S = 5.0


def vip(text: str, **kw: object) -> VirtualAddress:
    return VirtualAddress(address=ipaddress.ip_interface(text), **kw)  # type: ignore[arg-type]


@pytest.fixture
def lab2() -> Iterator[Lab]:
    with Lab(routers=2, client=False) as lab:
        yield lab


@pytest_asyncio.fixture
async def announcer(lab2: Lab) -> AsyncIterator[PacketAnnouncer]:
    r1 = lab2.routers[0]
    async with NetlinkAddresses(netns=r1.ns) as nl:
        ann = PacketAnnouncer(nl, netns=r1.ns)
        try:
            yield ann
        finally:
            ann.close()


class Capture:
    """Every frame arriving on a node's eth0 (ETH_P_ALL packet socket inside its namespace)."""

    def __init__(self, node: Node) -> None:
        self.sock = open_socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL), node.ns)
        self.sock.bind((node.ifname, 0))
        self.sock.settimeout(WAIT_S)

    def announcements(self, count: int) -> list[bytes]:
        """The next ``count`` ARP requests / neighbour advertisements (other frames skipped)."""
        found: list[bytes] = []
        while len(found) < count:
            frame = self.sock.recv(2048)
            kind = frame[12:14]
            if kind == b"\x08\x06" or (
                kind == b"\x86\xdd" and len(frame) > 54 and frame[54] == 136
            ):
                found.append(frame)
        return found

    def close(self) -> None:
        self.sock.close()


def neighbours(node: Node) -> dict[str, str]:
    out = node.run(["ip", "-j", "neigh", "show", "dev", node.ifname])
    return {e["dst"]: e.get("lladdr", "") for e in json.loads(out)}


@pytest.mark.asyncio
async def test_garp_and_na_frames_and_the_peer_neighbour_table(
    lab2: Lab, announcer: PacketAnnouncer
) -> None:
    r1, r2 = lab2.routers
    mac = bytes.fromhex(r1.mac().replace(":", ""))
    # r2 believes the VIPs are somewhere else (a previous master)
    r2.run(["ip", "neigh", "add", str(VIP4), "lladdr", BOGUS_MAC, "dev", "eth0", "nud", "stale"])
    r2.run(["ip", "neigh", "add", str(VIP6), "lladdr", BOGUS_MAC, "dev", "eth0", "nud", "stale"])
    cap = Capture(r2)
    try:
        await announcer.announce(
            [vip("192.0.2.200/24"), vip("2001:db8::200/64")], 2, default_dev="eth0"
        )
        frames = cap.announcements(4)
    finally:
        cap.close()
    assert announcer.sent == 4
    assert announcer.sent_by == {("eth0", "arp"): 2, ("eth0", "na"): 2}
    # two rounds, each round every address once, in the given order (spec §5.5 step 6)
    garp, na = build_garp(mac, VIP4), build_unsolicited_na(mac, VIP6, router=False)
    assert [f[: len(garp)] if f[12:14] == b"\x08\x06" else f[: len(na)] for f in frames] == [
        garp,
        na,
        garp,
        na,
    ]
    # keepalived's fields, read by scapy (spec §5.9)
    arp = Ether(frames[0])
    assert arp.dst == "ff:ff:ff:ff:ff:ff"
    assert arp[ARP].op == 1
    assert (arp[ARP].psrc, arp[ARP].pdst, arp[ARP].hwdst) == (
        str(VIP4),
        str(VIP4),
        "ff:ff:ff:ff:ff:ff",
    )
    assert arp[ARP].hwsrc == r1.mac()
    adv = Ether(frames[1])
    assert (adv.dst, adv[IPv6].src, adv[IPv6].dst, adv[IPv6].hlim) == (
        "33:33:00:00:00:01",
        str(VIP6),
        "ff02::1",
        255,
    )
    assert (adv[ICMPv6ND_NA].R, adv[ICMPv6ND_NA].S, adv[ICMPv6ND_NA].O) == (0, 0, 1)
    assert adv[ICMPv6NDOptDstLLAddr].lladdr == r1.mac()
    # the peer's kernel accepted them: its entries now point at r1
    table = neighbours(r2)
    assert (table[str(VIP4)], table[str(VIP6)]) == (r1.mac(), r1.mac())


@pytest.mark.asyncio
async def test_router_flag_follows_ipv6_forwarding(lab2: Lab, announcer: PacketAnnouncer) -> None:
    r1, r2 = lab2.routers
    r1.run(["sysctl", "-q", "-w", "net.ipv6.conf.eth0.forwarding=1"])
    cap = Capture(r2)
    try:
        await announcer.announce([vip("2001:db8::200/64")], 1, default_dev="eth0")
        (frame,) = cap.announcements(1)
    finally:
        cap.close()
    assert Ether(frame)[ICMPv6ND_NA].R == 1


@pytest.mark.asyncio
async def test_noarp_interface_and_missing_interface(lab2: Lab, announcer: PacketAnnouncer) -> None:
    r1, _ = lab2.routers
    r1.run(["ip", "link", "set", "eth0", "arp", "off"])
    await announcer.announce([vip("192.0.2.200/24")], 3, default_dev="eth0")
    assert (announcer.sent, announcer.skipped) == (0, 3)
    r1.run(["ip", "link", "set", "eth0", "arp", "on"])
    with pytest.raises(AdapterError, match="nope0"):
        await announcer.announce(
            [vip("192.0.2.201/24", dev="nope0"), vip("192.0.2.200/24")], 1, default_dev="eth0"
        )
    assert announcer.sent == 1  # the address on the existing interface still went out


# -- pacing, in virtual time -----------------------------------------------------------------


class _JumpingSelector(selectors.DefaultSelector):
    """Real I/O (netlink, packet sockets), but a pending timer is reached without sleeping."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._vloop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            return super().select(WAIT_S)  # only real I/O can make progress
        self._vloop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def test_garp_interval_paces_concurrent_bursts_per_interface(lab2: Lab) -> None:
    r1, _ = lab2.routers
    loop = VirtualTimeLoop()
    sent_at: list[tuple[float, bytes]] = []

    async def scenario() -> None:
        async with NetlinkAddresses(netns=r1.ns) as nl:
            ann = PacketAnnouncer(nl, netns=r1.ns, garp_interval_s=0.5, gna_interval_s=0.25)
            real_send = ann._send

            def recording_send(iface: object, frame: bytes) -> None:
                sent_at.append((loop.time(), frame))
                real_send(iface, frame)  # type: ignore[arg-type]

            ann._send = recording_send  # type: ignore[method-assign]
            try:
                # three instances announcing at once on one interface share its pacing
                await asyncio.gather(
                    ann.announce(
                        [vip("192.0.2.200/24"), vip("192.0.2.202/24")], 1, default_dev="eth0"
                    ),
                    ann.announce(
                        [vip("2001:db8::200/64"), vip("2001:db8::201/64")], 1, default_dev="eth0"
                    ),
                    ann.announce([vip("192.0.2.201/24")], 1, default_dev="eth0"),
                )
            finally:
                ann.close()

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
    garps = [t for t, f in sent_at if f[12:14] == b"\x08\x06"]
    nas = [t for t, f in sent_at if f[12:14] == b"\x86\xdd"]
    # vrrp_garp_interval: one GARP per 0.5 s on eth0 across all bursts; vrrp_gna_interval:
    # NAs keep their own 0.25 s clock on the same interface
    assert [round(t - garps[0], 6) for t in garps] == [0.0, 0.5, 1.0]
    assert [round(t - nas[0], 6) for t in nas] == [0.0, 0.25]
