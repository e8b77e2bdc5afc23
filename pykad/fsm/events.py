"""Inputs to :meth:`VrrpMachine.handle`. Frozen values; the driver creates them.

Adapters never call the machine: they put these into the instance driver's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from pykad.config.model import IPAddress, VrrpInstance


@dataclass(frozen=True, slots=True)
class Startup:
    """The daemon starts the instance (RFC 5798 6.4.1 Startup event)."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """SIGTERM/SIGINT or removal by reload (RFC 5798 6.4.2/6.4.3 Shutdown event).

    ``deleted`` is True when a reload removed the instance (notify DELETED/FAULT, not STOP).
    """

    deleted: bool = False


@dataclass(frozen=True, slots=True)
class TimersDue:
    """``next_deadline()`` has passed; the machine fires every timer that is due."""


@dataclass(frozen=True, slots=True)
class AdvertReceived:
    """A received advertisement that passed the receive-path validation (spec §5.7)."""

    src: IPAddress
    priority: int
    adver_int_cs: int  # v3: the advert's Max Advert Int; v2: seconds * 100


@dataclass(frozen=True, slots=True)
class TrackerChanged:
    """A tracked object changed: kind is interface|script|process|bfd; up is its new state.

    The instance's own interface (and the interfaces of its VIPs) arrive as kind
    ``interface`` too; the machine knows which of them are tracked and with what weight.
    """

    kind: str
    name: str
    up: bool


@dataclass(frozen=True, slots=True)
class TrackFileChanged:
    """A ``track_file`` was (re)read and holds ``value`` (spec §4.3)."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class SourceAddressChanged:
    """The instance's source address (primary or configured) appeared or disappeared.

    ``address`` (optional) is the new own address used for the MASTER tie-break (spec §5.4)
    when the interface's primary address changed; None keeps the current one.
    """

    present: bool
    address: IPAddress | None = None


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """SIGHUP produced a changed configuration for this (matching) instance (spec §7.2)."""

    cfg: VrrpInstance


@dataclass(frozen=True, slots=True)
class GroupForce:
    """A sync-group peer moved; this member must follow to ``state`` (spec §4.1)."""

    state: str
    reason: str = "sync group"


Event = (
    Startup
    | Shutdown
    | TimersDue
    | AdvertReceived
    | TrackerChanged
    | TrackFileChanged
    | SourceAddressChanged
    | Reconfigure
    | GroupForce
)
