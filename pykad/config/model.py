"""The typed configuration model: frozen, slotted, keyword-only dataclasses.

Every field carries keepalived's default (spec §2-4, §9), so a model built from an empty block
is exactly what keepalived would run. Collections are tuples so that two models compare with
``==`` (a reload diffs old and new by instance name). Locations are excluded from equality:
moving a block in the file is not a change.

Units are named in the identifier: ``advert_int_cs`` is centiseconds (the VRRPv3 wire unit,
also used for v2 where it is always a multiple of 100), ``*_s`` is seconds as a float.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from pykad.config.diagnostics import SourceLoc
from pykad.config.model_lvs import LvsConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NOLOC = SourceLoc("<default>", 0)


def _loc() -> SourceLoc:
    return field(default=_NOLOC, compare=False, repr=False)


# --------------------------------------------------------------------------------------------
# Shared pieces


class AuthType(StrEnum):
    NONE = "NONE"
    PASS = "PASS"  # noqa: S105 - the auth type name, not a password
    AH = "AH"


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    """VRRPv2 ``authentication { auth_type; auth_pass }`` (spec §3.3)."""

    type: AuthType = AuthType.NONE
    # exactly 8 bytes, zero padded (what goes on the wire); empty for NONE
    password: bytes = b""
    loc: SourceLoc = _loc()


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """A command to run: ``notify_*``, ``script``, ``misc_path``... (spec §1.3, §6.3).

    ``argv`` is the already-split argument vector; it is executed without a shell.
    """

    argv: tuple[str, ...]
    user: str | None = None  # None: the default script user (global script_user / root)
    group: str | None = None
    loc: SourceLoc = _loc()


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualAddress:
    """One line of ``virtual_ipaddress`` / ``virtual_ipaddress_excluded`` / static_ipaddress."""

    address: IPInterface  # with prefix; default /32 or /128
    dev: str | None = None  # None: the instance interface
    broadcast: ipaddress.IPv4Address | None = None  # resolved from brd IP|+|-
    scope: str = "global"  # global|site|link|host|nowhere or a number as text
    label: str | None = None
    peer: IPAddress | None = None
    no_track: bool = False
    home: bool = False
    nodad: bool = False
    mngtmpaddr: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    preferred_lft: int | None = None  # None: kernel/keepalived default; seconds; -1 = forever
    loc: SourceLoc = _loc()

    @property
    def ip(self) -> IPAddress:
        return self.address.ip

    @property
    def family(self) -> int:
        return self.address.version


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualRoute:
    """One line of ``virtual_routes`` / ``static_routes`` (an ``ip route`` subset)."""

    dst: IPNetwork | None  # None only for "default"
    type: str = "unicast"  # unicast|blackhole|unreachable|prohibit|throw|local|...
    src: IPAddress | None = None
    via: IPAddress | None = None
    dev: str | None = None
    scope: str | None = None
    table: int | None = None
    metric: int | None = None
    protocol: str | None = None
    onlink: bool = False
    no_track: bool = False
    # words pykad parsed but does not act on (mtu, nexthop, ...), kept for dump-conf
    extra: tuple[str, ...] = ()
    loc: SourceLoc = _loc()


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualRule:
    """One line of ``virtual_rules`` / ``static_rules`` (an ``ip rule`` subset)."""

    src: IPNetwork | None = None  # from
    dst: IPNetwork | None = None  # to
    table: int | None = None
    priority: int | None = None  # preference|priority|order
    fwmark: int | None = None
    iif: str | None = None
    oif: str | None = None
    family: int = 4
    no_track: bool = False
    extra: tuple[str, ...] = ()
    loc: SourceLoc = _loc()


@dataclass(frozen=True, slots=True, kw_only=True)
class UnicastPeer:
    address: IPAddress
    min_ttl: int = 0
    max_ttl: int = 255
    loc: SourceLoc = _loc()


# --------------------------------------------------------------------------------------------
# Tracking (spec §3.5, §4.2-4.4)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackInterface:
    name: str
    weight: int = 0  # 0: down means FAULT
    reverse: bool = False
    loc: SourceLoc = _loc()


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackRef:
    """A ``track_script`` / ``track_file`` / ``track_process`` / ``track_bfd`` entry.

    ``weight``/``reverse`` are resolved at lowering: an entry without ``weight`` takes the
    tracked object's own weight and reverse flag.
    """

    name: str
    weight: int = 0
    reverse: bool = False
    loc: SourceLoc = _loc()


@dataclass(frozen=True, slots=True, kw_only=True)
class VrrpScript:
    """``vrrp_script NAME { ... }`` (spec §4.2)."""

    name: str
    script: Script
    interval_s: float = 1.0
    timeout_s: float = 0.0  # 0: use interval
    weight: int = 0
    reverse: bool = False
    rise: int = 1
    fall: int = 1
    init_fail: bool = False
    loc: SourceLoc = _loc()

    @property
    def effective_timeout_s(self) -> float:
        return self.timeout_s or self.interval_s


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackFile:
    """``track_file NAME { file PATH; weight W [reverse]; init_file [V] [overwrite] }``."""

    name: str
    path: str
    weight: int = 1
    reverse: bool = False
    init_file: int | None = None  # value written when the file is created
    init_file_overwrite: bool = False
    loc: SourceLoc = _loc()


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackProcess:
    """``vrrp_track_process NAME { ... }`` (spec §4.4)."""

    name: str
    process: str
    args: tuple[str, ...] = ()
    param_match: str = "exact"  # exact|initial|partial
    full_command: bool = False
    weight: int = 0
    reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None  # None: unlimited
    fork_delay_s: float = 0.0
    terminate_delay_s: float = 0.0
    loc: SourceLoc = _loc()


# --------------------------------------------------------------------------------------------
# Notification


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify:
    """The notify scripts of an instance or a sync group (spec §3.6, §6)."""

    master: Script | None = None
    backup: Script | None = None
    fault: Script | None = None
    stop: Script | None = None
    deleted: Script | None = None
    deleted_enabled: bool = False  # `notify_deleted` present (with or without a script)
    generic: Script | None = None  # `notify`
    master_rx_lower_pri: Script | None = None
    priority_changes: bool = False
    smtp_alert: bool = False


# --------------------------------------------------------------------------------------------
# vrrp_instance


class InitialState(StrEnum):
    MASTER = "MASTER"
    BACKUP = "BACKUP"


@dataclass(frozen=True, slots=True, kw_only=True)
class VrrpInstance:
    """``vrrp_instance NAME { ... }`` with every default filled in (spec §3).

    The lowering has already applied keepalived's fix-ups (nopreempt cleared with state MASTER
    or priority 255, v2 interval rounded, strict-mode resets, ...), so the machine and the
    runtime can trust every field.
    """

    name: str
    vrid: int
    interface: str | None  # None only for unicast with unicast_src_ip and no interface
    initial_state: InitialState = InitialState.BACKUP
    priority: int = 100  # base priority 1..255; 255 = address owner
    advert_int_cs: int = 100  # own advertisement interval, centiseconds
    version: int = 2  # 2 or 3; IPv6 is always 3
    family: int = 4  # 4 or 6
    virtual_addresses: tuple[VirtualAddress, ...] = ()
    excluded_addresses: tuple[VirtualAddress, ...] = ()
    virtual_routes: tuple[VirtualRoute, ...] = ()
    virtual_rules: tuple[VirtualRule, ...] = ()
    # Addressing
    mcast_src_ip: IPAddress | None = None
    unicast_src_ip: IPAddress | None = None
    unicast_peers: tuple[UnicastPeer, ...] = ()
    mcast_group: IPAddress | None = None  # None: global vrrp_mcast_group4/6
    unicast_ttl: int | None = None
    unicast_fault_no_peer: bool = False
    check_unicast_src: bool = False
    track_src_ip: bool = False
    dont_track_primary: bool = False
    # Authentication (v2 only)
    auth: Auth = field(default_factory=Auth)
    # Preemption and timers
    nopreempt: bool = False
    preempt_delay_s: float = 0.0
    down_timer_adverts: int = 3
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    skip_check_adv_addr: bool = False
    strict: bool = False
    accept: bool = True
    v3_checksum_as_v2: bool = False
    # Gratuitous ARP / unsolicited NA schedule (resolved from globals)
    garp_master_delay_s: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh_s: float = 0.0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay_s: float = 5.0
    garp_lower_prio_repeat: int = 5
    garp_interval_s: float = 0.0
    gna_interval_s: float = 0.0
    # VMAC (parsed; the runtime reports it unsupported)
    use_vmac: bool = False
    vmac_name: str | None = None
    # Tracking
    track_interfaces: tuple[TrackInterface, ...] = ()
    track_scripts: tuple[TrackRef, ...] = ()
    track_files: tuple[TrackRef, ...] = ()
    track_processes: tuple[TrackRef, ...] = ()
    track_bfds: tuple[TrackRef, ...] = ()
    notify: Notify = field(default_factory=Notify)
    sync_group: str | None = None  # name of the vrrp_sync_group this instance belongs to
    loc: SourceLoc = _loc()

    @property
    def is_unicast(self) -> bool:
        return bool(self.unicast_peers)

    @property
    def source_ip(self) -> IPAddress | None:
        """Configured source address (unicast_src_ip, else mcast_src_ip); None = interface's."""
        return self.unicast_src_ip or self.mcast_src_ip

    @property
    def advert_int_s(self) -> float:
        return self.advert_int_cs / 100


# --------------------------------------------------------------------------------------------
# vrrp_sync_group


@dataclass(frozen=True, slots=True, kw_only=True)
class VrrpSyncGroup:
    name: str
    members: tuple[str, ...]
    track_interfaces: tuple[TrackInterface, ...] = ()
    track_scripts: tuple[TrackRef, ...] = ()
    track_files: tuple[TrackRef, ...] = ()
    track_processes: tuple[TrackRef, ...] = ()
    track_bfds: tuple[TrackRef, ...] = ()
    notify: Notify = field(default_factory=Notify)
    sync_group_tracking_weight: bool = False
    loc: SourceLoc = _loc()


# --------------------------------------------------------------------------------------------
# global_defs (spec §2)


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyFifo:
    path: str
    script: Script | None = None
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GlobalDefs:
    router_id: str | None = None  # None: the host's canonical name, resolved at run time
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    smtp_server: str | None = None
    smtp_port: int = 25
    smtp_helo_name: str | None = None
    smtp_connect_timeout_s: float = 30.0
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    no_email_faults: bool = False
    vrrp_mcast_group4: ipaddress.IPv4Address = ipaddress.IPv4Address("224.0.0.18")
    vrrp_mcast_group6: ipaddress.IPv6Address = ipaddress.IPv6Address("ff02::12")
    default_interface: str = "eth0"
    vrrp_garp_master_delay_s: float = 5.0
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh_s: float = 0.0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_lower_prio_delay_s: float | None = None  # None: = master delay
    vrrp_garp_lower_prio_repeat: int | None = None  # None: = master repeat
    vrrp_garp_interval_s: float = 0.0
    vrrp_gna_interval_s: float = 0.0
    vrrp_min_garp: bool = False
    vrrp_down_timer_adverts: int = 3
    vrrp_lower_prio_no_advert: bool = False
    vrrp_higher_prio_send_advert: bool = False
    vrrp_version: int = 2
    vrrp_check_unicast_src: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_strict: bool = False
    v3_checksum_as_v2: bool = False
    script_user: str | None = None
    script_group: str | None = None
    enable_script_security: bool = False
    notify_fifo: NotifyFifo | None = None
    vrrp_notify_fifo: NotifyFifo | None = None
    lvs_notify_fifo: NotifyFifo | None = None
    vrrp_notify_priority_changes: bool = False
    fifo_write_vrrp_states_on_reload: bool = False
    dynamic_interfaces: bool = False
    vrrp_startup_delay_s: float = 0.0
    log_unknown_vrids: bool = False
    lvs_flush: bool = False
    lvs_flush_on_stop: bool = False
    state_dump_file: str = "/tmp/keepalived.data"
    stats_dump_file: str = "/tmp/keepalived.stats"
    json_dump_file: str = "/tmp/keepalived.json"
    loc: SourceLoc = _loc()


# --------------------------------------------------------------------------------------------
# The whole configuration. The LVS side (virtual_server & co) is typed in model_lvs.py.


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticConfig:
    addresses: tuple[VirtualAddress, ...] = ()
    routes: tuple[VirtualRoute, ...] = ()
    rules: tuple[VirtualRule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    vrrp_instances: tuple[VrrpInstance, ...] = ()
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    sync_groups: tuple[VrrpSyncGroup, ...] = ()
    track_files: tuple[TrackFile, ...] = ()
    track_processes: tuple[TrackProcess, ...] = ()
    static: StaticConfig = field(default_factory=StaticConfig)
    lvs: LvsConfig = field(default_factory=LvsConfig)
    files: tuple[str, ...] = field(default=(), compare=False)  # every file read

    def instance(self, name: str) -> VrrpInstance:
        for inst in self.vrrp_instances:
            if inst.name == name:
                return inst
        raise KeyError(name)
