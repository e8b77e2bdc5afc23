"""The instance-specific receive checks of spec §5.7, in keepalived's order.

keepalived (vrrp_check_packet) stops at the first failed check, and which check fails decides
which counter moves, so the order below is part of the contract. Checks 2 (VRID) and 3
(instance in FAULT/INIT: ignore everything) belong to the dispatcher: :func:`peek_vrid` gives
it the VRID, and the runtime does not call :func:`validate` for a FAULT instance.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from pykad.proto.advert import (
    NO_AUTH_DATA,
    Advert,
    build_advert,
    checksum_ok,
    length_detail,
    message_length,
)
from pykad.proto.constants import (
    AH_HEADER_LEN,
    AUTH_AH,
    AUTH_DATA_LEN,
    AUTH_NONE,
    AUTH_PASS,
    CS_PER_SECOND,
    HEADER_LEN,
    IPPROTO_AH,
    IPPROTO_VRRP,
    IPV4_HEADER_LEN,
    TYPE_ADVERTISEMENT,
    VERSION_2,
    VERSION_3,
    VRRP_TTL,
)
from pykad.proto.errors import DecodeError, Discard

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerPolicy:
    """One ``unicast_peer`` line: the address and the TTL/hop-limit window (spec §3.1)."""

    address: IPAddress
    min_ttl: int = 0
    max_ttl: int = 255


@dataclass(frozen=True, slots=True, kw_only=True)
class RxPolicy:
    """What one instance accepts; plain data the runtime builds from its configuration.

    ``check_unicast_src`` is the resolved flag: the instance's or the global
    ``vrrp_check_unicast_src``, or any peer with min_ttl/max_ttl (spec §3.1).
    AH authentication is not implemented by pykad: the runtime must refuse such a config.
    """

    version: int
    family: int
    vrid: int
    adver_int_cs: int  # the instance's own interval (v2 mismatch drops, v3 is learned)
    vips: tuple[IPAddress, ...] = ()
    auth_type: int = AUTH_NONE
    auth_data: bytes = NO_AUTH_DATA  # the 8-byte zero-padded password for AUTH_PASS
    peers: tuple[PeerPolicy, ...] = ()  # non-empty: the instance is unicast
    check_unicast_src: bool = False
    checksum_as_v2: bool = False
    skip_check_adv_addr: bool = False

    def __post_init__(self) -> None:
        if (self.version, self.family) not in ((VERSION_2, 4), (VERSION_3, 4), (VERSION_3, 6)):
            raise ValueError(f"VRRPv{self.version} over IPv{self.family} does not exist")
        if self.auth_type not in (AUTH_NONE, AUTH_PASS):
            raise ValueError(f"auth type {self.auth_type} is not supported by pykad")
        if self.auth_type == AUTH_PASS and self.version != VERSION_2:
            raise ValueError("only VRRPv2 has authentication")
        if len(self.auth_data) != AUTH_DATA_LEN:
            raise ValueError("auth_data is the 8-byte zero-padded password")
        if any(a.version != self.family for a in self.vips):
            raise ValueError(f"VIPs must be IPv{self.family}")
        if any(p.address.version != self.family for p in self.peers):
            raise ValueError(f"unicast peers must be IPv{self.family}")

    @property
    def unicast(self) -> bool:
        return bool(self.peers)


def address_check_applies(
    policy: RxPolicy, *, is_master: bool, src: IPAddress, recorded_master: IPAddress | None
) -> bool:
    """The ``check_addresses`` argument of :func:`validate` (spec §5.7, after check 16):
    always in MASTER; in BACKUP unless skip_check_adv_addr and the advert comes from the
    master already recorded (so a new master's first advert is always checked)."""
    return is_master or not (policy.skip_check_adv_addr and src == recorded_master)


def peek_vrid(payload: bytes, *, ip_protocol: int = IPPROTO_VRRP) -> int:
    """The VRID of a received message, for dispatching to an instance (§5.7 checks 1-2)."""
    offset = AH_HEADER_LEN if ip_protocol == IPPROTO_AH else 0
    if len(payload) < offset + HEADER_LEN:
        raise DecodeError(Discard.TOO_SHORT, f"VRRP packet too short - {len(payload)} bytes")
    return payload[offset + 1]


def validate(
    pkt_src: IPAddress,
    pkt_dst: IPAddress,
    ttl: int,
    payload: bytes,
    policy: RxPolicy,
    *,
    check_addresses: bool,
    ip_total_length: int | None = None,
    ip_protocol: int = IPPROTO_VRRP,
) -> Advert:
    """Apply spec §5.7 to a received VRRP message; the Advert, or DecodeError(Discard.X).

    ``ttl`` is the IPv4 TTL or the IPv6 hop limit; ``ip_total_length`` and ``ip_protocol``
    come from :func:`pykad.proto.advert.parse_ipv4` (IPv4 only).
    """
    # 1-2. a whole VRRP header, for this VRID (AH: keepalived's check 4 needs the header too)
    vrid = peek_vrid(payload, ip_protocol=ip_protocol)
    if vrid != policy.vrid:
        raise DecodeError(Discard.UNKNOWN_VRID, f"Unknown VRID({vrid}) received. ignoring...")
    # 4. AH present iff configured; pykad configures no AH (RFC 3768 5.3.6.3 is legacy)
    if ip_protocol == IPPROTO_AH:
        raise DecodeError(Discard.AUTHTYPE_MISMATCH, "Received AH header but auth type not AH")
    version = payload[0] >> 4
    count = payload[3]
    # 5. the exact length for the packet's own version (keepalived's expected_vrrp_pkt_len)
    expected = message_length(version, count, policy.family)
    if len(payload) != expected:
        raise DecodeError(Discard.PACKET_LEN, length_detail(len(payload), expected))
    # 6. RFC 5798 7.1 / RFC 3768 7.1: TTL/hop limit 255, except for unicast (keepalived)
    if not policy.unicast and ttl != VRRP_TTL:
        raise DecodeError(Discard.IP_TTL, f"invalid TTL/HL. Received {ttl} and expect {VRRP_TTL}")
    # 7. RFC 5798 7.1: MUST verify the version
    if version != policy.version:
        raise DecodeError(
            Discard.VERSION, f"wrong version. Received {version} and expect {policy.version}"
        )
    # 8. RFC 3768 7.1: authentication and interval (v2 only)
    if version == VERSION_2:
        _check_v2(payload, policy)
    # 9. RFC 5798 7.1: the type must be ADVERTISEMENT
    kind = payload[0] & 0x0F
    if kind != TYPE_ADVERTISEMENT:
        raise DecodeError(
            Discard.INVALID_TYPE, f"Invalid packet type. {kind} and expect {TYPE_ADVERTISEMENT}"
        )
    # 10. RFC 3768 7.1 "MAY verify that the IP address(es) ... are valid": the count first
    if check_addresses and count != len(policy.vips):
        raise DecodeError(
            Discard.ADDR_LIST,
            f"received an unexpected ip number count {count}, expected {len(policy.vips)}!",
        )
    # 11. the IPv4 Total Length must match what was received
    if ip_total_length is not None and ip_total_length != IPV4_HEADER_LEN + len(payload):
        raise DecodeError(
            Discard.PACKET_LEN,
            f"ip_tot_len mismatch against received length. {ip_total_length} and received "
            f"{IPV4_HEADER_LEN + len(payload)}",
        )
    # 12. RFC 5798 7.1: MUST verify the checksum. keepalived leaves IPv6 to the kernel
    # (IPV6_CHECKSUM); pykad checks it too, which costs nothing when the kernel already did.
    if not checksum_ok(
        payload, version=version, src=pkt_src, dst=pkt_dst, checksum_as_v2=policy.checksum_as_v2
    ):
        raise DecodeError(Discard.CHECKSUM, f"Invalid VRRPv{version} checksum")
    # 13. multicast instances take multicast packets only, unicast ones unicast only
    if pkt_dst.is_multicast == policy.unicast:
        expected_kind, got = ("un", "mult") if policy.unicast else ("mult", "un")
        raise DecodeError(
            Discard.DST_MISMATCH,
            f"Expected {expected_kind}icast packet but received {got}icast packet",
        )
    advert = build_advert(payload, policy.family)
    # 15. membership of every VIP, then the unicast source (both only when checking addresses)
    if check_addresses:
        _check_addresses(advert, pkt_src, ttl, policy)
    return advert


def _check_v2(payload: bytes, policy: RxPolicy) -> None:
    auth_type = payload[4]
    if auth_type not in (AUTH_NONE, AUTH_PASS, AUTH_AH):
        raise DecodeError(Discard.INVALID_AUTHTYPE, f"Invalid auth type: {auth_type}")
    if auth_type != policy.auth_type:
        raise DecodeError(
            Discard.AUTHTYPE_MISMATCH,
            f"received a {auth_type} auth, expecting {policy.auth_type}!",
        )
    # RFC 3768 5.3.10 / keepalived: the last 8 bytes, compared in constant time
    if auth_type == AUTH_PASS and not hmac.compare_digest(
        payload[-AUTH_DATA_LEN:], policy.auth_data
    ):
        raise DecodeError(Discard.AUTH_FAILURE, "received an invalid passwd!")
    # RFC 3768 7.1: MUST verify the Adver Interval equals the local one (drop otherwise)
    if payload[5] * CS_PER_SECOND != policy.adver_int_cs:
        raise DecodeError(
            Discard.ADVERT_INTERVAL,
            f"advertisement interval mismatch mine={policy.adver_int_cs // CS_PER_SECOND} sec "
            f"rcv'd={payload[5]} sec",
        )


def _check_addresses(advert: Advert, src: IPAddress, ttl: int, policy: RxPolicy) -> None:
    received = frozenset(advert.addresses)
    for vip in policy.vips:
        if vip not in received:
            raise DecodeError(
                Discard.ADDR_LIST,
                f"ip address associated with VRID {policy.vrid} not present in MASTER "
                f"advert : {vip}",
            )
    if policy.unicast and policy.check_unicast_src:
        peer = next((p for p in policy.peers if p.address == src), None)
        if peer is None:
            raise DecodeError(
                Discard.UNICAST_SRC, f"unicast source address {src} not a unicast peer"
            )
        if not peer.min_ttl <= ttl <= peer.max_ttl:
            raise DecodeError(
                Discard.IP_TTL, f"TTL/HL {ttl} not in range {peer.min_ttl} - {peer.max_ttl}"
            )
