"""One asyncio task per ``vrrp_instance``: the machine's inbox, its deadline, its effects.

Theory of operation (STYLE §C, aioquic's "one deadline"): the driver owns a
:class:`~pykad.fsm.machine.VrrpMachine`. It waits for whichever comes first, an event in its
inbox or the machine's ``next_deadline()`` (delivered as ``TimersDue``), hands it to
``machine.handle(event, now)`` and executes the returned effects in order through the ports.
The socket pool's receive callback, the link monitor and the daemon (signals, reload, sync
groups) only ``put`` events into :attr:`InstanceDriver.inbox` or call
:meth:`InstanceDriver.on_packet`; nothing but the driver calls the machine.

Fast path: while the driver's task waits idle (empty inbox, no effect in progress), a valid
advert and an expired deadline are handled at once, in the receive or timer callback
(:meth:`InstanceDriver._handle_now`): events stay in order because nothing is pending, and
when the effects are all synchronous (adverts, logs, notify queueing) and the state does not
change, the task is not woken at all. Address changes and state changes still go through the
task, in order. The inbox has one timer, re-armed lazily (:class:`Inbox`). Both came from
bench/scale.py: at 255 instances a future, a timer and a task wake-up per advert were most of
a backup's CPU time.

Absorbed repeats: once a steady backup has handled its master's advert and the machine says
that another copy would only push the master-down deadline
(:meth:`~pykad.fsm.machine.VrrpMachine.absorbs_repeats`), the driver asks the socket to
absorb byte-identical copies (:meth:`~pykad.adapters.ports.PacketPort.absorb_repeats`): each
one only counts as received and records its time. The machine gets the latest of them, with
that time, before any other event of the instance (anything put in the inbox stops the
absorbing first) and when its deadline comes; the deadline it reports is then out of date
by design, and the inbox timer, which reads it again when it fires, finds it pushed.

Receive path (spec §5.7): packets arrive from the shared socket already demultiplexed by
VRID; an instance in INIT or FAULT ignores them (check 3); the rest go through
:func:`pykad.proto.validate.validate` with the instance's :class:`RxPolicy` and become
``AdvertReceived`` or a counted ``Discard`` (keepalived's stats names, rate-limited debug
log). Peer garbage never reaches the machine.

Effects never stop the machine: an adapter failure (``AdapterError`` / ``OSError``) is logged
with the instance name and counted under ``adapter_errors`` and the next effect runs.
Announcements (gratuitous ARP / NA) may be paced by ``vrrp_garp_interval``, so they run in a
background task of their own, one burst after the other; leaving MASTER cancels the bursts
still queued (keepalived removes "pending GARPs" with the VIPs, spec §5.6).
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from pykad.adapters.ports import (
    AddressPort,
    AnnouncePort,
    NotifyPort,
    PacketPort,
    ReceivedPacket,
)
from pykad.config.model import AuthType, GlobalDefs, IPAddress, VirtualAddress, VrrpInstance
from pykad.errors import AdapterError
from pykad.fsm.effects import (
    Announce,
    Effect,
    GroupNotify,
    GroupSync,
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
    Reconfigure,
    Shutdown,
    SourceAddressChanged,
    Startup,
    TimersDue,
)
from pykad.fsm.machine import VrrpMachine
from pykad.proto.advert import Advert, AdvertEncoder
from pykad.proto.constants import AUTH_NONE, AUTH_PASS
from pykad.proto.errors import KEEPALIVED_COUNTER, DecodeError, Discard
from pykad.proto.validate import PeerPolicy, RxPolicy, address_check_applies, validate
from pykad.runtime.stats import InstanceStats

log = logging.getLogger(__name__)

DISCARD_LOG_INTERVAL_S = 1.0  # at most one debug line per discard reason per second

# Discards that keepalived detects after counting the advert as received (spec §5.7 step
# 14 precedes the address-list and unicast-source checks of step 15).
_AFTER_RCVD = frozenset({Discard.UNICAST_SRC})

# Effects the driver awaits (netlink round trips); the others execute synchronously.
_AWAITED = (InstallVips, RemoveVips)


class GroupRouter(Protocol):
    def __call__(self, group: str, state: str, origin: str) -> None:
        """Deliver GroupForce(state) to every member of ``group`` except ``origin``."""
        ...


@dataclass(frozen=True, slots=True)
class Ports:
    """What one driver talks to; ``packets`` is per instance, the others are shared."""

    packets: PacketPort
    addresses: AddressPort
    announcer: AnnouncePort
    notifier: NotifyPort


def rx_policy_for(cfg: VrrpInstance, gdefs: GlobalDefs | None = None) -> RxPolicy:
    """The receive checks of one instance (spec §5.7), from its configuration."""
    gdefs = gdefs or GlobalDefs()
    peers = tuple(
        PeerPolicy(address=p.address, min_ttl=p.min_ttl, max_ttl=p.max_ttl)
        for p in cfg.unicast_peers
    )
    # spec §3.1: min_ttl/max_ttl on any peer turns the unicast source check on
    ttl_window = any(p.min_ttl != 0 or p.max_ttl != 255 for p in cfg.unicast_peers)
    return RxPolicy(
        version=cfg.version,
        family=cfg.family,
        vrid=cfg.vrid,
        adver_int_cs=cfg.advert_int_cs,
        vips=tuple(v.ip for v in cfg.virtual_addresses),
        auth_type=AUTH_PASS if cfg.auth.type is AuthType.PASS else AUTH_NONE,
        auth_data=cfg.auth.password if cfg.auth.type is AuthType.PASS else bytes(8),
        peers=peers,
        check_unicast_src=cfg.check_unicast_src or gdefs.vrrp_check_unicast_src or ttl_window,
        checksum_as_v2=cfg.v3_checksum_as_v2,
        skip_check_adv_addr=cfg.skip_check_adv_addr,
    )


def _unspecified(family: int) -> IPAddress:
    return ipaddress.IPv4Address(0) if family == 4 else ipaddress.IPv6Address(0)


def advert_for(cfg: VrrpInstance) -> Advert:
    """The advert template of an instance (priority is filled per send)."""
    auth = cfg.auth.type is AuthType.PASS and cfg.version == 2
    return Advert(
        version=cfg.version,
        vrid=cfg.vrid,
        priority=cfg.priority,
        adver_int_cs=cfg.advert_int_cs,
        addresses=tuple(v.ip for v in cfg.virtual_addresses),
        auth_type=AUTH_PASS if auth else AUTH_NONE,
        auth_data=cfg.auth.password if auth else bytes(8),
    )


@dataclass(frozen=True, slots=True)
class _Decided:
    """An event the machine already handled in a receive or timer callback (the fast path,
    :meth:`InstanceDriver._handle_now`) whose effects the driver's task must carry out: they
    change addresses (awaited) or the state (``settled`` waiters). ``error``: the machine
    raised; the task raises it, as if it had handled the event itself."""

    event: Event
    effects: list[Effect]
    error: Exception | None = None


InboxItem = Event | _Decided


def _no_deadline() -> float | None:
    return None


def _not_handled() -> bool:
    return False


class Inbox:
    """A driver's inbox: a FIFO with one reader, who waits for the next item or a deadline
    with one future per wait and one timer handle per inbox.

    The timer is re-armed lazily: the reader's deadline is a function, read again when the
    timer fires, so a deadline pushed later (every advert a backup receives pushes its
    master-down deadline) costs nothing until then; only a deadline moved earlier re-arms it
    (:meth:`deadline_changed`). asyncio.wait_for (a task per wait) and then a future plus a
    timer per wait were most of a daemon's time at 255 instances (bench/scale.py --profile).
    """

    def __init__(self, on_put: Callable[[], None] | None = None) -> None:
        self._on_put = on_put  # called before every put (the driver stops absorbing repeats)
        self._items: collections.deque[InboxItem] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._deadline: Callable[[], float | None] = _no_deadline
        self._clock: Callable[[], float] = time.monotonic
        self._on_due: Callable[[], bool] = _not_handled

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: InboxItem) -> None:
        if self._on_put is not None:
            self._on_put()
        self._items.append(item)
        self._wake()

    def get_nowait(self) -> InboxItem:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    @property
    def idle(self) -> bool:
        """The reader is waiting and nothing is queued (every put wakes it), so an event
        handled right now cannot overtake an earlier one."""
        return self._waiter is not None

    async def next(self, wait_s: float | None) -> InboxItem | None:
        """The next item, or None once ``wait_s`` seconds (loop time) passed without one."""
        loop = asyncio.get_running_loop()
        at = None if wait_s is None else loop.time() + wait_s
        return await self.wait(lambda: at, loop.time)

    async def wait(
        self,
        deadline: Callable[[], float | None],
        clock: Callable[[], float],
        on_due: Callable[[], bool] = _not_handled,
    ) -> InboxItem | None:
        """The next item, or None once ``clock()`` reaches ``deadline()`` (None: no
        deadline). Always yields to the loop once, so a reader whose deadline is already
        due cannot starve the other tasks.

        ``on_due()`` runs in the timer callback when the deadline is reached, the reader
        still idle: True means it handled the expiry itself and the wait goes on towards
        the next ``deadline()``; False ends the wait with None."""
        if self._items:
            await asyncio.sleep(0)
            return self._items.popleft()
        loop = self._loop = asyncio.get_running_loop()
        self._deadline, self._clock, self._on_due = deadline, clock, on_due
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        self._arm()
        try:
            await waiter
        finally:
            self._waiter = None
        return self._items.popleft() if self._items else None

    def deadline_changed(self) -> None:
        """The waiting reader's deadline may have moved earlier: re-arm the timer if so."""
        if self._waiter is not None:
            self._arm()

    def close(self) -> None:
        """Cancel the timer (the reader is done)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _arm(self) -> None:
        at = self._deadline()
        if at is None or at >= self._timer_at:
            return  # no deadline, or the armed timer fires first and reads it again
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_later(at - self._clock(), self._fire)

    def _fire(self) -> None:
        self._timer, self._timer_at = None, math.inf
        if self._waiter is None:
            return  # the reader is busy; it arms the timer again when it next waits
        at = self._deadline()
        if at is not None and at <= self._clock() and not self._on_due():
            self._wake()
            return
        self.deadline_changed()  # the next deadline, unless on_due queued work (not idle)


class InstanceDriver:
    """Runs one machine: ``await driver.run()`` returns after Shutdown has been applied."""

    def __init__(
        self,
        machine: VrrpMachine,
        ports: Ports,
        *,
        source: IPAddress | None = None,
        global_defs: GlobalDefs | None = None,
        clock: Callable[[], float] | None = None,
        group_router: GroupRouter | None = None,
        startup_delay_s: float = 0.0,
    ) -> None:
        self.machine = machine
        self.ports = ports
        self.gdefs = global_defs or GlobalDefs()
        self.clock = clock or asyncio.get_running_loop().time
        self.group_router = group_router
        self.startup_delay_s = startup_delay_s
        self.inbox: Inbox = Inbox(on_put=self._stop_absorbing)
        self.stats = InstanceStats()
        self.last_transition_wall: float | None = None  # time.time() of the last change
        self.last_transition: Transition | None = None  # the last change (status: from, reason)
        self.transitions = 0  # state changes since start; never cleared (a Prometheus counter)
        self.finished = False
        # the state whose effects (addresses installed, adverts sent) have all been executed;
        # machine.state changes first. Waiters: a sync group's notify_master (daemon).
        self.settled_state = machine.state
        self.settled = asyncio.Condition()
        # -V/--dont-release-vrrp: leave the addresses in place when the daemon stops
        self.release_vips_on_stop = True
        cfg = machine.cfg
        self.policy = rx_policy_for(cfg, self.gdefs)
        self.encoder = AdvertEncoder(
            advert_for(cfg),
            src=source or _unspecified(cfg.family),
            checksum_as_v2=cfg.v3_checksum_as_v2,
        )
        self._announce_q: asyncio.Queue[Announce] = asyncio.Queue()
        self._announcer: asyncio.Task[None] | None = None
        self._discard_logged: dict[Discard, float] = {}
        # The last advert that passed validation, and what it was validated from: a steady
        # master sends the same bytes every interval, and validate() is a pure function of
        # these inputs, so a repeat needs no second decode (bench/scale.py: validation was
        # most of a backup's time at 255 instances x advert_int 0.05).
        self._last_valid: tuple[tuple[object, ...], Advert] | None = None
        self._startup_at: float | None = None  # vrrp_startup_delay: when Startup is due
        # Absorbed repeats (module docstring): the advert whose copies the socket absorbs,
        # and the time the latest was read (None: none since the machine last had one).
        self._absorbing = False
        self._repeat_of: AdvertReceived | None = None
        self._repeat_at: float | None = None

    @property
    def name(self) -> str:
        return self.machine.cfg.name

    @property
    def cfg(self) -> VrrpInstance:
        return self.machine.cfg

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        self._announcer = asyncio.create_task(self._announce_loop(), name=f"garp {self.name}")
        # spec §5.2 step 5 vrrp_startup_delay: the machine stays in INIT (it ignores adverts
        # and only records tracker changes) and gets Startup when the delay is over.
        if self.startup_delay_s > 0:
            self._startup_at = self.clock() + self.startup_delay_s
            log.info("(%s) Delaying startup for %g seconds", self.name, self.startup_delay_s)
        try:
            if self._startup_at is None:
                await self.dispatch(Startup())
            while not self.finished:
                item = await self.inbox.wait(self._deadline, self.clock, self._on_due)
                if item is None:
                    item = TimersDue() if self._startup_at is None else Startup()
                if isinstance(item, _Decided):
                    if item.error is not None:
                        raise item.error
                    await self._carry_out(item.event, item.effects)
                    continue
                if isinstance(item, Startup):
                    self._startup_at = None
                await self.dispatch(item)
        finally:
            self.inbox.close()
            self._announcer.cancel()
            await asyncio.gather(self._announcer, return_exceptions=True)

    def _deadline(self) -> float | None:
        return self.machine.next_deadline() if self._startup_at is None else self._startup_at

    async def dispatch(self, event: Event) -> None:
        """Hand one event to the machine and execute the effects (used by run())."""
        await self._carry_out(event, self._decide(event))

    def _decide(self, event: Event) -> list[Effect]:
        """Hand ``event`` to the machine; the repeats absorbed before it go first."""
        self._stop_absorbing()
        effects = self._take_repeat()
        if isinstance(event, Reconfigure):
            self._apply_config(event.cfg)
        elif isinstance(event, SourceAddressChanged) and event.address is not None:
            self.set_source(event.address)
        effects += self.machine.handle(event, self.clock())
        if isinstance(event, Shutdown) and not event.deleted and not self.release_vips_on_stop:
            effects = [e for e in effects if not isinstance(e, RemoveVips)]
        return effects

    async def _carry_out(self, event: Event, effects: list[Effect]) -> None:
        await self.execute(effects)
        if self.settled_state != self.machine.state:
            self.settled_state = self.machine.state
            async with self.settled:
                self.settled.notify_all()
        if isinstance(event, Shutdown):
            self.finished = True

    # ------------------------------------------------------------------ the fast path

    def _on_due(self) -> bool:
        """The inbox timer found the deadline reached while the task waits idle."""
        if self._startup_at is not None:
            return False  # Startup goes through the task (the wait ends with None)
        if self._repeat_at is not None:
            # the deadline was read before the absorbed repeats: they may have pushed it
            event = self._repeat_of
            assert event is not None
            try:
                effects = self._take_repeat()
            except Exception as exc:  # a bug in pykad: the task raises it
                self.inbox.put_nowait(_Decided(event, [], exc))
                return True
            if effects or self.machine.state != self.settled_state:
                # absorbs_repeats promised neither; carry them out all the same
                self.inbox.put_nowait(_Decided(event, effects))
                return True
            deadline = self.machine.next_deadline()
            if deadline is None or deadline > self.clock():
                return True  # pushed: wait on, still absorbing
        self._handle_now(TimersDue())
        return True

    # ------------------------------------------------------------------ absorbed repeats

    def _absorb(self, pkt: ReceivedPacket, event: AdvertReceived) -> None:
        """Let the socket absorb byte-identical copies of ``pkt`` (handled as ``event``)."""
        self._repeat_of = event
        self._absorbing = True
        self.ports.packets.absorb_repeats(pkt, self._on_repeat)

    def _on_repeat(self, now: float) -> None:
        """The socket absorbed a copy of the advert, read at ``now``."""
        self.stats.advert_rcvd += 1
        self._repeat_at = now

    def _stop_absorbing(self) -> None:
        if self._absorbing:
            self._absorbing = False
            self.ports.packets.absorb_repeats(None)

    def _take_repeat(self) -> list[Effect]:
        """Hand the machine the latest absorbed repeat, at the time it was read."""
        at = self._repeat_at
        if at is None or self._repeat_of is None:
            return []
        self._repeat_at = None
        return self.machine.handle(self._repeat_of, at)

    def _handle_now(self, event: AdvertReceived | TimersDue) -> None:
        """Handle ``event`` inside the receive or timer callback, without waking the task.

        Only while the task waits with an empty inbox (``inbox.idle``): no earlier event
        and no effect is pending, so the order of events and of effects is the one the task
        would give. The machine decides here; synchronous effects (adverts, logs, notify
        and GARP queueing) run here too. Effects that await (addresses) or a state change
        (``settled`` waiters) go to the task, which carries them out before anything that
        arrives later. A steady backup's adverts and a master's advert timer stay here:
        that is most of a daemon's work at 255 instances (bench/scale.py)."""
        try:
            effects = self._decide(event)
        except Exception as exc:  # a bug in pykad: the task raises it, as dispatch would
            self.inbox.put_nowait(_Decided(event, [], exc))
            return
        if self.machine.state != self.settled_state or any(
            isinstance(e, _AWAITED) for e in effects
        ):
            self.inbox.put_nowait(_Decided(event, effects))
            return
        for effect in effects:
            self._run_effect(effect)
        self.inbox.deadline_changed()  # e.g. a priority-0 advert: master down at skew time

    def _apply_config(self, cfg: VrrpInstance) -> None:
        self.policy = rx_policy_for(cfg, self.gdefs)
        self._last_valid = None  # validated under the old policy
        self.encoder.update(
            addresses=tuple(v.ip for v in cfg.virtual_addresses), adver_int_cs=cfg.advert_int_cs
        )

    def set_source(self, source: IPAddress) -> None:
        """The advert source address changed (v3 checksums cover it)."""
        self.encoder.update(src=source)

    # ------------------------------------------------------------------ effects

    async def execute(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, _AWAITED):
                try:
                    await self._change_addresses(effect)
                except (AdapterError, OSError) as exc:
                    self._effect_failed(effect, exc)
            else:
                self._run_effect(effect)

    def _effect_failed(self, effect: Effect, exc: Exception) -> None:
        self.stats.count("adapter_errors")
        log.error("(%s) %s failed: %s", self.name, type(effect).__name__, exc)

    async def _change_addresses(self, effect: InstallVips | RemoveVips) -> None:
        dev = self.cfg.interface
        if isinstance(effect, InstallVips):
            log.info("(%s) setting VIPs.", self.name)
            await self.ports.addresses.install(
                effect.addresses, effect.routes, effect.rules, default_dev=dev
            )
        else:
            self._cancel_announcements()
            log.info("(%s) removing VIPs.", self.name)
            await self.ports.addresses.remove(
                effect.addresses, effect.routes, effect.rules, default_dev=dev
            )

    def _run_effect(self, effect: Effect) -> None:
        """Execute one synchronous effect (all but InstallVips / RemoveVips)."""
        try:
            self._run_sync(effect)
        except (AdapterError, OSError) as exc:
            self._effect_failed(effect, exc)

    def _run_sync(self, effect: Effect) -> None:
        match effect:
            case SendAdvert(priority=prio):
                self.ports.packets.send(self.encoder.payload_for(prio))
                self.stats.count("advert_sent")
                if prio == 0:
                    self.stats.count("pri_zero_sent")
                    log.info("(%s) sent 0 priority", self.name)
            case Announce():
                if effect.addresses and effect.repeat > 0:
                    self._announce_q.put_nowait(effect)
            case Transition(old=old, new=new, reason=reason):
                self.last_transition_wall = time.time()
                self.last_transition = effect
                self.transitions += 1
                if new == "MASTER":
                    self.stats.count("become_master")
                elif old == "MASTER" and new in ("BACKUP", "FAULT"):
                    self.stats.count("release_master")
                log.debug("(%s) %s -> %s (%s)", self.name, old, new, reason)
            case Notify(event=event, priority=prio):
                self.ports.notifier.notify("INSTANCE", self.name, event, prio)
            case GroupNotify(group=group, event=event):
                self.ports.notifier.notify("GROUP", group, event, 0)
            case GroupSync(group=group, state=state):
                if self.group_router is not None:
                    self.group_router(group, state, self.name)
            case Log(message=message, level=level):
                log.log(level, "(%s) %s", self.name, message)

    def _cancel_announcements(self) -> None:
        while not self._announce_q.empty():
            self._announce_q.get_nowait()

    async def _announce_loop(self) -> None:
        while True:
            burst = await self._announce_q.get()
            await self._announce(burst.addresses, burst.repeat)

    async def _announce(self, addresses: tuple[VirtualAddress, ...], repeat: int) -> None:
        dev = self.cfg.interface
        for vip in addresses:
            log.debug("(%s) Sending gratuitous ARP on %s for %s", self.name, vip.dev or dev, vip.ip)
        try:
            await self.ports.announcer.announce(addresses, repeat, default_dev=dev)
        except (AdapterError, OSError) as exc:
            self.stats.count("adapter_errors")
            log.error("(%s) gratuitous ARP/NA failed: %s", self.name, exc)

    # ------------------------------------------------------------------ receive path

    def on_packet(self, pkt: ReceivedPacket) -> None:
        """The socket pool's callback for this instance's VRID (spec §5.7)."""
        state = self.machine.state
        if state in ("INIT", "FAULT") or self.finished:
            return  # check 3: an instance in FAULT or INIT ignores everything
        check = address_check_applies(
            self.policy,
            is_master=state == "MASTER",
            src=pkt.src,
            recorded_master=self.machine.master_ip,
        )
        key = (pkt.src, pkt.dst, pkt.ttl, pkt.payload, pkt.ip_total_length, check)
        if self._last_valid is not None and self._last_valid[0] == key:
            advert = self._last_valid[1]
        else:
            try:
                advert = validate(
                    pkt.src,
                    pkt.dst,
                    pkt.ttl,
                    pkt.payload,
                    self.policy,
                    check_addresses=check,
                    ip_total_length=pkt.ip_total_length,
                )
            except DecodeError as exc:
                self._discarded(exc, pkt.src)
                return
            self._last_valid = (key, advert)
        self.stats.advert_rcvd += 1
        if advert.priority == 0:
            self.stats.pri_zero_rcvd += 1
        event = AdvertReceived(
            src=pkt.src, priority=advert.priority, adver_int_cs=advert.adver_int_cs
        )
        if self.inbox.idle:
            self._handle_now(event)
            # nothing queued by it (no state change, no address to change): steady?
            if self.inbox.empty() and self.machine.absorbs_repeats(event):
                self._absorb(pkt, event)
        else:
            self.inbox.put_nowait(event)

    def _discarded(self, exc: DecodeError, src: IPAddress) -> None:
        reason = exc.reason
        if reason in _AFTER_RCVD or (
            reason is Discard.ADDR_LIST and exc.detail.startswith("ip address associated")
        ):
            self.stats.count("advert_rcvd")
        self.stats.count(KEEPALIVED_COUNTER[reason] or reason.value)
        if KEEPALIVED_COUNTER[reason] not in (None, reason.value):
            self.stats.count(reason.value)  # keep pykad's finer reason too (dst_mismatch)
        now = self.clock()
        last = self._discard_logged.get(reason)
        if last is None or now - last >= DISCARD_LOG_INTERVAL_S:
            self._discard_logged[reason] = now
            log.debug("(%s) %s (from %s)", self.name, exc.detail, src)
