"""Golden packets from keepalived 2.2.7 (tests/golden/capture_keepalived.py) read by pykad.

Every VRRP packet keepalived sent is decoded and validated by pykad with the configured
fields and a valid checksum, and pykad's encoder rebuilds it byte for byte; keepalived's
gratuitous ARPs and unsolicited NAs equal pykad's frame builders byte for byte.
"""

from __future__ import annotations

import json
from collections import defaultdict
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6ND_NA, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap

from pykad.adapters.garp import build_garp, build_unsolicited_na
from pykad.proto import (
    Advert,
    PeerPolicy,
    RxPolicy,
    encode,
    parse_ipv4,
    v3_ipv6_checksum,
    validate,
)
from pykad.proto.constants import VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_TOS, VRRP_TTL

CAPTURES = Path(__file__).parent / "captures"
META: dict[str, Any] = json.loads((CAPTURES / "keepalived-2.2.7.json").read_text())
FRAMES = [bytes(p) for p in rdpcap(str(CAPTURES / "keepalived-2.2.7.pcap"))]
MAC = bytes.fromhex(META["r1_mac"].replace(":", ""))
R1_IPV4 = IPv4Address(META["r1_ipv4"])
INSTANCES = {inst["vrid"]: inst for inst in META["instances"]}
Address = IPv4Address | IPv6Address


def policy_for(inst: dict[str, Any]) -> RxPolicy:
    password = (inst["auth"] or "").encode().ljust(8, b"\x00")
    return RxPolicy(
        version=inst["version"],
        family=inst["family"],
        vrid=inst["vrid"],
        adver_int_cs=inst["advert_int_cs"],
        vips=tuple(ip_address(v) for v in inst["vips"]),
        auth_type=1 if inst["auth"] else 0,
        auth_data=password,
        # seen from a unicast peer: its one peer is the capturing router r1
        peers=(PeerPolicy(address=R1_IPV4),) if "unicast_peers" in inst else (),
        check_unicast_src="unicast_peers" in inst,
    )


def vrrp_packets() -> list[tuple[Address, Address, int, bytes, int | None]]:
    """(src, dst, ttl, VRRP message, IP total length) of every VRRP packet r1 sent."""
    out: list[tuple[Address, Address, int, bytes, int | None]] = []
    for raw in FRAMES:
        frame = Ether(raw)
        if frame.src != META["r1_mac"]:
            continue
        if IP in frame and frame[IP].proto == 112:
            dgram = parse_ipv4(bytes(frame[IP]))
            assert frame[IP].tos == VRRP_TOS  # spec §5.9: TOS 0xC0, TTL 255
            assert frame[IP].id != 0
            out.append((dgram.src, dgram.dst, dgram.ttl, dgram.payload, dgram.total_length))
        elif IPv6 in frame and frame[IPv6].nh == 112:
            ip6 = frame[IPv6]
            assert ip6.tc == VRRP_TOS
            src, dst = IPv6Address(ip6.src), IPv6Address(ip6.dst)
            out.append((src, dst, ip6.hlim, bytes(ip6.payload), None))
    return out


PACKETS = vrrp_packets()


def test_the_capture_has_every_instance_and_their_resignation() -> None:
    seen: dict[int, set[int]] = defaultdict(set)
    for _src, _dst, _ttl, payload, _total in PACKETS:
        seen[payload[1]].add(payload[2])
    assert {vrid: sorted(prios) for vrid, prios in seen.items()} == {
        vrid: sorted({0, inst["priority"]}) for vrid, inst in INSTANCES.items()
    }


@pytest.mark.parametrize("index", range(len(PACKETS)))
def test_keepalived_advert_validates_and_reencodes_identically(index: int) -> None:
    src, dst, ttl, payload, total = PACKETS[index]
    inst = INSTANCES[payload[1]]
    policy = policy_for(inst)
    assert ttl == VRRP_TTL
    if policy.unicast:
        assert dst in {ip_address(p) for p in inst["unicast_peers"]}
    else:
        assert dst == (VRRP_GROUP_V4 if inst["family"] == 4 else VRRP_GROUP_V6)
    advert = validate(src, dst, ttl, payload, policy, check_addresses=True, ip_total_length=total)
    assert advert == Advert(
        inst["version"],
        inst["vrid"],
        advert.priority,
        inst["advert_int_cs"],
        policy.vips,
        policy.auth_type,
        policy.auth_data,
    )
    assert advert.priority in (0, inst["priority"])
    assert encode(advert, src=src, dst=dst, ipv6_checksum=True) == payload
    if isinstance(src, IPv6Address) and isinstance(dst, IPv6Address):
        assert v3_ipv6_checksum(payload, src=src, dst=dst) == int.from_bytes(payload[6:8], "big")


def test_unicast_copies_carry_per_peer_checksums() -> None:
    unicast = [p for p in PACKETS if "unicast_peers" in INSTANCES[p[3][1]]]
    by_dst: dict[Address, set[bytes]] = defaultdict(set)
    for _src, dst, _ttl, payload, _total in unicast:
        by_dst[dst].add(payload[6:8])
    assert len(by_dst) == 2
    first, second = by_dst.values()
    assert first.isdisjoint(second)  # same advert, different pseudo-header destination


def test_gratuitous_arps_equal_pykads() -> None:
    announced: set[IPv4Address] = set()
    for raw in FRAMES:
        frame = Ether(raw)
        if ARP in frame and frame.src == META["r1_mac"] and frame[ARP].psrc == frame[ARP].pdst:
            vip = IPv4Address(frame[ARP].psrc)
            assert raw == build_garp(MAC, vip)
            announced.add(vip)
    expected = {IPv4Address(v) for i in INSTANCES.values() if i["family"] == 4 for v in i["vips"]}
    assert announced == expected


def test_unsolicited_nas_equal_pykads() -> None:
    announced: set[IPv6Address] = set()
    for raw in FRAMES:
        frame = Ether(raw)
        if ICMPv6ND_NA in frame and frame.src == META["r1_mac"]:
            vip = IPv6Address(frame[ICMPv6ND_NA].tgt)
            # forwarding is off in the capture namespace, so keepalived sent no Router flag
            assert raw == build_unsolicited_na(MAC, vip, router=False)
            announced.add(vip)
    expected = {IPv6Address(v) for i in INSTANCES.values() if i["family"] == 6 for v in i["vips"]}
    assert announced == expected
