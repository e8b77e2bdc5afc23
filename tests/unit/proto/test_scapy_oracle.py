"""scapy as an independent oracle for the VRRP codec and the GARP / NA builders.

Every packet pykad encodes is read by scapy's VRRP / VRRPv3 layers with the same fields, and
scapy's own checksum computation (delete the field, rebuild) gives the value pykad put there;
packets scapy builds are decoded by pykad. scapy is only a test dependency of the pure core.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Packet, Raw

from pykad.adapters.garp import build_garp, build_unsolicited_na
from pykad.proto import Advert, decode, encode
from pykad.proto.constants import VRRP_GROUP_V4, VRRP_GROUP_V6

SRC4 = IPv4Address("192.0.2.1")
SRC6 = IPv6Address("fe80::ff:fe00:1")
MAC = bytes.fromhex("020000000001")
ipv4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
# scapy dispatches an 8-byte message (VRRPv3 without addresses) to its v2 layer, so the
# oracle only sees v3 adverts with at least one address; pykad's own round trip covers none.
v3_ipv4_list = st.lists(ipv4, min_size=1, max_size=8)


def on_ip(wire: bytes, src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address) -> Packet:
    """pykad's bytes under an IP header, dissected by scapy from scratch (scapy picks the
    VRRP layer and the address type from the underlayer)."""
    if isinstance(src, IPv4Address):
        return IP(bytes(IP(src=str(src), dst=str(dst), proto=112) / Raw(wire)))
    return IPv6(bytes(IPv6(src=str(src), dst=str(dst), nh=112) / Raw(wire)))


def rebuilt_checksum(pkt: Packet, layer: type[Packet]) -> int:
    """scapy's checksum for ``layer``: drop the field and let scapy compute it."""
    copy = pkt.copy()
    del copy[layer].chksum
    return int(copy.__class__(bytes(copy))[layer].chksum)


@given(
    st.integers(1, 255),
    st.integers(0, 255),
    st.integers(1, 255),
    st.lists(ipv4, max_size=8),
    st.sampled_from([0, 1]),
    st.binary(min_size=8, max_size=8),
    ipv4,
)
def test_v2_read_by_scapy(
    vrid: int,
    prio: int,
    secs: int,
    addrs: list[IPv4Address],
    auth: int,
    data: bytes,
    dst: IPv4Address,
) -> None:
    advert = Advert(2, vrid, prio, secs * 100, tuple(addrs), auth, data)
    wire = encode(advert, src=SRC4, dst=dst)
    pkt = on_ip(wire, SRC4, dst)
    got = pkt[VRRP]
    assert (got.version, got.type, got.vrid, got.priority) == (2, 1, vrid, prio)
    assert (got.ipcount, got.authtype, got.adv) == (len(addrs), auth, secs)
    assert got.addrlist == [str(a) for a in addrs]
    assert got.auth1.to_bytes(4, "big") + got.auth2.to_bytes(4, "big") == data
    assert rebuilt_checksum(pkt, VRRP) == got.chksum


@given(st.integers(1, 255), st.integers(0, 255), st.integers(1, 4095), v3_ipv4_list, ipv4)
def test_v3_ipv4_read_by_scapy(
    vrid: int, prio: int, cs: int, addrs: list[IPv4Address], dst: IPv4Address
) -> None:
    wire = encode(Advert(3, vrid, prio, cs, tuple(addrs)), src=SRC4, dst=dst)
    pkt = on_ip(wire, SRC4, dst)
    got = pkt[VRRPv3]
    assert (got.version, got.type, got.vrid, got.priority, got.adv) == (3, 1, vrid, prio, cs)
    assert (got.ipcount, got.res) == (len(addrs), 0)
    assert list(got.addrlist) == [str(a) for a in addrs]  # scapy shows no address as b""
    # scapy uses the pseudo-header with the actual destination, like keepalived
    assert rebuilt_checksum(pkt, VRRPv3) == got.chksum


@given(st.integers(1, 255), st.integers(0, 255), st.integers(1, 4095), st.lists(ipv6, max_size=4))
def test_v3_ipv6_read_by_scapy(vrid: int, prio: int, cs: int, addrs: list[IPv6Address]) -> None:
    wire = encode(
        Advert(3, vrid, prio, cs, tuple(addrs)), src=SRC6, dst=VRRP_GROUP_V6, ipv6_checksum=True
    )
    pkt = on_ip(wire, SRC6, VRRP_GROUP_V6)
    got = pkt[VRRPv3]
    assert (got.vrid, got.priority, got.adv, got.ipcount) == (vrid, prio, cs, len(addrs))
    assert [IPv6Address(a) for a in got.addrlist] == addrs
    assert rebuilt_checksum(pkt, VRRPv3) == got.chksum


def test_checksum_as_v2_is_what_scapy_computes_without_pseudo_header() -> None:
    # RFC 9568 5.2.8: scapy's VRRPv3 always uses the pseudo-header, so build the v2 form
    # with scapy's generic RFC 1071 checksum over the VRRP bytes alone.
    from scapy.utils import checksum

    wire = encode(
        Advert(3, 7, 100, 100, (IPv4Address("192.0.2.10"),)),
        src=SRC4,
        dst=VRRP_GROUP_V4,
        checksum_as_v2=True,
    )
    assert checksum(wire[:6] + b"\x00\x00" + wire[8:]) == int.from_bytes(wire[6:8], "big")


@given(st.integers(1, 255), st.integers(0, 255), st.integers(1, 255), st.lists(ipv4, max_size=8))
def test_scapy_v2_decoded_by_pykad(
    vrid: int, prio: int, secs: int, addrs: list[IPv4Address]
) -> None:
    pkt = IP(
        bytes(
            IP(src=str(SRC4), dst=str(VRRP_GROUP_V4))
            / VRRP(vrid=vrid, priority=prio, adv=secs, addrlist=[str(a) for a in addrs])
        )
    )
    advert = decode(bytes(pkt[VRRP]), family=4, src=SRC4, dst=VRRP_GROUP_V4)
    assert advert == Advert(2, vrid, prio, secs * 100, tuple(addrs))


@given(st.integers(1, 255), st.integers(0, 255), st.integers(1, 4095), v3_ipv4_list, ipv4)
def test_scapy_v3_ipv4_decoded_by_pykad(
    vrid: int, prio: int, cs: int, addrs: list[IPv4Address], dst: IPv4Address
) -> None:
    pkt = IP(
        bytes(
            IP(src=str(SRC4), dst=str(dst))
            / VRRPv3(vrid=vrid, priority=prio, adv=cs, addrlist=[str(a) for a in addrs])
        )
    )
    advert = decode(bytes(pkt[VRRPv3]), family=4, src=SRC4, dst=dst)
    assert advert == Advert(3, vrid, prio, cs, tuple(addrs))


@given(st.integers(1, 255), st.integers(0, 255), st.integers(1, 4095), st.lists(ipv6, max_size=4))
def test_scapy_v3_ipv6_decoded_by_pykad(
    vrid: int, prio: int, cs: int, addrs: list[IPv6Address]
) -> None:
    pkt = IPv6(
        bytes(
            IPv6(src=str(SRC6), dst=str(VRRP_GROUP_V6))
            / VRRPv3(vrid=vrid, priority=prio, adv=cs, addrlist=[str(a) for a in addrs])
        )
    )
    advert = decode(bytes(pkt[VRRPv3]), family=6, src=SRC6, dst=VRRP_GROUP_V6)
    assert advert == Advert(3, vrid, prio, cs, tuple(addrs))


@given(ipv4, st.binary(min_size=6, max_size=6))
def test_garp_read_by_scapy(vip: IPv4Address, mac: bytes) -> None:
    frame = Ether(build_garp(mac, vip))
    assert len(bytes(frame)) == 42
    assert (frame.dst, frame.src, frame.type) == ("ff:ff:ff:ff:ff:ff", _mac(mac), 0x0806)
    arp = frame[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 1)
    assert (arp.hwsrc, arp.psrc) == (_mac(mac), str(vip))
    assert (arp.hwdst, arp.pdst) == ("ff:ff:ff:ff:ff:ff", str(vip))  # keepalived's form


@pytest.mark.parametrize("router", [False, True])
@given(vip=ipv6, mac=st.binary(min_size=6, max_size=6))
def test_unsolicited_na_read_by_scapy(router: bool, vip: IPv6Address, mac: bytes) -> None:
    frame = Ether(build_unsolicited_na(mac, vip, router=router))
    assert (frame.dst, frame.src, frame.type) == ("33:33:00:00:00:01", _mac(mac), 0x86DD)
    ip6 = frame[IPv6]
    assert (IPv6Address(ip6.src), ip6.dst, ip6.hlim, ip6.nh, ip6.plen) == (
        vip,
        "ff02::1",
        255,
        58,
        32,
    )
    assert (ip6.tc, ip6.fl) == (0, 0)
    na = frame[ICMPv6ND_NA]
    assert (na.type, na.code, na.R, na.S, na.O) == (136, 0, int(router), 0, 1)
    assert IPv6Address(na.tgt) == vip
    opt = frame[ICMPv6NDOptDstLLAddr]  # type 2 is "target link-layer address" in RFC 4861
    assert (opt.type, opt.len, opt.lladdr) == (2, 1, _mac(mac))
    copy = frame.copy()
    del copy[ICMPv6ND_NA].cksum
    assert Ether(bytes(copy))[ICMPv6ND_NA].cksum == na.cksum


def test_builders_refuse_a_bad_mac() -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        build_garp(b"\x00" * 5, IPv4Address("192.0.2.10"))
    with pytest.raises(ValueError, match="6 bytes"):
        build_unsolicited_na(b"\x00" * 7, IPv6Address("2001:db8::1"), router=False)


def _mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)
