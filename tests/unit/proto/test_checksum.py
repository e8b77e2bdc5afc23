"""RFC 1071 checksum and the VRRP pseudo-header forms (spec §5.9 "Checksum")."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from pykad.proto.checksum import (
    internet_checksum,
    ones_complement_sum,
    pseudo_header,
    vrrp_checksum,
)

SRC4, DST4 = ip_address("192.0.2.1"), ip_address("224.0.0.18")
SRC6, DST6 = ip_address("fe80::1"), ip_address("ff02::12")


def naive_sum(data: bytes) -> int:
    """RFC 1071 4.1's reference loop, word by word with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_rfc1071_numerical_example() -> None:
    # RFC 1071 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (big-endian), checksum 220d
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D
    assert internet_checksum(data + bytes.fromhex("220d")) == 0


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\xff", b"\x01", b"\xff", b"\x80\x00\x80\x00"],
)
def test_edge_cases_match_the_reference_loop(data: bytes) -> None:
    assert ones_complement_sum(data) == naive_sum(data)


def test_negative_zero_is_ffff_and_all_zero_is_zero() -> None:
    assert ones_complement_sum(b"\xff\xff\x00\x00") == 0xFFFF
    assert ones_complement_sum(bytes(6)) == 0
    assert internet_checksum(bytes(6)) == 0xFFFF  # an all-zero message never verifies


def test_odd_length_is_padded_at_the_end() -> None:
    assert ones_complement_sum(b"\x12") == 0x1200


def test_ipv4_pseudo_header_layout() -> None:
    # RFC 5798 5.2.8: src, dst, zero, protocol 112, VRRP length
    assert pseudo_header(SRC4, DST4, 12).hex() == "c0000201e00000120070000c"


def test_ipv6_pseudo_header_layout() -> None:
    # RFC 8200 8.1: src, dst, 32-bit upper-layer length, 3 zero bytes, next header
    header = pseudo_header(SRC6, DST6, 24)
    assert header == SRC6.packed + DST6.packed + bytes.fromhex("0000001800000070")


def test_pseudo_header_rejects_mixed_families() -> None:
    with pytest.raises(ValueError, match="different families"):
        pseudo_header(SRC4, DST6, 8)


def test_v2_ignores_addresses_and_v3_does_not() -> None:
    msg = bytes.fromhex("2133640100010000c000020a") + bytes(8)
    v2 = vrrp_checksum(msg, version=2, src=SRC4, dst=DST4)
    assert v2 == vrrp_checksum(msg, version=2, src=SRC4, dst=ip_address("192.0.2.9"))
    v3 = bytes.fromhex("3133640100640000c000020a")
    a = vrrp_checksum(v3, version=3, src=SRC4, dst=DST4)
    b = vrrp_checksum(v3, version=3, src=SRC4, dst=ip_address("192.0.2.2"))
    assert a != b  # each unicast peer gets its own checksum (spec §10 item 7)


def test_checksum_as_v2_drops_the_ipv4_pseudo_header_only() -> None:
    v3 = bytes.fromhex("3101640100640000c000020a")
    # hand-computed (0x3101+0x6401+0x0064 = 0x9566; +0xc000 = 0x15566 -> 0x5567; +0x020a = 0x5771)
    assert vrrp_checksum(v3, version=3, src=SRC4, dst=DST4, checksum_as_v2=True) == 0xA88E
    # RFC 9568 5.2.8: IPv6 always keeps its pseudo-header
    v6 = bytes.fromhex("3101640100640000") + ip_address("2001:db8::1").packed
    assert vrrp_checksum(v6, version=3, src=SRC6, dst=DST6, checksum_as_v2=True) == (
        vrrp_checksum(v6, version=3, src=SRC6, dst=DST6)
    )
