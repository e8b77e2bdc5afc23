"""Typed model of the LVS side: virtual_server_group, virtual_server, real_server, checkers.

Spec §9. Parsed and validated by :mod:`pykad.config.lower_lvs`; the load balancer that acts on
it is a later stage. Same conventions as :mod:`pykad.config.model`: frozen, slotted,
keyword-only dataclasses, tuples for collections, locations excluded from equality, times as
float seconds in ``*_s`` fields.

Inheritance (spec §9.3-9.4, keepalived's ``validate_check_config``) is resolved when lowering:
a virtual server's ``delay_loop``, ``connect_timeout``, ``retry``, ``delay_before_retry``,
``warmup``, ``alpha``, ``inhibit_on_failure`` and ``lvs_method`` flow down to each real server
that does not set its own, and a real server's flow down to each checker. So every checker
holds its *effective* values and the runtime never looks upwards.

This module must not import :mod:`pykad.config.model` at run time: ``model`` imports
``LvsConfig`` from here, so ``Script`` is only named for the type checker.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from pykad.config.diagnostics import SourceLoc

if TYPE_CHECKING:
    from pykad.config.model import Script

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NOLOC = SourceLoc("<default>", 0)

# Defaults of spec §9.2 (keepalived check_data.c / check_api.c).
DEFAULT_DELAY_LOOP_S = 60.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_SCHEDULER = "wlc"
PERSISTENCE_DEFAULT_S = 360  # IPVS_SVC_PERSISTENT_TIMEOUT
PERSISTENCE_MAX_S = 2_678_400  # LVS_MAX_TIMEOUT: 31 days
IPVS_WEIGHT_LIMIT = 2_147_483_647  # INT32_MAX
SCHEDULERS = (
    "rr",
    "wrr",
    "lc",
    "wlc",
    "lblc",
    "sh",
    "mh",
    "dh",
    "fo",
    "ovf",
    "lblcr",
    "sed",
    "nq",
    "twos",
)


class ForwardingMethod(StrEnum):
    """``lvs_method`` / ``lb_kind``: IPVS's masquerading, direct routing or tunnelling."""

    NAT = "NAT"
    DR = "DR"
    TUN = "TUN"


class TunnelType(StrEnum):
    IPIP = "ipip"
    GUE = "gue"
    GRE = "gre"


class TunnelChecksum(StrEnum):
    NOCSUM = "nocsum"
    CSUM = "csum"
    REMCSUM = "remcsum"


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


@dataclass(frozen=True, slots=True, kw_only=True)
class Forwarding:
    """``lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]``.

    The tunnel fields only mean something for TUN; ``tunnel_port`` is non-zero exactly for GUE.
    """

    method: ForwardingMethod = ForwardingMethod.NAT
    tunnel_type: TunnelType = TunnelType.IPIP
    tunnel_port: int = 0
    tunnel_checksum: TunnelChecksum = TunnelChecksum.NOCSUM


# --------------------------------------------------------------------------------------------
# virtual_server_group (spec §9.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class VsgAddressRange:
    """``IP [PORT]``, ``IP-LAST``, ``IP1-IP2`` or ``IP/LEN``: every address first..last."""

    first: IPAddress
    last: IPAddress  # == first for a single address
    port: int = 0  # 0: no port (only valid for persistent services)
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)

    @property
    def family(self) -> int:
        return self.first.version


@dataclass(frozen=True, slots=True, kw_only=True)
class VsgFwmark:
    """``fwmark N [inet|inet6]``."""

    fwmark: int
    family: int | None = None  # 4 or 6 when given; needed only with all-tunnelled RSs
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualServerGroup:
    name: str
    ranges: tuple[VsgAddressRange, ...] = ()
    fwmarks: tuple[VsgFwmark, ...] = ()
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)


# --------------------------------------------------------------------------------------------
# Checkers (spec §9.4, §9.5). Each holds effective values after inheritance.


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckerBase:
    """Options every runnable checker has (``alpha`` onwards in keepalived's man page)."""

    retry: int = 1
    delay_before_retry_s: float = 1.0
    warmup_s: float = DEFAULT_DELAY_LOOP_S  # first check after 1 s + random(0..warmup)
    delay_loop_s: float = DEFAULT_DELAY_LOOP_S
    alpha: bool = False  # start DOWN until the first success
    log_all_failures: bool = False
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectChecker(CheckerBase):
    """Checkers that open a connection: the connection options of spec §9.4."""

    connect_ip: IPAddress  # default: the real server's address
    connect_port: int = 0  # default: the real server's port
    bindto: IPAddress | None = None
    bind_port: int = 0  # 0: any
    bind_if: str | None = None
    fwmark: int = 0  # SO_MARK on the checker's socket; 0: none
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpCheck(ConnectChecker):
    """``TCP_CHECK``: a TCP connect within connect_timeout is success."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRange:
    """One ``status_code`` word: ``N`` or ``N-M`` (inclusive)."""

    low: int
    high: int

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.low <= code <= self.high


DEFAULT_STATUS_CODES = (StatusRange(low=200, high=299),)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpUrl:
    """One ``url { ... }`` of HTTP_GET/SSL_GET; every url must pass."""

    path: str
    digest: str | None = None  # MD5 of the body, 32 lowercase hex digits
    status_codes: tuple[StatusRange, ...] = DEFAULT_STATUS_CODES
    virtualhost: str | None = None  # effective: url, checker, real server, virtual server
    regex: str | None = None  # PCRE2 pattern, as written
    regex_no_match: bool = False
    regex_options: tuple[str, ...] = ()
    regex_min_offset: int = 0
    regex_max_offset: int | None = None  # None: no limit (inclusive when set)
    regex_stack: tuple[int, int] | None = None  # (start, max) JIT stack bytes
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)


class HttpProtocol(StrEnum):
    V1_0 = "1.0"
    V1_0C = "1.0C"  # 1.0 plus "Connection: close"
    V1_1 = "1.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCheck(ConnectChecker):
    """``HTTP_GET`` and ``SSL_GET`` (``ssl=True``)."""

    ssl: bool = False
    urls: tuple[HttpUrl, ...] = ()
    http_protocol: HttpProtocol = HttpProtocol.V1_0
    virtualhost: str | None = None  # effective: checker, real server, virtual server
    fast_recovery: bool = False
    enable_sni: bool = False
    sni_name: str | None = None
    tls_compliant: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpCheck(ConnectChecker):
    helo_name: str = "smtpchecker.keepalived.org"


DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY")


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsCheck(ConnectChecker):
    type: str = "SOA"
    name: str = "."


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpCheck(ConnectChecker):
    """``UDP_CHECK``; failure is an ICMP unreachable (or no reply with ``require_reply``)."""

    payload: bytes | None = None  # None: a random payload
    require_reply: bool = False
    # hex digits, one per nibble, "x" = don't care; None: any reply content
    reply_pattern: str | None = None
    min_reply_length: int = 0
    max_reply_length: int = 255


@dataclass(frozen=True, slots=True, kw_only=True)
class PingCheck(ConnectChecker):
    """``PING_CHECK``: ICMP/ICMPv6 echo."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MiscCheck(CheckerBase):
    """``MISC_CHECK``: exit 0 up, 1 down; with ``dynamic`` 2..255 set weight = exit - 2."""

    script: Script
    timeout_s: float = DEFAULT_DELAY_LOOP_S  # effective: misc_timeout, 0/unset -> delay_loop
    dynamic: bool = False
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FileCheck:
    """``FILE_CHECK``: the real server follows a ``track_file``'s value."""

    track_file: str
    weight: int | None = None  # None: the track_file's own weight
    reverse: bool = False
    dynamic: bool = False
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class BfdCheck:
    """``BFD_CHECK { name BFD }``: the real server follows a BFD session."""

    name: str
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)


Checker = (
    TcpCheck
    | HttpCheck
    | SmtpCheck
    | DnsCheck
    | UdpCheck
    | PingCheck
    | MiscCheck
    | FileCheck
    | BfdCheck
)


# --------------------------------------------------------------------------------------------
# real_server, sorry_server, virtual_server (spec §9.2, §9.3)


@dataclass(frozen=True, slots=True, kw_only=True)
class SorryServer:
    """``sorry_server IP [PORT]``: replaces the pool while quorum is lost."""

    address: IPAddress
    port: int = 0
    inhibit: bool = False  # sorry_server_inhibit
    forwarding: Forwarding = field(default_factory=Forwarding)  # default: the VS's
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RealServer:
    """``real_server IP [PORT] { ... }`` with the virtual server's defaults resolved."""

    address: IPAddress
    port: int = 0  # resolved: NAT without port and non-NAT take the VS port
    weight: int = 1  # 0..INT32_MAX; default the VS's `weight`
    forwarding: Forwarding = field(default_factory=Forwarding)
    uthreshold: int | None = None
    lthreshold: int | None = None
    inhibit_on_failure: bool = False
    notify_up: Script | None = None
    notify_down: Script | None = None
    alpha: bool = False
    # None: not set here nor on the VS, each checker uses its own default
    retry: int | None = None
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    delay_loop_s: float = DEFAULT_DELAY_LOOP_S
    smtp_alert: bool = True  # on by default for RS (spec §9.3: deliberate inconsistency)
    virtualhost: str | None = None  # as configured on the RS (checkers hold the effective one)
    snmp_name: str | None = None
    checkers: tuple[Checker, ...] = ()
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)

    @property
    def family(self) -> int:
        return self.address.version


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualServer:
    """``virtual_server IP [PORT] | fwmark N | group NAME { ... }`` (spec §9.2).

    Exactly one of ``address``, ``fwmark`` and ``group`` is set. For a group the port of the
    service comes from the group entries; ``port`` is then 0.
    """

    address: IPAddress | None = None
    port: int = 0
    fwmark: int | None = None
    group: str | None = None
    ip_family: int = 4  # 4 or 6; from the address, ip_family, or the real servers
    lvs_sched: str = DEFAULT_SCHEDULER
    # IPVS scheduler flags as written: hashed ops flag-1 flag-2 flag-3 sh-port sh-fallback
    # mh-port mh-fallback (sh-*/mh-* only with that scheduler)
    sched_flags: tuple[str, ...] = ()
    forwarding: Forwarding = field(default_factory=Forwarding)
    protocol: Protocol | None = None  # None for fwmark services (IPVS ignores it there)
    persistence_timeout_s: int = 0  # 0: not persistent
    persistence_granularity: str | None = None  # IPv4 netmask or IPv6 prefix length
    persistence_engine: str | None = None
    ha_suspend: bool = False
    delay_loop_s: float = DEFAULT_DELAY_LOOP_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    retry: int | None = None  # None: per-checker default
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    inhibit_on_failure: bool = False
    alpha: bool = False
    omega: bool = False
    quorum: int = 1
    hysteresis: int = 0  # always < quorum (or 0)
    quorum_up: Script | None = None
    quorum_down: Script | None = None
    sorry_server: SorryServer | None = None
    weight: int = 1  # default real server weight
    virtualhost: str | None = None
    smtp_alert: bool = False  # default: global smtp_alert_checker, smtp_alert, else off
    snmp_name: str | None = None
    real_servers: tuple[RealServer, ...] = ()
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)

    @property
    def label(self) -> str:
        """How messages name this service: ``192.0.2.1:80``, ``fwmark 1``, ``group VSG``."""
        if self.group is not None:
            return f"group {self.group}"
        if self.fwmark is not None:
            return f"fwmark {self.fwmark}"
        host = f"[{self.address}]" if self.ip_family == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SslConfig:
    """Top-level ``SSL { password; ca; certificate; key }`` for SSL_GET client contexts."""

    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    loc: SourceLoc = field(default=_NOLOC, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LvsConfig:
    """Everything the checker process would run. Filled in by the LVS lowering."""

    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()
    ssl: SslConfig | None = None
