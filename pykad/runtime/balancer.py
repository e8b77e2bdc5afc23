"""Real-server health -> the IPVS table, as keepalived's ``ipwrapper.c`` does it (spec §9.6).

Theory of operation. :class:`Balancer` is pure: it never touches IPVS, runs no script, reads
no clock. It receives the health of the real servers (from
:class:`~pykad.check.checkerset.CheckerSet`) and returns effects: IPVS operations
(:class:`AddService`, :class:`AddDest`, ...), scripts to run (``notify_up``/``notify_down``,
``quorum_up``/``quorum_down``) and notify-FIFO lines (``RS ... UP``, ``VS ... DOWN``, §6.4).
:mod:`pykad.runtime.lvs` executes them. Nothing here depends on time: keepalived's health to
IPVS logic is driven by events only (the timing lives in the checkers).

The IPVS side is declarative. From the state (which real servers are alive, their effective
weights, whether each virtual server has quorum and its sorry server is in use) the balancer
computes the table it wants and emits the difference to the table it has programmed. The
rules of spec §9.6 then read as data:

* an alive real server is in its services with its effective weight; a failed one is absent,
  or present with weight 0 when ``inhibit_on_failure`` is set;
* quorum: with W the sum of the weights of the alive real servers, a service that has quorum
  loses it when W == 0 or W < quorum - hysteresis, and one without quorum gains it when
  W >= quorum + hysteresis (keepalived ``update_quorum_state``);
* while quorum is lost and a sorry server is configured, the sorry server is the pool: every
  real server is out (weight 0 if inhibited) and real-server transitions are only tracked;
  ``sorry_server_inhibit`` keeps the idle sorry server in the table with weight 0;
* a ``virtual_server group`` is one IPVS service per address of its ranges plus one per
  fwmark entry, all with the same destinations.

Events and logs follow keepalived: at startup the real servers that are up (non-``alpha``) are
added, then quorum is evaluated once ("Gained quorum ..." runs ``quorum_up``; with a sorry
server a service that starts without quorum logs "Starting with quorum down" and installs
it). A real server going down logs "Removing service [rs] from VS [vs]" (``Disabling ... of``
with ``inhibit_on_failure``) and runs ``notify_down`` and the FIFO ``RS`` line. At shutdown
every service pykad created is deleted (unless ``-I``), and with ``omega`` the down
notifications run too.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from pykad.adapters.ipvs import (
    FWD_DROUTE,
    FWD_MASQ,
    FWD_TUNNEL,
    SVC_F_HASHED,
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    SVC_F_SCHED1,
    SVC_F_SCHED2,
    SVC_F_SCHED3,
    TUN_F_CSUM,
    TUN_F_NOCSUM,
    TUN_F_REMCSUM,
    TUN_GRE,
    TUN_GUE,
    TUN_IPIP,
    IpvsDest,
    IpvsService,
)
from pykad.check.checkerset import RsKey, RsState, VsKey, rs_key, vs_key
from pykad.check.probes import hostport
from pykad.config.model import Script
from pykad.config.model_lvs import (
    Forwarding,
    ForwardingMethod,
    LvsConfig,
    Protocol,
    RealServer,
    SorryServer,
    TunnelChecksum,
    TunnelType,
    VirtualServer,
    VirtualServerGroup,
)

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class AddService:
    service: IpvsService


@dataclass(frozen=True, slots=True)
class EditService:
    service: IpvsService


@dataclass(frozen=True, slots=True)
class DeleteService:
    """Deleting a service deletes its destinations too (the kernel does)."""

    service: IpvsService


@dataclass(frozen=True, slots=True)
class AddDest:
    service: IpvsService
    dest: IpvsDest


@dataclass(frozen=True, slots=True)
class EditDest:
    service: IpvsService
    dest: IpvsDest


@dataclass(frozen=True, slots=True)
class DeleteDest:
    service: IpvsService
    dest: IpvsDest


@dataclass(frozen=True, slots=True)
class FlushIpvs:
    """Delete every IPVS service, ours or not (``lvs_flush``, ``lvs_flush_on_stop``)."""


@dataclass(frozen=True, slots=True)
class LvsNotify:
    """A notification: the script to run (if configured) and the notify-FIFO line (§6.4).

    ``key`` orders them: notifications with the same key run one after the other."""

    key: str
    script: Script | None
    label: str  # notify_up, notify_down, quorum_up, quorum_down (for logs)
    fifo_line: str  # without the newline


@dataclass(frozen=True, slots=True)
class LvsMail:
    """An SMTP alert (spec §9.6): ``subject`` without the ``[router_id] `` prefix, which the
    mailer adds, as keepalived's smtp.c does for every alert."""

    subject: str
    body: str


IpvsEffect = AddService | EditService | DeleteService | AddDest | EditDest | DeleteDest | FlushIpvs
LvsEffect = IpvsEffect | LvsNotify | LvsMail

# ----------------------------------------------------------------------- model -> IPVS values

_PROTO = {
    Protocol.TCP: socket.IPPROTO_TCP,
    Protocol.UDP: socket.IPPROTO_UDP,
    Protocol.SCTP: socket.IPPROTO_SCTP,
}
_FWD = {
    ForwardingMethod.NAT: FWD_MASQ,
    ForwardingMethod.DR: FWD_DROUTE,
    ForwardingMethod.TUN: FWD_TUNNEL,
}
_TUN = {TunnelType.IPIP: TUN_IPIP, TunnelType.GUE: TUN_GUE, TunnelType.GRE: TUN_GRE}
_CSUM = {
    TunnelChecksum.NOCSUM: TUN_F_NOCSUM,
    TunnelChecksum.CSUM: TUN_F_CSUM,
    TunnelChecksum.REMCSUM: TUN_F_REMCSUM,
}
# keepalived check_parser.c: scheduler flag words -> IP_VS_SVC_F_* (sh-*/mh-* share SCHED1/2)
_SCHED_FLAGS = {
    "hashed": SVC_F_HASHED,
    "ops": SVC_F_ONEPACKET,
    "flag-1": SVC_F_SCHED1,
    "flag-2": SVC_F_SCHED2,
    "flag-3": SVC_F_SCHED3,
    "sh-fallback": SVC_F_SCHED1,
    "sh-port": SVC_F_SCHED2,
    "mh-fallback": SVC_F_SCHED1,
    "mh-port": SVC_F_SCHED2,
}
SORRY_WEIGHT = 1  # keepalived alloc_ssvr: the sorry server's weight


def _af(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


def _granularity(vs: VirtualServer) -> int:
    """persistence_granularity as a prefix length (0: the whole address)."""
    text = vs.persistence_granularity
    if text is None:
        return 0
    if vs.ip_family == 6 or "." not in text:
        return int(text)
    return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen


def services_for(vs: VirtualServer, groups: Mapping[str, VirtualServerGroup]) -> list[IpvsService]:
    """The IPVS services of one virtual server (several for a virtual_server_group)."""
    flags = 0
    for word in vs.sched_flags:
        flags |= _SCHED_FLAGS.get(word, 0)
    flags &= ~SVC_F_HASHED  # the kernel owns HASHED
    if vs.persistence_timeout_s:
        flags |= SVC_F_PERSISTENT
    proto = 0 if vs.protocol is None else _PROTO[vs.protocol]
    base = IpvsService(
        family=_af(vs.ip_family),
        scheduler=vs.lvs_sched,
        flags=flags,
        timeout=vs.persistence_timeout_s,
        netmask=_granularity(vs),
        pe_name=vs.persistence_engine,
    )
    if vs.fwmark is not None:
        return [replace(base, fwmark=vs.fwmark)]
    if vs.address is not None:
        return [replace(base, protocol=proto, address=vs.address, port=vs.port)]
    group = groups.get(vs.group or "")
    if group is None:
        return []
    out: list[IpvsService] = []
    for entry in group.ranges:
        make = ipaddress.IPv4Address if entry.family == 4 else ipaddress.IPv6Address
        for value in range(int(entry.first), int(entry.last) + 1):
            out.append(
                replace(
                    base,
                    family=_af(entry.family),
                    protocol=proto,
                    address=make(value),
                    port=entry.port or vs.port,
                )
            )
    for mark in group.fwmarks:
        out.append(replace(base, family=_af(mark.family or vs.ip_family), fwmark=mark.fwmark))
    return out


def dest_for(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    port: int,
    forwarding: Forwarding,
    weight: int,
    *,
    u_threshold: int | None = None,
    l_threshold: int | None = None,
) -> IpvsDest:
    tunnel = forwarding.method is ForwardingMethod.TUN
    return IpvsDest(
        address=address,
        port=port,
        forward=_FWD[forwarding.method],
        weight=weight,
        u_threshold=u_threshold or 0,
        l_threshold=l_threshold or 0,
        tun_type=_TUN[forwarding.tunnel_type] if tunnel else TUN_IPIP,
        tun_port=forwarding.tunnel_port if tunnel else 0,
        tun_flags=_CSUM[forwarding.tunnel_checksum] if tunnel else TUN_F_NOCSUM,
    )


def format_vs(vs: VirtualServer) -> str:
    """keepalived's FMT_VS: ``[192.0.2.10]:tcp:80``, ``FWM 1``, ``[group]:0`` (§6.4)."""
    if vs.group is not None:
        return f"[{vs.group}]:{vs.port}"
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}"
    assert vs.address is not None
    return hostport(vs.address, vs.port, _proto_word(vs))


def format_rs(
    vs: VirtualServer, address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> str:
    """keepalived's FMT_RS: the real server with the service's protocol."""
    return hostport(address, port, _proto_word(vs))


def rs_mail_subject(vs: VirtualServer, rs: RealServer, alive: bool) -> str:
    """keepalived's SMTP_MSG_RS subject (after ``[router_id] ``)."""
    rs_name = format_rs(vs, rs.address, rs.port)
    return f"Realserver {rs_name} of virtual server {format_vs(vs)} - {'UP' if alive else 'DOWN'}"


def _proto_word(vs: VirtualServer) -> str:
    return "none" if vs.protocol is None else vs.protocol.value.lower()


# ------------------------------------------------------------------------------------ state


@dataclass(slots=True)
class _Rs:
    cfg: RealServer
    alive: bool
    weight: int  # effective weight (configured + dynamic deltas)


@dataclass(slots=True)
class _Vs:
    cfg: VirtualServer
    key: VsKey
    services: list[IpvsService]
    servers: dict[RsKey, _Rs]
    quorum_up: bool = False  # keepalived set_quorum_states: no RS is alive before init
    sorry_active: bool = False  # the sorry server is the pool (keepalived: s_svr->alive)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = format_vs(self.cfg)

    def live_weight(self) -> int:
        return sum(rs.weight for rs in self.servers.values() if rs.alive)


Table = dict[tuple[object, ...], tuple[IpvsService, dict[tuple[object, ...], IpvsDest]]]


class Balancer:
    """The load balancer's state; every method returns the effects to execute, in order."""

    def __init__(self, lvs: LvsConfig, states: Mapping[tuple[VsKey, RsKey], RsState]) -> None:
        self._vs: dict[VsKey, _Vs] = self._build(lvs, states, {})
        self._programmed: Table = {}
        self.started = False

    @staticmethod
    def _build(
        lvs: LvsConfig,
        states: Mapping[tuple[VsKey, RsKey], RsState],
        old: Mapping[VsKey, _Vs],
    ) -> dict[VsKey, _Vs]:
        groups = {g.name: g for g in lvs.virtual_server_groups}
        out: dict[VsKey, _Vs] = {}
        for cfg in lvs.virtual_servers:
            key = vs_key(cfg)
            servers: dict[RsKey, _Rs] = {}
            for rs in cfg.real_servers:
                st = states.get((key, rs_key(rs)), RsState(not rs.alpha, rs.weight))
                servers[rs_key(rs)] = _Rs(rs, st.alive, st.weight)
            vs = _Vs(cfg, key, services_for(cfg, groups), servers)
            prev = old.get(key)
            if prev is not None:  # keepalived clear_diff_services: status carried over
                vs.quorum_up, vs.sorry_active = prev.quorum_up, prev.sorry_active
            out[key] = vs
        return out

    # ------------------------------------------------------------------ queries

    def table(self) -> dict[IpvsService, list[IpvsDest]]:
        """What pykad has programmed (for dumps and tests)."""
        return {svc: list(dests.values()) for svc, dests in self._programmed.values()}

    def quorum(self, key: VsKey) -> bool:
        return self._vs[key].quorum_up

    # ------------------------------------------------------------------ events

    def start(self, *, flush: bool = False) -> list[LvsEffect]:
        """keepalived init_services: services, the live real servers, then quorum (whose
        outcome may put the sorry server in at once)."""
        self.started = True
        notes: list[LvsEffect] = []
        for vs in self._vs.values():
            notes += self._update_quorum(vs, init=True)
        return [*([FlushIpvs()] if flush else []), *self._sync(), *notes]

    def rs_changed(self, vsk: VsKey, rsk: RsKey, *, alive: bool, weight: int) -> list[LvsEffect]:
        """A real server's health or effective weight changed (CheckerSet's callback)."""
        vs = self._vs.get(vsk)
        rs = vs.servers.get(rsk) if vs is not None else None
        if vs is None or rs is None:
            return []  # a late report from a real server a reload removed
        notes: list[LvsEffect] = []
        if weight != rs.weight:
            log.info(
                "Changing weight from %d to %d for %sactive service %s of VS %s",
                rs.weight,
                weight,
                "" if rs.alive else "in",
                format_rs(vs.cfg, *rsk),
                vs.name,
            )
            rs.weight = weight
        if alive != rs.alive:
            inhibit = rs.cfg.inhibit_on_failure
            verb = ("Enabl" if inhibit else "Add") if alive else ("Disabl" if inhibit else "Remov")
            prep = "of" if inhibit else "to" if alive else "from"
            log.info("%sing service %s %s VS %s", verb, format_rs(vs.cfg, *rsk), prep, vs.name)
            rs.alive = alive
            notes.append(self._rs_notify(vs, rs))
        notes += self._update_quorum(vs, init=False)
        return [*self._sync(), *notes]

    def stop(self, *, release: bool = True, flush: bool = False) -> list[LvsEffect]:
        """keepalived clear_services at shutdown; ``release=False`` is ``-I``."""
        if not release or not self.started:
            return []
        notes: list[LvsEffect] = []
        for vs in self._vs.values():
            if not flush:
                for rsk, rs in vs.servers.items():
                    log.info(
                        "Shutting down %sservice %s from VS %s",
                        "(inhibited) " if rs.cfg.inhibit_on_failure and not rs.alive else "",
                        format_rs(vs.cfg, *rsk),
                        vs.name,
                    )
            for rs in vs.servers.values():
                if rs.alive:
                    rs.alive = False
                    if vs.cfg.omega:  # omega: the RS and VS notifiers run on the way down
                        notes.append(self._rs_notify(vs, rs))
                        notes += self._rs_mail(vs, rs, "=> Shutting down <=")
            vs.quorum_up, vs.sorry_active = False, False
            if vs.cfg.omega:
                notes.append(self._vs_notify(vs))
                notes += self._vs_mail(vs, "=> Shutting down <=")
        if flush:
            self._programmed.clear()
            return [FlushIpvs(), *notes]
        effects: list[LvsEffect] = [DeleteService(svc) for svc, _ in self._programmed.values()]
        self._programmed.clear()
        self._vs.clear()
        return [*effects, *notes]

    def reconfigure(
        self, lvs: LvsConfig, states: Mapping[tuple[VsKey, RsKey], RsState]
    ) -> list[LvsEffect]:
        """A reload (keepalived clear_diff_services + init_services): virtual and real
        servers are matched by address; the ones that stay keep quorum/sorry state."""
        old = self._vs
        new = self._build(lvs, states, old)
        notes: list[LvsEffect] = []
        for key, vs in old.items():
            if key not in new:
                log.info("Removing Virtual Server %s", vs.name)
                notes += self._drop_servers(vs, vs.servers)
                if vs.quorum_up:
                    vs.quorum_up = False
                    notes.append(self._vs_notify(vs))
                    q, h = vs.cfg.quorum, vs.cfg.hysteresis
                    notes += self._vs_mail(vs, f"=> Lost quorum {q}-{h}={q - h} > 0 <=")
                continue
            gone = {k: rs for k, rs in vs.servers.items() if k not in new[key].servers}
            for rsk in gone:
                log.info("service %s no longer exist", format_rs(vs.cfg, *rsk))
            # quorum is judged on the new server list below (keepalived judges the old list
            # and may report a VS DOWN that the new configuration does not have)
            notes += self._drop_servers(vs, gone)
            for rsk, rs in new[key].servers.items():
                prev = vs.servers.get(rsk)
                if prev is not None and prev.alive != rs.alive:
                    notes.append(self._rs_notify(new[key], rs))
        self._vs = new
        for vs in new.values():
            notes += self._update_quorum(vs, init=True)
        return [*self._sync(), *notes]

    # ------------------------------------------------------------------ keepalived's rules

    def _drop_servers(self, vs: _Vs, servers: Mapping[RsKey, _Rs]) -> list[LvsEffect]:
        """clear_service_rs (not stopping): the alive ones notify DOWN."""
        notes: list[LvsEffect] = []
        for rsk, rs in servers.items():
            log.info("Removing service %s from VS %s", format_rs(vs.cfg, *rsk), vs.name)
            if rs.alive:
                rs.alive = False
                notes.append(self._rs_notify(vs, rs))
                notes += self._rs_mail(vs, rs, "=> Removing <=")
        return notes

    def _update_quorum(self, vs: _Vs, *, init: bool) -> list[LvsEffect]:
        """keepalived update_quorum_state (spec §9.6)."""
        q, h, w = vs.cfg.quorum, vs.cfg.hysteresis, vs.live_weight()
        sorry = vs.cfg.sorry_server
        if not vs.quorum_up and w >= q + h:
            vs.quorum_up = True
            log.info("Gained quorum %d+%d=%d <= %d for VS %s", q, h, q + h, w, vs.name)
            if vs.sorry_active:
                assert sorry is not None
                log.info(
                    "%s sorry server %s from VS %s",
                    "Disabling" if sorry.inhibit else "Removing",
                    format_rs(vs.cfg, sorry.address, sorry.port),
                    vs.name,
                )
                log.info("Adding alive servers to the pool for VS %s", vs.name)
                vs.sorry_active = False
            what = "Starting with quorum up" if init else "Gained quorum"
            return [self._vs_notify(vs), *self._vs_mail(vs, f"=> {what} {q}+{h}={q + h} <= {w} <=")]
        losing = vs.quorum_up and (not w or w < q - h)
        if losing or (init and not vs.quorum_up and sorry is not None and not vs.sorry_active):
            vs.quorum_up = False
            if losing:
                log.info("Lost quorum %d-%d=%d > %d for VS %s", q, h, q - h, w, vs.name)
            else:
                log.info(
                    "Starting with quorum down %d+%d=%d > %d for VS %s", q, h, q + h, w, vs.name
                )
            if sorry is not None and not vs.sorry_active:
                log.info(
                    "%s sorry server %s to VS %s",
                    "Enabling" if sorry.inhibit else "Adding",
                    format_rs(vs.cfg, sorry.address, sorry.port),
                    vs.name,
                )
                log.info("Removing alive servers from the pool for VS %s", vs.name)
                vs.sorry_active = True
            if losing:
                body = f"=> Lost quorum {q}-{h}={q - h} > {w} <="
            else:
                body = f"=> Starting with quorum down {q}+{h}={q + h} > {w} <="
            return [self._vs_notify(vs), *self._vs_mail(vs, body)]
        return []

    def _rs_notify(self, vs: _Vs, rs: _Rs) -> LvsNotify:
        rs_name = format_rs(vs.cfg, rs.cfg.address, rs.cfg.port)
        state = "UP" if rs.alive else "DOWN"
        return LvsNotify(
            key=f"RS {rs_name} {vs.name}",
            script=rs.cfg.notify_up if rs.alive else rs.cfg.notify_down,
            label="notify_up" if rs.alive else "notify_down",
            fifo_line=f"RS {rs_name} {vs.name} {state}",
        )

    @staticmethod
    def _rs_mail(vs: _Vs, rs: _Rs, body: str) -> list[LvsEffect]:
        """keepalived clear_service_rs: SMTP_MSG_RS_SHUT for a real server taken out by a
        reload or (with ``omega``) at shutdown; its checkers mail their own transitions."""
        if not rs.cfg.smtp_alert:
            return []
        return [LvsMail(rs_mail_subject(vs.cfg, rs.cfg, alive=False), body)]

    @staticmethod
    def _vs_mail(vs: _Vs, body: str) -> list[LvsEffect]:
        """keepalived do_vs_notifies: ``Virtualserver [vs] - UP|DOWN`` for a VS with
        ``smtp_alert``. The body mirrors the quorum log line (keepalived writes ``q+h=t <=
        W`` for a loss too; pykad writes the threshold it compared against)."""
        if not vs.cfg.smtp_alert:
            return []
        return [LvsMail(f"Virtualserver {vs.name} - {'UP' if vs.quorum_up else 'DOWN'}", body)]

    def _vs_notify(self, vs: _Vs) -> LvsNotify:
        up = vs.quorum_up
        return LvsNotify(
            key=f"VS {vs.name}",
            script=vs.cfg.quorum_up if up else vs.cfg.quorum_down,
            label="quorum_up" if up else "quorum_down",
            fifo_line=f"VS {vs.name} {'UP' if up else 'DOWN'}",
        )

    # ------------------------------------------------------------------ desired table -> effects

    def _wanted(self) -> Table:
        table: Table = {}
        for vs in self._vs.values():
            dests: dict[tuple[object, ...], IpvsDest] = {}
            for rs in vs.servers.values():
                weight = self._rs_weight(vs, rs)
                if weight is not None:
                    cfg = rs.cfg
                    dest = dest_for(
                        cfg.address,
                        cfg.port,
                        cfg.forwarding,
                        weight,
                        u_threshold=cfg.uthreshold,
                        l_threshold=cfg.lthreshold,
                    )
                    dests[dest.key] = dest
            sorry = vs.cfg.sorry_server
            if sorry is not None:
                _merge_sorry(dests, sorry, vs.sorry_active)
            for svc in vs.services:
                table[svc.key] = (svc, dict(dests))
        return table

    @staticmethod
    def _rs_weight(vs: _Vs, rs: _Rs) -> int | None:
        """The IPVS weight of a real server, or None when it must not be in the table."""
        inhibit = rs.cfg.inhibit_on_failure
        if vs.sorry_active:  # the sorry server is the pool; transitions are only tracked
            return 0 if inhibit else None
        if rs.alive:
            return rs.weight
        return 0 if inhibit else None

    def _sync(self) -> list[LvsEffect]:
        wanted = self._wanted()
        out: list[LvsEffect] = []
        for key, (svc, _dests) in self._programmed.items():
            if key not in wanted:
                out.append(DeleteService(svc))
        for key, (svc, dests) in wanted.items():
            have = self._programmed.get(key)
            if have is None:
                out.append(AddService(svc))
                out += [AddDest(svc, d) for d in dests.values()]
                continue
            if have[0] != svc:
                out.append(EditService(svc))
            out += [DeleteDest(svc, d) for k, d in have[1].items() if k not in dests]
            for k, d in dests.items():
                old = have[1].get(k)
                if old is None:
                    out.append(AddDest(svc, d))
                elif old != d:
                    out.append(EditDest(svc, d))
        self._programmed = wanted
        return out


def _merge_sorry(
    dests: dict[tuple[object, ...], IpvsDest], sorry: SorryServer, active: bool
) -> None:
    """The sorry server's entry: in use, idle with weight 0 (``sorry_server_inhibit``), or
    absent; a sorry server that is also a real server keeps the real server's entry when
    that one is in the pool (keepalived ``s_svr_duplicates_rs``)."""
    if not active and not sorry.inhibit:
        return
    dest = dest_for(sorry.address, sorry.port, sorry.forwarding, SORRY_WEIGHT if active else 0)
    present = dests.get(dest.key)
    if present is None or present.weight < dest.weight:
        dests[dest.key] = dest


def effects_summary(effects: Iterable[LvsEffect]) -> list[str]:
    """One short line per effect (tests and debug logs)."""
    lines: list[str] = []
    for e in effects:
        match e:
            case AddService() | EditService() | DeleteService():
                lines.append(f"{type(e).__name__} {e.service.describe()}")
            case AddDest() | EditDest() | DeleteDest():
                d = e.dest
                lines.append(
                    f"{type(e).__name__} {e.service.describe()} [{d.address}]:{d.port} w{d.weight}"
                )
            case FlushIpvs():
                lines.append("FlushIpvs")
            case LvsNotify():
                lines.append(f"{e.label} {e.fifo_line}")
            case LvsMail():
                lines.append(f"mail {e.subject} {e.body}")
    return lines
