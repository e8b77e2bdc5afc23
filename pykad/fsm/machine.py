"""One VRRP instance as a pure state machine (RFC 5798 §6.4, RFC 3768 §6.4, spec §5).

Theory of operation (h11/aioquic style): ``handle(event, now)`` returns the effects to
execute, in keepalived's order; ``next_deadline()`` says when the machine next wants
:class:`~pykad.fsm.events.TimersDue`. Timers are plain deadlines (``_adver_at``,
``_master_down_at``, the GARP schedule), so there are no timer effects and no start/cancel
races. Every state change goes through :meth:`VrrpMachine._enter`, which enforces
:data:`ALLOWED`: an invalid transition is a bug in pykad and raises
:class:`~pykad.errors.InvalidTransition`. Peer garbage never gets here: adverts arrive decoded
and validated (spec §5.7); INIT and FAULT ignore them.

Citations: ``RFC 5798 6.4.x (NNN)`` refers to the numbered lines of the RFC's pseudo-code;
``spec §x`` to /work/shared/spec/keepalived.md (keepalived 2.2.7 as implemented), which wins
where keepalived deliberately differs from the RFC (tracking, sync groups, owner conflict).

Decisions worth knowing:

* ``vrrp_startup_delay`` is the runtime's job: it delivers ``Startup`` late, and the machine
  computes its BACKUP timers from the ``now`` of that Startup (spec §5.2 step 5).
* A MASTER restarts its advert timer only when it actually sends an advert (not after every
  received packet as keepalived does, spec §5.4 "Quirk").
* Shutdown moves the machine to INIT (Transition ... -> INIT) and makes it inert.
* ``Log`` effects carry keepalived's words; ``Transition`` is for status/metrics and is not a
  second log line.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Final, assert_never

from pykad.config.model import IPAddress, VirtualAddress, VrrpInstance
from pykad.errors import InvalidTransition
from pykad.fsm import timing
from pykad.fsm.effects import (
    Announce,
    Effect,
    InstallVips,
    Log,
    Notify,
    RemoveVips,
    SendAdvert,
    Transition,
)
from pykad.fsm.events import (
    AdvertReceived,
    Event,
    GroupForce,
    Reconfigure,
    Shutdown,
    SourceAddressChanged,
    Startup,
    TimersDue,
    TrackerChanged,
    TrackFileChanged,
)
from pykad.fsm.syncgroup import SyncGroup
from pykad.fsm.tracking import (
    PRIO_OWNER,
    Key,
    TrackedObject,
    Tracking,
    effective_priority,
    relations_for,
)


class State(StrEnum):
    """Instance states; the values are the strings keepalived passes to notify scripts.

    STOP and DELETED are notification events only (spec §5.1, §6.1), never states.
    """

    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"


ALLOWED: Final[Mapping[State, frozenset[State]]] = {
    # INIT -> MASTER only for the address owner (RFC 5798 6.4.1 (105)); INIT -> FAULT when a
    # tracked object is already down at startup (spec §5.2 step 3).
    State.INIT: frozenset({State.BACKUP, State.MASTER, State.FAULT}),
    State.BACKUP: frozenset({State.MASTER, State.FAULT, State.INIT}),
    State.MASTER: frozenset({State.BACKUP, State.FAULT, State.INIT}),
    # Leaving FAULT always goes through BACKUP with a full down timer (spec §5.8).
    State.FAULT: frozenset({State.BACKUP, State.INIT}),
}


def _addr_cmp(a: IPAddress, b: IPAddress | None) -> int:
    """spec §5.4: compare as unsigned big-endian integers; an unknown own address is 0."""
    ia, ib = int(a), 0 if b is None else int(b)
    return (ia > ib) - (ia < ib)


def _own_host(ip: IPAddress) -> VirtualAddress:
    return VirtualAddress(address=ipaddress.ip_interface(ip))


class VrrpMachine:
    """The state machine of one ``vrrp_instance``.

    ``own_ip``: the interface's primary address, used for the MASTER tie-break when the
    config has no ``mcast_src_ip``/``unicast_src_ip`` (spec §5.4); updated by
    ``SourceAddressChanged(present, address)``. ``initial_trackers`` / ``initial_files``:
    tracked objects' states at start (unlisted interfaces/processes/bfd are assumed up,
    scripts are unknown until they report, files read 0). ``source_present``: False if the
    source address is missing at start (FAULT). ``sync``: the shared coordinator of the
    instance's sync group, if any.
    """

    def __init__(
        self,
        cfg: VrrpInstance,
        *,
        own_ip: IPAddress | None = None,
        initial_trackers: Mapping[Key, bool] | None = None,
        initial_files: Mapping[str, int] | None = None,
        source_present: bool = True,
        sync: SyncGroup | None = None,
    ) -> None:
        self.cfg = cfg
        self._own_ip = own_ip
        self._tracking = Tracking(relations_for(cfg), initial_trackers, initial_files)
        self._source_present = source_present
        self._sync = sync
        self._state = State.INIT
        self._wantstate = State.MASTER if self._owner_wants_master() else State.BACKUP
        self._base = cfg.priority
        self._effective = effective_priority(self._base, self._tracking.adjustment())
        self._master_adver_cs = cfg.advert_int_cs  # M (RFC 5798 6.1 Master_Adver_Interval)
        self._master_ip: IPAddress | None = None
        self._master_priority: int | None = None
        self._started = False
        self._stopped = False
        self._last_transition: tuple[float, str] | None = None
        # Timers (absolute times, seconds); None = not armed.
        self._adver_at: float | None = None
        self._master_down_at: float | None = None
        self._garp_delay_at: float | None = None
        self._garp_refresh_at: float | None = None
        self._garp_lower_at: float | None = None
        # Not a wake-up: compared when adverts arrive (spec §5.3 preempt_delay).
        self._preempt_at: float | None = None
        if sync is not None:
            sync.register(cfg.name, owner_master=self._owner_wants_master())
            sync.set_wantstate(cfg.name, self._wantstate)
            sync.set_fault(cfg.name, bool(self._fault_reasons()))

    # ----------------------------------------------------------------------------------
    # Read-only view for the runtime (status dumps, receive-path policy)

    @property
    def state(self) -> State:
        return self._state

    @property
    def wantstate(self) -> State:
        return self._wantstate

    @property
    def effective_priority(self) -> int:
        return self._effective

    @property
    def base_priority(self) -> int:
        """The configured priority, or 254 after an owner conflict (spec §5.4)."""
        return self._base

    @property
    def master_ip(self) -> IPAddress | None:
        """The current master's address: the source of the last accepted advert while
        BACKUP, our own address while MASTER, None before either is known."""
        return self._master_ip

    @property
    def master_priority(self) -> int | None:
        return self._master_priority

    @property
    def master_adver_int_cs(self) -> int:
        """M: the master's interval learned in v3 BACKUP, else our own (spec §5.1)."""
        return self._master_adver_cs

    @property
    def own_ip(self) -> IPAddress | None:
        return self.cfg.source_ip or self._own_ip

    @property
    def last_transition(self) -> tuple[float, str] | None:
        """(time, reason) of the last state change, None before the first."""
        return self._last_transition

    @property
    def fault_reasons(self) -> tuple[str, ...]:
        return tuple(self._fault_reasons())

    @property
    def tracked(self) -> tuple[TrackedObject, ...]:
        """What the instance tracks, with states and contributions (status, metrics)."""
        return self._tracking.snapshot()

    def next_deadline(self) -> float | None:
        """The earliest armed timer; the driver delivers TimersDue at (or after) it."""
        armed = [
            t
            for t in (
                self._adver_at,
                self._master_down_at,
                self._garp_delay_at,
                self._garp_refresh_at,
                self._garp_lower_at,
            )
            if t is not None
        ]
        return min(armed) if armed else None

    # ----------------------------------------------------------------------------------
    # Dispatch

    def handle(self, event: Event, now: float) -> list[Effect]:
        """Apply one event at time ``now`` (seconds, monotonic) and return the effects."""
        if self._stopped:
            return []  # inert after Shutdown (spec §5.8)
        match event:  # the frequent ones first: adverts and timers (255 instances, spec §5)
            case AdvertReceived():
                return self._on_advert(event, now)
            case TimersDue():
                return self._on_timers(now)
            case Startup():
                return self._on_startup(now)
            case Shutdown():
                return self._on_shutdown(event, now)
            case TrackerChanged():
                if not self._tracking.set_state(event.kind, event.name, event.up):
                    return []  # not tracked by this instance
                return self._after_tracking(now, f"{event.kind} {event.name}")
            case TrackFileChanged():
                if not self._tracking.set_file(event.name, event.value):
                    return []
                return self._after_tracking(now, f"track_file {event.name}")
            case SourceAddressChanged():
                self._source_present = event.present
                if event.address is not None:
                    self._own_ip = event.address
                return self._after_tracking(now, "source address")
            case Reconfigure():
                return self._on_reconfigure(event.cfg, now)
            case GroupForce():
                return self._on_group_force(State(event.state), event.reason, now)
            case _:
                assert_never(event)

    # ----------------------------------------------------------------------------------
    # Derived quantities

    def _owner_wants_master(self) -> bool:
        return self.cfg.initial_state == "MASTER" and self.cfg.priority == PRIO_OWNER

    def _skew(self) -> float:
        return timing.skew_s(self._effective, self._master_adver_cs, self.cfg.version)

    def _master_down(self) -> float:
        return timing.master_down_s(
            self._effective, self._master_adver_cs, self.cfg.version, self.cfg.down_timer_adverts
        )

    def _addresses(self) -> tuple[VirtualAddress, ...]:
        # spec §5.5 step 5/6: VIPs then eVIPs
        return (*self.cfg.virtual_addresses, *self.cfg.excluded_addresses)

    def _install(self) -> InstallVips:
        return InstallVips(self._addresses(), self.cfg.virtual_routes, self.cfg.virtual_rules)

    def _remove(self) -> RemoveVips:
        return RemoveVips(self._addresses(), self.cfg.virtual_routes, self.cfg.virtual_rules)

    def _announce(self, repeat: int) -> list[Effect]:
        addrs = self._addresses()
        return [Announce(addrs, repeat)] if addrs and repeat > 0 else []

    def _fault_reasons(self) -> list[str]:
        reasons = self._tracking.fault_reasons()
        if not self._source_present:
            reasons.append(f"no IPv{self.cfg.family} address for interface")
        # spec §3.1: unicast configured without peers is held in FAULT on request
        if self.cfg.unicast_fault_no_peer and not self.cfg.unicast_peers:
            reasons.append("no unicast peers")
        return reasons

    def _set_wantstate(self, want: State) -> None:
        self._wantstate = want
        if self._sync is not None:
            self._sync.set_wantstate(self.cfg.name, want)

    # ----------------------------------------------------------------------------------
    # The one place the state changes

    def _enter(self, new: State, reason: str, now: float) -> list[Effect]:
        if new not in ALLOWED[self._state]:
            raise InvalidTransition(self._state, new, reason)  # a bug in pykad, never the peer
        old, self._state = self._state, new
        self._last_transition = (now, reason)
        # Every state owns its timers; entering one disarms the others (RFC 5798 6.4.2 (330),
        # 6.4.3 (645) cancel on leaving).
        self._adver_at = self._master_down_at = None
        self._garp_delay_at = self._garp_refresh_at = self._garp_lower_at = None
        self._preempt_at = None  # spec §5.3/§5.6: cleared on entering BACKUP (and elsewhere)
        return [Transition(old, new, reason)]

    def _group_entered(self, new: State) -> list[Effect]:
        return [] if self._sync is None else self._sync.entered(self.cfg.name, new)

    # ----------------------------------------------------------------------------------
    # Startup (RFC 5798 6.4.1, spec §5.2)

    def _on_startup(self, now: float) -> list[Effect]:
        if self._started or self._state is not State.INIT:
            return []  # a second Startup is harmless
        self._started = True
        return self._init_state(now)

    def _init_state(self, now: float) -> list[Effect]:
        """spec §5.2 steps 3-4, run at Startup and again when held scripts report."""
        reasons = self._fault_reasons()
        group_fault = self._sync is not None and self._sync.state == State.FAULT
        if reasons or group_fault:
            why = reasons[0] if reasons else "sync group"
            return [
                Log(f"entering FAULT state ({why})"),
                *self._enter_fault_state(now, f"init: {why}", init=True),
            ]
        pending = self._tracking.pending()
        if pending:
            # spec §4.2: weight-0 scripts without a first result hold the instance silently
            return [Log(f"waiting for track script(s) {', '.join(pending)}", logging.DEBUG)]
        owner = self._owner_wants_master()
        if owner and (self._sync is None or self._sync.all_owners_master()):
            # RFC 5798 6.4.1 (105)-(145): the owner goes MASTER at once
            return self._become_master(now, "init (address owner)")
        # RFC 5798 6.4.1 (150)-(165): M := A, Master_Down_Timer := Master_Down_Interval
        self._master_adver_cs = self.cfg.advert_int_cs
        effects: list[Effect] = [Log("Entering BACKUP STATE (init)")]
        effects += self._enter(State.BACKUP, "init", now)
        if self._sync is not None and self._wantstate is State.MASTER:
            # spec §5.2: a member wanting MASTER in a BACKUP group waits only M + skew_min
            self._master_down_at = now + (
                timing.interval_s(self._master_adver_cs)
                + timing.skew_min_s(self._master_adver_cs, self.cfg.version)
            )
        else:
            self._master_down_at = now + self._master_down()
        effects.append(Notify(State.BACKUP, self._effective))
        return effects + self._group_entered(State.BACKUP)

    # ----------------------------------------------------------------------------------
    # Timers

    def _on_timers(self, now: float) -> list[Effect]:
        def due(t: float | None) -> bool:
            return t is not None and t <= now

        effects: list[Effect] = []
        if self._state is State.BACKUP and due(self._master_down_at):
            return self._backup_timeout(now)
        if self._state is not State.MASTER:
            return effects
        if due(self._adver_at):
            # RFC 5798 6.4.3 (620)-(630): send an advert, reset Adver_Timer
            effects += self._send_advert_now(now)
        if due(self._garp_delay_at):
            # spec §5.5 step 10: the second burst after garp_master_delay
            self._garp_delay_at = None
            effects += self._announce(self.cfg.garp_master_repeat)
        if due(self._garp_refresh_at):
            # spec §5.4: periodic refresh, re-armed each time
            self._garp_refresh_at = now + self.cfg.garp_master_refresh_s
            effects += self._announce(self.cfg.garp_master_refresh_repeat)
        if due(self._garp_lower_at):
            # spec §5.4 step 3: the delayed lower-priority burst
            self._garp_lower_at = None
            effects += self._announce(self.cfg.garp_lower_prio_repeat)
        return effects

    def _send_advert_now(self, now: float) -> list[Effect]:
        # The advert timer restarts only when an advert is really sent (spec §5.4 quirk).
        self._adver_at = now + timing.interval_s(self.cfg.advert_int_cs)
        return [SendAdvert(self._effective)]

    def _backup_timeout(self, now: float) -> list[Effect]:
        # RFC 5798 6.4.2 (340): Master_Down_Timer fired; spec §5.3 wantstate := MASTER
        self._set_wantstate(State.MASTER)
        effects: list[Effect] = [Log("Receive advertisement timeout", logging.DEBUG)]
        if self._sync is not None and not self._sync.may_become_master(self.cfg.name):
            # spec §4.1: stay BACKUP wanting MASTER until every member wants it
            self._master_down_at = now + self._master_down()
            return effects
        return effects + self._become_master(now, "master down timer")

    # ----------------------------------------------------------------------------------
    # Becoming MASTER (RFC 5798 6.4.2 (345)-(370), spec §5.5)

    def _become_master(self, now: float, reason: str) -> list[Effect]:
        self._set_wantstate(State.MASTER)
        effects = self._enter(State.MASTER, reason, now)
        # spec §5.5 step 3: the first advert goes out before addresses are touched, so the
        # old master can release them first.
        effects.insert(0, SendAdvert(self._effective))
        effects.insert(1, Log("Entering MASTER STATE"))
        # spec §5.1: M := A on every transition to MASTER
        self._master_adver_cs = self.cfg.advert_int_cs
        self._master_ip, self._master_priority = self.own_ip, self._effective
        effects.append(self._install())
        effects += self._announce(self.cfg.garp_master_repeat)
        # RFC 5798 6.4.2 (365): Adver_Timer := Advertisement_Interval
        self._adver_at = now + timing.interval_s(self.cfg.advert_int_cs)
        if self.cfg.garp_master_delay_s > 0:
            self._garp_delay_at = now + self.cfg.garp_master_delay_s
        if self.cfg.garp_master_refresh_s > 0:
            self._garp_refresh_at = now + self.cfg.garp_master_refresh_s
        effects.append(Notify(State.MASTER, self._effective))
        return effects + self._group_entered(State.MASTER)

    # ----------------------------------------------------------------------------------
    # MASTER -> BACKUP (RFC 5798 6.4.3 (740)-(765), spec §5.6)

    def _master_to_backup(self, now: float, reason: str) -> list[Effect]:
        self._set_wantstate(State.BACKUP)
        effects: list[Effect] = [Log("Entering BACKUP STATE")]
        effects += self._enter(State.BACKUP, reason, now)
        effects.append(self._remove())  # no priority-0 advert in this case (spec §5.6)
        effects.append(Notify(State.BACKUP, self._effective))
        # RFC 5798 6.4.3 (755)-(760): Master_Down_Timer := Master_Down_Interval
        self._master_down_at = now + self._master_down()
        return effects + self._group_entered(State.BACKUP)

    # ----------------------------------------------------------------------------------
    # Adverts

    def _on_advert(self, adv: AdvertReceived, now: float) -> list[Effect]:
        if self._state is State.BACKUP:
            return self._backup_rx(adv, now)
        if self._state is State.MASTER:
            return self._master_rx(adv, now)
        return []  # spec §5.7 item 3: INIT and FAULT ignore adverts

    def _backup_rx(self, adv: AdvertReceived, now: float) -> list[Effect]:
        prio, mine = adv.priority, self._effective
        if prio == 0:
            # RFC 5798 6.4.2 (380)-(385): the master resigned; take over after Skew_Time
            self._master_down_at = now + self._skew()
            return []
        delay = self.cfg.preempt_delay_s
        in_delay = delay > 0 and (self._preempt_at is None or now < self._preempt_at)
        if not (self.cfg.nopreempt or prio >= mine or in_delay):
            # RFC 5798 6.4.2 (420) / spec §5.3 item 3: discard, the down timer keeps running
            # so we preempt when it expires.
            return [Log(f"received lower priority ({prio}) advert from {adv.src} - discarding")]
        # RFC 5798 6.4.2 (395)-(410): accept; v3 learns Master_Adver_Interval (spec §5.3)
        effects: list[Effect] = []
        if self.cfg.version == 3:
            self._master_adver_cs = adv.adver_int_cs
        self._master_down_at = now + self._master_down()
        self._master_ip, self._master_priority = adv.src, prio
        if delay > 0:
            if prio >= mine:
                self._preempt_at = None
            elif self._preempt_at is None:
                self._preempt_at = now + delay
                effects.append(Log("start preempt delay", logging.DEBUG))
        self._set_wantstate(State.BACKUP)
        return effects

    def absorbs_repeats(self, adv: AdvertReceived) -> bool:
        """Whether another copy of ``adv``, handled at any later time ``t``, would return no
        effect and change nothing but the master-down deadline (to ``t`` + the down
        interval): the steady adverts of the master this backup follows, accepted by RFC
        5798 6.4.2 (395)-(410) whatever the time.

        The runtime then lets the socket absorb byte-identical repeats of ``adv`` and hands
        the machine only the latest, with its time, before any other event and when the
        deadline comes (bench/scale.py: a backup of 255 instances at advert_int 0.05
        receives 5100 adverts a second, nearly all of them repeats)."""
        if self._state is not State.BACKUP or self._wantstate is not State.BACKUP:
            return False
        prio = adv.priority
        if prio == 0 or (adv.src, prio) != (self._master_ip, self._master_priority):
            return False  # a resignation, or not the master followed now: a change
        if self.cfg.version == 3 and adv.adver_int_cs != self._master_adver_cs:
            return False  # v3 learns the interval (spec §5.3): a change
        delay_pending = self.cfg.preempt_delay_s > 0 and self._preempt_at is None
        if prio >= self._effective:
            # accepted; a running preempt delay would be cleared (a change)
            return self._preempt_at is None
        # lower than ours: accepted at any time only with nopreempt, and with a preempt
        # delay only once it has started (the first such advert starts it, with a log)
        return self.cfg.nopreempt and not delay_pending

    def _master_rx(self, adv: AdvertReceived, now: float) -> list[Effect]:
        prio = adv.priority
        cmp = _addr_cmp(adv.src, self.own_ip)
        effects: list[Effect] = []
        higher = prio > self._effective or (prio == self._effective and cmp > 0)
        if prio == 0 or (self.cfg.higher_prio_send_advert and higher):
            # RFC 5798 6.4.3 (665)-(675): answer a resigning master at once
            effects += self._send_advert_now(now)
            if prio == 0:
                return [*effects, Log("Master received priority 0 message", logging.DEBUG)]
        if prio == self._effective:
            if cmp == 0:
                effects.append(
                    Log(
                        "WARNING - equal priority advert received from remote host with "
                        "our IP address.",
                        logging.WARNING,
                    )
                )
            elif self._effective == PRIO_OWNER:
                # spec §5.4 item 2: two owners; keepalived lowers the local priority to 254,
                # which then loses to the other owner's 255 below.
                effects.append(
                    Log(
                        "CONFIGURATION ERROR: local instance and a remote instance are both "
                        "configured as address owner, please fix - reducing local priority",
                        logging.ERROR,
                    )
                )
                self._base = self._effective = PRIO_OWNER - 1
        mine = self._effective
        if prio < mine or (prio == mine and cmp < 0):
            return effects + self._master_rx_lower(adv, now)
        if prio > mine or (prio == mine and cmp > 0):
            # RFC 5798 6.4.3 (740)-(765): a better master exists; go BACKUP silently
            if prio > mine:
                effects.append(
                    Log(
                        f"Master received advert from {adv.src} with higher priority "
                        f"{prio}, ours {mine}"
                    )
                )
            else:
                effects.append(
                    Log(
                        f"Master received advert from {adv.src} with same priority {prio} "
                        "but higher IP address than ours"
                    )
                )
            if self.cfg.version == 3:
                self._master_adver_cs = adv.adver_int_cs  # RFC 5798 6.4.3 (745)
            effects += self._master_to_backup(now, "higher priority advert")
            self._master_ip, self._master_priority = adv.src, prio
            return effects
        return effects  # equal priority from our own address: nothing to decide

    def _master_rx_lower(self, adv: AdvertReceived, now: float) -> list[Effect]:
        # spec §5.4 item 3: force a new election, refresh ARP caches, tell the FIFO
        suffix = "" if self.cfg.lower_prio_no_advert else ", forcing new election"
        effects: list[Effect] = [
            Log(
                f"Received advert from {adv.src} with lower priority {adv.priority}, "
                f"ours {self._effective}{suffix}"
            )
        ]
        if not self.cfg.lower_prio_no_advert:
            effects += self._send_advert_now(now)
        if self.cfg.garp_lower_prio_repeat > 0:
            effects += self._announce(self.cfg.garp_lower_prio_repeat)
            if self.cfg.garp_lower_prio_delay_s > 0:
                self._garp_lower_at = now + self.cfg.garp_lower_prio_delay_s
        effects.append(Notify("MASTER_RX_LOWER_PRI", self._effective))
        return effects

    # ----------------------------------------------------------------------------------
    # Tracking, priority, FAULT (spec §4.3, §5.8)

    def _update_priority(self, now: float) -> list[Effect]:
        old = self._effective
        new = effective_priority(self._base, self._tracking.adjustment())
        if new == old:
            return []
        old_skew = self._skew()
        self._effective = new
        effects: list[Effect] = [Log(f"Changing effective priority from {old} to {new}")]
        if self._state is State.BACKUP and self._master_down_at is not None:
            # spec §4.3: shift the pending expiry by the change of the down interval
            self._master_down_at += self._skew() - old_skew
        if self.cfg.notify.priority_changes and self._state in (State.MASTER, State.BACKUP):
            effects.append(Notify(f"{self._state}_PRIORITY", new))
        # A MASTER simply advertises the new value in its next advert (spec §4.3).
        return effects

    def _after_tracking(self, now: float, what: str) -> list[Effect]:
        effects = self._update_priority(now)
        reasons = self._fault_reasons()
        if self._sync is not None:
            self._sync.set_fault(self.cfg.name, bool(reasons))
        if self._state is State.INIT:
            if self._started:  # held by pending scripts, or by a fault at startup
                effects += self._init_state(now)
        elif reasons and self._state is not State.FAULT:
            effects.append(Log(f"entering FAULT state ({reasons[0]})"))
            effects += self._enter_fault_state(now, reasons[0])
        elif self._state is State.FAULT and self._may_leave_fault():
            effects += self._leave_fault(now, f"{what} recovered")
        return effects

    def _may_leave_fault(self) -> bool:
        if self._fault_reasons() or self._tracking.pending():
            return False
        return self._sync is None or self._sync.may_leave_fault()

    def _enter_fault_state(self, now: float, reason: str, *, init: bool = False) -> list[Effect]:
        was_master = self._state is State.MASTER
        effects: list[Effect] = [
            Log("Entering FAULT STATE (init)" if init else "Entering FAULT STATE")
        ]
        if was_master:
            # spec §5.8: a master in FAULT resigns (priority 0) and releases its addresses
            effects += [SendAdvert(0), self._remove()]
        effects += self._enter(State.FAULT, reason, now)
        effects.append(Notify(State.FAULT, self._effective))
        return effects + self._group_entered(State.FAULT)

    def _leave_fault(self, now: float, reason: str) -> list[Effect]:
        # spec §5.8 "Leaving FAULT": M := A, BACKUP with a full down timer (owner: A + skew)
        self._set_wantstate(State.MASTER if self._owner_wants_master() else State.BACKUP)
        self._master_adver_cs = self.cfg.advert_int_cs
        effects: list[Effect] = [Log("Entering BACKUP STATE")]
        effects += self._enter(State.BACKUP, reason, now)
        if self._effective == PRIO_OWNER:
            down = timing.interval_s(self._master_adver_cs) + self._skew()
        else:
            down = self._master_down()
        self._master_down_at = now + down
        effects.append(Notify(State.BACKUP, self._effective))
        own = self.own_ip
        if self.cfg.is_unicast and own is not None:
            # spec §5.8: one GARP/NA for our own address so the peer refreshes its cache
            effects.append(Announce((_own_host(own),), 1))
        return effects + self._group_entered(State.BACKUP)

    # ----------------------------------------------------------------------------------
    # Sync groups (spec §4.1)

    def _on_group_force(self, target: State, reason: str, now: float) -> list[Effect]:
        st = self._state
        if st is State.INIT or st is target:
            return []  # not started (it reads the group state at Startup) or already there
        if target is State.MASTER:
            if st is State.BACKUP:
                return self._become_master(now, reason)
            return []  # a FAULT member cannot follow to MASTER
        if target is State.BACKUP:
            if st is State.MASTER:
                return self._master_to_backup(now, reason)
            if self._may_leave_fault():
                return self._leave_fault(now, reason)
            return []
        if target is State.FAULT:
            return [
                Log(f"entering FAULT state ({reason})"),
                *self._enter_fault_state(now, reason),
            ]
        raise InvalidTransition(st, target, reason)  # GroupForce(INIT) is our own misuse

    # ----------------------------------------------------------------------------------
    # Reload (spec §5.2 step 6, §7.2)

    def _on_reconfigure(self, cfg: VrrpInstance, now: float) -> list[Effect]:
        old, self.cfg = self.cfg, cfg
        self._tracking = self._tracking.rebind(relations_for(cfg))
        self._base = cfg.priority
        effects: list[Effect] = []
        if self._state is State.MASTER:
            # Only what changed is touched: unchanged VIPs stay up without a flap.
            old_addrs, new_addrs = (
                (*old.virtual_addresses, *old.excluded_addresses),
                self._addresses(),
            )
            gone = RemoveVips(
                tuple(a for a in old_addrs if a not in new_addrs),
                tuple(r for r in old.virtual_routes if r not in cfg.virtual_routes),
                tuple(r for r in old.virtual_rules if r not in cfg.virtual_rules),
            )
            added = InstallVips(
                tuple(a for a in new_addrs if a not in old_addrs),
                tuple(r for r in cfg.virtual_routes if r not in old.virtual_routes),
                tuple(r for r in cfg.virtual_rules if r not in old.virtual_rules),
            )
            effects += [e for e in (gone, added) if e.addresses or e.routes or e.rules]
            if added.addresses:
                # spec §7.2: VIPs a reload adds are announced, as at MASTER entry, so that
                # neighbours learn them now rather than at the next refresh
                effects.append(Announce(added.addresses, cfg.garp_master_repeat))
        effects += self._after_tracking(now, "reload")
        if self._state is State.MASTER:
            # spec §5.2 step 6: a MASTER stays MASTER (no notify) and advertises at once
            effects.insert(0, SendAdvert(self._effective))
            self._adver_at = now + timing.interval_s(cfg.advert_int_cs)
        return effects

    # ----------------------------------------------------------------------------------
    # Shutdown (RFC 5798 6.4.2 (325)-(335), 6.4.3 (640)-(655), spec §5.8, §6.1)

    def _on_shutdown(self, event: Shutdown, now: float) -> list[Effect]:
        st = self._state
        effects: list[Effect] = []
        if st is State.MASTER:
            # priority 0 first so the best backup takes over after its skew time only
            effects += [SendAdvert(0), self._remove()]
        if st is not State.INIT:
            effects += self._enter(State.INIT, "deleted" if event.deleted else "shutdown", now)
        if not event.deleted:
            effects.append(Notify("STOP", self._effective))
            if self._sync is not None:
                effects += self._sync.stopped()
        elif self.cfg.notify.deleted_enabled:
            effects.append(Notify("DELETED", self._effective))
        elif st is not State.FAULT:
            # spec §6.1: without notify_deleted keepalived reports FAULT (historical)
            effects.append(Notify(State.FAULT, self._effective))
        self._stopped = True
        return effects
