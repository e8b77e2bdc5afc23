"""Micro-benchmark of the VRRP codec: pykad's struct codec vs scapy, cached vs fresh.

Not a test (timing never goes into tests): prints one line per case, for BENCHMARKS.md.

    .venv/bin/python bench/codec.py
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

from scapy.layers.inet import IP
from scapy.layers.vrrp import VRRPv3
from scapy.packet import Raw

from pykad.adapters.garp import build_garp, build_unsolicited_na
from pykad.proto import Advert, AdvertEncoder, RxPolicy, decode, encode, validate
from pykad.proto.constants import VRRP_GROUP_V4

SRC = IPv4Address("192.0.2.1")
VIPS = tuple(IPv4Address(f"192.0.2.{10 + i}") for i in range(4))
V3 = Advert(3, 51, 100, 100, VIPS)
WIRE = encode(V3, src=SRC, dst=VRRP_GROUP_V4)
POLICY = RxPolicy(version=3, family=4, vrid=51, adver_int_cs=100, vips=VIPS)
MAC = bytes.fromhex("020000000001")


def scapy_build() -> bytes:
    pkt = IP(src=str(SRC), dst=str(VRRP_GROUP_V4)) / VRRPv3(
        vrid=51, priority=100, adv=100, addrlist=[str(v) for v in VIPS]
    )
    return bytes(pkt)[20:]


def measure(name: str, fn: Callable[[], object], number: int) -> None:
    best = min(timeit.repeat(fn, number=number, repeat=5)) / number
    print(f"{name:<44} {best * 1e6:9.2f} µs/op")


def main() -> None:
    enc = AdvertEncoder(V3, src=SRC)
    assert scapy_build() == WIRE  # same bytes, so the comparison is fair
    print("VRRPv3/IPv4 advert with 4 VIPs (best of 5 runs)")
    measure("pykad encode (struct, fresh)", lambda: encode(V3, src=SRC, dst=VRRP_GROUP_V4), 20000)
    measure("pykad AdvertEncoder.payload (cached)", lambda: enc.payload(100, VRRP_GROUP_V4), 200000)
    measure("scapy build (IP/VRRPv3, bytes)", scapy_build, 2000)
    measure("pykad decode", lambda: decode(WIRE, family=4, src=SRC, dst=VRRP_GROUP_V4), 20000)
    measure(
        "pykad validate (all §5.7 checks)",
        lambda: validate(SRC, VRRP_GROUP_V4, 255, WIRE, POLICY, check_addresses=True),
        20000,
    )
    datagram = bytes(IP(src=str(SRC), dst=str(VRRP_GROUP_V4), proto=112) / Raw(WIRE))
    assert VRRPv3 in IP(datagram)
    measure("scapy dissect (IP/VRRPv3)", lambda: IP(datagram), 2000)
    measure("pykad build_garp", lambda: build_garp(MAC, VIPS[0]), 50000)
    na_vip = IPv6Address("2001:db8::10")
    measure(
        "pykad build_unsolicited_na",
        lambda: build_unsolicited_na(MAC, na_vip, router=False),
        50000,
    )


if __name__ == "__main__":
    main()
