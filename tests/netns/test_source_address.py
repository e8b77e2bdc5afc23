"""The advert source follows the interface's primary address, and our VIPs never become it.

Spec §3.1: without ``mcast_src_ip``/``unicast_src_ip`` the source is the interface's primary
IPv4 address. The daemon re-reads it on address events; installing its own VIPs (many of
them, in subnets of their own, so not secondary addresses) must not change it, and replacing
the primary address must move the adverts to the new one. Observed on the wire with tcpdump
on the lab's bridge."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from pykad.testing.keepalived import DaemonConfig, Instance, PykadFixture, entering
from pykad.testing.netns import BRIDGE, Lab, Node, is_root

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not is_root(), reason="needs root for network namespaces"),
]

# /32 VIPs: each is a primary address of its own subnet as far as the kernel is concerned
VIPS = tuple(f"203.0.113.{i}/32" for i in range(1, 21))
NEW_PRIMARY = "198.51.100.9"


@pytest.fixture
def lab1() -> Iterator[Lab]:
    with Lab(routers=1, client=False) as lab:
        yield lab


def advert_from(lab: Lab, source: str, timeout: int = 15) -> bool:
    """True when the bridge sees a VRRP advert from ``source`` within ``timeout`` seconds."""
    proc = subprocess.run(
        [
            *("ip", "netns", "exec", lab.bridge_ns, "timeout", str(timeout)),
            *("tcpdump", "-i", BRIDGE, "-n", "-c", "1", f"ip proto 112 and src host {source}"),
        ],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def start(r1: Node) -> PykadFixture:
    inst = Instance(state="MASTER", priority=255, version=3, advert_int=0.1, vips=VIPS)
    daemon = PykadFixture(r1, DaemonConfig(router_id="r1", instances=(inst,)))
    daemon.start()
    daemon.wait_for_log(entering("MASTER"), timeout=30)
    for vip in VIPS:
        r1.wait_address(vip.split("/")[0], timeout=10)
    return daemon


def test_vips_leave_the_source_and_a_new_primary_takes_it(lab1: Lab) -> None:
    r1 = lab1.routers[0]
    with start(r1):
        assert advert_from(lab1, str(r1.ip4))
        r1.run(["ip", "addr", "add", f"{NEW_PRIMARY}/24", "dev", r1.ifname])
        assert advert_from(lab1, str(r1.ip4)), "a second primary address moved the source"
        r1.run(["ip", "addr", "del", f"{r1.ip4}/24", "dev", r1.ifname])
        assert advert_from(lab1, NEW_PRIMARY), "the source did not follow the primary address"
