"""Why a received packet was dropped (spec §5.7): one stats counter per reason.

The receive path turns every malformed or foreign packet into ``DecodeError(reason)``, counts
it and logs it at debug level; it never becomes an event for the state machine (RFC 5798 7.1:
"MUST discard"). Nothing else may escape :mod:`pykad.proto`'s decoders.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class Discard(StrEnum):
    """Drop reasons. Values are keepalived's per-instance stats counter names (SIGUSR2
    ``/tmp/keepalived.stats``, spec §5.10) where keepalived has one, else pykad's own
    counter for what keepalived only logs or counts in its SNMP MIB."""

    # keepalived's counters
    PACKET_LEN = "packet_len_err"  # §5.7 check 5 (exact length) and 11 (IP total length)
    IP_TTL = "ip_ttl_err"  # check 6, and the unicast peer's min_ttl..max_ttl window (15)
    INVALID_TYPE = "invalid_type_rcvd"  # check 9
    ADVERT_INTERVAL = "advert_interval_err"  # check 8, v2 only
    ADDR_LIST = "addr_list_err"  # checks 10 and 15 (VIP count / membership)
    INVALID_AUTHTYPE = "invalid_authtype"  # check 8: v2 auth type not 0, 1 or 2
    AUTHTYPE_MISMATCH = "authtype_mismatch"  # checks 4 and 8
    AUTH_FAILURE = "auth_failure"  # check 8: wrong simple password
    # pykad counters (keepalived logs these, or counts them only in SNMP)
    TOO_SHORT = "too_short"  # check 1: not even a VRRP header
    IP_HEADER = "ip_header_err"  # not an IPv4 header (version nibble, IHL < 5)
    UNKNOWN_VRID = "unknown_vrid"  # check 2 (SNMP vrrpRouterVrIdErrors)
    VERSION = "version_err"  # check 7 (SNMP vrrpRouterVersionErrors)
    CHECKSUM = "checksum_err"  # check 12 (SNMP vrrpRouterChecksumErrors)
    DST_MISMATCH = "dst_mismatch"  # check 13; keepalived counts it in addr_list_err
    UNICAST_SRC = "unicast_src_err"  # check 15: source is not a configured unicast peer


# The keepalived stats counter each reason increments (None: keepalived only logs it), so the
# stats dump can print keepalived's file format (spec §7.2) from pykad's counters.
KEEPALIVED_COUNTER: Final[Mapping[Discard, str | None]] = {
    Discard.PACKET_LEN: "packet_len_err",
    Discard.IP_TTL: "ip_ttl_err",
    Discard.INVALID_TYPE: "invalid_type_rcvd",
    Discard.ADVERT_INTERVAL: "advert_interval_err",
    Discard.ADDR_LIST: "addr_list_err",
    Discard.INVALID_AUTHTYPE: "invalid_authtype",
    Discard.AUTHTYPE_MISMATCH: "authtype_mismatch",
    Discard.AUTH_FAILURE: "auth_failure",
    Discard.TOO_SHORT: None,
    Discard.IP_HEADER: None,
    Discard.UNKNOWN_VRID: None,
    Discard.VERSION: None,
    Discard.CHECKSUM: None,
    Discard.DST_MISMATCH: "addr_list_err",
    Discard.UNICAST_SRC: None,
}


class DecodeError(Exception):
    """A received packet is discarded for ``reason``; ``detail`` is keepalived's log text."""

    def __init__(self, reason: Discard, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}")
