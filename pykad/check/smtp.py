"""SMTP_CHECK (spec §9.5; keepalived check_smtp.c).

Connect, read the greeting and require status 220, send ``HELO <helo_name>``, require 250,
send ``QUIT`` and read its reply. Each step is bounded by ``connect_timeout``. A status is
the first three digits of the line followed by a space or the end of the line
(``smtp_get_status``); keepalived reads one line per step, so a multi-line ``220-`` greeting
fails there too.
"""

from __future__ import annotations

import asyncio
import contextlib

from pykad.check.probes import ProbeResult, connect, describe_error, hostport
from pykad.config.model_lvs import SmtpCheck

_MAX_LINE = 512  # keepalived's SMTP_BUFF_MAX


def status_of(line: bytes) -> int:
    """keepalived ``smtp_get_status``: 3 digits then a space or the end; -1 otherwise."""
    code, rest = line[:3], line[3:4]
    if len(code) == 3 and code.isdigit() and rest in (b"", b" "):
        return int(code)
    return -1


async def smtp_probe(checker: SmtpCheck) -> ProbeResult:
    server = hostport(checker.connect_ip, checker.connect_port)
    timeout = checker.connect_timeout_s
    try:
        sock = await connect(checker)
    except TimeoutError:
        return ProbeResult(False, f"Connection timeout to server {server}")
    except OSError as exc:
        return ProbeResult(False, f"Error connecting to server {server} ({describe_error(exc)})")
    reader, writer = await asyncio.open_connection(sock=sock, limit=_MAX_LINE * 2)
    step = "Read"
    try:
        async with asyncio.timeout(timeout):
            banner = await reader.readline()
        if status_of(banner) != 220:
            return ProbeResult(False, f"Bad greeting banner from server {server}")
        step = "Write"
        writer.write(f"HELO {checker.helo_name}\r\n".encode())
        async with asyncio.timeout(timeout):
            await writer.drain()
        step = "Read"
        async with asyncio.timeout(timeout):
            helo = await reader.readline()
        if status_of(helo) != 250:
            return ProbeResult(False, f"Bad HELO response from server {server}")
        step = "Write"
        writer.write(b"QUIT\r\n")
        async with asyncio.timeout(timeout):
            await writer.drain()
        step = "Read"
        async with asyncio.timeout(timeout):
            if not await reader.readline():
                return ProbeResult(False, f"Read failure from server {server}")
        return ProbeResult(True)
    except TimeoutError:
        return ProbeResult(
            False, f"{step} timeout {'from' if step == 'Read' else 'to'} server {server}"
        )
    except (OSError, ValueError) as exc:  # ValueError: a line longer than the buffer
        return ProbeResult(
            False, f"{step} failure {'from' if step == 'Read' else 'to'} server {server} ({exc})"
        )
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await writer.wait_closed()
