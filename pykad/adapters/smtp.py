"""Send one alert email over SMTP with asyncio streams (spec §2 smtp_*, §6.1 step 5).

keepalived's mailer (core/smtp.c) is a non-blocking state machine on its event loop: connect,
read the 220 greeting, ``HELO <smtp_helo_name>``, ``MAIL FROM:<from>``, one ``RCPT TO:<to>``
per address, ``DATA``, the headers (``Date``, ``From``, ``Subject``, ``X-Mailer: Keepalived``,
``To``) and the body, ``.``, ``QUIT``. Every step is bounded by ``smtp_connect_timeout``. A
reply may span several lines (``250-...``); its status is on the last one.

pykad does the same with ``asyncio.open_connection`` on the daemon's loop rather than
``smtplib`` in a thread: the protocol here is a dozen lines, a stuck server costs one
suspended coroutine (not a thread that cannot be interrupted), and shutdown can cancel a
mail in flight at once. The caller never waits for a mail: the notifier queues it.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Sequence
from dataclasses import dataclass

from pykad.errors import AdapterError

_MAX_REPLY = 1024  # keepalived's SMTP_BUFFER_MAX: a longer reply line is a broken server


@dataclass(frozen=True, slots=True, kw_only=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpServer:
    host: str
    port: int = 25
    helo_name: str = "localhost"
    timeout_s: float = 30.0


class SmtpError(AdapterError):
    """The server refused a step, closed the connection, or did not answer in time."""


def message_text(mail: Mail, *, date: str | None = None) -> str:
    """The DATA part as keepalived writes it (smtp.h SMTP_HEADERS_CMD + SMTP_BODY_CMD).

    Lines starting with a dot are doubled (RFC 5321 4.5.2 transparency); keepalived's
    fixed bodies never start with one, but a configured instance name could.
    """
    date = date or email.utils.formatdate(localtime=True)
    headers = [
        f"Date: {date}",
        f"From: {mail.sender}",
        f"Subject: {mail.subject}",
        "X-Mailer: Keepalived",
        f"To: {', '.join(mail.recipients)}",
    ]
    lines = [*headers, "", *mail.body.splitlines()]
    return "\r\n".join("." + line if line.startswith(".") else line for line in lines)


async def _reply(reader: asyncio.StreamReader, server: SmtpServer) -> tuple[int, str]:
    """Read one (possibly multi-line) reply; its code is on the line without a ``-``."""
    while True:
        async with asyncio.timeout(server.timeout_s):
            line = await reader.readline()
        if not line:
            raise SmtpError("smtp", detail="the server closed the connection")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if len(text) < 3 or not text[:3].isdigit():
            raise SmtpError("smtp", detail=f"malformed reply {text!r}")
        if text[3:4] != "-":
            return int(text[:3]), text


async def send_mail(server: SmtpServer, mail: Mail, *, date: str | None = None) -> None:
    """Deliver ``mail`` through ``server``; raises :class:`SmtpError` naming the failed step."""
    where = f"{server.host}:{server.port}"
    try:
        async with asyncio.timeout(server.timeout_s):
            reader, writer = await asyncio.open_connection(
                server.host, server.port, limit=_MAX_REPLY
            )
    except TimeoutError:
        raise SmtpError("smtp", detail=f"Timeout connecting SMTP server {where}") from None
    except OSError as exc:
        raise SmtpError("smtp", exc.errno, f"SMTP connection ERROR to {where}: {exc}") from exc
    steps: Sequence[tuple[str, bytes | None, int]] = [
        ("connect", None, 220),
        ("HELO", f"HELO {server.helo_name}\r\n".encode(), 250),
        ("MAIL", f"MAIL FROM:<{mail.sender}>\r\n".encode(), 250),
        *(("RCPT", f"RCPT TO:<{to}>\r\n".encode(), 250) for to in mail.recipients),
        ("DATA", b"DATA\r\n", 354),
        ("DOT", (message_text(mail, date=date) + "\r\n.\r\n").encode(), 250),
    ]
    try:
        for step, command, expected in steps:
            if command is not None:
                writer.write(command)
                async with asyncio.timeout(server.timeout_s):
                    await writer.drain()
            try:
                code, text = await _reply(reader, server)
            except TimeoutError:
                raise SmtpError(
                    "smtp", detail=f"Timeout reading data from remote SMTP server {where}"
                ) from None
            if code != expected:
                raise SmtpError(
                    "smtp",
                    detail=f"Error processing {step} cmd on SMTP server {where}."
                    f" SMTP status code = {code} ({text})",
                )
        writer.write(b"QUIT\r\n")  # keepalived does not wait for the 221 either
        await writer.drain()
    except (OSError, ValueError) as exc:  # ValueError: a reply line over the limit
        detail = f"Error talking to remote SMTP server {where}: {str(exc) or type(exc).__name__}"
        raise SmtpError("smtp", detail=detail) from exc
    finally:
        writer.close()
        try:
            async with asyncio.timeout(server.timeout_s):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass  # the mail is delivered (or the failure raised) already
