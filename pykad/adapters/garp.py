"""Gratuitous ARP and unsolicited Neighbour Advertisement frames (spec §5.9), as pure builders.

The frames are exactly keepalived's, so a capture of either daemon looks the same:

* GARP (RFC 5227 3 "ARP Announcement" in keepalived's REQUEST form): Ethernet broadcast,
  ARP REQUEST, sender MAC/IP = interface MAC / VIP, target MAC ff:ff:ff:ff:ff:ff (keepalived
  uses broadcast, not zero), target IP = VIP. 42 bytes; the NIC pads to 60.
* Unsolicited NA (RFC 4861 4.4, 7.2.6): Ethernet 33:33:00:00:00:01, IPv6 from the VIP to
  ff02::1 with hop limit 255 (RFC 4861 7.1.2 requires it on receive), ICMPv6 136 with the
  Override flag (+ Router when forwarding is on), target = VIP and the target link-layer
  address option (type 2) = interface MAC.

The constant parts are prebuilt once; a call only joins bytes and computes one checksum, so
announcing many VIPs costs microseconds and scapy stays off this path (it is the tests'
oracle). The AF_PACKET sender lives with the other adapters.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Final

from pykad.proto.checksum import internet_checksum

BROADCAST_MAC: Final = b"\xff" * 6
ALL_NODES_MAC: Final = bytes.fromhex("333300000001")  # RFC 2464 7: 33:33 + low 32 bits
ALL_NODES: Final = IPv6Address("ff02::1")
ETH_P_ARP: Final = 0x0806
ETH_P_IPV6: Final = 0x86DD
IPPROTO_ICMPV6: Final = 58
ND_NEIGHBOR_ADVERT: Final = 136
NA_FLAG_ROUTER: Final = 0x80000000  # RFC 4861 4.4 R
NA_FLAG_OVERRIDE: Final = 0x20000000  # RFC 4861 4.4 O
ND_OPT_TARGET_LL_ADDR: Final = 2

# ARP after the sender MAC: htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, op 1 (REQUEST)
_ARP_FIXED: Final = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
_ETH_ARP_TAIL: Final = ETH_P_ARP.to_bytes(2, "big") + _ARP_FIXED

_NA_LEN: Final = 24 + 8  # ICMPv6 NA with the target address, plus one 8-byte option
# IPv6: version 6, traffic class 0, flow 0; payload length; next header 58; hop limit 255
_IPV6_FIXED: Final = struct.pack("!IHBB", 6 << 28, _NA_LEN, IPPROTO_ICMPV6, 255)
# ICMPv6 checksum pseudo-header tail (RFC 8200 8.1): upper-layer length, zeros, next header
_PSEUDO_TAIL: Final = struct.pack("!I3xB", _NA_LEN, IPPROTO_ICMPV6)
_OPT_HEAD: Final = bytes((ND_OPT_TARGET_LL_ADDR, 1))


def _check_mac(mac: bytes) -> None:
    if len(mac) != 6:
        raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")


def build_garp(mac: bytes, ip: IPv4Address) -> bytes:
    """The gratuitous ARP frame announcing ``ip`` at ``mac`` (keepalived's form, §5.9)."""
    _check_mac(mac)
    vip = ip.packed
    return b"".join((BROADCAST_MAC, mac, _ETH_ARP_TAIL, mac, vip, BROADCAST_MAC, vip))


def build_unsolicited_na(mac: bytes, ip: IPv6Address, *, router: bool) -> bytes:
    """The unsolicited NA frame announcing ``ip`` at ``mac``; ``router`` sets the R flag
    (keepalived sets it when IPv6 forwarding is enabled on the interface)."""
    _check_mac(mac)
    vip = ip.packed
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    option = _OPT_HEAD + mac
    icmp_body = flags.to_bytes(4, "big") + vip + option
    csum = internet_checksum(
        vip + ALL_NODES.packed + _PSEUDO_TAIL + bytes((ND_NEIGHBOR_ADVERT, 0, 0, 0)) + icmp_body
    )
    return b"".join(
        (
            ALL_NODES_MAC,
            mac,
            ETH_P_IPV6.to_bytes(2, "big"),
            _IPV6_FIXED,
            vip,
            ALL_NODES.packed,
            bytes((ND_NEIGHBOR_ADVERT, 0)),
            csum.to_bytes(2, "big"),
            icmp_body,
        )
    )
