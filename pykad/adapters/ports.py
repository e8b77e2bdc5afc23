"""The ports between the runtime and the operating system, as structural Protocols.

Test fakes implement them without inheritance. Every implementation is idempotent: adding an
address that is present (EEXIST) or removing one that is gone (EADDRNOTAVAIL) is success,
because restarts and reloads replay effects. Failures raise :class:`pykad.errors.AdapterError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pykad.config.model import IPAddress, VirtualAddress, VirtualRoute, VirtualRule


@dataclass(frozen=True, slots=True)
class ReceivedPacket:
    """One VRRP packet as the socket saw it, before decoding."""

    ifindex: int
    src: IPAddress
    dst: IPAddress
    ttl: int  # IPv4 TTL or IPv6 hop limit
    payload: bytes  # the VRRP message (IPv4 header already stripped and checked)
    ip_total_length: int | None = None  # IPv4 header total-length field, for §5.7 check 11
    # The adapter's own form of the packet, opaque above it: what a byte-identical repeat
    # is recognised by (PacketPort.absorb_repeats).
    raw: object = field(default=None, compare=False, repr=False)


class PacketPort(Protocol):
    """Sends one instance's adverts (multicast, or one copy per unicast peer)."""

    def send(self, payload_for: Callable[[IPAddress], bytes]) -> None:
        """Send to every destination; ``payload_for(dst)`` builds the bytes (v3 checksums
        depend on the destination). Non-blocking; raw sockets do not block on send."""
        ...

    def absorb_repeats(
        self, packet: ReceivedPacket | None, on_repeat: Callable[[float], None] | None = None
    ) -> None:
        """From now on, a packet byte-identical to ``packet`` (one this instance received)
        is not delivered: ``on_repeat(now)`` is called instead, ``now`` being the loop time
        it was read at. ``None`` stops it, as do closing the port and anything that
        changes which packets are this instance's. An implementation may ignore the
        request (every packet is then delivered); the receiver must not depend on it."""
        ...


class AddressPort(Protocol):
    async def install(
        self,
        addresses: Sequence[VirtualAddress],
        routes: Sequence[VirtualRoute] = (),
        rules: Sequence[VirtualRule] = (),
        *,
        default_dev: str | None,
    ) -> None: ...

    async def remove(
        self,
        addresses: Sequence[VirtualAddress],
        routes: Sequence[VirtualRoute] = (),
        rules: Sequence[VirtualRule] = (),
        *,
        default_dev: str | None,
    ) -> None: ...


class AnnouncePort(Protocol):
    async def announce(
        self, addresses: Sequence[VirtualAddress], repeat: int, *, default_dev: str | None
    ) -> None:
        """Send ``repeat`` rounds of gratuitous ARP (IPv4) / unsolicited NA (IPv6)."""
        ...


class NotifyPort(Protocol):
    def notify(self, kind: str, name: str, event: str, priority: int) -> None:
        """Queue notify scripts / FIFO lines for INSTANCE|GROUP ``name`` entering ``event``.

        Must not block the caller: scripts run in the background, in order per instance."""
        ...
