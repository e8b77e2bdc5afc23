"""FakeLan: N pure VRRP machines on a simulated LAN with a fake clock (STYLE §F).

The multi-node version of h11's ``ConnectionPair``. Each ``SendAdvert`` a node emits is
delivered to every other running node with the same VRID on the same segment as
``AdvertReceived`` (after ``latency`` seconds); each ``GroupSync`` is delivered to the other
members of the sync group as ``GroupForce``. Time jumps straight to the next event: the
earliest ``next_deadline()`` of any node or the earliest queued delivery. At equal times
timers fire before deliveries, so nodes whose timers expire together act simultaneously,
as two routers on a real LAN would. Everything is recorded as ``(time, node, effect)``.

Nothing here sleeps or reads a clock; a 60-second election takes microseconds and is
deterministic.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from pykad.config.model import IPAddress, VrrpInstance
from pykad.fsm.effects import Effect, GroupSync, SendAdvert, Transition
from pykad.fsm.events import AdvertReceived, Event, GroupForce, Shutdown, Startup, TimersDue
from pykad.fsm.machine import State, VrrpMachine
from pykad.fsm.syncgroup import SyncGroup


@dataclass(slots=True)
class _Node:
    name: str
    machine: VrrpMachine
    src: IPAddress
    running: bool = False  # started and not crashed/stopped
    segment: int = 0


@dataclass(order=True, slots=True)
class _Queued:
    time: float
    seq: int
    node: str = field(compare=False)
    event: Event = field(compare=False)


class FakeLan:
    """A simulated broadcast domain for :class:`VrrpMachine` instances."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.now = 0.0
        self.log: list[tuple[float, str, Effect]] = []
        self._nodes: dict[str, _Node] = {}
        self._groups: dict[str, SyncGroup] = {}
        self._queue: list[_Queued] = []
        self._seq = itertools.count()
        self._auto_ip = itertools.count(1)

    # ------------------------------------------------------------------------------------
    # Building the LAN

    def sync_group(self, name: str, members: tuple[str, ...]) -> SyncGroup:
        """Declare a sync group; add its members afterwards with ``sync_group=name`` set."""
        group = SyncGroup(name, members)
        self._groups[name] = group
        return group

    def add(
        self,
        cfg: VrrpInstance,
        *,
        start_at: float | None = 0.0,
        own_ip: str | IPAddress | None = None,
        initial_trackers: Mapping[tuple[str, str], bool] | None = None,
        initial_files: Mapping[str, int] | None = None,
        source_present: bool = True,
    ) -> VrrpMachine:
        """Add a node (named after its instance). ``start_at=None``: start it by hand.

        The node's address on the wire is ``own_ip``, else the configured source address,
        else an automatic 192.0.2.N in order of addition.
        """
        if cfg.name in self._nodes:
            raise ValueError(f"duplicate node {cfg.name}")
        own = ipaddress.ip_address(own_ip) if isinstance(own_ip, str) else own_ip
        src = own or cfg.source_ip or ipaddress.ip_address(f"192.0.2.{next(self._auto_ip)}")
        sync = self._groups[cfg.sync_group] if cfg.sync_group is not None else None
        machine = VrrpMachine(
            cfg,
            own_ip=own if own is not None else (None if cfg.source_ip else src),
            initial_trackers=initial_trackers,
            initial_files=initial_files,
            source_present=source_present,
            sync=sync,
        )
        self._nodes[cfg.name] = _Node(cfg.name, machine, src)
        if start_at is not None:
            self.start(cfg.name, at=start_at)
        return machine

    def machine(self, name: str) -> VrrpMachine:
        return self._nodes[name].machine

    # ------------------------------------------------------------------------------------
    # Scripted happenings

    def at(self, time: float, name: str, event: Event) -> None:
        """Deliver ``event`` to node ``name`` at ``time`` (tracker changes, reloads...)."""
        heapq.heappush(self._queue, _Queued(time, next(self._seq), name, event))

    def start(self, name: str, *, at: float) -> None:
        self.at(at, name, Startup())

    def stop(self, name: str, *, at: float, deleted: bool = False) -> None:
        """A clean shutdown (SIGTERM): the machine resigns, then the node goes silent."""
        self.at(at, name, Shutdown(deleted=deleted))

    def crash(self, name: str) -> None:
        """The node dies now: no shutdown, no more adverts, no more timers."""
        self._nodes[name].running = False

    def cut(self, *names: str) -> None:
        """Isolate each named node on a segment of its own (link cut / partition)."""
        for name in names:
            self._nodes[name].segment = next(self._seq) + 1

    def heal(self) -> None:
        for node in self._nodes.values():
            node.segment = 0

    # ------------------------------------------------------------------------------------
    # Running

    def _next_timer(self) -> tuple[float, _Node] | None:
        best: tuple[float, _Node] | None = None
        for node in self._nodes.values():  # insertion order breaks ties deterministically
            deadline = node.machine.next_deadline() if node.running else None
            if deadline is not None and (best is None or deadline < best[0]):
                best = (deadline, node)
        return best

    def step(self, until: float) -> bool:
        """Process one event at or before ``until``; False when there is none."""
        timer = self._next_timer()
        head = self._queue[0] if self._queue else None
        if timer is not None and timer[0] <= until and (head is None or timer[0] <= head.time):
            self.now = max(self.now, timer[0])
            self._deliver(timer[1], TimersDue())
            return True
        if head is not None and head.time <= until:
            heapq.heappop(self._queue)
            self.now = max(self.now, head.time)
            node = self._nodes[head.node]
            if isinstance(head.event, Startup):
                node.running = True
            if node.running:
                self._deliver(node, head.event)
            return True
        return False

    def run_until(self, until: float, *, max_steps: int = 1_000_000) -> None:
        """Advance the fake clock to ``until``, processing everything due on the way."""
        for _ in range(max_steps):
            if not self.step(until):
                self.now = max(self.now, until)
                return
        raise RuntimeError(f"FakeLan did not settle within {max_steps} steps")

    def _deliver(self, node: _Node, event: Event) -> None:
        effects = node.machine.handle(event, self.now)
        if isinstance(event, Shutdown):
            node.running = False
        for effect in effects:
            self.log.append((self.now, node.name, effect))
            if isinstance(effect, SendAdvert):
                self._broadcast(node, effect)
            elif isinstance(effect, GroupSync):
                for member in self._groups[effect.group].members:
                    if member != node.name and member in self._nodes:
                        self.at(self.now, member, GroupForce(effect.state))

    def _broadcast(self, sender: _Node, advert: SendAdvert) -> None:
        cfg = sender.machine.cfg
        event = AdvertReceived(sender.src, advert.priority, cfg.advert_int_cs)
        for node in self._nodes.values():
            if (
                node is not sender
                and node.machine.cfg.vrid == cfg.vrid
                and node.segment == sender.segment
            ):
                self.at(self.now + self.latency, node.name, event)

    # ------------------------------------------------------------------------------------
    # Reading the record

    def effects(self, name: str) -> list[Effect]:
        return [e for _, n, e in self.log if n == name]

    def timed(self, name: str) -> list[tuple[float, Effect]]:
        return [(t, e) for t, n, e in self.log if n == name]

    def transitions(self, name: str) -> list[tuple[str, str]]:
        return [(e.old, e.new) for e in self.effects(name) if isinstance(e, Transition)]

    def transition_times(self, name: str) -> list[tuple[float, str]]:
        return [(t, e.new) for t, e in self.timed(name) if isinstance(e, Transition)]

    def masters(self, vrid: int | None = None) -> list[str]:
        return [
            n.name
            for n in self._nodes.values()
            if n.running
            and n.machine.state is State.MASTER
            and (vrid is None or n.machine.cfg.vrid == vrid)
        ]
