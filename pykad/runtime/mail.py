"""SMTP alerts on VRRP transitions and real/virtual server changes (spec §2 smtp_*, §3.6
smtp_alert, §6.1 step 5, §9.6).

keepalived (vrrp_notify.c ``vrrp_smtp_notifier``) mails an instance or sync group with
``smtp_alert`` when it enters MASTER, BACKUP or FAULT, or stops, but only when that state
differs from the last one mailed, and never for FAULT with ``no_email_faults``. Nothing is
sent unless ``notification_email`` and ``smtp_server`` are both configured. The subject is
``[<router_id>] VRRP Instance <name> - Entering MASTER state`` (``VRRP Group`` for a sync
group, ``- Stopping`` at shutdown) and the body one fixed line.

:meth:`Mailer.alert` decides and queues, synchronously, in the order the transitions happen;
:meth:`Mailer.lvs_alert` queues the load balancer's alerts (keepalived smtp.c SMTP_MSG_RS,
SMTP_MSG_RS_SHUT, SMTP_MSG_VS: ``[<router_id>] Realserver <rs> of virtual server <vs> - UP``,
``[<router_id>] Virtualserver <vs> - DOWN``); which changes are mailed is decided by the
checkers and the balancer (``smtp_alert`` of the real and virtual servers), and every one
is sent, as keepalived does. One background task sends the queued mails one after the other
(:func:`pykad.adapters.smtp.send_mail`), so a slow or dead SMTP server delays only the mails,
never the protocol or the notify scripts. A failure is logged and counted, not retried
(keepalived does not retry either).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket

from pykad.adapters.smtp import Mail, SmtpError, SmtpServer, send_mail
from pykad.config.model import Config

log = logging.getLogger(__name__)

LOCAL_NAME_TIMEOUT_S = 2.0  # a resolver that hangs must not hold up the daemon's start

_SUBJECT = {
    "MASTER": "Entering MASTER state",
    "BACKUP": "Entering BACKUP state",
    "FAULT": "Entering FAULT state",
    "STOP": "Stopping",
}
_BODY = {
    ("INSTANCE", "MASTER"): "=> VRRP Instance is now owning VRRP VIPs <=",
    ("INSTANCE", "BACKUP"): "=> VRRP Instance is no longer owning VRRP VIPs <=",
    ("INSTANCE", "FAULT"): "=> VRRP Instance is no longer owning VRRP VIPs <=",
    ("INSTANCE", "STOP"): "=> VRRP Instance stopping <=",
    ("GROUP", "MASTER"): "=> All VRRP group instances are now in MASTER state <=",
    ("GROUP", "BACKUP"): "=> All VRRP group instances are now in BACKUP state <=",
    ("GROUP", "FAULT"): "=> All VRRP group instances are now in FAULT state <=",
    ("GROUP", "STOP"): "=> All VRRP group instances are now stopping <=",
}


def alert_mail(
    kind: str, name: str, event: str, *, router_id: str, sender: str, recipients: tuple[str, ...]
) -> Mail | None:
    """The mail keepalived sends for ``kind`` (INSTANCE|GROUP) ``name`` entering ``event``;
    None for events keepalived does not mail (DELETED, the FIFO-only events)."""
    subject = _SUBJECT.get(event)
    if subject is None:
        return None
    what = "VRRP Instance" if kind == "INSTANCE" else "VRRP Group"
    return Mail(
        sender=sender,
        recipients=recipients,
        subject=f"[{router_id}] {what} {name} - {subject}",
        body=_BODY[(kind, event)],
    )


async def local_name() -> str:
    """keepalived's ``get_local_name``: the node name, canonicalised by the resolver when it
    answers (without blocking the loop)."""
    node = os.uname().nodename
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(LOCAL_NAME_TIMEOUT_S):
            infos = await asyncio.get_running_loop().getaddrinfo(
                node, None, flags=socket.AI_CANONNAME
            )
        if infos and infos[0][3]:
            return infos[0][3]
    return node


class Mailer:
    """Decides which transitions are mailed and sends them in the background."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._local = os.uname().nodename  # until open() has asked the resolver
        self._last: dict[tuple[str, str], str] = {}  # (kind, name) -> last mailed state
        self._queue: asyncio.Queue[Mail] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failures = 0

    async def open(self) -> None:
        g = self._config.global_defs
        if g.router_id is None or g.notification_email_from is None or g.smtp_helo_name is None:
            self._local = await local_name()

    def update(self, config: Config) -> None:
        """A reload: new settings for mails decided from now on (the last-mailed states are
        kept, so an unchanged state is not mailed again)."""
        self._config = config

    def _enabled(self, kind: str, name: str) -> bool:
        owners = self._config.vrrp_instances if kind == "INSTANCE" else self._config.sync_groups
        return any(o.name == name and o.notify.smtp_alert for o in owners)

    def _server(self) -> SmtpServer | None:
        g = self._config.global_defs
        if not g.notification_email or g.smtp_server is None:
            return None  # keepalived: no recipients or no server, no mail
        return SmtpServer(
            host=g.smtp_server,
            port=g.smtp_port,
            helo_name=g.smtp_helo_name or self._local,
            timeout_s=g.smtp_connect_timeout_s,
        )

    def _sender(self) -> str:
        g = self._config.global_defs
        return g.notification_email_from or f"{pwd.getpwuid(os.getuid()).pw_name}@{self._local}"

    def _queue_mail(self, mail: Mail) -> None:
        self._queue.put_nowait(mail)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._worker(), name="smtp")

    def lvs_alert(self, subject: str, body: str) -> None:
        """Queue a load-balancer alert; ``subject`` comes without the ``[router_id] `` that
        every keepalived subject starts with. Nothing is sent without recipients and a
        server (never blocks)."""
        if self._server() is None:
            return
        g = self._config.global_defs
        self._queue_mail(
            Mail(
                sender=self._sender(),
                recipients=g.notification_email,
                subject=f"[{g.router_id or self._local}] {subject}",
                body=body,
            )
        )

    def alert(self, kind: str, name: str, event: str) -> None:
        """Queue the mail for this transition if keepalived would send one (never blocks)."""
        g = self._config.global_defs
        if self._server() is None or not self._enabled(kind, name):
            return
        if event == "FAULT" and g.no_email_faults:
            return
        if self._last.get((kind, name)) == event:
            return  # only when the state differs from the last one mailed
        mail = alert_mail(
            kind,
            name,
            event,
            router_id=g.router_id or self._local,
            sender=self._sender(),
            recipients=g.notification_email,
        )
        if mail is None:
            return
        self._last[(kind, name)] = event
        self._queue_mail(mail)

    async def _worker(self) -> None:
        while True:
            mail = await self._queue.get()
            try:
                server = self._server()
                if server is not None:  # a reload may have removed the server
                    await self._send(server, mail)
            finally:
                self._queue.task_done()

    async def _send(self, server: SmtpServer, mail: Mail) -> None:
        try:
            await send_mail(server, mail)
        except SmtpError as exc:
            self.failures += 1
            log.warning("SMTP alert '%s' not sent: %s", mail.subject, exc.detail)
            return
        self.sent += 1
        log.info("SMTP alert successfully sent.")
        log.debug("SMTP alert '%s' sent to %s", mail.subject, ", ".join(mail.recipients))

    async def drain(self, timeout_s: float) -> bool:
        """Wait for the queued mails (at shutdown: the STOP mails), at most ``timeout_s``."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
            return True
        except TimeoutError:
            log.warning("SMTP alert(s) still unsent at shutdown - dropped")
            return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
