"""UDP_CHECK (spec §9.5; keepalived check_udp.c).

Send ``payload`` (random bytes when none is configured) on a *connected* UDP socket and wait
up to ``connect_timeout``. The kernel reports an ICMP port/host unreachable for a connected
socket as ECONNREFUSED/EHOSTUNREACH on the next receive: that is the failure. Without
``require_reply`` silence is success; with it a reply must arrive, be between
``min_reply_length`` and ``max_reply_length`` bytes, and match the ``require_reply`` hex
pattern where each ``x`` nibble matches anything (over the bytes both have).
"""

from __future__ import annotations

import asyncio
import secrets
import socket

from pykad.check.probes import ProbeResult, connect, describe_error
from pykad.config.model_lvs import UdpCheck

RANDOM_PAYLOAD_LEN = 16
_MAX_DATAGRAM = 65535


def reply_problem(checker: UdpCheck, reply: bytes) -> str:
    """Why ``reply`` does not satisfy the checker; empty when it does."""
    if not checker.min_reply_length <= len(reply) <= checker.max_reply_length:
        return (
            f"reply length {len(reply)} not in "
            f"[{checker.min_reply_length}, {checker.max_reply_length}]"
        )
    pattern = checker.reply_pattern
    if pattern is not None and not pattern_matches(pattern, reply):
        return "reply does not match"
    return ""


def pattern_matches(pattern: str, data: bytes) -> bool:
    """``pattern``: lower-case hex nibbles, ``x`` = any nibble; compared over the shorter."""
    nibbles = data.hex()
    return all(p in ("x", n) for p, n in zip(pattern, nibbles, strict=False))


async def udp_probe(checker: UdpCheck) -> ProbeResult:
    loop = asyncio.get_running_loop()
    payload = checker.payload
    if payload is None:
        payload = secrets.token_bytes(RANDOM_PAYLOAD_LEN)
    try:
        sock = await connect(checker, socket.SOCK_DGRAM)
    except (OSError, TimeoutError) as exc:
        return ProbeResult(False, describe_error(exc))
    try:
        await loop.sock_sendall(sock, payload)
        async with asyncio.timeout(checker.connect_timeout_s):
            reply = await loop.sock_recv(sock, _MAX_DATAGRAM)
    except TimeoutError:
        # No ICMP error within the timeout: the port is open, unless a reply was required.
        if checker.require_reply:
            return ProbeResult(False, "no reply")
        return ProbeResult(True)
    except OSError as exc:  # ECONNREFUSED: ICMP port unreachable
        return ProbeResult(False, describe_error(exc))
    finally:
        sock.close()
    if checker.require_reply:
        problem = reply_problem(checker, reply)
        return ProbeResult(not problem, problem)
    return ProbeResult(True)
