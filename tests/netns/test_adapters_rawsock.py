"""The raw VRRP socket pool on real sockets, between two router namespaces on one bridge.

Both pools run in this process's event loop; each opens its sockets inside its own namespace
(``VrrpSocketPool(netns=...)``), so what one sends crosses a real veth/bridge to the other.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from pykad.adapters.ports import ReceivedPacket
from pykad.adapters.rawsock import VrrpSender, VrrpSocketPool, open_socket
from pykad.config.model import IPAddress, UnicastPeer, VrrpInstance
from pykad.proto.advert import Advert, decode, encode, v3_ipv6_checksum
from pykad.proto.constants import IPPROTO_VRRP
from pykad.testing.netns import Lab, Node

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build network namespaces"),
]

VIP4 = ipaddress.IPv4Address("192.0.2.200")
VIP6 = ipaddress.IPv6Address("2001:db8::200")
G4 = ipaddress.IPv4Address("224.0.0.18")
G6 = ipaddress.IPv6Address("ff02::12")
WAIT_S = 5.0  # upper bound for a packet that must arrive; never reached when things work


@dataclass
class Inbox:
    """A receive callback that queues what it gets."""

    queue: asyncio.Queue[ReceivedPacket] = field(default_factory=asyncio.Queue)

    def __call__(self, packet: ReceivedPacket) -> None:
        self.queue.put_nowait(packet)

    async def get(self) -> ReceivedPacket:
        return await asyncio.wait_for(self.queue.get(), WAIT_S)


@pytest.fixture
def lab2() -> Iterator[Lab]:
    with Lab(routers=2, client=False) as lab:
        yield lab


@pytest_asyncio.fixture
async def pools(lab2: Lab) -> AsyncIterator[tuple[VrrpSocketPool, VrrpSocketPool]]:
    r1, r2 = lab2.routers
    p1, p2 = VrrpSocketPool(netns=r1.ns), VrrpSocketPool(netns=r2.ns)
    try:
        yield p1, p2
    finally:
        p1.close()
        p2.close()


def payload_v3(
    vrid: int, priority: int, src: IPAddress, vip: IPAddress
) -> Callable[[IPAddress], bytes]:
    advert = Advert(version=3, vrid=vrid, priority=priority, adver_int_cs=100, addresses=(vip,))
    return lambda dst: encode(advert, src=src, dst=dst)


def maddr(node: Node, dev: str = "eth0") -> list[str]:
    """The multicast groups joined on ``dev`` (``ip maddr``)."""
    out = json.loads(node.run(["ip", "-j", "maddr", "show", "dev", dev]))
    return [str(entry.get("address")) for link in out for entry in link.get("maddr", [])]


@pytest.mark.asyncio
async def test_ipv4_multicast_advert_crosses_with_keepalived_header(
    lab2: Lab, pools: tuple[VrrpSocketPool, VrrpSocketPool]
) -> None:
    r1, r2 = lab2.routers
    p1, p2 = pools
    in1, in2 = Inbox(), Inbox()
    s1 = p1.register(name="VI_1", ifname="eth0", family=4, vrid=51, callback=in1, source=r1.ip4)
    s2 = p2.register(name="VI_1", ifname="eth0", family=4, vrid=51, callback=in2, source=r2.ip4)
    # an independent observer in r2: a second raw socket sees the whole IPv4 header
    spy = open_socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP, r2.ns)
    spy.settimeout(WAIT_S)
    try:
        assert str(G4) in maddr(r2)  # joined on eth0 (ip maddr)

        s1.send(payload_v3(51, 150, r1.ip4, VIP4))
        s1.send(payload_v3(51, 150, r1.ip4, VIP4))
        first = await in2.get()
        assert (first.src, first.dst, first.ttl) == (r1.ip4, G4, 255)
        assert first.ip_total_length == 20 + len(first.payload)
        advert = decode(first.payload, family=4, src=first.src, dst=first.dst)
        assert (advert.vrid, advert.priority, advert.addresses) == (51, 150, (VIP4,))
        assert (s1.sent, s1.send_errors) == (2, 0)

        # keepalived's header (spec §5.9): TOS 0xC0, id 1 then 2, no DF, TTL 255, proto 112
        headers = [spy.recv(2048)[:20] for _ in range(2)]
        for n, header in enumerate(headers, start=1):
            ver_ihl, tos, _len, ident, frag, ttl, proto = struct.unpack("!BBHHHBB", header[:10])
            assert (ver_ihl, tos, ident, frag, ttl, proto) == (0x45, 0xC0, n, 0, 255, 112)

        # r1 never hears its own adverts (IP_MULTICAST_LOOP 0): the first thing it receives
        # is r2's answer, sent after r1's two adverts left.
        s2.send(payload_v3(51, 100, r2.ip4, VIP4))
        heard = await in1.get()
        assert heard.src == r2.ip4
        assert in1.queue.empty()
        assert p1.stats["rx_own"] == 0
    finally:
        spy.close()


@pytest.mark.asyncio
async def test_demultiplexed_by_vrid_and_flood_limited_per_wakeup(
    lab2: Lab, pools: tuple[VrrpSocketPool, VrrpSocketPool]
) -> None:
    r1, r2 = lab2.routers
    p1, p2 = pools
    loop = asyncio.get_running_loop()
    got: dict[int, list[ReceivedPacket]] = {10: [], 20: []}
    snapshots: list[tuple[int, int]] = []
    done = asyncio.Event()

    def on(vrid: int) -> Callable[[ReceivedPacket], None]:
        def cb(packet: ReceivedPacket) -> None:
            got[vrid].append(packet)
            if vrid == 10 and len(got[10]) == 2:
                # runs after this wake-up's drain: what had been delivered by then
                loop.call_soon(lambda: snapshots.append((len(got[10]), len(got[20]))))
            if len(got[10]) == 5 and len(got[20]) == 1:
                done.set()

        return cb

    tx10 = p1.register(name="A", ifname="eth0", family=4, vrid=10, callback=Inbox(), source=r1.ip4)
    tx20 = p1.register(name="B", ifname="eth0", family=4, vrid=20, callback=Inbox(), source=r1.ip4)
    p2.register(name="A", ifname="eth0", family=4, vrid=10, callback=on(10), source=r2.ip4)
    p2.register(name="B", ifname="eth0", family=4, vrid=20, callback=on(20), source=r2.ip4)
    assert (len(p1.channels()), len(p2.channels())) == (1, 1)  # one socket per interface

    # all six packets are queued on r2's socket before its reader first runs
    for _ in range(5):
        tx10.send(payload_v3(10, 100, r1.ip4, VIP4))
    tx20.send(payload_v3(20, 100, r1.ip4, VIP4))
    await asyncio.wait_for(done.wait(), WAIT_S)
    assert [p.payload[1] for p in got[10] + got[20]] == [10] * 5 + [20]
    # spec §5.7: one wake-up stops after the 2nd advert of one VRID; the rest came later
    assert snapshots[0] == (2, 0)


@pytest.mark.asyncio
async def test_a_burst_of_255_instances_x_3_adverts_is_not_dropped(
    lab2: Lab, pools: tuple[VrrpSocketPool, VrrpSocketPool]
) -> None:
    """keepalived's timers of N instances fire together, so N adverts arrive back to back;
    the socket's receive buffer must hold several such bursts while the loop is busy."""
    r1, r2 = lab2.routers
    p1, p2 = pools
    n, rounds = 255, 3
    count = [0]
    done = asyncio.Event()

    def cb(_packet: ReceivedPacket) -> None:
        count[0] += 1
        if count[0] == n * rounds:
            done.set()

    senders = [
        p1.register(name=f"V{i}", ifname="eth0", family=4, vrid=i, callback=Inbox(), source=r1.ip4)
        for i in range(1, n + 1)
    ]
    for i in range(1, n + 1):
        p2.register(name=f"V{i}", ifname="eth0", family=4, vrid=i, callback=cb, source=r2.ip4)
    # every packet is queued on r2's socket before its reader first runs (same event loop)
    for _ in range(rounds):
        for i, tx in enumerate(senders, start=1):
            tx.send(payload_v3(i, 100, r1.ip4, VIP4))
    await asyncio.wait_for(done.wait(), WAIT_S)
    assert count[0] == n * rounds


@pytest.mark.asyncio
@pytest.mark.parametrize("family", [4, 6])
async def test_byte_identical_repeats_are_absorbed_and_the_rest_delivered(
    lab2: Lab, pools: tuple[VrrpSocketPool, VrrpSocketPool], family: int
) -> None:
    """absorb_repeats: copies of the packet (IPv4: each with its own identification field)
    call on_repeat instead of the callback; another advert for the VRID, or any packet once
    the absorbing stopped, is delivered."""
    r1, r2 = lab2.routers
    p1, p2 = pools
    src1, src2 = (r1.ip4, r2.ip4) if family == 4 else (r1.link_local(), r2.link_local())
    vip = VIP4 if family == 4 else VIP6
    inbox = Inbox()
    repeats: list[float] = []
    three = asyncio.Event()

    def on_repeat(now: float) -> None:
        repeats.append(now)
        if len(repeats) == 3:
            three.set()

    tx = p1.register(name="A", ifname="eth0", family=family, vrid=30, callback=Inbox(), source=src1)
    rx = p2.register(name="A", ifname="eth0", family=family, vrid=30, callback=inbox, source=src2)
    steady, other = payload_v3(30, 100, src1, vip), payload_v3(30, 101, src1, vip)
    tx.send(steady)
    first = await inbox.get()
    rx.absorb_repeats(first, on_repeat)
    for _ in range(3):
        tx.send(steady)
    await asyncio.wait_for(three.wait(), WAIT_S)
    assert inbox.queue.empty()
    loop_now = asyncio.get_running_loop().time()
    assert all(t <= loop_now for t in repeats)
    tx.send(other)
    assert (await inbox.get()).payload[2] == 101  # not a repeat: the full path
    rx.absorb_repeats(None)
    tx.send(steady)
    assert (await inbox.get()).payload == first.payload
    assert len(repeats) == 3


@pytest.mark.asyncio
async def test_unicast_per_peer_copies_ttl_and_duplicate_vrids(
    lab2: Lab, pools: tuple[VrrpSocketPool, VrrpSocketPool]
) -> None:
    r1, r2 = lab2.routers
    p1, p2 = pools
    other_peer = ipaddress.IPv4Address("192.0.2.3")
    cfg = VrrpInstance(
        name="VI_U",
        vrid=7,
        interface="eth0",
        version=3,
        unicast_src_ip=r1.ip4,
        unicast_peers=(UnicastPeer(address=r2.ip4), UnicastPeer(address=other_peer)),
        unicast_ttl=17,
    )
    tx = p1.register_instance(cfg, Inbox(), source=r1.ip4)
    from_r1, from_other, mcast = Inbox(), Inbox(), Inbox()
    # r2 has two unicast instances with VRID 7, told apart by their peer (spec §5.7 step 2)
    p2.register(
        name="VI_X",
        ifname="eth0",
        family=4,
        vrid=7,
        callback=from_other,
        source=r2.ip4,
        unicast_peers=[other_peer],
    )
    p2.register(
        name="VI_U",
        ifname="eth0",
        family=4,
        vrid=7,
        callback=from_r1,
        source=r2.ip4,
        unicast_peers=[r1.ip4],
    )
    # and a multicast instance with the same VRID: it must not see unicast adverts
    p2.register(name="VI_M", ifname="eth0", family=4, vrid=7, callback=mcast, source=r2.ip4)

    dsts: list[IPAddress] = []
    advert = Advert(version=3, vrid=7, priority=100, adver_int_cs=100, addresses=(VIP4,))

    def build(dst: IPAddress) -> bytes:
        dsts.append(dst)
        return encode(advert, src=r1.ip4, dst=dst)

    tx.send(build)
    packet = await from_r1.get()
    assert dsts == [r2.ip4, other_peer]  # one copy per peer, in configuration order
    assert (packet.src, packet.dst, packet.ttl) == (r1.ip4, r2.ip4, 17)
    # the v3 checksum covers the real destination (spec §5.9)
    assert decode(packet.payload, family=4, src=r1.ip4, dst=r2.ip4).vrid == 7
    # a multicast advert on the same VRID reaches VI_M only, proving the sockets are apart
    p1.register(name="VI_M", ifname="eth0", family=4, vrid=7, callback=Inbox(), source=r1.ip4).send(
        payload_v3(7, 100, r1.ip4, VIP4)
    )
    assert (await mcast.get()).dst == G4
    assert (from_other.queue.qsize(), from_r1.queue.qsize()) == (0, 0)


@pytest.mark.asyncio
async def test_ipv6_link_local_source_and_kernel_checksum(
    lab2: Lab, pools: tuple[VrrpSocketPool, VrrpSocketPool]
) -> None:
    r1, r2 = lab2.routers
    p1, p2 = pools
    ll1 = r1.link_local()
    inbox = Inbox()
    tx = p1.register(name="VI_6", ifname="eth0", family=6, vrid=60, callback=Inbox(), source=ll1)
    p2.register(
        name="VI_6", ifname="eth0", family=6, vrid=60, callback=inbox, source=r2.link_local()
    )
    assert str(G6) in maddr(r2)

    advert = Advert(version=3, vrid=60, priority=200, adver_int_cs=50, addresses=(VIP6,))
    sent = encode(advert, src=ll1, dst=G6)
    assert sent[6:8] == b"\0\0"  # left for the kernel (IPV6_CHECKSUM offset 6)
    tx.send(lambda dst: sent)
    packet = await inbox.get()
    assert (packet.src, packet.dst, packet.ttl) == (ll1, G6, 255)
    # the kernel filled in the RFC 5798 5.2.8 checksum over the IPv6 pseudo-header
    assert packet.payload[6:8] != b"\0\0"
    assert int.from_bytes(packet.payload[6:8], "big") == v3_ipv6_checksum(
        packet.payload, src=ll1, dst=G6
    )
    assert decode(packet.payload, family=6, src=ll1, dst=G6) == advert


@pytest.mark.asyncio
async def test_send_without_source_or_interface_is_counted_not_raised(
    lab2: Lab, pools: tuple[VrrpSocketPool, VrrpSocketPool]
) -> None:
    r1, _ = lab2.routers
    p1, _ = pools
    tx: VrrpSender = p1.register(
        name="VI_1", ifname="eth0", family=4, vrid=1, callback=Inbox(), source=None
    )
    tx.send(payload_v3(1, 100, r1.ip4, VIP4))
    assert (tx.sent, tx.send_errors) == (0, 1)
    with pytest.raises(Exception, match="nope0"):
        p1.register(name="VI_2", ifname="nope0", family=4, vrid=2, callback=Inbox(), source=None)
    with pytest.raises(ValueError, match="already used"):
        p1.register(name="VI_3", ifname="eth0", family=4, vrid=1, callback=Inbox(), source=None)


@pytest.mark.asyncio
async def test_reopen_after_the_interface_is_recreated(
    lab2: Lab, pools: tuple[VrrpSocketPool, VrrpSocketPool]
) -> None:
    r1, r2 = lab2.routers
    p1, p2 = pools

    def make_link() -> None:
        # a direct veth r1:tst0 <-> r2:tst0, created inside the two namespaces
        r2.run(
            ["ip", "link", "add", "tst0", "type", "veth", "peer", "name", "tst0", "netns", r1.ns]
        )
        for node, ip in ((r1, "198.51.100.1/24"), (r2, "198.51.100.2/24")):
            node.run(["ip", "addr", "add", ip, "dev", "tst0"])
            node.run(["ip", "link", "set", "tst0", "up"])

    make_link()
    src = ipaddress.IPv4Address("198.51.100.1")
    inbox = Inbox()
    tx = p1.register(name="VI_T", ifname="tst0", family=4, vrid=9, callback=Inbox(), source=src)
    p2.register(name="VI_T", ifname="tst0", family=4, vrid=9, callback=inbox, source=None)
    tx.send(payload_v3(9, 100, src, VIP4))
    assert (await inbox.get()).src == src

    r2.run(["ip", "link", "del", "tst0"])  # takes r1's end with it
    make_link()  # same names, new ifindexes: the old sockets are bound to dead indexes
    p1.reopen("tst0")
    p2.reopen("tst0")
    assert str(G4) in maddr(r2, "tst0")  # membership re-joined on the new interface
    tx.send(payload_v3(9, 101, src, VIP4))
    packet = await inbox.get()
    assert packet.payload[2] == 101
