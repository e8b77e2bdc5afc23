"""Gratuitous ARP / unsolicited NA sender: the AnnouncePort over AF_PACKET sockets.

Theory of operation
-------------------
On becoming MASTER (and on the delayed second burst, the refresh timer and lower-priority
answers) keepalived tells the segment that the virtual addresses moved (spec §5.5 step 6,
§5.9): one gratuitous ARP per IPv4 address (RFC 5227 3 announcement, keepalived's REQUEST
form) and one unsolicited Neighbour Advertisement per IPv6 address (RFC 4861 7.2.6), on the
address's interface, from the interface MAC. :class:`PacketAnnouncer` sends ``repeat`` rounds,
each round every address once in the order given (VIPs then eVIPs, as the effect lists them).

Frames come from :mod:`pykad.adapters.garp`'s pure builders and are built once per
(interface, MAC, address, Router flag) and reused; a changed MAC or forwarding setting simply
misses the cache. The NA Router flag follows the interface's IPv6 forwarding setting
(``net.ipv6.conf.IF.forwarding``, read through netlink on every burst, which is at least as
fresh as keepalived's 5-second recheck). Interfaces flagged NOARP get no ARP or NA at all.

Pacing (spec §2 ``vrrp_garp_interval`` / ``vrrp_gna_interval``, ``garp_group``): a minimum gap
between two GARPs (or two NAs) on one interface, shared by every instance using it. Each frame
reserves the next free slot of its interface synchronously and then awaits it, so concurrent
bursts queue behind each other instead of doubling the rate, and the event loop is never
blocked. With an interval of 0 (the default) the frames leave back to back, as keepalived's do.

One AF_PACKET socket per interface (protocol 0: it never receives), created in the
configured network namespace and re-created when the interface's ifindex changes (the
interface was deleted and created again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from pykad.adapters.garp import build_garp, build_unsolicited_na
from pykad.adapters.netlink import LinkInfo, NetlinkAddresses
from pykad.adapters.rawsock import open_socket
from pykad.config.model import IPAddress, VirtualAddress, VrrpInstance
from pykad.errors import AdapterError

log = logging.getLogger(__name__)

FrameKey = tuple[str, bytes, IPAddress, bool]


@dataclass
class _Interface:
    """Per-interface sending state: the packet socket and the pacing slots."""

    index: int
    sock: socket.socket
    garp_interval_s: float = 0.0
    gna_interval_s: float = 0.0
    next_garp_at: float = 0.0
    next_gna_at: float = 0.0


class PacketAnnouncer:
    """AnnouncePort: GARP / unsolicited NA on AF_PACKET sockets, paced per interface.

    ``nl`` gives the interface facts (index, MAC, NOARP, IPv6 forwarding); it must be open.
    ``garp_interval_s`` / ``gna_interval_s`` are the global defaults; per-interface values
    come from :meth:`set_intervals` (``garp_group``) or :meth:`configure` (instances).
    ``sent`` and ``skipped`` count frames; ``sent_by`` splits ``sent`` per interface and kind."""

    def __init__(
        self,
        nl: NetlinkAddresses,
        *,
        netns: str | None = None,
        garp_interval_s: float = 0.0,
        gna_interval_s: float = 0.0,
    ) -> None:
        self.nl = nl
        self.netns = netns
        self.garp_interval_s = garp_interval_s
        self.gna_interval_s = gna_interval_s
        self.sent = 0
        self.skipped = 0
        # frames sent per (interface, "arp" | "na"), for metrics
        self.sent_by: dict[tuple[str, str], int] = {}
        self._intervals: dict[str, tuple[float, float]] = {}
        self._ifaces: dict[str, _Interface] = {}
        self._frames: dict[FrameKey, bytes] = {}

    # -- configuration -----------------------------------------------------------------------

    def set_intervals(self, ifname: str, garp_interval_s: float, gna_interval_s: float) -> None:
        """Minimum gaps between GARPs / NAs on ``ifname`` (spec §2, ``garp_group``)."""
        self._intervals[ifname] = (garp_interval_s, gna_interval_s)
        iface = self._ifaces.get(ifname)
        if iface is not None:
            iface.garp_interval_s, iface.gna_interval_s = garp_interval_s, gna_interval_s

    def configure(self, instances: Sequence[VrrpInstance]) -> None:
        """Take each instance's (already resolved) intervals for its interface and for the
        interfaces its addresses name. keepalived keeps the pacing per interface, so the
        largest value configured for an interface wins."""
        merged: dict[str, tuple[float, float]] = {}
        for inst in instances:
            devs = {inst.interface, *(a.dev for a in inst.virtual_addresses)}
            devs |= {a.dev for a in inst.excluded_addresses}
            for dev in devs - {None}:
                assert dev is not None
                garp, gna = merged.get(dev, (0.0, 0.0))
                merged[dev] = (max(garp, inst.garp_interval_s), max(gna, inst.gna_interval_s))
        for dev, (garp, gna) in merged.items():
            self.set_intervals(dev, garp, gna)

    # -- the AnnouncePort --------------------------------------------------------------------

    async def announce(
        self, addresses: Sequence[VirtualAddress], repeat: int, *, default_dev: str | None
    ) -> None:
        """``repeat`` rounds of one GARP / NA per address (spec §5.5 step 6). Addresses on a
        NOARP interface are skipped; a missing interface raises AdapterError after every
        other address was announced."""
        loop = asyncio.get_running_loop()
        plan: list[tuple[str, _Interface, bytes, bool]] = []
        missing: list[str] = []
        links: dict[str, LinkInfo | None] = {}
        forwarding: dict[str, bool] = {}
        for vip in addresses:
            dev = vip.dev or default_dev
            if dev is None:
                missing.append(f"{vip.ip} (no interface)")
                continue
            if dev not in links:
                links[dev] = await self.nl.link(dev)
            link = links[dev]
            if link is None:
                missing.append(f"{vip.ip} dev {dev}")
                continue
            if link.noarp or len(link.mac) != 6:
                self.skipped += repeat  # spec §5.9: not sent on NOARP interfaces
                continue
            iface = self._interface(link)
            if isinstance(vip.ip, IPv4Address):
                frame = self._frame(dev, link.mac, vip.ip, router=False)
                plan.append((dev, iface, frame, True))
            else:
                if dev not in forwarding:
                    forwarding[dev] = await self.nl.ipv6_forwarding(dev)
                frame = self._frame(dev, link.mac, vip.ip, router=forwarding[dev])
                plan.append((dev, iface, frame, False))
        for _round in range(repeat):
            for dev, iface, frame, is_arp in plan:
                await self._paced(loop, iface, is_arp)
                if self._send(iface, frame):
                    key = (dev, "arp" if is_arp else "na")
                    self.sent_by[key] = self.sent_by.get(key, 0) + 1
        if missing:
            raise AdapterError("gratuitous ARP/NA", None, "no interface for " + ", ".join(missing))

    async def _paced(self, loop: asyncio.AbstractEventLoop, iface: _Interface, arp: bool) -> None:
        interval = iface.garp_interval_s if arp else iface.gna_interval_s
        if interval <= 0:
            return
        now = loop.time()
        # reserve the slot before awaiting, so concurrent bursts line up behind each other
        if arp:
            slot = max(now, iface.next_garp_at)
            iface.next_garp_at = slot + interval
        else:
            slot = max(now, iface.next_gna_at)
            iface.next_gna_at = slot + interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def _send(self, iface: _Interface, frame: bytes) -> bool:
        try:
            iface.sock.send(frame)
        except OSError as exc:
            # a down interface (ENETDOWN) loses its GARPs, as keepalived's do: log, go on
            log.warning("gratuitous ARP/NA send error on ifindex %d: %s", iface.index, exc)
            return False
        self.sent += 1
        return True

    def _frame(self, dev: str, mac: bytes, ip: IPAddress, *, router: bool) -> bytes:
        key = (dev, mac, ip, router)
        frame = self._frames.get(key)
        if frame is None:
            if isinstance(ip, IPv6Address):
                frame = build_unsolicited_na(mac, ip, router=router)
            else:
                frame = build_garp(mac, ip)
            self._frames[key] = frame
        return frame

    def _interface(self, link: LinkInfo) -> _Interface:
        iface = self._ifaces.get(link.name)
        if iface is not None and iface.index == link.index:
            return iface
        if iface is not None:  # the interface was re-created: new index, new socket
            iface.sock.close()
        sock = open_socket(socket.AF_PACKET, socket.SOCK_RAW, 0, self.netns)
        try:
            sock.bind((link.name, 0))
        except OSError as exc:
            sock.close()
            raise AdapterError(f"packet socket on {link.name}", exc.errno, str(exc)) from exc
        garp, gna = self._intervals.get(link.name, (self.garp_interval_s, self.gna_interval_s))
        fresh = _Interface(link.index, sock, garp, gna)
        self._ifaces[link.name] = fresh
        return fresh

    def close(self) -> None:
        for iface in self._ifaces.values():
            with contextlib.suppress(OSError):
                iface.sock.close()
        self._ifaces.clear()
        self._frames.clear()
