"""SMTP alerts against a real SMTP server (aiosmtpd) on the loopback (spec §2, §6.1 step 5)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP, Envelope, Session

from pykad.adapters.smtp import Mail, SmtpError, SmtpServer, message_text, send_mail
from pykad.config.model import Config, GlobalDefs, Notify, VrrpInstance, VrrpSyncGroup
from pykad.runtime.mail import alert_mail
from pykad.runtime.notify import Notifier


@dataclass
class Inbox:
    """aiosmtpd handler: keeps every delivered envelope; can refuse recipients."""

    envelopes: list[Envelope] = field(default_factory=list)
    refuse_rcpt: bool = False
    received: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.received.set()
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        out = []
        for env in self.envelopes:
            raw = env.original_content or b""
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.envelopes) < count:
                self.received.clear()
                await self.received.wait()


@dataclass
class Server:
    inbox: Inbox
    port: int


@pytest_asyncio.fixture
async def smtpd() -> AsyncIterator[Server]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="mx.test", loop=loop), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield Server(inbox, port)
    finally:
        server.close()
        await server.wait_closed()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


MAIL = Mail(
    sender="pykad@lb1.example",
    recipients=("ops@example.org", "oncall@example.org"),
    subject="[lb1] VRRP Instance VI_1 - Entering MASTER state",
    body="=> VRRP Instance is now owning VRRP VIPs <=",
)


def test_alert_mail_uses_keepalived_subjects_and_bodies() -> None:
    def subject(kind: str, name: str, event: str) -> str | None:
        mail = alert_mail(kind, name, event, router_id="lb1", sender="a@b", recipients=("c@d",))
        return None if mail is None else mail.subject

    assert subject("INSTANCE", "VI_1", "MASTER") == MAIL.subject
    assert subject("INSTANCE", "VI_1", "STOP") == "[lb1] VRRP Instance VI_1 - Stopping"
    assert subject("GROUP", "G1", "FAULT") == "[lb1] VRRP Group G1 - Entering FAULT state"
    assert subject("INSTANCE", "VI_1", "DELETED") is None  # keepalived mails no DELETED
    assert subject("INSTANCE", "VI_1", "MASTER_PRIORITY") is None


def test_message_text_has_keepalived_headers_and_dot_stuffing() -> None:
    mail = Mail(sender="a@b", recipients=("c@d", "e@f"), subject="s", body=".hidden\nok")
    text = message_text(mail, date="Thu, 01 Jan 2026 00:00:00 +0000")
    assert text.split("\r\n") == [
        "Date: Thu, 01 Jan 2026 00:00:00 +0000",
        "From: a@b",
        "Subject: s",
        "X-Mailer: Keepalived",
        "To: c@d, e@f",
        "",
        "..hidden",
        "ok",
    ]


@pytest.mark.asyncio
async def test_send_mail_delivers_sender_recipients_and_subject(smtpd: Server) -> None:
    server = SmtpServer(host="127.0.0.1", port=smtpd.port, helo_name="lb1.example", timeout_s=5)
    await send_mail(server, MAIL)
    (env,) = smtpd.inbox.envelopes
    assert env.mail_from == "pykad@lb1.example"
    assert env.rcpt_tos == ["ops@example.org", "oncall@example.org"]
    (msg,) = smtpd.inbox.messages()
    assert msg["Subject"] == MAIL.subject
    assert msg["From"] == "pykad@lb1.example"
    assert msg["To"] == "ops@example.org, oncall@example.org"
    assert msg["X-Mailer"] == "Keepalived"
    assert msg.get_content().strip() == MAIL.body


@pytest.mark.asyncio
async def test_a_refused_recipient_names_the_step(smtpd: Server) -> None:
    smtpd.inbox.refuse_rcpt = True
    server = SmtpServer(host="127.0.0.1", port=smtpd.port, timeout_s=5)
    with pytest.raises(SmtpError, match=r"Error processing RCPT cmd .* SMTP status code = 550"):
        await send_mail(server, MAIL)
    assert smtpd.inbox.envelopes == []


@pytest.mark.asyncio
async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never sends the 220 greeting
        writer.close()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        server = SmtpServer(host="127.0.0.1", port=port, timeout_s=0.2)
        with pytest.raises(SmtpError, match="Timeout reading data from remote SMTP server"):
            await send_mail(server, MAIL)
    finally:
        srv.close()
        await srv.wait_closed()


def _config(port: int, *, no_email_faults: bool = False, alert: bool = True) -> Config:
    gdefs = GlobalDefs(
        router_id="lb1",
        notification_email=("ops@example.org", "oncall@example.org"),
        notification_email_from="keepalived@lb1.example",
        smtp_server="127.0.0.1",
        smtp_port=port,
        smtp_connect_timeout_s=5,
        no_email_faults=no_email_faults,
    )
    inst = VrrpInstance(
        name="VI_1", vrid=51, interface="eth0", notify=Notify(smtp_alert=alert), sync_group="G1"
    )
    quiet = VrrpInstance(name="VI_2", vrid=52, interface="eth0")  # no smtp_alert
    group = VrrpSyncGroup(name="G1", members=("VI_1",), notify=Notify(smtp_alert=alert))
    return Config(global_defs=gdefs, vrrp_instances=(inst, quiet), sync_groups=(group,))


@pytest.mark.asyncio
async def test_one_mail_per_state_change_in_order(smtpd: Server) -> None:
    """spec §6.1: a mail only when the state differs from the last one mailed; FAULT is
    mailed unless no_email_faults; instances without smtp_alert are not mailed."""
    notifier = Notifier(_config(smtpd.port))
    await notifier.open()
    try:
        for event in ("BACKUP", "BACKUP", "MASTER", "MASTER_RX_LOWER_PRI", "FAULT", "STOP"):
            notifier.notify("INSTANCE", "VI_1", event, 100)
            notifier.notify("INSTANCE", "VI_2", event, 100)
        notifier.notify("GROUP", "G1", "MASTER", 0)
        assert await notifier.drain(10)
    finally:
        await notifier.close()
    # instance and group have queues of their own: order is per instance / per group
    subjects = [m["Subject"] for m in smtpd.inbox.messages()]
    instance = [s for s in subjects if "Instance" in s]
    assert instance == [
        "[lb1] VRRP Instance VI_1 - Entering BACKUP state",
        "[lb1] VRRP Instance VI_1 - Entering MASTER state",
        "[lb1] VRRP Instance VI_1 - Entering FAULT state",
        "[lb1] VRRP Instance VI_1 - Stopping",
    ]
    assert [s for s in subjects if "Group" in s] == ["[lb1] VRRP Group G1 - Entering MASTER state"]
    for env in smtpd.inbox.envelopes:
        assert env.mail_from == "keepalived@lb1.example"
        assert env.rcpt_tos == ["ops@example.org", "oncall@example.org"]
    assert notifier.mailer.sent == 5


@pytest.mark.asyncio
async def test_no_email_faults_skips_fault(smtpd: Server) -> None:
    notifier = Notifier(_config(smtpd.port, no_email_faults=True))
    await notifier.open()
    try:
        for event in ("MASTER", "FAULT", "BACKUP"):
            notifier.notify("INSTANCE", "VI_1", event, 100)
        assert await notifier.drain(10)
    finally:
        await notifier.close()
    assert [m["Subject"].rsplit(" - ", 1)[1] for m in smtpd.inbox.messages()] == [
        "Entering MASTER state",
        "Entering BACKUP state",
    ]


@pytest.mark.asyncio
async def test_a_dead_server_is_logged_and_never_holds_the_scripts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = Notifier(_config(_closed_port()))
    await notifier.open()
    try:
        notifier.notify("INSTANCE", "VI_1", "MASTER", 100)
        assert await notifier.drain(10)
    finally:
        await notifier.close()
    assert notifier.mailer.failures == 1
    assert "SMTP alert '[lb1] VRRP Instance VI_1 - Entering MASTER state' not sent" in caplog.text
    assert "SMTP connection ERROR to 127.0.0.1:" in caplog.text


@pytest.mark.asyncio
async def test_load_balancer_alerts_get_the_router_id_and_are_all_sent(smtpd: Server) -> None:
    """spec §9.6: the balancer's alerts (already decided by the checkers and the balancer)
    are sent every time, with keepalived's ``[router_id] `` prefix."""
    notifier = Notifier(_config(smtpd.port))
    await notifier.open()
    subject = "Realserver [192.0.2.21]:tcp:80 of virtual server [192.0.2.10]:tcp:80 - DOWN"
    try:
        notifier.mailer.lvs_alert(subject, "=> TCP CHECK failed on service <=")
        notifier.mailer.lvs_alert(subject, "=> TCP CHECK failed on service <=")
        assert await notifier.drain(10)
    finally:
        await notifier.close()
    messages = smtpd.inbox.messages()
    assert [m["Subject"] for m in messages] == [f"[lb1] {subject}"] * 2
    assert messages[0].get_content().strip() == "=> TCP CHECK failed on service <="
    assert messages[0]["From"] == "keepalived@lb1.example"


@pytest.mark.asyncio
async def test_load_balancer_alerts_need_a_server_and_recipients() -> None:
    notifier = Notifier(Config(global_defs=GlobalDefs(router_id="lb1", smtp_server="127.0.0.1")))
    notifier.mailer.lvs_alert("Virtualserver [192.0.2.10]:tcp:80 - UP", "=> Gained <=")
    assert await notifier.mailer.drain(1)
    assert notifier.mailer.sent == notifier.mailer.failures == 0
    await notifier.close()
