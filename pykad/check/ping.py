"""PING_CHECK (spec §9.5; keepalived check_ping.c, RFC 792, RFC 4443 §4.1-4.2).

One ICMP (ICMPv6) echo request per probe on an unprivileged "ping socket"
(``SOCK_DGRAM``/``IPPROTO_ICMP``, Linux ``net.ipv4.ping_group_range``): the kernel picks the
identifier, computes the checksum and delivers only the replies to this socket, so no raw
socket or CAP_NET_RAW is needed. Success is an echo reply with our sequence number and
payload within ``connect_timeout``.

keepalived widens ``ping_group_range`` when the range excludes its group; pykad does not (a
sysctl of the network namespace is not a checker's to change): when the kernel refuses the
socket the probe fails with a message saying which sysctl to set.

Echo message (RFC 792)::

     0                   1                   2                   3
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    |           Identifier          |        Sequence Number        |
    |     Data ...
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
from typing import Final

from pykad.check.probes import ProbeResult, describe_error, open_socket
from pykad.config.model_lvs import PingCheck

ECHO_REQUEST: Final = {4: 8, 6: 128}
ECHO_REPLY: Final = {4: 0, 6: 129}
_HEADER = struct.Struct("!BBHHH")
PAYLOAD: Final = b"keepalived-pykad"


def build_echo(family: int, seq: int, payload: bytes = PAYLOAD) -> bytes:
    """An echo request; identifier and checksum are the kernel's on a ping socket."""
    return _HEADER.pack(ECHO_REQUEST[family], 0, 0, 0, seq) + payload


def is_reply(family: int, data: bytes, seq: int, payload: bytes = PAYLOAD) -> bool:
    if len(data) < _HEADER.size:
        return False
    kind, code, _, _, rseq = _HEADER.unpack_from(data)
    return (
        kind == ECHO_REPLY[family] and code == 0 and rseq == seq and data[_HEADER.size :] == payload
    )


class PingProbe:
    """One PING_CHECK's probe; the sequence number advances per probe."""

    __slots__ = ("_seq", "checker")

    def __init__(self, checker: PingCheck) -> None:
        self.checker = checker
        self._seq = int.from_bytes(os.urandom(2), "big")

    async def __call__(self) -> ProbeResult:
        c = self.checker
        family = c.connect_ip.version
        proto = socket.IPPROTO_ICMP if family == 4 else socket.IPPROTO_ICMPV6
        self._seq = (self._seq + 1) & 0xFFFF
        seq = self._seq
        loop = asyncio.get_running_loop()
        try:
            sock = open_socket(c, socket.SOCK_DGRAM, proto)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                return ProbeResult(
                    False,
                    "ICMP ping socket refused - add this group to net.ipv4.ping_group_range",
                )
            return ProbeResult(False, describe_error(exc))
        try:
            # A datagram connect only sets the peer: it never blocks. (loop.sock_connect
            # would run getaddrinfo, which rejects SOCK_DGRAM + IPPROTO_ICMP.)
            sock.connect((str(c.connect_ip), 0))
            async with asyncio.timeout(c.connect_timeout_s):
                await loop.sock_sendall(sock, build_echo(family, seq))
                while not is_reply(family, await loop.sock_recv(sock, 1024), seq):
                    pass  # an old reply, or another probe's: keep waiting
        except TimeoutError:
            return ProbeResult(False, f"ICMP connection to address {c.connect_ip} timeout.")
        except OSError as exc:  # EHOSTUNREACH etc. from ICMP errors on the connected socket
            return ProbeResult(False, describe_error(exc))
        finally:
            sock.close()
        return ProbeResult(True)
