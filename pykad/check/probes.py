"""Probe plumbing shared by the checkers, and the TCP_CHECK probe.

A probe is an argument-less coroutine function returning :class:`ProbeResult`;
:func:`pykad.check.checkerset.probe_for` builds one from a checker of the model. Every probe
is bounded by the checker's ``connect_timeout`` per step (connect, each read/write), the way
keepalived arms ``co->connection_to`` on every thread it registers; nothing here blocks the
event loop.

The connection options of spec §9.4 are honoured by :func:`open_socket`: ``connect_ip`` /
``connect_port`` (already defaulted to the real server's by the lowering), ``bindto`` +
``bind_port``, ``bind_if`` (SO_BINDTODEVICE) and ``fwmark`` (SO_MARK).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pykad.config.model_lvs import ConnectChecker, IPAddress, TcpCheck


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's verdict.

    ``detail`` says why it failed (or what succeeded) for the log; ``exit_status`` is the
    MISC_CHECK script's exit status when it exited normally (it carries the dynamic weight).
    """

    ok: bool
    detail: str = ""
    exit_status: int | None = None


Probe = Callable[[], Awaitable[ProbeResult]]


def hostport(address: IPAddress, port: int, proto: str = "tcp") -> str:
    """keepalived's ``inet_sockaddrtotrio``: ``[192.0.2.1]:tcp:80`` (IPv6 likewise)."""
    return f"[{address}]:{proto}:{port}"


def sockaddr(address: IPAddress, port: int) -> tuple[str, int]:
    return (str(address), port)


def open_socket(checker: ConnectChecker, kind: int, proto: int = 0) -> socket.socket:
    """A non-blocking socket with the checker's bind/mark/device options applied.

    Raises OSError (the caller reports it as a failed probe, or as keepalived's "bind failed.
    Rescheduling." when binding is what failed).
    """
    family = socket.AF_INET6 if checker.connect_ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    try:
        if checker.fwmark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, checker.fwmark)
        if checker.bind_if is not None:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_BINDTODEVICE, checker.bind_if.encode() + b"\0"
            )
        if checker.bindto is not None or checker.bind_port:
            if checker.bind_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            host = "" if checker.bindto is None else str(checker.bindto)
            sock.bind((host, checker.bind_port))
    except BaseException:
        sock.close()
        raise
    return sock


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return str(exc) or type(exc).__name__


async def connect(checker: ConnectChecker, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """Connect a stream (or datagram) socket within ``connect_timeout``; raises on failure."""
    loop = asyncio.get_running_loop()
    sock = open_socket(checker, kind)
    try:
        async with asyncio.timeout(checker.connect_timeout_s):
            await loop.sock_connect(sock, sockaddr(checker.connect_ip, checker.connect_port))
    except BaseException:
        sock.close()
        raise
    return sock


async def tcp_probe(checker: TcpCheck) -> ProbeResult:
    """TCP_CHECK: a TCP connect within connect_timeout is success (spec §9.5)."""
    try:
        sock = await connect(checker)
    except (OSError, TimeoutError) as exc:
        return ProbeResult(False, describe_error(exc))
    # keepalived closes at once; no data is exchanged.
    with contextlib.suppress(OSError):
        sock.close()
    return ProbeResult(True)
