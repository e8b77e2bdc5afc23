"""The VRRP advertisement: a frozen dataclass, ``encode`` and ``decode`` (spec §5.9).

VRRPv2 (RFC 3768 5.1), IPv4 only::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   Auth Type   |   Adver Int   |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                         IP Address (1)                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                            .......                            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     Authentication Data (1)                   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     Authentication Data (2)                   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

VRRPv3 (RFC 5798 / RFC 9568 5.1), IPv4 or IPv6 addresses, no authentication::

    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |(rsvd) |     Max Adver Int     |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                       IPvX Address(es)                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Intervals are kept in centiseconds, the v3 wire unit: a v2 advert's whole seconds decode to
``seconds * 100``. For IPv6 the kernel fills and verifies the checksum of a raw socket with
``setsockopt(IPPROTO_IPV6, IPV6_CHECKSUM, 6)``, so :func:`encode` leaves it 0 unless
``ipv6_checksum=True`` (AF_PACKET senders, tests, golden comparisons).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address
from typing import Final, NamedTuple

from pykad.proto.checksum import vrrp_checksum
from pykad.proto.constants import (
    AUTH_DATA_LEN,
    AUTH_NONE,
    AUTH_PASS,
    CHECKSUM_OFFSET,
    CS_PER_SECOND,
    HEADER_LEN,
    IPV4_HEADER_LEN,
    MAX_ADDRESSES,
    TYPE_ADVERTISEMENT,
    V2_MAX_ADVER_INT_S,
    V3_MAX_ADVER_INT_CS,
    VERSION_2,
    VERSION_3,
    VRID_MAX,
    VRID_MIN,
)
from pykad.proto.errors import DecodeError, Discard

IPAddress = IPv4Address | IPv6Address

NO_AUTH_DATA: Final = b"\x00" * AUTH_DATA_LEN

_HEADER = struct.Struct("!BBBBBBH")  # vers/type, vrid, priority, count, b4, b5, checksum
_V3_HEADER = struct.Struct("!BBBBHH")  # vers/type, vrid, priority, count, rsvd|int, checksum


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP ADVERTISEMENT (type 1). v3 adverts carry ``auth_type=0`` and zero auth data."""

    version: int
    vrid: int
    priority: int
    adver_int_cs: int
    addresses: tuple[IPAddress, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = NO_AUTH_DATA


def _family_of(src: IPAddress, dst: IPAddress) -> int:
    if src.version != dst.version:
        raise ValueError(f"source {src} and destination {dst} are of different families")
    return src.version


def address_size(family: int) -> int:
    return 4 if family == 4 else 16


def message_length(version: int, count: int, family: int) -> int:
    """Length of a VRRP message: header, addresses, and the v2 auth trailer on IPv4
    (RFC 3768 5.1; keepalived's expected_vrrp_pkt_len, spec §5.7 check 5)."""
    auth = AUTH_DATA_LEN if version == VERSION_2 and family == 4 else 0
    return HEADER_LEN + count * address_size(family) + auth


def _check_encodable(advert: Advert, family: int) -> None:
    """Our own misuse raises loudly (STYLE H.3): only RFC-valid adverts are encoded."""
    if advert.version not in (VERSION_2, VERSION_3):
        raise ValueError(f"VRRP version {advert.version} is not 2 or 3")
    if advert.version == VERSION_2 and family != 4:
        raise ValueError("VRRPv2 is IPv4 only (RFC 3768 5.1); IPv6 needs version 3")
    if not VRID_MIN <= advert.vrid <= VRID_MAX:
        raise ValueError(f"VRID {advert.vrid} out of range 1..255")
    if not 0 <= advert.priority <= 255:
        raise ValueError(f"priority {advert.priority} out of range 0..255")
    if len(advert.addresses) > MAX_ADDRESSES:
        raise ValueError(f"{len(advert.addresses)} addresses; an advert holds at most 255")
    if any(a.version != family for a in advert.addresses):
        raise ValueError(f"advert addresses must all be IPv{family}")
    if advert.version == VERSION_2:
        seconds, rest = divmod(advert.adver_int_cs, CS_PER_SECOND)
        if rest or not 1 <= seconds <= V2_MAX_ADVER_INT_S:
            raise ValueError(
                f"VRRPv2 interval {advert.adver_int_cs} cs is not a whole 1..255 seconds"
            )
        if advert.auth_type not in (AUTH_NONE, AUTH_PASS):
            raise ValueError(f"VRRPv2 auth type {advert.auth_type} is not sent by pykad")
        if len(advert.auth_data) != AUTH_DATA_LEN:
            raise ValueError("VRRPv2 authentication data is exactly 8 bytes")
    else:
        if not 1 <= advert.adver_int_cs <= V3_MAX_ADVER_INT_CS:
            raise ValueError(f"VRRPv3 interval {advert.adver_int_cs} cs out of range 1..4095")
        if advert.auth_type != AUTH_NONE or advert.auth_data != NO_AUTH_DATA:
            raise ValueError("VRRPv3 has no authentication (RFC 5798 9)")


def encode(
    advert: Advert,
    *,
    src: IPAddress,
    dst: IPAddress,
    checksum_as_v2: bool = False,
    ipv6_checksum: bool = False,
) -> bytes:
    """The VRRP message for ``advert`` sent from ``src`` to ``dst`` (no IP header).

    The family comes from ``src``/``dst``. v3/IPv4 checksums cover the pseudo-header with
    the actual ``dst`` (one checksum per unicast peer) unless ``checksum_as_v2`` (RFC 9568).
    IPv6: checksum left 0 for the kernel (IPV6_CHECKSUM) unless ``ipv6_checksum``.
    Raises ValueError for an advert pykad must never send.
    """
    family = _family_of(src, dst)
    _check_encodable(advert, family)
    vers_type = advert.version << 4 | TYPE_ADVERTISEMENT
    count = len(advert.addresses)
    if advert.version == VERSION_2:
        header = _HEADER.pack(
            vers_type,
            advert.vrid,
            advert.priority,
            count,
            advert.auth_type,
            advert.adver_int_cs // CS_PER_SECOND,
            0,
        )
        trailer = advert.auth_data
    else:
        # RFC 5798 5.2.6: the 4 reserved bits are sent as 0
        header = _V3_HEADER.pack(
            vers_type, advert.vrid, advert.priority, count, advert.adver_int_cs, 0
        )
        trailer = b""
    message = b"".join((header, *(a.packed for a in advert.addresses), trailer))
    if family == 6 and not ipv6_checksum:
        return message
    csum = vrrp_checksum(
        message, version=advert.version, src=src, dst=dst, checksum_as_v2=checksum_as_v2
    )
    return message[:CHECKSUM_OFFSET] + csum.to_bytes(2, "big") + message[HEADER_LEN:]


def v3_ipv6_checksum(message: bytes, *, src: IPv6Address, dst: IPv6Address) -> int:
    """The checksum the kernel puts in (and expects of) a VRRPv3 IPv6 ``message``.

    Computed with the checksum field zeroed, so it works on a message from :func:`encode`
    (0 there) as well as on a captured one.
    """
    zeroed = message[:CHECKSUM_OFFSET] + b"\x00\x00" + message[HEADER_LEN:]
    return vrrp_checksum(zeroed, version=VERSION_3, src=src, dst=dst)


def _addresses(payload: bytes, count: int, family: int) -> tuple[IPAddress, ...]:
    cls: type[IPv4Address] | type[IPv6Address] = IPv4Address if family == 4 else IPv6Address
    size = address_size(family)
    end = HEADER_LEN + count * size
    return tuple(cls(payload[i : i + size]) for i in range(HEADER_LEN, end, size))


def build_advert(payload: bytes, family: int) -> Advert:
    """The Advert in a message whose version, length and checksum were already checked."""
    version = payload[0] >> 4
    count = payload[3]
    addresses = _addresses(payload, count, family)
    if version == VERSION_2:
        return Advert(
            version,
            payload[1],
            payload[2],
            payload[5] * CS_PER_SECOND,
            addresses,
            payload[4],
            payload[-AUTH_DATA_LEN:],  # v2 is IPv4 only: decode/validate checked that
        )
    # RFC 5798 5.2.7: the reserved upper 4 bits are ignored on receive
    return Advert(
        version,
        payload[1],
        payload[2],
        int.from_bytes(payload[4:6], "big") & V3_MAX_ADVER_INT_CS,
        addresses,
    )


def checksum_ok(
    payload: bytes, *, version: int, src: IPAddress, dst: IPAddress, checksum_as_v2: bool
) -> bool:
    return (
        vrrp_checksum(payload, version=version, src=src, dst=dst, checksum_as_v2=checksum_as_v2)
        == 0
    )


def decode(
    payload: bytes,
    *,
    family: int,
    src: IPAddress,
    dst: IPAddress,
    checksum_as_v2: bool = False,
    verify_checksum: bool = True,
) -> Advert:
    """Parse a VRRP message (without IP header) received from ``src`` at ``dst``.

    Checks only what makes the bytes an advertisement (length, version, type, checksum);
    instance policy is :func:`pykad.proto.validate.validate`. Raises DecodeError only.
    """
    if len(payload) < HEADER_LEN:
        raise DecodeError(Discard.TOO_SHORT, f"packet too short - {len(payload)} bytes")
    version = payload[0] >> 4
    if version not in (VERSION_2, VERSION_3) or (version == VERSION_2 and family != 4):
        raise DecodeError(Discard.VERSION, f"wrong version. Received {version}")
    kind = payload[0] & 0x0F
    if kind != TYPE_ADVERTISEMENT:
        raise DecodeError(
            Discard.INVALID_TYPE, f"Invalid packet type. {kind} and expect {TYPE_ADVERTISEMENT}"
        )
    expected = message_length(version, payload[3], family)
    if len(payload) != expected:
        raise DecodeError(Discard.PACKET_LEN, length_detail(len(payload), expected))
    if verify_checksum and not checksum_ok(
        payload, version=version, src=src, dst=dst, checksum_as_v2=checksum_as_v2
    ):
        raise DecodeError(Discard.CHECKSUM, f"Invalid VRRPv{version} checksum")
    return build_advert(payload, family)


def length_detail(length: int, expected: int) -> str:
    """keepalived's words for a length mismatch (spec §5.7 check 5)."""
    return (
        f"vrrp packet too {'long' if length > expected else 'short'}, "
        f"length {length} and expect {expected}"
    )


class IPv4Datagram(NamedTuple):
    """A received raw IPv4 datagram, split for the VRRP receive path."""

    src: IPv4Address
    dst: IPv4Address
    ttl: int
    protocol: int
    # The Total Length field minus any option bytes: equals 20 + len(payload) exactly when
    # the field matches the bytes received (spec §5.7 check 11). VRRP senders use IHL 5, for
    # which this is the raw field.
    total_length: int
    payload: bytes  # everything after the header (not cut to total_length: check 5 sees it)


def parse_ipv4(packet: bytes) -> IPv4Datagram:
    """Split a datagram read from a raw IPv4 socket (header included). IP options are
    tolerated: the header length comes from IHL. Raises DecodeError only."""
    if len(packet) < IPV4_HEADER_LEN:
        raise DecodeError(Discard.TOO_SHORT, f"IPv4 VRRP packet too short - {len(packet)} bytes")
    version, ihl = packet[0] >> 4, (packet[0] & 0x0F) * 4
    if version != 4 or ihl < IPV4_HEADER_LEN:
        raise DecodeError(Discard.IP_HEADER, f"not an IPv4 header (version {version}, IHL {ihl})")
    if len(packet) < ihl + HEADER_LEN:
        raise DecodeError(Discard.TOO_SHORT, f"IPv4 VRRP packet too short - {len(packet)} bytes")
    total = int.from_bytes(packet[2:4], "big")
    return IPv4Datagram(
        IPv4Address(packet[12:16]),
        IPv4Address(packet[16:20]),
        packet[8],
        packet[9],
        total - (ihl - IPV4_HEADER_LEN),
        packet[ihl:],
    )


class AdvertEncoder:
    """Encoded adverts of one instance, built once per (priority, destination) and reused.

    Only the priority changes between the adverts of a steady instance (its own, the
    effective priority after tracking, 0 on resign), and v3 checksums depend on the
    destination (each unicast peer), so that pair is the cache key. ``update`` replaces
    the advert's addresses, interval or the source, and drops the cache.
    """

    __slots__ = ("_advert", "_cache", "_checksum_as_v2", "_ipv6_checksum", "_src")

    def __init__(
        self,
        advert: Advert,
        *,
        src: IPAddress,
        checksum_as_v2: bool = False,
        ipv6_checksum: bool = False,
    ) -> None:
        _check_encodable(advert, src.version)
        self._advert = advert
        self._src = src
        self._checksum_as_v2 = checksum_as_v2
        self._ipv6_checksum = ipv6_checksum
        self._cache: dict[tuple[int, IPAddress], bytes] = {}

    @property
    def advert(self) -> Advert:
        return self._advert

    def payload(self, priority: int, dst: IPAddress) -> bytes:
        """The advert with ``priority`` for ``dst`` (cached)."""
        key = (priority, dst)
        data = self._cache.get(key)
        if data is None:
            data = encode(
                replace(self._advert, priority=priority),
                src=self._src,
                dst=dst,
                checksum_as_v2=self._checksum_as_v2,
                ipv6_checksum=self._ipv6_checksum,
            )
            self._cache[key] = data
        return data

    def payload_for(self, priority: int) -> Callable[[IPAddress], bytes]:
        """``PacketPort.send``'s ``payload_for`` argument for an advert with ``priority``."""

        def build(dst: IPAddress) -> bytes:
            return self.payload(priority, dst)

        return build

    def update(
        self,
        *,
        addresses: tuple[IPAddress, ...] | None = None,
        adver_int_cs: int | None = None,
        src: IPAddress | None = None,
    ) -> None:
        """Change what the adverts carry; the next ``payload`` rebuilds (only if changed)."""
        advert = replace(
            self._advert,
            addresses=self._advert.addresses if addresses is None else addresses,
            adver_int_cs=self._advert.adver_int_cs if adver_int_cs is None else adver_int_cs,
        )
        new_src = self._src if src is None else src
        if advert == self._advert and new_src == self._src:
            return
        _check_encodable(advert, new_src.version)
        self._advert, self._src = advert, new_src
        self._cache.clear()
