"""The sync-group coordinator: members of a ``vrrp_sync_group`` move together (spec §4.1).

Theory of operation. Each member keeps its own :class:`~pykad.fsm.machine.VrrpMachine`
(effects stay per instance); the members' machines share one :class:`SyncGroup` object,
which only *records* (the group state, each member's state, wantstate and own fault) and
*answers* two questions:

* may this member become MASTER?  Only if the group is MASTER already or every other member
  also wants MASTER (spec §4.1); otherwise the member stays BACKUP with wantstate MASTER;
* may this member leave FAULT?  Only when no member has a fault of its own (keepalived's
  group fault counter reaching 0).

When a member's transition changes the group state, :meth:`SyncGroup.entered` returns the
group's notification (:class:`GroupNotify`, once per group state change, which is how
duplicates are suppressed) and :class:`GroupSync`. The runtime (and FakeLan) turns GroupSync
into :class:`~pykad.fsm.events.GroupForce` for the *other* members, which follow; since they
enter a state the group is already in, they emit no further GroupSync, so there is no loop.

The object is pure data shared by machines handled one event at a time (one asyncio task per
instance in the runtime, but all on one event loop thread), so it needs no locking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pykad.fsm.effects import Effect, GroupNotify, GroupSync


@dataclass(slots=True)
class _Member:
    state: str = "INIT"
    wantstate: str = "BACKUP"
    faulted: bool = False
    owner_master: bool = False  # `state MASTER` with priority 255


class SyncGroup:
    """Shared state of one sync group; build one per ``VrrpSyncGroup`` and pass it to the
    ``VrrpMachine`` of every member (``sync=``)."""

    def __init__(self, name: str, members: Sequence[str]) -> None:
        self.name = name
        self.members = tuple(members)
        self.state = "INIT"  # the group state: INIT until a member has started
        self._m: dict[str, _Member] = {}
        self._stop_notified = False

    def register(self, member: str, *, owner_master: bool) -> None:
        if member not in self.members:
            raise ValueError(f"{member} is not a member of sync group {self.name}")
        self._m[member] = _Member(owner_master=owner_master)

    def all_owners_master(self) -> bool:
        """spec §4.1: the group starts MASTER only if every member is an owner wanting it."""
        return len(self._m) == len(self.members) and all(m.owner_master for m in self._m.values())

    def set_wantstate(self, member: str, wantstate: str) -> None:
        self._m[member].wantstate = wantstate

    def set_fault(self, member: str, faulted: bool) -> None:
        self._m[member].faulted = faulted

    def may_become_master(self, member: str) -> bool:
        """spec §4.1: group already MASTER, or every other member wants MASTER.

        A MASTER group's members are all MASTER and so all want MASTER: the second test
        covers the first.
        """
        return all(m.wantstate == "MASTER" for n, m in self._m.items() if n != member)

    def may_leave_fault(self) -> bool:
        """spec §4.1: the group recovers only when no member has a fault of its own."""
        return not any(m.faulted for m in self._m.values())

    def entered(self, member: str, state: str) -> list[Effect]:
        """Record ``member`` entering ``state``; group effects if the group state changed."""
        self._m[member].state = state
        if state == self.state:
            return []  # already the group state: notifications were sent (spec §4.1)
        self.state = state
        return [GroupNotify(self.name, state), GroupSync(self.name, state)]

    def stopped(self) -> list[Effect]:
        """spec §5.8: one GROUP STOP notification at shutdown, from the first member."""
        if self._stop_notified:
            return []
        self._stop_notified = True
        return [GroupNotify(self.name, "STOP")]
