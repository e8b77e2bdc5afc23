"""VRRP wire format: bytes <-> dataclasses. Pure; no sockets, no clock.

RFC 3768 (VRRPv2), RFC 5798 / RFC 9568 (VRRPv3), keepalived's checksum and validation rules
(spec §5.7, §5.9). Must never import asyncio, socket, time, random or subprocess.
"""

from pykad.proto.advert import (
    Advert,
    AdvertEncoder,
    IPv4Datagram,
    decode,
    encode,
    parse_ipv4,
    v3_ipv6_checksum,
)
from pykad.proto.errors import DecodeError, Discard
from pykad.proto.validate import PeerPolicy, RxPolicy, address_check_applies, peek_vrid, validate

__all__ = [
    "Advert",
    "AdvertEncoder",
    "DecodeError",
    "Discard",
    "IPv4Datagram",
    "PeerPolicy",
    "RxPolicy",
    "address_check_applies",
    "decode",
    "encode",
    "parse_ipv4",
    "peek_vrid",
    "v3_ipv6_checksum",
    "validate",
]
