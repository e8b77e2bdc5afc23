"""Receive-path validation (spec §5.7): every Discard reason, keepalived's order, each branch.

Each test names the §5.7 check and the RFC clause it implements (RFC 3768 7.1, RFC 5798 7.1).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import pytest

from pykad.proto import (
    Advert,
    DecodeError,
    Discard,
    PeerPolicy,
    RxPolicy,
    address_check_applies,
    encode,
    peek_vrid,
    validate,
)
from pykad.proto.checksum import internet_checksum
from pykad.proto.constants import IPPROTO_AH, VRRP_GROUP_V4, VRRP_GROUP_V6
from pykad.proto.errors import KEEPALIVED_COUNTER

SRC = IPv4Address("192.0.2.1")
OTHER = IPv4Address("192.0.2.9")
SRC6 = IPv6Address("fe80::1")
VIPS = (IPv4Address("192.0.2.10"), IPv4Address("192.0.2.11"))
VIPS6 = (IPv6Address("2001:db8::10"),)
PASSWORD = b"secret\x00\x00"

V2 = RxPolicy(version=2, family=4, vrid=51, adver_int_cs=100, vips=VIPS)
V2_PASS = replace(V2, auth_type=1, auth_data=PASSWORD)
V3 = RxPolicy(version=3, family=4, vrid=51, adver_int_cs=100, vips=VIPS)
V6 = RxPolicy(version=3, family=6, vrid=51, adver_int_cs=100, vips=VIPS6)
PEER = PeerPolicy(address=SRC, min_ttl=250, max_ttl=255)
UNICAST = replace(V3, peers=(PEER,), check_unicast_src=True)
ME = IPv4Address("192.0.2.2")


def wire(policy: RxPolicy, dst: IPv4Address | IPv6Address | None = None, **fields: object) -> bytes:
    """An advert that passes ``policy``, with ``fields`` changed."""
    advert = Advert(
        policy.version,
        policy.vrid,
        100,
        policy.adver_int_cs,
        policy.vips,
        policy.auth_type,
        policy.auth_data,
    )
    src = SRC6 if policy.family == 6 else SRC
    if dst is None:
        dst = VRRP_GROUP_V6 if policy.family == 6 else VRRP_GROUP_V4
    return encode(replace(advert, **fields), src=src, dst=dst, ipv6_checksum=True)


def reason(
    payload: bytes,
    policy: RxPolicy,
    *,
    ttl: int = 255,
    dst: IPv4Address | IPv6Address = VRRP_GROUP_V4,
    src: IPv4Address | IPv6Address = SRC,
    check_addresses: bool = True,
    **kw: int,
) -> Discard:
    with pytest.raises(DecodeError) as err:
        validate(src, dst, ttl, payload, policy, check_addresses=check_addresses, **kw)
    return err.value.reason


def patch(data: bytes, offset: int, value: int) -> bytes:
    """Change one byte and keep a v2 checksum right, so only the intended check fails."""
    out = bytearray(data)
    out[offset] = value
    out[6:8] = b"\x00\x00"
    out[6:8] = internet_checksum(bytes(out)).to_bytes(2, "big")
    return bytes(out)


# --- accepted packets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "src", "dst"),
    [
        (V2, SRC, VRRP_GROUP_V4),
        (V2_PASS, SRC, VRRP_GROUP_V4),  # RFC 3768 5.3.6.1 simple text password
        (V3, SRC, VRRP_GROUP_V4),
        (V6, SRC6, VRRP_GROUP_V6),
        (replace(V3, checksum_as_v2=True), SRC, VRRP_GROUP_V4),  # RFC 9568 5.2.8
    ],
    ids=["v2", "v2-pass", "v3-ipv4", "v3-ipv6", "v3-checksum-as-v2"],
)
def test_valid_adverts_pass(
    policy: RxPolicy, src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address
) -> None:
    advert = Advert(policy.version, 51, 100, 100, policy.vips, policy.auth_type, policy.auth_data)
    data = encode(
        advert, src=src, dst=dst, checksum_as_v2=policy.checksum_as_v2, ipv6_checksum=True
    )
    assert validate(src, dst, 255, data, policy, check_addresses=True) == advert


def test_unicast_per_peer_checksums() -> None:
    # spec §10 item 7: the pseudo-header carries the actual destination of each copy
    policy = replace(V3, peers=(PeerPolicy(address=SRC),))
    for me in (ME, IPv4Address("192.0.2.3")):
        data = wire(policy, dst=me)
        assert validate(SRC, me, 64, data, policy, check_addresses=True).priority == 100
        other = IPv4Address("192.0.2.4")
        assert reason(data, policy, dst=other, ttl=64) is Discard.CHECKSUM


def test_v3_interval_mismatch_is_not_a_drop() -> None:
    # spec §5.7: the master's interval is learned in v3 (RFC 5798 6.4.2)
    data = wire(V3, adver_int_cs=350)
    assert validate(SRC, VRRP_GROUP_V4, 255, data, V3, check_addresses=True).adver_int_cs == 350


def test_address_order_is_irrelevant() -> None:
    data = wire(V3, addresses=VIPS[::-1])
    assert validate(SRC, VRRP_GROUP_V4, 255, data, V3, check_addresses=True).addresses == VIPS[::-1]


def test_without_address_check_count_and_members_are_not_compared() -> None:
    data = wire(V3, addresses=(OTHER,))
    advert = validate(SRC, VRRP_GROUP_V4, 255, data, V3, check_addresses=False)
    assert advert.addresses == (OTHER,)


def test_ip_total_length_that_matches_is_accepted() -> None:
    data = wire(V2)
    got = validate(
        SRC, VRRP_GROUP_V4, 255, data, V2, check_addresses=True, ip_total_length=20 + len(data)
    )
    assert got.vrid == 51


# --- every discard reason, in §5.7's order ---------------------------------------------------


def test_1_too_short() -> None:
    assert reason(b"\x21\x33\x64", V2) is Discard.TOO_SHORT
    assert reason(bytes(20), V2, ip_protocol=IPPROTO_AH) is Discard.TOO_SHORT


def test_2_unknown_vrid() -> None:
    assert reason(wire(V2, vrid=52), V2) is Discard.UNKNOWN_VRID


def test_4_ah_header_when_not_configured() -> None:
    ah = bytes(24)
    assert reason(ah + wire(V2), V2, ip_protocol=IPPROTO_AH) is Discard.AUTHTYPE_MISMATCH
    assert reason(ah + wire(V2, vrid=52), V2, ip_protocol=IPPROTO_AH) is Discard.UNKNOWN_VRID


def test_5_exact_length() -> None:
    data = wire(V2)
    assert reason(data + b"\x00", V2) is Discard.PACKET_LEN  # no Ethernet padding in 2.2.7
    assert reason(data[:-1], V2) is Discard.PACKET_LEN
    # the packet's own version decides the auth trailer (keepalived's expected_vrrp_pkt_len)
    v3_on_v2 = wire(V3)
    assert reason(v3_on_v2, V2) is Discard.VERSION


def test_6_ttl_must_be_255_for_multicast_only() -> None:
    # RFC 3768 7.1 / RFC 5798 7.1: MUST verify that the IP TTL is 255
    assert reason(wire(V2), V2, ttl=254) is Discard.IP_TTL
    assert reason(wire(V6), V6, ttl=1, src=SRC6, dst=VRRP_GROUP_V6) is Discard.IP_TTL
    unicast = replace(V3, peers=(PeerPolicy(address=SRC),))
    assert validate(SRC, ME, 7, wire(unicast, dst=ME), unicast, check_addresses=True)


def test_7_version() -> None:
    # RFC 5798 7.1: MUST verify the version; a v2 packet hits a v3 instance
    assert reason(wire(V2), V3) is Discard.VERSION


def test_8_v2_auth_type_and_password_and_interval() -> None:
    # RFC 3768 7.1: auth type known, equal to ours, then the password, then the interval
    assert reason(patch(wire(V2), 4, 3), V2) is Discard.INVALID_AUTHTYPE
    assert reason(wire(V2_PASS), V2) is Discard.AUTHTYPE_MISMATCH
    assert reason(patch(wire(V2), 4, 2), V2) is Discard.AUTHTYPE_MISMATCH  # AH field, no AH
    assert reason(wire(V2), V2_PASS) is Discard.AUTHTYPE_MISMATCH
    wrong = wire(V2_PASS, auth_data=b"secreT\x00\x00")
    assert reason(wrong, V2_PASS) is Discard.AUTH_FAILURE
    assert reason(wire(V2, adver_int_cs=200), V2) is Discard.ADVERT_INTERVAL


def test_9_type() -> None:
    assert reason(patch(wire(V2), 0, 0x22), V2) is Discard.INVALID_TYPE


def test_10_address_count() -> None:
    assert reason(wire(V3, addresses=VIPS[:1]), V3) is Discard.ADDR_LIST


def test_11_ip_total_length() -> None:
    data = wire(V2)
    assert reason(data, V2, ip_total_length=20 + len(data) + 4) is Discard.PACKET_LEN


def test_12_checksum() -> None:
    data = bytearray(wire(V2))
    data[7] ^= 1
    assert reason(bytes(data), V2) is Discard.CHECKSUM
    v6 = bytearray(wire(V6))
    v6[-1] ^= 1  # pykad checks IPv6 too, in case the socket has no IPV6_CHECKSUM
    assert reason(bytes(v6), V6, src=SRC6, dst=VRRP_GROUP_V6) is Discard.CHECKSUM
    # a v3 packet with the RFC 9568 checksum arriving at a default instance, and vice versa
    as_v2 = replace(V3, checksum_as_v2=True)
    assert reason(wire(V3), as_v2) is Discard.CHECKSUM


def test_13_destination_kind() -> None:
    unicast = replace(V3, peers=(PeerPolicy(address=SRC),))
    assert reason(wire(V3, dst=ME), V3, dst=ME) is Discard.DST_MISMATCH
    assert reason(wire(unicast), unicast) is Discard.DST_MISMATCH


def test_15_every_vip_present() -> None:
    data = wire(V3, addresses=(VIPS[0], OTHER))
    assert reason(data, V3) is Discard.ADDR_LIST


def test_15_unicast_source_and_ttl_window() -> None:
    data = wire(UNICAST, dst=ME)
    assert validate(SRC, ME, 250, data, UNICAST, check_addresses=True).vrid == 51
    assert reason(data, UNICAST, dst=ME, ttl=249) is Discard.IP_TTL
    from_other = encode(Advert(3, 51, 100, 100, VIPS), src=OTHER, dst=ME)
    assert reason(from_other, UNICAST, src=OTHER, dst=ME) is Discard.UNICAST_SRC
    # keepalived checks the source only together with the addresses
    assert validate(OTHER, ME, 1, from_other, UNICAST, check_addresses=False).vrid == 51
    # without check_unicast_src any source is fine
    loose = replace(UNICAST, check_unicast_src=False)
    assert validate(OTHER, ME, 1, from_other, loose, check_addresses=True).vrid == 51


# --- order: the earlier check decides the counter --------------------------------------------


def test_order_length_before_ttl_before_version() -> None:
    assert reason(wire(V2) + b"\x00", V2, ttl=1) is Discard.PACKET_LEN
    # a v3 packet on a v2 instance: its length is right for v3, so TTL is checked next
    assert reason(wire(V3), V2, ttl=1) is Discard.IP_TTL
    assert reason(wire(V3), V2) is Discard.VERSION


def test_order_auth_before_type_before_count_before_checksum() -> None:
    bad_everything = bytearray(wire(V2, addresses=VIPS[:1], auth_data=b"x" * 8))
    bad_everything[0] = 0x22  # type 2
    bad_everything[7] ^= 1  # checksum
    assert reason(bytes(bad_everything), V2_PASS) is Discard.AUTHTYPE_MISMATCH
    assert reason(bytes(bad_everything), V2) is Discard.INVALID_TYPE
    bad_everything[0] = 0x21
    assert reason(bytes(bad_everything), V2) is Discard.ADDR_LIST
    assert reason(bytes(bad_everything), V2, check_addresses=False) is Discard.CHECKSUM


def test_order_checksum_before_destination_before_addresses() -> None:
    unicast = replace(V3, peers=(PeerPolicy(address=SRC),))
    foreign = wire(unicast, addresses=(VIPS[0], OTHER))  # to the group: wrong kind for unicast
    assert reason(foreign, unicast) is Discard.DST_MISMATCH
    assert reason(foreign, unicast, dst=ME) is Discard.CHECKSUM


# --- helpers and policy ----------------------------------------------------------------------


def test_peek_vrid() -> None:
    assert peek_vrid(wire(V2)) == 51
    assert peek_vrid(bytes(24) + wire(V2), ip_protocol=IPPROTO_AH) == 51
    with pytest.raises(DecodeError) as err:
        peek_vrid(b"\x21")
    assert err.value.reason is Discard.TOO_SHORT


def test_address_check_applies() -> None:
    # spec §5.7: always in MASTER; in BACKUP unless skip_check_adv_addr and same master
    skip = replace(V3, skip_check_adv_addr=True)
    assert address_check_applies(V3, is_master=False, src=SRC, recorded_master=SRC)
    assert address_check_applies(skip, is_master=True, src=SRC, recorded_master=SRC)
    assert not address_check_applies(skip, is_master=False, src=SRC, recorded_master=SRC)
    assert address_check_applies(skip, is_master=False, src=SRC, recorded_master=OTHER)
    assert address_check_applies(skip, is_master=False, src=SRC, recorded_master=None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 2, "family": 6}, "VRRPv2 over IPv6"),
        ({"version": 4}, "VRRPv4"),
        ({"auth_type": 2}, "not supported"),
        ({"version": 3, "auth_type": 1}, "only VRRPv2"),
        ({"auth_data": b"pw"}, "8-byte"),
        ({"vips": VIPS6}, "VIPs must be IPv4"),
        ({"peers": (PeerPolicy(address=SRC6),)}, "peers must be IPv4"),
    ],
)
def test_policy_refuses_nonsense(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(V2, **changes)


def test_policy_unicast_flag() -> None:
    assert not V3.unicast
    assert UNICAST.unicast


def test_every_reason_maps_to_a_keepalived_counter_or_none() -> None:
    assert set(KEEPALIVED_COUNTER) == set(Discard)
    for discard, counter in KEEPALIVED_COUNTER.items():
        # keepalived's own counters keep their names; only dst_mismatch is folded
        if counter is not None and discard is not Discard.DST_MISMATCH:
            assert counter == discard.value
    assert KEEPALIVED_COUNTER[Discard.DST_MISMATCH] == "addr_list_err"
