"""The raw socket pool against keepalived 2.2.7 itself: adverts pykad's sockets send are
accepted by keepalived, and keepalived's adverts are received and decoded by pykad.

Adapter level only (no pykad daemon): keepalived runs as BACKUP in r2, becomes MASTER when
nothing is heard, and pykad's receive side in r1 decodes its adverts; then pykad's socket sends
higher-priority adverts from r1 and keepalived must yield ("Master received advert ... with
higher priority"). That proves the IPv4 header (IP_HDRINCL), the v3 checksum over the real
pseudo-header, the v2 password trailer and the IPv6 kernel checksum / link-local source are
all what keepalived expects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Iterator

import pytest

from pykad.adapters.ports import ReceivedPacket
from pykad.adapters.rawsock import VrrpSocketPool
from pykad.config.model import IPAddress
from pykad.proto.advert import Advert, decode, encode
from pykad.testing.keepalived import KEEPALIVED, DaemonConfig, Instance, KeepalivedFixture
from pykad.testing.netns import Lab

pytestmark = [
    pytest.mark.netns,
    pytest.mark.interop,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build network namespaces"),
    pytest.mark.skipif(KEEPALIVED is None, reason="keepalived is not installed"),
]

WAIT_S = 15.0


@pytest.fixture
def lab2() -> Iterator[Lab]:
    with Lab(routers=2, client=False) as lab:
        yield lab


@pytest.mark.parametrize(
    ("version", "family", "advert_int", "auth"),
    [
        pytest.param(2, 4, 1.0, "s3cret", id="v2-auth-pass"),
        pytest.param(3, 4, 0.1, None, id="v3-ipv4"),
        pytest.param(3, 6, 0.1, None, id="v3-ipv6"),
    ],
)
@pytest.mark.asyncio
async def test_keepalived_accepts_our_adverts_and_we_decode_its_own(
    lab2: Lab, version: int, family: int, advert_int: float, auth: str | None
) -> None:
    r1, r2 = lab2.routers
    vip: IPAddress = ipaddress.ip_address("192.0.2.254" if family == 4 else "2001:db8::254")
    conf = DaemonConfig(
        router_id="r2",
        instances=(
            Instance(
                vrid=42,
                priority=100,
                version=version,
                advert_int=advert_int,
                auth_pass=auth,
                vips=(f"{vip}/{24 if family == 4 else 64}",),
            ),
        ),
    )
    heard: asyncio.Queue[ReceivedPacket] = asyncio.Queue()
    src = r1.ip4 if family == 4 else r1.link_local()
    pool = VrrpSocketPool(netns=r1.ns)
    ka = KeepalivedFixture(r2, conf)
    try:
        tx = pool.register(
            name="VI_1",
            ifname="eth0",
            family=family,
            vrid=42,
            callback=heard.put_nowait,
            source=src,
        )
        ka.start()
        await asyncio.to_thread(ka.wait_for_log, "(VI_1) Entering MASTER STATE", WAIT_S)

        # keepalived -> pykad: its adverts arrive with TTL 255 and decode cleanly
        packet = await asyncio.wait_for(heard.get(), WAIT_S)
        peer = r2.ip4 if family == 4 else r2.link_local()
        assert (packet.src, packet.ttl) == (peer, 255)
        theirs = decode(packet.payload, family=family, src=packet.src, dst=packet.dst)
        assert (theirs.version, theirs.vrid, theirs.priority, theirs.addresses) == (
            version,
            42,
            100,
            (vip,),
        )
        if auth is not None:
            assert theirs.auth_data == auth.encode().ljust(8, b"\0")

        # pykad -> keepalived: a higher-priority master appears; keepalived must step down
        ours = Advert(
            version=version,
            vrid=42,
            priority=200,
            adver_int_cs=round(advert_int * 100),
            addresses=(vip,),
            auth_type=1 if auth else 0,
            auth_data=(auth or "").encode().ljust(8, b"\0"),
        )

        async def advertise() -> None:
            while True:
                tx.send(lambda dst: encode(ours, src=src, dst=dst))
                await asyncio.sleep(advert_int)

        since = ka.mark()
        sender = asyncio.create_task(advertise())
        try:
            line = await asyncio.to_thread(
                ka.wait_for_log, "with higher priority 200, ours 100", WAIT_S, since
            )
            assert f"from {src}" in line
            await asyncio.to_thread(ka.wait_for_log, "(VI_1) Entering BACKUP STATE", WAIT_S, since)
        finally:
            sender.cancel()
        assert tx.send_errors == 0
    finally:
        ka.close()
        pool.close()
