"""Outputs of :meth:`VrrpMachine.handle`: plain data the driver executes through adapters.

Effects carry no sockets or handles. Order matters and follows keepalived (spec §5.5): on
becoming MASTER the machine returns SendAdvert, then InstallVips, then Announce, then Notify.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pykad.config.model import VirtualAddress, VirtualRoute, VirtualRule


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send one advertisement with this priority (0 = resign)."""

    priority: int


@dataclass(frozen=True, slots=True)
class InstallVips:
    """Add these addresses (VIPs then eVIPs), then routes, then rules. EEXIST is success."""

    addresses: tuple[VirtualAddress, ...]
    routes: tuple[VirtualRoute, ...] = ()
    rules: tuple[VirtualRule, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoveVips:
    """Remove these rules, routes, then addresses. EADDRNOTAVAIL/ESRCH is success."""

    addresses: tuple[VirtualAddress, ...]
    routes: tuple[VirtualRoute, ...] = ()
    rules: tuple[VirtualRule, ...] = ()


@dataclass(frozen=True, slots=True)
class Announce:
    """One burst: ``repeat`` gratuitous ARPs / unsolicited NAs for each address, in order."""

    addresses: tuple[VirtualAddress, ...]
    repeat: int


@dataclass(frozen=True, slots=True)
class Transition:
    """The state changed (for logs, status and metrics). Values are State strings."""

    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class Notify:
    """Run notify scripts / write FIFO lines / mail for ``event``.

    event is MASTER|BACKUP|FAULT|STOP|DELETED, or the FIFO-only MASTER_RX_LOWER_PRI,
    MASTER_PRIORITY, BACKUP_PRIORITY. ``priority`` is the effective priority at that moment.
    """

    event: str
    priority: int


@dataclass(frozen=True, slots=True)
class GroupSync:
    """This sync-group member changed state; the other members must follow (spec §4.1)."""

    group: str
    state: str


@dataclass(frozen=True, slots=True)
class GroupNotify:
    """Run the sync group's notify scripts / FIFO line for ``event`` (spec §4.1, §6.1).

    Emitted once per group state change by the member whose transition changed the group
    state (the coordinator in :mod:`pykad.fsm.syncgroup` suppresses duplicates). The group
    priority argument is always 0 (spec §6.2), so it carries none.
    """

    group: str
    event: str


@dataclass(frozen=True, slots=True)
class Log:
    """A log line in keepalived's words, without the ``(NAME) `` prefix the driver adds."""

    message: str
    level: int = logging.INFO


Effect = (
    SendAdvert
    | InstallVips
    | RemoveVips
    | Announce
    | Transition
    | Notify
    | GroupSync
    | GroupNotify
    | Log
)
