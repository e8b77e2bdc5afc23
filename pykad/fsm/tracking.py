"""Tracking arithmetic: weights, reverse, clamping and fault conditions (spec §4.3, §5.8).

Pure bookkeeping for one instance. :func:`relations_for` lists what an instance tracks (its
configured ``track_*`` entries plus the implicit weight-0 relations keepalived adds: the own
interface unless ``dont_track_primary``, and the interface of every VIP/eVIP/route that is
not ``no_track``). :class:`Tracking` holds the tracked objects' last known states and
derives the priority adjustment and the list of fault reasons from them. It never decides
transitions; :class:`~pykad.fsm.machine.VrrpMachine` does.

Tracker keys are ``(kind, name)`` with kind ``interface|script|process|bfd|file``; the
runtime sends :class:`~pykad.fsm.events.TrackerChanged` / ``TrackFileChanged`` for them.
Sync-group trackers are attached to every member by the config lowering (spec §4.1), so
they arrive here through the member's own ``track_*`` fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pykad.config.model import VrrpInstance

PRIO_OWNER: Final = 255
# Tracking never takes the effective priority to 0 (resign) or 255 (owner): spec §4.3.
PRIO_TRACK_MIN: Final = 1
PRIO_TRACK_MAX: Final = 254
# A weighted track_file contribution is clamped to [-254, 253]; <= -254 means FAULT (§4.3).
FILE_CONTRIB_MIN: Final = -254
FILE_CONTRIB_MAX: Final = 253

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Relation:
    """One tracking relation: ``kind``/``name`` tracked with ``weight`` and ``reverse``."""

    kind: str
    name: str
    weight: int = 0
    reverse: bool = False

    @property
    def key(self) -> Key:
        return (self.kind, self.name)


@dataclass(frozen=True, slots=True)
class TrackedObject:
    """A read-only view of one relation for status and metrics: the configuration, the last
    known state (``up``: None for a script with no result yet, and for files) or file
    ``value``, and what it currently adds to the priority (spec §4.3)."""

    kind: str
    name: str
    weight: int
    reverse: bool
    up: bool | None
    value: int | None
    contribution: int


def relations_for(cfg: VrrpInstance) -> tuple[Relation, ...]:
    """Every tracking relation of an instance, configured and implicit (spec §3.2, §3.5)."""
    rels: list[Relation] = []
    # spec §3.1 dont_track_primary: the own interface going down means FAULT unless set.
    if cfg.interface is not None and not cfg.dont_track_primary:
        rels.append(Relation("interface", cfg.interface))
    rels.extend(Relation("interface", t.name, t.weight, t.reverse) for t in cfg.track_interfaces)
    # spec §3.2: each VIP's (and route's) interface is tracked unless no_track.
    for vip in (*cfg.virtual_addresses, *cfg.excluded_addresses):
        if vip.dev is not None and vip.dev != cfg.interface and not vip.no_track:
            rels.append(Relation("interface", vip.dev))
    for route in cfg.virtual_routes:
        if route.dev is not None and route.dev != cfg.interface and not route.no_track:
            rels.append(Relation("interface", route.dev))
    for kind, refs in (
        ("script", cfg.track_scripts),
        ("process", cfg.track_processes),
        ("bfd", cfg.track_bfds),
        ("file", cfg.track_files),
    ):
        rels.extend(Relation(kind, r.name, r.weight, r.reverse) for r in refs)
    # The same object can be tracked twice (a VIP on a tracked interface): keep both only if
    # they differ, so one implicit weight-0 relation is not counted twice.
    return tuple(dict.fromkeys(rels))


def effective_priority(base: int, adjustment: int) -> int:
    """spec §4.3: 255 is immutable; otherwise clamp(base + adjustment, 1, 254)."""
    if base == PRIO_OWNER:
        return PRIO_OWNER
    return max(PRIO_TRACK_MIN, min(PRIO_TRACK_MAX, base + adjustment))


def weighted_contribution(weight: int, reverse: bool, up: bool) -> int:
    """spec §4.3: w > 0 adds |w| while up, w < 0 subtracts |w| while down; reverse flips."""
    sign = -1 if reverse else 1
    if (up and weight > 0) or (not up and weight < 0):
        return weight * sign
    return 0


def file_contribution(value: int, weight: int, reverse: bool) -> int | None:
    """spec §4.3 track_file with weight: value*w*m clamped; None when it means FAULT."""
    raw = value * weight * (-1 if reverse else 1)
    if raw <= FILE_CONTRIB_MIN:
        return None
    return min(raw, FILE_CONTRIB_MAX)


class Tracking:
    """The last known state of every tracked object of one instance.

    ``states`` maps a key to True (up), False (down) or None (no result yet: only scripts
    start that way, spec §4.2). Objects the runtime never reported are assumed up, except
    scripts, which are unknown until their first result. ``files`` holds track_file values
    (a missing or empty file reads as 0, spec §4.3).
    """

    def __init__(
        self,
        relations: tuple[Relation, ...],
        states: Mapping[Key, bool] | None = None,
        files: Mapping[str, int] | None = None,
    ) -> None:
        self.relations = relations
        self._states: dict[Key, bool | None] = {}
        self._files: dict[str, int] = {}
        for rel in relations:
            if rel.kind == "file":
                self._files.setdefault(rel.name, 0)
            else:
                self._states.setdefault(rel.key, None if rel.kind == "script" else True)
        for key, up in (states or {}).items():
            self.set_state(key[0], key[1], up)
        for name, value in (files or {}).items():
            self.set_file(name, value)

    def rebind(self, relations: tuple[Relation, ...]) -> Tracking:
        """A Tracking for new relations (reload) that keeps every known state and value."""
        known = {k: v for k, v in self._states.items() if v is not None}
        return Tracking(relations, known, self._files)

    def set_state(self, kind: str, name: str, up: bool) -> bool:
        """Record a state; False if the instance does not track this object."""
        if (kind, name) not in self._states:
            return False
        self._states[(kind, name)] = up
        return True

    def set_file(self, name: str, value: int) -> bool:
        if name not in self._files:
            return False
        self._files[name] = value
        return True

    def state(self, kind: str, name: str) -> bool | None:
        return self._states.get((kind, name))

    def adjustment(self) -> int:
        """Sum of weighted contributions (spec §4.3); unknown scripts contribute nothing."""
        total = 0
        for rel in self.relations:
            if rel.weight == 0:
                continue
            if rel.kind == "file":
                contrib = file_contribution(self._files[rel.name], rel.weight, rel.reverse)
                total += contrib or 0  # None (FAULT) is reported by fault_reasons()
                continue
            up = self._states[rel.key]
            if up is not None:
                total += weighted_contribution(rel.weight, rel.reverse, up)
        return total

    def fault_reasons(self) -> list[str]:
        """Why the instance must be in FAULT (empty: it need not be), in relation order."""
        reasons: list[str] = []
        for rel in self.relations:
            if rel.kind == "file":
                value = self._files[rel.name]
                if rel.weight == 0:
                    # weight 0: a non-zero value is failure (zero with reverse), spec §4.3
                    if (value != 0) != rel.reverse:
                        reasons.append(f"track_file {rel.name} value {value}")
                elif file_contribution(value, rel.weight, rel.reverse) is None:
                    reasons.append(f"track_file {rel.name} value {value}")
                continue
            if rel.weight != 0:
                continue
            up = self._states[rel.key]
            # weight 0: down (or up with reverse) means FAULT; unknown scripts only hold
            # the instance back (pending), they are not a fault (spec §4.2)
            if up is not None and up == rel.reverse:
                if rel.kind == "interface":
                    reasons.append(f"interface {rel.name} {'up' if up else 'down'}")
                else:
                    reasons.append(f"{rel.kind} {rel.name}")
        return reasons

    def pending(self) -> list[str]:
        """Weight-0 scripts with no result yet: they hold the instance out of MASTER."""
        return [
            rel.name
            for rel in self.relations
            if rel.kind == "script" and rel.weight == 0 and self._states[rel.key] is None
        ]

    def snapshot(self) -> tuple[TrackedObject, ...]:
        """Every relation with its state and priority contribution, in relation order."""
        out: list[TrackedObject] = []
        for rel in self.relations:
            if rel.kind == "file":
                value = self._files[rel.name]
                contrib = file_contribution(value, rel.weight, rel.reverse) if rel.weight else 0
                out.append(
                    TrackedObject(
                        rel.kind, rel.name, rel.weight, rel.reverse, None, value, contrib or 0
                    )
                )
                continue
            up = self._states[rel.key]
            contrib = 0 if up is None else weighted_contribution(rel.weight, rel.reverse, up)
            out.append(
                TrackedObject(rel.kind, rel.name, rel.weight, rel.reverse, up, None, contrib)
            )
        return tuple(out)
