"""VRRP encode/decode vectors and every branch of the codec (RFC 3768 5, RFC 5798 5).

The hex vectors were built by scapy's VRRP/VRRPv3 layers (an independent encoder); the golden
captures in tests/golden check the same against keepalived itself.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import pytest

from pykad.proto import (
    Advert,
    AdvertEncoder,
    DecodeError,
    Discard,
    decode,
    encode,
    parse_ipv4,
    v3_ipv6_checksum,
)
from pykad.proto.constants import VRRP_GROUP_V4, VRRP_GROUP_V6, vmac

SRC4 = IPv4Address("192.0.2.1")
SRC6 = IPv6Address("fe80::ff:fe00:1")
PEER2, PEER3 = IPv4Address("192.0.2.2"), IPv4Address("192.0.2.3")


def v4(*hosts: int) -> tuple[IPv4Address, ...]:
    return tuple(IPv4Address(f"192.0.2.{h}") for h in hosts)


V2 = Advert(2, 51, 100, 100, v4(10, 11))
V2_HEX = "213364020001f6b2c000020ac000020b0000000000000000"
V2_PASS = Advert(2, 52, 200, 100, v4(52), 1, b"pykad\x00\x00\x00")
V2_PASS_HEX = "2134c801010113b9c000023470796b6164000000"
V3 = Advert(3, 53, 150, 50, v4(53))
V3_HEX = "313596010032d3d0c0000235"
V3_UNICAST = Advert(3, 55, 255, 100, v4(55))
V3_TO_PEER2_HEX = "3137ff01006488aac0000237"
V3_TO_PEER3_HEX = "3137ff01006488a9c0000237"
V3_AS_V2_HEX = "310164010064a88ec000020a"  # hand-computed, see test_checksum.py
V6 = Advert(3, 54, 255, 100, (IPv6Address("2001:db8::54"),))
V6_HEX = "3136ff010064a43720010db8000000000000000000000054"


@pytest.mark.parametrize(
    ("advert", "dst", "expected"),
    [
        (V2, VRRP_GROUP_V4, V2_HEX),
        (V2_PASS, VRRP_GROUP_V4, V2_PASS_HEX),
        (V3, VRRP_GROUP_V4, V3_HEX),
        (V3_UNICAST, PEER2, V3_TO_PEER2_HEX),
        (V3_UNICAST, PEER3, V3_TO_PEER3_HEX),
    ],
    ids=["v2", "v2-pass", "v3-ipv4", "v3-unicast-peer2", "v3-unicast-peer3"],
)
def test_ipv4_vectors_round_trip(advert: Advert, dst: IPv4Address, expected: str) -> None:
    wire = encode(advert, src=SRC4, dst=dst)
    assert wire.hex() == expected
    assert decode(wire, family=4, src=SRC4, dst=dst) == advert


def test_v3_checksum_as_v2_vector() -> None:
    advert = Advert(3, 1, 100, 100, v4(10))
    wire = encode(advert, src=SRC4, dst=VRRP_GROUP_V4, checksum_as_v2=True)
    assert wire.hex() == V3_AS_V2_HEX
    assert decode(wire, family=4, src=SRC4, dst=VRRP_GROUP_V4, checksum_as_v2=True) == advert
    with pytest.raises(DecodeError) as err:  # the default form rejects it
        decode(wire, family=4, src=SRC4, dst=VRRP_GROUP_V4)
    assert err.value.reason is Discard.CHECKSUM


def test_ipv6_leaves_the_checksum_to_the_kernel_unless_asked() -> None:
    kernel = encode(V6, src=SRC6, dst=VRRP_GROUP_V6)
    assert kernel[6:8] == b"\x00\x00"
    assert v3_ipv6_checksum(kernel, src=SRC6, dst=VRRP_GROUP_V6) == 0xA437
    full = encode(V6, src=SRC6, dst=VRRP_GROUP_V6, ipv6_checksum=True)
    assert full.hex() == V6_HEX
    assert v3_ipv6_checksum(full, src=SRC6, dst=VRRP_GROUP_V6) == 0xA437
    assert decode(full, family=6, src=SRC6, dst=VRRP_GROUP_V6) == V6
    assert decode(kernel, family=6, src=SRC6, dst=VRRP_GROUP_V6, verify_checksum=False) == V6


def test_v3_reserved_bits_are_ignored_on_receive() -> None:
    wire = bytearray(encode(V3, src=SRC4, dst=VRRP_GROUP_V4))
    wire[4] |= 0xF0  # RFC 5798 5.2.6 "MUST be ignored on reception"
    advert = decode(bytes(wire), family=4, src=SRC4, dst=VRRP_GROUP_V4, verify_checksum=False)
    assert advert.adver_int_cs == 50


def test_v2_interval_decodes_to_centiseconds() -> None:
    wire = encode(replace(V2, adver_int_cs=25500), src=SRC4, dst=VRRP_GROUP_V4)
    assert wire[5] == 255
    assert decode(wire, family=4, src=SRC4, dst=VRRP_GROUP_V4).adver_int_cs == 25500


def test_zero_addresses_and_priority_zero() -> None:
    advert = Advert(2, 1, 0, 100, ())
    wire = encode(advert, src=SRC4, dst=VRRP_GROUP_V4)
    assert len(wire) == 16
    assert decode(wire, family=4, src=SRC4, dst=VRRP_GROUP_V4) == advert


@pytest.mark.parametrize(
    ("advert", "src", "dst", "message"),
    [
        (replace(V2, version=4), SRC4, VRRP_GROUP_V4, "version 4"),
        (V2, SRC6, VRRP_GROUP_V6, "IPv4 only"),
        (replace(V2, vrid=0), SRC4, VRRP_GROUP_V4, "VRID 0"),
        (replace(V2, vrid=256), SRC4, VRRP_GROUP_V4, "VRID 256"),
        (replace(V2, priority=-1), SRC4, VRRP_GROUP_V4, "priority -1"),
        (replace(V2, priority=256), SRC4, VRRP_GROUP_V4, "priority 256"),
        (replace(V3, addresses=v4(1) * 256), SRC4, VRRP_GROUP_V4, "at most 255"),
        (replace(V3, addresses=(SRC6,)), SRC4, VRRP_GROUP_V4, "IPv4"),
        (replace(V2, adver_int_cs=150), SRC4, VRRP_GROUP_V4, "whole"),
        (replace(V2, adver_int_cs=0), SRC4, VRRP_GROUP_V4, "whole"),
        (replace(V2, adver_int_cs=25600), SRC4, VRRP_GROUP_V4, "whole"),
        (replace(V2, auth_type=2), SRC4, VRRP_GROUP_V4, "auth type 2"),
        (replace(V2, auth_data=b"short"), SRC4, VRRP_GROUP_V4, "8 bytes"),
        (replace(V3, adver_int_cs=0), SRC4, VRRP_GROUP_V4, "1..4095"),
        (replace(V3, adver_int_cs=4096), SRC4, VRRP_GROUP_V4, "1..4095"),
        (replace(V3, auth_type=1), SRC4, VRRP_GROUP_V4, "no authentication"),
        (replace(V3, auth_data=b"x" * 8), SRC4, VRRP_GROUP_V4, "no authentication"),
        (V3, SRC4, VRRP_GROUP_V6, "different families"),
    ],
)
def test_encode_refuses_what_pykad_must_never_send(
    advert: Advert, src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode(advert, src=src, dst=dst)


def _decode_error(payload: bytes, family: int = 4, **kw: bool) -> Discard:
    src, dst = (SRC4, VRRP_GROUP_V4) if family == 4 else (SRC6, VRRP_GROUP_V6)
    with pytest.raises(DecodeError) as err:
        decode(payload, family=family, src=src, dst=dst, **kw)
    assert err.value.detail in str(err.value)
    return err.value.reason


def test_decode_discard_reasons() -> None:
    good = bytes.fromhex(V2_HEX)
    assert _decode_error(good[:7]) is Discard.TOO_SHORT
    assert _decode_error(bytes([0x11]) + good[1:]) is Discard.VERSION
    assert _decode_error(bytes([0x41]) + good[1:]) is Discard.VERSION
    assert _decode_error(good[:-4], family=6) is Discard.VERSION  # no VRRPv2 over IPv6
    assert _decode_error(bytes([0x22]) + good[1:]) is Discard.INVALID_TYPE
    assert _decode_error(good + b"\x00") is Discard.PACKET_LEN
    assert _decode_error(good[:-1]) is Discard.PACKET_LEN
    assert _decode_error(good[:-1] + b"\x01") is Discard.CHECKSUM
    v6 = bytes.fromhex(V6_HEX)
    assert _decode_error(v6[:6] + b"\x00\x00" + v6[8:], family=6) is Discard.CHECKSUM


def test_decode_length_detail_uses_keepalived_words() -> None:
    with pytest.raises(DecodeError, match="too long, length 25 and expect 24"):
        decode(bytes.fromhex(V2_HEX) + b"\x00", family=4, src=SRC4, dst=VRRP_GROUP_V4)
    with pytest.raises(DecodeError, match="too short, length 23 and expect 24"):
        decode(bytes.fromhex(V2_HEX)[:-1], family=4, src=SRC4, dst=VRRP_GROUP_V4)


def ipv4_header(payload: bytes, *, ihl: int = 5, total: int | None = None, ttl: int = 255) -> bytes:
    length = ihl * 4 + len(payload) if total is None else total
    head = bytes([0x40 | ihl, 0xC0]) + length.to_bytes(2, "big") + bytes(4)
    head += bytes([ttl, 112]) + bytes(2) + SRC4.packed + VRRP_GROUP_V4.packed
    return head + bytes(ihl * 4 - 20) + payload


def test_parse_ipv4() -> None:
    payload = bytes.fromhex(V2_HEX)
    dgram = parse_ipv4(ipv4_header(payload, ttl=254))
    assert dgram == (SRC4, VRRP_GROUP_V4, 254, 112, 44, payload)
    src, dst, ttl, proto, total, data = dgram  # the six-field tuple the runtime unpacks
    assert (src, dst, ttl, proto, total, data) == tuple(dgram)


def test_parse_ipv4_tolerates_options_and_normalises_total_length() -> None:
    payload = bytes.fromhex(V3_HEX)
    dgram = parse_ipv4(ipv4_header(payload, ihl=6))
    assert dgram.payload == payload
    assert dgram.total_length == 20 + len(payload)  # the 4 option bytes are not counted
    assert parse_ipv4(ipv4_header(payload, ihl=6, total=99)).total_length == 95


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (bytes(19), Discard.TOO_SHORT),
        (bytes([0x60]) + bytes(40), Discard.IP_HEADER),
        (bytes([0x44]) + bytes(40), Discard.IP_HEADER),
        (ipv4_header(b"\x21\x01\x64"), Discard.TOO_SHORT),
        (ipv4_header(bytes(8), ihl=15)[:64], Discard.TOO_SHORT),
    ],
)
def test_parse_ipv4_rejects(packet: bytes, reason: Discard) -> None:
    with pytest.raises(DecodeError) as err:
        parse_ipv4(packet)
    assert err.value.reason is reason


class TestAdvertEncoder:
    def test_bytes_are_built_once_per_priority_and_destination(self) -> None:
        enc = AdvertEncoder(V3_UNICAST, src=SRC4)
        first = enc.payload(255, PEER2)
        assert first.hex() == V3_TO_PEER2_HEX
        assert enc.payload(255, PEER2) is first  # cached object, not rebuilt
        assert enc.payload(255, PEER3).hex() == V3_TO_PEER3_HEX
        resign = enc.payload(0, PEER2)
        assert decode(resign, family=4, src=SRC4, dst=PEER2).priority == 0
        assert enc.payload_for(255)(PEER2) is first
        assert enc.advert == V3_UNICAST

    def test_update_rebuilds_only_on_change(self) -> None:
        enc = AdvertEncoder(V3, src=SRC4)
        first = enc.payload(150, VRRP_GROUP_V4)
        enc.update(addresses=V3.addresses, adver_int_cs=50, src=SRC4)
        assert enc.payload(150, VRRP_GROUP_V4) is first
        enc.update(addresses=v4(53, 54))
        changed = decode(enc.payload(150, VRRP_GROUP_V4), family=4, src=SRC4, dst=VRRP_GROUP_V4)
        assert changed.addresses == v4(53, 54)
        enc.update(adver_int_cs=100)
        assert enc.advert.adver_int_cs == 100
        new_src = IPv4Address("192.0.2.9")
        enc.update(src=new_src)
        wire = enc.payload(150, VRRP_GROUP_V4)
        assert decode(wire, family=4, src=new_src, dst=VRRP_GROUP_V4).adver_int_cs == 100

    def test_modes_are_passed_to_encode(self) -> None:
        v3 = Advert(3, 1, 100, 100, v4(10))
        enc = AdvertEncoder(v3, src=SRC4, checksum_as_v2=True)
        assert enc.payload(100, VRRP_GROUP_V4).hex() == V3_AS_V2_HEX
        enc6 = AdvertEncoder(V6, src=SRC6, ipv6_checksum=True)
        assert enc6.payload(255, VRRP_GROUP_V6).hex() == V6_HEX

    def test_misuse_raises(self) -> None:
        with pytest.raises(ValueError, match="IPv4 only"):
            AdvertEncoder(V2, src=SRC6)
        enc = AdvertEncoder(V2, src=SRC4)
        with pytest.raises(ValueError, match="whole"):
            enc.update(adver_int_cs=150)
        assert enc.advert == V2  # a refused update changes nothing


def test_vmac() -> None:
    # RFC 5798 7.3
    assert vmac(51, 4) == bytes.fromhex("00005e000133")
    assert vmac(255, 6) == bytes.fromhex("00005e0002ff")
    with pytest.raises(ValueError, match="VRID"):
        vmac(0, 4)
    with pytest.raises(ValueError, match="family"):
        vmac(1, 5)


def test_decode_error_is_not_a_pykad_error_but_carries_reason_and_detail() -> None:
    err = DecodeError(Discard.IP_TTL, "invalid TTL/HL. Received 64 and expect 255")
    assert str(err) == "ip_ttl_err: invalid TTL/HL. Received 64 and expect 255"
    assert err.reason is Discard.IP_TTL
