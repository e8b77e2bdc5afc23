"""Hypothesis: the codec round-trips, and no input makes decode/validate raise anything but
DecodeError (RFC 5798 7.1: malformed packets are discarded, never crash the router)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import given
from hypothesis import strategies as st

from pykad.proto import (
    Advert,
    AdvertEncoder,
    DecodeError,
    PeerPolicy,
    RxPolicy,
    decode,
    encode,
    parse_ipv4,
    validate,
)
from pykad.proto.checksum import ones_complement_sum

ipv4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
vrid = st.integers(1, 255)
priority = st.integers(0, 255)

v2_adverts = st.builds(
    Advert,
    version=st.just(2),
    vrid=vrid,
    priority=priority,
    adver_int_cs=st.integers(1, 255).map(lambda s: s * 100),
    addresses=st.lists(ipv4, max_size=20).map(tuple),
    auth_type=st.sampled_from([0, 1]),
    auth_data=st.binary(min_size=8, max_size=8),
)
v3_ipv4_adverts = st.builds(
    Advert,
    version=st.just(3),
    vrid=vrid,
    priority=priority,
    adver_int_cs=st.integers(1, 4095),
    addresses=st.lists(ipv4, max_size=20).map(tuple),
)
v3_ipv6_adverts = st.builds(
    Advert,
    version=st.just(3),
    vrid=vrid,
    priority=priority,
    adver_int_cs=st.integers(1, 4095),
    addresses=st.lists(ipv6, max_size=10).map(tuple),
)


@given(v2_adverts | v3_ipv4_adverts, ipv4, ipv4, st.booleans())
def test_ipv4_round_trip(advert: Advert, src: IPv4Address, dst: IPv4Address, as_v2: bool) -> None:
    data = encode(advert, src=src, dst=dst, checksum_as_v2=as_v2)
    assert decode(data, family=4, src=src, dst=dst, checksum_as_v2=as_v2) == advert


@given(v3_ipv6_adverts, ipv6, ipv6)
def test_ipv6_round_trip(advert: Advert, src: IPv6Address, dst: IPv6Address) -> None:
    data = encode(advert, src=src, dst=dst, ipv6_checksum=True)
    assert decode(data, family=6, src=src, dst=dst) == advert
    unchecked = encode(advert, src=src, dst=dst)  # the kernel's job on a raw socket
    assert decode(unchecked, family=6, src=src, dst=dst, verify_checksum=False) == advert


@given(v2_adverts | v3_ipv4_adverts, ipv4, st.lists(ipv4, min_size=1, max_size=4), priority)
def test_encoder_cache_equals_fresh_encode(
    advert: Advert, src: IPv4Address, dsts: list[IPv4Address], prio: int
) -> None:
    enc = AdvertEncoder(advert, src=src)
    for dst in dsts * 2:
        fresh = encode(
            Advert(
                advert.version,
                advert.vrid,
                prio,
                advert.adver_int_cs,
                advert.addresses,
                advert.auth_type,
                advert.auth_data,
            ),
            src=src,
            dst=dst,
        )
        assert enc.payload(prio, dst) == fresh


@given(st.binary(max_size=128))
def test_checksum_equals_rfc1071_reference_loop(data: bytes) -> None:
    padded = data + b"\x00" if len(data) % 2 else data
    total = 0
    for i in range(0, len(padded), 2):
        total += padded[i] << 8 | padded[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    assert ones_complement_sum(data) == total


payloads = st.binary(max_size=80) | (v2_adverts | v3_ipv4_adverts).map(
    lambda a: encode(a, src=IPv4Address("192.0.2.1"), dst=IPv4Address("224.0.0.18"))
)


@given(payloads, st.sampled_from([4, 6]), st.booleans())
def test_decode_of_anything_is_an_advert_or_a_decode_error(
    data: bytes, family: int, verify: bool
) -> None:
    src, dst = (
        (IPv4Address("192.0.2.1"), IPv4Address("224.0.0.18"))
        if family == 4
        else (IPv6Address("fe80::1"), IPv6Address("ff02::12"))
    )
    try:
        advert = decode(data, family=family, src=src, dst=dst, verify_checksum=verify)
    except DecodeError:
        return
    assert isinstance(advert, Advert)


policies = st.builds(
    RxPolicy,
    version=st.sampled_from([2, 3]),
    family=st.just(4),
    vrid=st.integers(1, 3),
    adver_int_cs=st.sampled_from([100, 200]),
    vips=st.lists(
        st.sampled_from([IPv4Address("192.0.2.10"), IPv4Address("192.0.2.11")]), max_size=2
    ).map(tuple),
    peers=st.lists(
        st.builds(
            PeerPolicy,
            address=st.just(IPv4Address("192.0.2.1")),
            min_ttl=st.integers(0, 255),
            max_ttl=st.integers(0, 255),
        ),
        max_size=1,
    ).map(tuple),
    check_unicast_src=st.booleans(),
    checksum_as_v2=st.booleans(),
)


@given(
    payloads,
    policies,
    st.integers(0, 255),
    st.booleans(),
    st.none() | st.integers(0, 200),
    st.sampled_from([112, 51]),
    st.sampled_from(["224.0.0.18", "192.0.2.2"]),
)
def test_validate_of_anything_is_an_advert_or_a_decode_error(
    data: bytes, policy: RxPolicy, ttl: int, check: bool, total: int | None, proto: int, dst: str
) -> None:
    try:
        advert = validate(
            IPv4Address("192.0.2.1"),
            IPv4Address(dst),
            ttl,
            data,
            policy,
            check_addresses=check,
            ip_total_length=total,
            ip_protocol=proto,
        )
    except DecodeError:
        return
    assert advert.vrid == policy.vrid
    assert advert.version == policy.version


@given(st.binary(max_size=80))
def test_parse_ipv4_of_anything_is_a_datagram_or_a_decode_error(data: bytes) -> None:
    try:
        dgram = parse_ipv4(data)
    except DecodeError:
        return
    assert len(dgram.payload) >= 8
