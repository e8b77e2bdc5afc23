"""RFC 1071 Internet checksum and the VRRP checksum forms (spec §5.9 "Checksum").

* v2 (RFC 3768 5.3.8): over the VRRP message (header + addresses + 8 auth bytes) only.
* v3 over IPv4 (RFC 5798 5.2.8): over an IPv4 pseudo-header {src, dst, 0, 112, VRRP length}
  followed by the VRRP message; dst is the *actual* destination, so each unicast copy gets
  its own checksum (spec §10 item 7). This is keepalived's default.
* v3 "checksum as v2" (RFC 9568 5.2.8, keepalived's ``v3_checksum_as_v2``): some vendors
  omit the pseudo-header for IPv4; pykad selects that with ``checksum_as_v2=True``.
* v3 over IPv6: the RFC 8200 8.1 pseudo-header. On a raw socket the kernel computes and
  verifies it (IPV6_CHECKSUM = 6); :func:`vrrp_checksum` computes it for tests and captures.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from pykad.proto.constants import IPPROTO_VRRP

IPAddress = IPv4Address | IPv6Address


def ones_complement_sum(data: bytes) -> int:
    """The 16-bit one's-complement sum of ``data`` (odd length padded with a zero byte).

    RFC 1071 2(B) "Byte order independence" and 2(C) "Parallel summation": since
    2**16 == 1 (mod 2**16 - 1), the whole buffer read as one big-endian integer is congruent
    to the sum of its 16-bit words modulo 0xFFFF, which is exactly the end-around-carry sum.
    One ``int.from_bytes`` and one modulo replace a per-word Python loop.
    """
    if len(data) & 1:
        data += b"\x00"
    total = int.from_bytes(data, "big")
    folded = total % 0xFFFF
    # The end-around-carry sum of a non-zero buffer is never 0 but 0xFFFF ("negative zero").
    return 0xFFFF if folded == 0 and total else folded


def internet_checksum(data: bytes) -> int:
    """RFC 1071: the one's complement of the one's-complement sum. 0 when ``data`` verifies."""
    return ~ones_complement_sum(data) & 0xFFFF


def pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """The upper-layer pseudo-header for protocol 112 (RFC 5798 5.2.8, RFC 8200 8.1)."""
    if isinstance(src, IPv4Address) and isinstance(dst, IPv4Address):
        return src.packed + dst.packed + bytes((0, IPPROTO_VRRP)) + length.to_bytes(2, "big")
    if isinstance(src, IPv6Address) and isinstance(dst, IPv6Address):
        return src.packed + dst.packed + length.to_bytes(4, "big") + bytes((0, 0, 0, IPPROTO_VRRP))
    raise ValueError(f"source {src} and destination {dst} are of different families")


def vrrp_checksum(
    message: bytes,
    *,
    version: int,
    src: IPAddress,
    dst: IPAddress,
    checksum_as_v2: bool = False,
) -> int:
    """The checksum of a VRRP ``message`` whose checksum field is zero.

    Applied to a message that carries its checksum, the result is 0 exactly when the
    checksum is valid (RFC 1071 "To check a checksum").
    """
    if version == 2 or (checksum_as_v2 and isinstance(src, IPv4Address)):
        # RFC 3768 5.3.8 / RFC 9568 5.2.8 (IPv4 only: IPv6 always has its pseudo-header)
        return internet_checksum(message)
    return internet_checksum(pseudo_header(src, dst, len(message)) + message)
