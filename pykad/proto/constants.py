"""VRRP protocol numbers and limits (RFC 3768, RFC 5798, RFC 9568; spec §5.9, Appendix B).

Plain values only, so every layer (config lowering, the machine, adapters) can share them.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Final

# IANA protocol numbers (RFC 5798 5.1.1.4, RFC 3768 5.2.4 / IPsec AH RFC 2402)
IPPROTO_VRRP: Final = 112
IPPROTO_AH: Final = 51

# RFC 5798 5.1.1.2 / 5.1.2.2: the IANA groups; keepalived's defaults (spec §2)
VRRP_GROUP_V4: Final = IPv4Address("224.0.0.18")
VRRP_GROUP_V6: Final = IPv6Address("ff02::12")

# RFC 5798 5.1.1.3 / 5.1.2.3: TTL / hop limit MUST be 255 on send and is checked on receive
VRRP_TTL: Final = 255
# keepalived sets TOS / traffic class "internetwork control" (spec §5.9)
VRRP_TOS: Final = 0xC0

# RFC 5798 5.2.1 / 5.2.2: version and type nibbles
VERSION_2: Final = 2
VERSION_3: Final = 3
TYPE_ADVERTISEMENT: Final = 1

# RFC 5798 5.2.4: priority 0 = the master resigns, 255 = the address owner
PRIORITY_RESIGN: Final = 0
PRIORITY_MIN: Final = 1
PRIORITY_MAX_BACKUP: Final = 254
PRIORITY_OWNER: Final = 255

VRID_MIN: Final = 1
VRID_MAX: Final = 255
MAX_ADDRESSES: Final = 255  # the Count IPvX Addr field is one byte

# RFC 3768 5.3.6: v2 authentication types; AH is the legacy IPsec form (RFC 2338)
AUTH_NONE: Final = 0
AUTH_PASS: Final = 1
AUTH_AH: Final = 2
AUTH_DATA_LEN: Final = 8  # RFC 3768 5.3.10: the trailer is always 8 bytes on IPv4

# Advertisement interval: v2 whole seconds in one byte (RFC 3768 5.3.7); v3 12 bits of
# centiseconds (RFC 5798 5.2.7). pykad keeps every interval in centiseconds.
V2_MAX_ADVER_INT_S: Final = 255
V3_MAX_ADVER_INT_CS: Final = 0x0FFF
CS_PER_SECOND: Final = 100

HEADER_LEN: Final = 8
IPV4_HEADER_LEN: Final = 20
AH_HEADER_LEN: Final = 24  # next hdr, len, reserved, SPI, sequence, 12-byte ICV (spec §5.9)
# Offset of the checksum in the VRRP header: the value given to setsockopt(IPV6_CHECKSUM)
# so that the kernel fills and verifies the IPv6 checksum (spec §5.9).
CHECKSUM_OFFSET: Final = 6

# RFC 5798 7.3: virtual router MAC addresses 00-00-5E-00-01-{VRID} / 00-00-5E-00-02-{VRID}
VMAC_PREFIX_V4: Final = bytes.fromhex("00005e0001")
VMAC_PREFIX_V6: Final = bytes.fromhex("00005e0002")


def vmac(vrid: int, family: int) -> bytes:
    """The virtual router MAC for ``vrid`` (RFC 5798 7.3)."""
    if not VRID_MIN <= vrid <= VRID_MAX:
        raise ValueError(f"VRID {vrid} out of range 1..255")
    if family not in (4, 6):
        raise ValueError(f"family must be 4 or 6, not {family}")
    return (VMAC_PREFIX_V4 if family == 4 else VMAC_PREFIX_V6) + bytes((vrid,))
