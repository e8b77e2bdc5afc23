"""Raw IPPROTO_VRRP sockets: one per (interface, family, mode), shared by every instance on it.

Theory of operation
-------------------
keepalived opens one receive socket per (interface, family, unicast source or multicast group)
and dispatches the packets it reads by VRID (spec §5.7 step 2, §5.10). :class:`VrrpSocketPool`
does the same: :meth:`VrrpSocketPool.register` returns a :class:`VrrpSender` (the instance's
:class:`~pykad.adapters.ports.PacketPort`) and files the instance's receive callback under its
VRID on the shared socket. The same socket sends and receives.

IPv4 (RFC 3768 5.1, RFC 5798 5.1.1): the socket uses ``IP_HDRINCL`` and pykad writes the IP
header itself, exactly as keepalived does (spec §5.9): TOS 0xC0, TTL 255 (unicast:
``unicast_ttl``), protocol 112, an identification field incremented per advert (never 0, the
same for every unicast copy of one advert), no DF, and the instance's own source address. Why
IP_HDRINCL rather than letting the kernel build the header: the source address of an advert is
per *instance* (``mcast_src_ip`` / ``unicast_src_ip`` / the interface's primary address) while
the socket is shared, the header bytes are then identical to keepalived's (a mixed cluster
sees the same packets from both), and the kernel refuses a non-local source through
IP_PKTINFO while keepalived happily sends from a configured ``mcast_src_ip`` that is not yet
on the interface. The kernel still fills the header checksum and keeps the total length.
Multicast sockets are bound to the group (so unicast VRRP is not seen on them), join it on the
interface with ``ip_mreqn`` (ifindex), and use ``IP_MULTICAST_IF``, ``IP_MULTICAST_LOOP 0``
(an instance never hears itself), ``IP_MULTICAST_ALL 0`` and ``SO_BINDTODEVICE``. Unicast
sockets are bound to ``unicast_src_ip`` (``IP_FREEBIND``: the address may come later).
Received IPv4 packets include the IP header: :func:`pykad.proto.advert.parse_ipv4` splits it;
``IP_PKTINFO`` gives the arrival interface.

IPv6 (RFC 5798 5.1.2): the kernel builds the header. ``IPV6_CHECKSUM`` offset 6 makes the
kernel compute the VRRP checksum over the RFC 8200 pseudo-header on send and verify it on
receive (a bad checksum never reaches us). Hop limit 255 (``IPV6_MULTICAST_HOPS``; unicast:
the kernel default unless ``unicast_ttl``, passed per packet as ``IPV6_HOPLIMIT``), traffic
class 0xC0, the source (the interface's link-local address or the configured one) per packet
with ``IPV6_PKTINFO``. ``IPV6_RECVPKTINFO`` / ``IPV6_RECVHOPLIMIT`` give destination,
interface and hop limit on receive.

Packets whose source is one of the socket's own instance sources are dropped (a second copy
of ourselves, e.g. through a looped bridge, must never look like a peer).

asyncio: ``loop.add_reader`` on each socket. One wake-up drains the socket but stops after
the second packet carrying the same VRID (keepalived's flood mitigation, spec §5.7): the
reader is level triggered, so the rest is read on the next loop iteration, after other
instances' timers had their turn. Send errors are logged in keepalived's words
("(VI_1): send advert error ...") and counted, never raised into the driver.

Many instances (bench/scale.py): a backup of 255 instances at advert_int 0.05 receives 5100
adverts a second. Two things keep that cheap, and both leave a lone packet alone:

* Repeats. A steady master sends the same bytes every interval, and to the backup that
  follows it another copy only means "the master is alive, at this time". When the
  instance asks for it (:meth:`VrrpSender.absorb_repeats`, after its machine has said so),
  a byte-identical copy is not decoded or delivered: the instance's ``on_repeat(now)`` is
  called, ``now`` being the loop time of the read. Identical means the whole datagram but
  for the IPv4 identification and header checksum (IPv6: payload, source, destination,
  interface and hop limit). Any other packet for the VRID takes the full path.
* Interrupt moderation. After a busy wake-up (more than one datagram read, or the previous
  wake-up less than ``READ_BUSY_GAP_S`` ago) the reader pauses ``READ_HOLDOFF_S``, so that
  a burst is read in one go instead of a wake-up per packet: each wake-up of the event loop
  costs more than reading an advert. A packet after a quiet spell (one instance; a
  priority-0 advert) is read at once; under load one waits at most ``READ_HOLDOFF_S``.

Namespaces: ``VrrpSocketPool(netns=NAME)`` opens its sockets inside the named network
namespace (keepalived's ``net_namespace``; the tests use it too). A socket stays in the
namespace it was created in, so only socket creation runs in a short-lived thread that has
called ``setns(2)``; interface indexes are resolved through the socket itself (SIOCGIFINDEX),
never through the calling thread's namespace.

Everything else, what the bytes mean, is :mod:`pykad.proto`'s job; this module never decodes
the VRRP message beyond reading its VRID byte for dispatch.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import fcntl
import functools
import ipaddress
import logging
import math
import os
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from pykad.adapters.ports import ReceivedPacket
from pykad.config.model import GlobalDefs, IPAddress, VrrpInstance
from pykad.errors import AdapterError
from pykad.proto.advert import parse_ipv4
from pykad.proto.constants import (
    HEADER_LEN,
    IPPROTO_VRRP,
    IPV4_HEADER_LEN,
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    VRRP_TOS,
    VRRP_TTL,
)
from pykad.proto.errors import DecodeError

log = logging.getLogger(__name__)

# Linux <linux/in.h>, <linux/in6.h> values the stdlib socket module does not export.
IP_PKTINFO: Final = 8
IP_FREEBIND: Final = 15
IP_MULTICAST_ALL: Final = 49
IPV6_MULTICAST_ALL: Final = 29
IPV6_FREEBIND: Final = 78
SIOCGIFINDEX: Final = 0x8933
SO_RCVBUFFORCE: Final = 33  # not in Python's socket module
CLONE_NEWNET: Final = 0x40000000

RECV_BUFSIZE: Final = 65535
READ_HOLDOFF_S: Final = 0.001  # the reader's pause after a busy wake-up (interrupt moderation)
READ_BUSY_GAP_S: Final = 0.003  # wake-ups closer than this are busy
MAX_PACKETS_PER_WAKEUP: Final = 64  # bound the work of one wake-up even for unknown VRIDs
# IPv6 packet info (in6_pktinfo, 20 bytes) and hop limit, or IPv4 packet info (12 bytes)
ANC_BUFSIZE: Final = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4) + socket.CMSG_SPACE(12)
# The timers of a peer's instances fire together: N instances arrive as a burst of N adverts,
# and a busy Python loop may read several bursts late. The default buffer (rmem_default,
# about 280 small packets) dropped adverts of 255 instances at advert_int 0.1 until the
# backups timed out (bench/scale.py). 2 MiB (the kernel doubles it) holds ~3000 adverts.
RCVBUF_BYTES: Final = 2 << 20

PacketCallback = Callable[[ReceivedPacket], None]
RepeatCallback = Callable[[float], None]


# --------------------------------------------------------------------------------------------
# Sockets inside a named network namespace


_libc: ctypes.CDLL | None = None


def _setns(netns: str) -> None:
    """Move the calling *thread* into network namespace ``netns`` (/run/netns/NAME or a path)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    path = netns if "/" in netns else f"/run/netns/{netns}"
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({netns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def open_socket(family: int, kind: int, proto: int, netns: str | None = None) -> socket.socket:
    """``socket.socket(family, kind, proto)``, created inside ``netns`` when one is named.

    setns(2) changes only the calling thread, so a throwaway thread enters the namespace,
    creates the socket and ends; the socket keeps its namespace for its whole life."""
    if netns is None:
        return socket.socket(family, kind, proto)
    result: list[socket.socket | BaseException] = []

    def create() -> None:
        try:
            _setns(netns)
            result.append(socket.socket(family, kind, proto))
        except BaseException as exc:  # handed back to the caller's thread below
            result.append(exc)

    worker = threading.Thread(target=create, name=f"pykad-netns-{netns}", daemon=True)
    worker.start()
    worker.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@functools.lru_cache(maxsize=1024)
def _host(address: IPAddress) -> str:
    """The socket-address text of a destination: the same few, once per advert each."""
    return str(address)


# A received IPv4 address from its 4 bytes: the same few senders and groups every interval.
_ipv4 = functools.lru_cache(maxsize=1024)(ipaddress.IPv4Address)
_PLAIN_V4: Final = b"\x45"  # version 4, IHL 5 (no options)


def _grow_rcvbuf(sock: socket.socket) -> None:
    """RCVBUF_BYTES: SO_RCVBUFFORCE goes past net.core.rmem_max (CAP_NET_ADMIN, which the
    daemon has); without it, SO_RCVBUF, which the kernel caps at rmem_max."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)


def sock_ifindex(sock: socket.socket, ifname: str) -> int:
    """The index of ``ifname`` in the socket's own namespace (SIOCGIFINDEX on that socket)."""
    req = struct.pack("16si12x", ifname.encode()[:15], 0)
    try:
        res = fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, req)
    except OSError as exc:
        raise AdapterError(f"interface {ifname}", exc.errno, exc.strerror or "") from exc
    return int(struct.unpack_from("i", res, 16)[0])


def _family_of(address: IPAddress) -> int:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


# --------------------------------------------------------------------------------------------
# One instance's sending side and receive registration


@dataclass(eq=False)
class VrrpSender:
    """The :class:`~pykad.adapters.ports.PacketPort` of one instance, bound to a shared socket.

    ``source`` is the advert source address; the runtime updates it when the interface's
    primary address changes (``set_source``). ``sent`` and ``send_errors`` count adverts
    (one per destination copy)."""

    name: str
    vrid: int
    destinations: tuple[IPAddress, ...]  # the group, or the unicast peers in config order
    source: IPAddress | None
    ttl: int | None  # None: the kernel default (IPv6 unicast only)
    peers: frozenset[IPAddress]
    callback: PacketCallback
    _channel: _Channel = field(repr=False)
    _ip_id: int = 0
    sent: int = 0
    send_errors: int = 0
    closed: bool = False

    def set_source(self, source: IPAddress | None) -> None:
        self.source = source
        self._channel.refresh_sources()

    def send(self, payload_for: Callable[[IPAddress], bytes]) -> None:
        """Send one advert to every destination; ``payload_for(dst)`` builds the VRRP bytes
        (a v3 checksum covers the destination, RFC 5798 5.2.8). Never raises."""
        if self.closed:
            return
        if self.source is None:
            self.send_errors += 1
            log.warning("(%s): send advert error no source address", self.name)
            return
        # RFC 791 identification: keepalived increments it per advert, skipping 0, and gives
        # every unicast copy of one advert the same value (spec §5.9).
        self._ip_id = self._ip_id % 0xFFFF + 1
        for dst in self.destinations:
            payload = payload_for(dst)
            try:
                self._channel.transmit(self, dst, payload, self._ip_id)
            except OSError as exc:
                self.send_errors += 1
                # spec §5.10: a priority-0 advert on a downed interface fails quietly
                quiet = exc.errno in (errno.ENETUNREACH, errno.ENETDOWN) and payload[2:3] == b"\0"
                log.log(
                    logging.DEBUG if quiet else logging.WARNING,
                    "(%s): send advert error %s (%s)",
                    self.name,
                    os.strerror(exc.errno) if exc.errno else exc,
                    dst,
                )
            else:
                self.sent += 1

    def absorb_repeats(
        self, packet: ReceivedPacket | None, on_repeat: RepeatCallback | None = None
    ) -> None:
        """:meth:`pykad.adapters.ports.PacketPort.absorb_repeats`: byte-identical copies of
        ``packet`` call ``on_repeat(now)`` instead of the receive callback (None: stop)."""
        self._channel.absorb(self, packet, on_repeat)

    def close(self) -> None:
        """Stop receiving for this instance; the socket closes with its last instance."""
        if not self.closed:
            self.closed = True
            self._channel.pool._unregister(self)


# --------------------------------------------------------------------------------------------
# One shared socket


# What a repeat is recognised by: IPv4 (datagram from the source address on, TTL, total
# length), IPv6 (source text as the socket gives it, ancillary data, payload).
RepeatKey = tuple[object, object, object]


@dataclass(eq=False, repr=False)
class _Channel:
    pool: VrrpSocketPool
    ifname: str | None
    family: int  # socket.AF_INET / AF_INET6
    local: IPAddress  # the multicast group bound to, or the unicast source address
    multicast: bool
    sock: socket.socket | None = None
    ifindex: int = 0
    by_vrid: dict[int, list[VrrpSender]] = field(default_factory=dict)
    own_sources: frozenset[IPAddress] = frozenset()
    # VRID -> (key, on_repeat) of the instance absorbing repeats (absorb_repeats)
    repeating: dict[int, tuple[RepeatKey, RepeatCallback]] = field(default_factory=dict)
    last_read: float = -math.inf  # loop time of the last wake-up (interrupt moderation)
    paused: asyncio.TimerHandle | None = None  # the reader is off until this fires

    def __repr__(self) -> str:  # asyncio shows it in handle reprs: keep it short
        return f"<VRRP socket {self.label}>"

    @property
    def label(self) -> str:
        mode = "multicast" if self.multicast else "unicast"
        fam = "IPv4" if self.family == socket.AF_INET else "IPv6"
        return f"{self.ifname or '*'}/{fam}/{mode} {self.local}"

    def senders(self) -> list[VrrpSender]:
        return [s for regs in self.by_vrid.values() for s in regs]

    def refresh_sources(self) -> None:
        self.own_sources = frozenset(s.source for s in self.senders() if s.source is not None)
        self.repeating.clear()  # a repeat from a source now ours must be dropped (rx_own)

    # -- repeats -----------------------------------------------------------------------------

    def absorb(
        self, sender: VrrpSender, packet: ReceivedPacket | None, on_repeat: RepeatCallback | None
    ) -> None:
        vrid = sender.vrid
        self.repeating.pop(vrid, None)
        if (
            packet is None
            or on_repeat is None
            or packet.raw is None
            or sender.closed
            or self.by_vrid.get(vrid) != [sender]  # a VRID shared by unicast instances
            or (self.family == socket.AF_INET and not self.ifindex)  # arrival interface
        ):
            return
        if self.family == socket.AF_INET:
            assert isinstance(packet.raw, bytes)
            data = packet.raw
            key: RepeatKey = (data[12:], data[8], data[2:4])
        else:
            assert isinstance(packet.raw, tuple)
            key = packet.raw
        self.repeating[vrid] = (key, on_repeat)

    def absorbed(
        self, data: bytes, ancdata: list[tuple[int, int, bytes]], addr: object, now: float
    ) -> int | None:
        """The VRID of ``data`` if it is a repeat being absorbed (its ``on_repeat`` called),
        else None: the packet takes the full path."""
        if self.family == socket.AF_INET:
            if len(data) <= IPV4_HEADER_LEN + 1 or data[0] != 0x45:
                return None
            vrid = data[IPV4_HEADER_LEN + 1]
            entry = self.repeating.get(vrid)
            if entry is None:
                return None
            (tail, ttl, length), on_repeat = entry
            if data[12:] != tail or data[8] != ttl or data[2:4] != length:
                return None
        else:
            if len(data) < 2 or not isinstance(addr, tuple):
                return None
            vrid = data[1]
            entry = self.repeating.get(vrid)
            if entry is None:
                return None
            key, on_repeat = entry
            if key != (addr[0], ancdata, data):
                return None
        try:
            on_repeat(now)
        except Exception:  # one instance's bug must not silence the others on this socket
            log.exception("VRRP socket %s: repeat callback failed (VRID %d)", self.label, vrid)
        return vrid

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> None:
        sock = open_socket(self.family, socket.SOCK_RAW, IPPROTO_VRRP, self.pool.netns)
        try:
            sock.setblocking(False)
            if self.ifname is not None:
                self.ifindex = sock_ifindex(sock, self.ifname)
                # SO_BINDTODEVICE: only this interface's packets (spec §5.10)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            _grow_rcvbuf(sock)
            if self.family == socket.AF_INET:
                self._setup_v4(sock)
            else:
                self._setup_v6(sock)
        except OSError as exc:
            sock.close()
            raise AdapterError(f"open VRRP socket {self.label}", exc.errno, str(exc)) from exc
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.pool.loop.add_reader(sock.fileno(), self.pool._on_readable, self)
        log.debug("opened VRRP socket %s (ifindex %d)", self.label, self.ifindex)

    def _setup_v4(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        # Not used for the bytes we send (IP_HDRINCL), but they keep any kernel-originated
        # packet on this socket in VRRP form.
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, VRRP_TOS)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
        if self.multicast:
            mreqn = struct.pack("=4s4si", self.local.packed, bytes(4), self.ifindex)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            if self.ifindex:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.bind((str(self.local), 0))

    def _setup_v6(self, sock: socket.socket) -> None:
        # RFC 5798 5.1.2 / spec §5.9: the kernel computes and verifies the checksum at offset 6
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 6)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, VRRP_TOS)
        scope = 0
        if self.multicast:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            if self.ifindex:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            mreq = struct.pack("=16sI", self.local.packed, self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            scope = self.ifindex
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
            if self.local.is_link_local:
                scope = self.ifindex
        sock.bind((str(self.local), 0, 0, scope))

    def close(self) -> None:
        if self.sock is None:
            return
        sock, self.sock = self.sock, None
        if self.paused is not None:
            self.paused.cancel()
            self.paused = None
        self.repeating.clear()
        self.pool.loop.remove_reader(sock.fileno())
        sock.close()  # leaving the socket drops its group membership (IGMP/MLD leave)

    # -- sending -----------------------------------------------------------------------------

    def transmit(self, sender: VrrpSender, dst: IPAddress, payload: bytes, ip_id: int) -> None:
        if self.sock is None:
            raise OSError(errno.EBADF, "socket closed")
        src = sender.source
        assert src is not None
        if self.family == socket.AF_INET:
            ttl = VRRP_TTL if sender.ttl is None else sender.ttl
            # RFC 791 header, spec §5.9: 0x45, TOS 0xC0, total length, id, no DF, TTL, 112,
            # checksum 0 (the kernel fills it with IP_HDRINCL), source, destination.
            header = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                VRRP_TOS,
                20 + len(payload),
                ip_id,
                0,
                ttl,
                IPPROTO_VRRP,
                0,
                src.packed,
                dst.packed,
            )
            flags = socket.MSG_DONTROUTE if self.multicast else 0
            self.sock.sendto(header + payload, flags, (_host(dst), 0))
            return
        pktinfo = struct.pack("=16sI", src.packed, self.ifindex)
        cmsgs = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)]
        if not self.multicast and sender.ttl is not None:
            cmsgs.append((socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("=i", sender.ttl)))
        scope = self.ifindex if (dst.is_link_local or dst.is_multicast) else 0
        self.sock.sendmsg([payload], cmsgs, 0, (_host(dst), 0, 0, scope))

    # -- receiving ---------------------------------------------------------------------------

    def decode(
        self, data: bytes, ancdata: list[tuple[int, int, bytes]], addr: object
    ) -> ReceivedPacket | None:
        """Turn one datagram into a ReceivedPacket, or None (counted) when it is not VRRP."""
        stats = self.pool.stats
        if self.family == socket.AF_INET:
            if data[:1] == _PLAIN_V4 and len(data) >= IPV4_HEADER_LEN + HEADER_LEN:
                # The header every VRRP sender writes (IHL 5, no options): split here, with
                # the same few addresses taken from a cache rather than built per packet
                # (bench/scale.py: the receive path is most of a backup's time).
                src, dst = _ipv4(data[12:16]), _ipv4(data[16:20])
                ttl, protocol, payload = data[8], data[9], data[IPV4_HEADER_LEN:]
                total_length = int.from_bytes(data[2:4], "big")
            else:
                try:
                    src, dst, ttl, protocol, total_length, payload = parse_ipv4(data)
                except DecodeError:
                    stats["rx_malformed"] += 1
                    return None
            if protocol != IPPROTO_VRRP:
                stats["rx_malformed"] += 1
                return None
            ifindex = self.ifindex  # SO_BINDTODEVICE: only that interface's packets
            if not ifindex:  # a socket for every interface: IP_PKTINFO names the arrival one
                for level, kind, value in ancdata:
                    if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 4:
                        ifindex = struct.unpack_from("=i", value)[0]
            packet = ReceivedPacket(
                ifindex=ifindex,
                src=src,
                dst=dst,
                ttl=ttl,
                payload=payload,
                ip_total_length=total_length,
                raw=data if data[:1] == _PLAIN_V4 else None,
            )
        else:
            hoplimit = -1
            dst6: IPAddress | None = None
            ifindex = self.ifindex
            for level, kind, value in ancdata:
                if level != socket.IPPROTO_IPV6:
                    continue
                if kind == socket.IPV6_PKTINFO and len(value) >= 20:
                    raw_dst, ifindex = struct.unpack_from("=16sI", value)
                    dst6 = ipaddress.IPv6Address(raw_dst)
                elif kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                    hoplimit = struct.unpack_from("=i", value)[0]
            if dst6 is None or not isinstance(addr, tuple):
                stats["rx_malformed"] += 1
                return None
            # a link-local source comes back as "fe80::1%eth0": the scope is the ifindex
            src6 = ipaddress.IPv6Address(str(addr[0]).split("%", 1)[0])
            packet = ReceivedPacket(
                ifindex=ifindex,
                src=src6,
                dst=dst6,
                ttl=hoplimit,
                payload=data,
                raw=(addr[0], ancdata, data),
            )
        if len(packet.payload) < HEADER_LEN:
            # spec §5.7 step 1: too short for a VRRP header; no instance can be named
            stats["rx_too_short"] += 1
            return None
        return packet

    def dispatch(self, packet: ReceivedPacket) -> int:
        """Hand the packet to the instance owning its VRID; returns the VRID."""
        stats = self.pool.stats
        vrid = packet.payload[1]
        if packet.src in self.own_sources:
            stats["rx_own"] += 1  # our own advert (a loop in the L2 segment)
            return vrid
        regs = self.by_vrid.get(vrid)
        if not regs:
            stats["rx_unknown_vrid"] += 1
            if self.pool.log_unknown_vrids:
                log.info(
                    "Unknown VRID(%d) received on interface(%s). ignoring...",
                    vrid,
                    self.ifname or "*",
                )
            return vrid
        target = regs[0]
        if len(regs) > 1:
            # spec §5.7 step 2: duplicated VRIDs in unicast mode are told apart by the peer
            match = [s for s in regs if packet.src in s.peers]
            if not match:
                stats["rx_unknown_peer"] += 1
                return vrid
            target = match[0]
        try:
            target.callback(packet)
        except Exception:  # one instance's bug must not silence the others on this socket
            log.exception("(%s): receive callback failed", target.name)
        return vrid


# --------------------------------------------------------------------------------------------
# The pool


ChannelKey = tuple[str | None, int, IPAddress, bool]


class VrrpSocketPool:
    """Every VRRP socket of the process, created on first use and shared by VRID.

    Must be used from inside the running event loop (it registers readers on it).
    ``stats`` counts what no instance can own: ``rx_own``, ``rx_unknown_vrid``,
    ``rx_unknown_peer``, ``rx_malformed``, ``rx_too_short``, ``rx_errors``."""

    def __init__(self, *, netns: str | None = None, log_unknown_vrids: bool = False) -> None:
        self.netns = netns
        self.log_unknown_vrids = log_unknown_vrids
        self.stats: Counter[str] = Counter()
        self._channels: dict[ChannelKey, _Channel] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # -- registration ------------------------------------------------------------------------

    def register(
        self,
        *,
        name: str,
        ifname: str | None,
        family: int,
        vrid: int,
        callback: PacketCallback,
        source: IPAddress | None,
        group: IPAddress | None = None,
        unicast_peers: Sequence[IPAddress] = (),
        unicast_src: IPAddress | None = None,
        unicast_ttl: int | None = None,
    ) -> VrrpSender:
        """Attach instance ``name`` (VRID ``vrid``, ``family`` 4 or 6) to its shared socket.

        Multicast when ``unicast_peers`` is empty: the socket of (ifname, family, group).
        Unicast: the socket of (ifname, family, unicast_src) (``unicast_src`` defaults to
        ``source``). ``source`` is the advert source address (None until it is known: sends
        are then skipped and counted). Raises AdapterError when the socket cannot be opened
        (missing interface, no CAP_NET_RAW) and ValueError for a VRID already registered on
        that socket without distinct unicast peers."""
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {family}")
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        peers = tuple(unicast_peers)
        multicast = not peers
        if multicast:
            local: IPAddress = group or (VRRP_GROUP_V4 if family == 4 else VRRP_GROUP_V6)
            destinations: tuple[IPAddress, ...] = (local,)
            ttl: int | None = VRRP_TTL
        else:
            bound = unicast_src or source
            if bound is None:
                raise ValueError(f"({name}) unicast needs unicast_src_ip or a source address")
            local = bound
            destinations = peers
            # spec §3.1: IPv4 unicast TTL defaults to 255, IPv6 to the kernel's hop limit
            ttl = unicast_ttl if unicast_ttl is not None else (VRRP_TTL if family == 4 else None)
        for addr in (local, *destinations, *([source] if source else [])):
            if _family_of(addr) != af:
                raise ValueError(f"({name}) address {addr} is not IPv{family}")
        key: ChannelKey = (ifname, af, local, multicast)
        channel = self._channels.get(key)
        if channel is None:
            channel = _Channel(self, ifname, af, local, multicast)
            channel.open()
            self._channels[key] = channel
        regs = channel.by_vrid.setdefault(vrid, [])
        peer_set = frozenset(peers)
        for other in regs:
            # unicast instances may share a VRID when their peers differ (spec §5.7 step 2)
            if multicast or other.peers & peer_set:
                raise ValueError(
                    f"({name}) VRID {vrid} is already used by ({other.name}) on {channel.label}"
                )
        sender = VrrpSender(
            name=name,
            vrid=vrid,
            destinations=destinations,
            source=source,
            ttl=ttl,
            peers=peer_set,
            callback=callback,
            _channel=channel,
        )
        regs.append(sender)
        channel.refresh_sources()  # also stops absorbing repeats (VRID now shared?)
        return sender

    def register_instance(
        self,
        cfg: VrrpInstance,
        callback: PacketCallback,
        *,
        source: IPAddress | None,
        global_defs: GlobalDefs | None = None,
    ) -> VrrpSender:
        """:meth:`register` with everything taken from the instance's configuration.

        ``source`` is the resolved advert source (``cfg.source_ip`` or the interface's
        primary address, see :meth:`pykad.adapters.netlink.NetlinkAddresses.primary_address`).
        """
        gdefs = global_defs or GlobalDefs()
        group = cfg.mcast_group or (
            gdefs.vrrp_mcast_group4 if cfg.family == 4 else gdefs.vrrp_mcast_group6
        )
        return self.register(
            name=cfg.name,
            ifname=cfg.interface,
            family=cfg.family,
            vrid=cfg.vrid,
            callback=callback,
            source=source,
            group=group,
            unicast_peers=[p.address for p in cfg.unicast_peers],
            unicast_src=cfg.unicast_src_ip,
            unicast_ttl=cfg.unicast_ttl,
        )

    def _unregister(self, sender: VrrpSender) -> None:
        channel = sender._channel
        regs = channel.by_vrid.get(sender.vrid, [])
        if sender in regs:
            regs.remove(sender)
        if not regs:
            channel.by_vrid.pop(sender.vrid, None)
        channel.refresh_sources()
        if not channel.by_vrid:
            channel.close()
            key = (channel.ifname, channel.family, channel.local, channel.multicast)
            self._channels.pop(key, None)

    # -- lifecycle ---------------------------------------------------------------------------

    def reopen(self, ifname: str) -> None:
        """Re-create the sockets of ``ifname`` (after the interface was deleted and created
        again: the device binding and the group membership held the old ifindex). The
        registrations are kept. Raises AdapterError if the interface is still missing."""
        for channel in self._channels.values():
            if channel.ifname == ifname:
                channel.close()
                channel.open()

    def close(self) -> None:
        """Close every socket (group memberships are dropped with them). Idempotent."""
        for channel in self._channels.values():
            for sender in channel.senders():
                sender.closed = True
            channel.close()
        self._channels.clear()

    def channels(self) -> list[str]:
        """Human-readable list of the open sockets (for dumps and logs)."""
        return [c.label for c in self._channels.values()]

    # -- the reader --------------------------------------------------------------------------

    def _on_readable(self, channel: _Channel) -> None:
        sock = channel.sock
        if sock is None:
            return
        now = self.loop.time()
        read = self._read(channel, sock, now)
        busy = read > 1 or now - channel.last_read < READ_BUSY_GAP_S
        channel.last_read = now
        if busy and channel.sock is sock and channel.paused is None:
            # interrupt moderation (module docstring): let the burst gather
            self.loop.remove_reader(sock.fileno())
            channel.paused = self.loop.call_later(READ_HOLDOFF_S, self._resume, channel)

    def _resume(self, channel: _Channel) -> None:
        channel.paused = None
        if channel.sock is not None:
            self.loop.add_reader(channel.sock.fileno(), self._on_readable, channel)

    def _read(self, channel: _Channel, sock: socket.socket, now: float) -> int:
        """Read what one wake-up may (spec §5.7); returns the number of datagrams read."""
        seen: set[int] = set()  # the VRIDs read once in this wake-up
        read = 0
        while read < MAX_PACKETS_PER_WAKEUP:
            try:
                data, ancdata, _flags, addr = sock.recvmsg(RECV_BUFSIZE, ANC_BUFSIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.stats["rx_errors"] += 1
                log.warning("VRRP socket %s: receive error %s", channel.label, exc)
                break
            read += 1
            vrid = channel.absorbed(data, ancdata, addr, now) if channel.repeating else None
            if vrid is None:
                packet = channel.decode(data, ancdata, addr)
                if packet is None:
                    continue
                vrid = channel.dispatch(packet)
            if vrid in seen:
                # spec §5.7: stop after the second advert for one VRID; the rest waits for
                # the next wake-up (the reader is level triggered)
                break
            seen.add(vrid)
        return read
