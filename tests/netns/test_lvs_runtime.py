"""The load balancer's runtime end to end in a lab (spec §9.5, §9.6): real checkers, real
track files watched with inotify, a real SMTP server, and IPVS kept in memory.

This machine's kernel has no IPVS, so :class:`~pykad.testing.memipvs.MemoryIpvsTable` stands
in for the kernel table (tests/vm covers the real one). Everything else is real: a TCP real
server in router namespace r1, pykad's TCP_CHECK probing it from the client namespace,
FILE_CHECK files changed on disk, and aiosmtpd receiving the alerts, also in the client
namespace (the whole scenario runs there with ``run_in_netns``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import ipaddress
import os
import subprocess
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from pykad.config.model import Config, GlobalDefs, Script, TrackFile
from pykad.config.model_lvs import (
    FileCheck,
    LvsConfig,
    MiscCheck,
    Protocol,
    RealServer,
    TcpCheck,
    VirtualServer,
)
from pykad.errors import ExitCode
from pykad.runtime.daemon import Daemon
from pykad.runtime.lvs import LvsManager
from pykad.runtime.notify import Notifier
from pykad.testing.checkservers import run_in_netns, server_argv, wait_ready
from pykad.testing.memipvs import MemoryIpvsTable
from pykad.testing.netns import Lab

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

IP = ipaddress.IPv4Address
CLIENT = "192.0.2.100"
SERVICE = "TCP [192.0.2.10]:80"
VS_NAME = "[192.0.2.10]:tcp:80"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(routers=1) as lab:
        yield lab


class Inbox:
    """aiosmtpd handler keeping every delivered message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        msg = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 Message accepted for delivery"

    def seen(self) -> list[tuple[str, str]]:
        return [(str(m["Subject"]), m.get_content().strip()) for m in self.messages]


async def until(what: str, probe: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll the event loop until ``probe()`` holds (the IPVS table and the inbox have no
    event to wait on); fails after ``timeout_s``."""
    step = 0.05
    for _ in range(int(timeout_s / step)):
        if probe():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def write(path: Path, value: int) -> None:
    """Replace the file by a rename, as a careful writer does (the watcher sees the move)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def test_file_checks_tcp_check_smtp_alerts_and_a_reload_through_the_manager(
    lab: Lab, tmp_path: Path
) -> None:
    web = lab.routers[0].spawn(server_argv("tcp", "--port", "8081"), stdout=subprocess.PIPE)
    try:
        wait_ready(web)
        run_in_netns(lab.client.ns, lambda: scenario(lab, web, tmp_path), timeout=150)
    finally:
        lab.stop(web)
        if web.stdout is not None:
            web.stdout.close()


async def scenario(lab: Lab, web: subprocess.Popen[bytes], tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    inbox = Inbox()
    smtpd = await loop.create_server(lambda: SMTP(inbox, hostname="mx.test"), CLIENT, 0)
    port = smtpd.sockets[0].getsockname()[1]
    weight_file, gate_file = tmp_path / "weight", tmp_path / "gate"
    write(weight_file, 1)
    write(gate_file, 0)
    tcp = TcpCheck(
        connect_ip=IP("192.0.2.1"),
        connect_port=8081,
        retry=0,
        delay_loop_s=0.5,
        warmup_s=0.0,
        connect_timeout_s=1.0,
    )
    rs_web = RealServer(address=IP("192.0.2.1"), port=8081, checkers=(tcp,))
    rs_weighted = RealServer(
        address=IP("192.0.2.2"), port=80, checkers=(FileCheck(track_file="w", weight=2),)
    )
    rs_gated = RealServer(
        address=IP("192.0.2.3"), port=80, checkers=(FileCheck(track_file="gate", weight=0),)
    )
    vs = VirtualServer(
        address=IP("192.0.2.10"),
        port=80,
        protocol=Protocol.TCP,
        quorum=4,
        smtp_alert=True,
        real_servers=(rs_web, rs_weighted, rs_gated),
    )
    config = Config(
        global_defs=GlobalDefs(
            router_id="lb1",
            notification_email=("ops@example.test",),
            notification_email_from="pykad@lb1.example",
            smtp_server=CLIENT,
            smtp_port=port,
            smtp_connect_timeout_s=5,
        ),
        track_files=(
            TrackFile(name="w", path=str(weight_file)),
            TrackFile(name="gate", path=str(gate_file)),
        ),
        lvs=LvsConfig(virtual_servers=(vs,)),
    )
    notifier = Notifier(config)
    await notifier.open()
    table = MemoryIpvsTable()
    manager = LvsManager(config, notifier, table=table)  # type: ignore[arg-type]

    def pool() -> dict[str, int]:
        return table.weights().get(SERVICE, {})

    def mailed(count: int) -> Callable[[], bool]:
        return lambda: len(inbox.messages) >= count

    try:
        assert await manager.start()
        # 1 + 1 * 2 for the weighted server; the three weigh 5 >= quorum 4
        assert pool() == {"192.0.2.1:8081": 1, "192.0.2.2:80": 3, "192.0.2.3:80": 1}
        await until("the quorum mail", mailed(1))
        assert inbox.seen() == [
            (f"[lb1] Virtualserver {VS_NAME} - UP", "=> Starting with quorum up 4+0=4 <= 5 <=")
        ]

        # FILE_CHECK while running: the new value moves the weight, quorum goes with it
        write(weight_file, 0)
        await until("the new weight", lambda: pool().get("192.0.2.2:80") == 1)
        await until("the quorum loss mail", mailed(2))
        assert inbox.seen()[1] == (
            f"[lb1] Virtualserver {VS_NAME} - DOWN",
            "=> Lost quorum 4-0=4 > 3 <=",
        )

        # the web server stops: TCP_CHECK takes it out and mails the real server's DOWN
        await asyncio.to_thread(lab.stop, web)
        await until("the web server's removal", lambda: "192.0.2.1:8081" not in pool())
        await until("the real server mail", mailed(3))
        assert inbox.seen()[2] == (
            f"[lb1] Realserver [192.0.2.1]:tcp:8081 of virtual server {VS_NAME} - DOWN",
            "=> TCP CHECK failed on service <=",
        )

        # a weight-0 FILE_CHECK: a non-zero value is a fault
        write(gate_file, 1)
        await until("the gated server's removal", lambda: "192.0.2.3:80" not in pool())

        # a reload that adds a server keeps the failed ones out (state migrated, §9.6)
        before = len(table.ops)
        added = RealServer(address=IP("192.0.2.4"), port=80)
        grown = Config(
            global_defs=config.global_defs,
            track_files=config.track_files,
            lvs=LvsConfig(
                virtual_servers=(dataclasses.replace(vs, real_servers=(*vs.real_servers, added)),)
            ),
        )
        await manager.reload(grown)
        assert table.ops[before:] == [f"add_dest {SERVICE} 192.0.2.4:80 w1"]
        assert pool() == {"192.0.2.2:80": 1, "192.0.2.4:80": 1}

        # the watcher follows the files after the reload too
        write(gate_file, 0)
        await until("the gated server's return", lambda: "192.0.2.3:80" in pool())

        await manager.stop()
        assert table.ops[-1] == f"delete_service {SERVICE}"
        assert table.weights() == {}
        assert await notifier.drain(10)
        assert len(inbox.messages) == 3  # FILE_CHECK transitions are not mailed (keepalived)
    finally:
        await manager.close()
        await notifier.close()
        smtpd.close()
        await smtpd.wait_closed()


@pytest.mark.asyncio
async def test_ha_suspend_follows_the_addresses_the_daemon_sees(lab: Lab) -> None:
    """ha_suspend (spec §9.2) through the daemon: the checkers of a suspending virtual
    server run only while its address is on one of this host's interfaces, as the daemon's
    netlink monitor sees it, at start and at every change. The daemon runs in this process
    on r1's namespace; its checker is a MISC_CHECK of /bin/true (no traffic at all)."""
    r1 = lab.routers[0]
    misc = MiscCheck(script=Script(argv=("/bin/true",)), delay_loop_s=0.2, warmup_s=0.0)
    rs = RealServer(address=IP("192.0.2.50"), port=80, checkers=(misc,))
    vs = VirtualServer(
        address=IP("198.51.100.10"),
        port=80,
        protocol=Protocol.TCP,
        ha_suspend=True,
        real_servers=(rs,),
    )
    config = Config(lvs=LvsConfig(virtual_servers=(vs,)))
    daemon = Daemon(config, netns=r1.ns, control_path=None)
    lvs = LvsManager(config, daemon.notifier, table=MemoryIpvsTable())  # type: ignore[arg-type]
    daemon.lvs = lvs
    task = asyncio.get_running_loop().create_task(daemon.run())

    def active() -> bool:
        schedule = None if lvs.checkers is None else lvs.checkers.schedule(vs, rs, 0)
        return schedule is not None and schedule.enabled

    try:
        await until("the checkers started", lambda: lvs.checkers is not None)
        assert not active()  # 198.51.100.10 is not on r1
        r1.run(["ip", "addr", "add", "198.51.100.10/32", "dev", "eth0"])
        await until("the checkers resumed", active)
        r1.run(["ip", "addr", "del", "198.51.100.10/32", "dev", "eth0"])
        await until("the checkers suspended", lambda: not active())
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 30) is ExitCode.OK
