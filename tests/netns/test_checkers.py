"""Every checker against real servers in a lab namespace (spec §9.5): up, down, slow, flapping.

The servers (pykad.testing.checkservers, aiosmtpd for SMTP) run in router namespace r1
(192.0.2.1 / 2001:db8::1); the probes run in the client namespace on an event loop of their
own (``run_in_netns``), so their sockets, ICMP and scripts are all inside the lab.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykad.check.checkerset import CheckerSet, RsChange, probe_for
from pykad.check.probes import ProbeResult
from pykad.config.model import Script
from pykad.config.model_lvs import (
    Checker,
    DnsCheck,
    HttpCheck,
    HttpUrl,
    LvsConfig,
    MiscCheck,
    PingCheck,
    RealServer,
    SmtpCheck,
    SslConfig,
    TcpCheck,
    UdpCheck,
    VirtualServer,
)
from pykad.testing.checkservers import run_in_netns, self_signed_cert, server_argv, wait_ready
from pykad.testing.netns import Lab, Node

pytestmark = [pytest.mark.netns, pytest.mark.timeout(300)]

R1 = ipaddress.ip_address("192.0.2.1")
R1_6 = ipaddress.ip_address("2001:db8::1")
NOBODY = ipaddress.ip_address("192.0.2.77")  # on the LAN, but no such host
BODY = "hello from r1"
Start = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(routers=1) as lab:
        # PING_CHECK uses unprivileged ICMP sockets: allow them in the client namespace only.
        lab.client.run(["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"])
        yield lab


@pytest.fixture
def r1(lab: Lab) -> Node:
    return lab.routers[0]


@pytest.fixture
def serve(lab: Lab, r1: Node) -> Iterator[Start]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(kind: str, *args: str) -> subprocess.Popen[bytes]:
        proc = r1.spawn(server_argv(kind, *args), stdout=subprocess.PIPE)
        procs.append(proc)
        wait_ready(proc)
        return proc

    yield start
    for proc in procs:
        lab.stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def events(lab: Lab, proc: subprocess.Popen[bytes]) -> list[dict[str, str]]:
    """Stop a server and return what it saw."""
    lab.stop(proc)
    assert proc.stdout is not None
    return [json.loads(line) for line in proc.stdout.read().splitlines() if line.strip()]


def probe(lab: Lab, checker: Checker, ssl: SslConfig | None = None) -> ProbeResult:
    p = probe_for(checker, ssl_config=ssl)
    assert p is not None
    return run_in_netns(lab.client.ns, p)


def test_tcp_up_down_and_timeout(lab: Lab, serve: Start) -> None:
    server = serve("tcp", "--port", "8001")
    assert probe(lab, TcpCheck(connect_ip=R1, connect_port=8001)).ok
    assert probe(lab, TcpCheck(connect_ip=R1_6, connect_port=8001)).ok
    seen = events(lab, server)
    assert next(e["peer"] for e in seen if e["event"] == "connect").endswith("192.0.2.100")
    refused = probe(lab, TcpCheck(connect_ip=R1, connect_port=8001))
    assert (refused.ok, refused.detail) == (False, "ECONNREFUSED")
    slow = probe(lab, TcpCheck(connect_ip=NOBODY, connect_port=80, connect_timeout_s=0.5))
    assert not slow.ok  # no ARP answer: the connect times out (or the host is unreachable)


def test_tcp_bindto_is_the_source_address(lab: Lab, serve: Start) -> None:
    lab.client.run(["ip", "addr", "add", "192.0.2.150/24", "dev", "eth0", "nodad"])
    server = serve("tcp", "--port", "8002")
    assert probe(
        lab, TcpCheck(connect_ip=R1, connect_port=8002, bindto=ipaddress.ip_address("192.0.2.150"))
    ).ok
    assert [e["peer"] for e in events(lab, server)] == ["192.0.2.150"]


def test_http_get_status_digest_and_exact_request(lab: Lab, serve: Start) -> None:
    server = serve("http", "--port", "8080", "--body", BODY)
    md5 = hashlib.md5(BODY.encode(), usedforsecurity=False).hexdigest()
    good = HttpCheck(
        connect_ip=R1, connect_port=8080, urls=(HttpUrl(path="/a", digest=md5), HttpUrl(path="/b"))
    )
    assert probe(lab, good).ok
    bad_digest = HttpCheck(
        connect_ip=R1, connect_port=8080, urls=(HttpUrl(path="/a", digest="0" * 32),)
    )
    result = probe(lab, bad_digest)
    assert not result.ok
    assert "MD5" in result.detail
    requests = [e["raw"] for e in events(lab, server) if e["event"] == "request"]
    assert requests[:2] == [
        "GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 192.0.2.1:8080\r\n\r\n",
        "GET /b HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 192.0.2.1:8080\r\n\r\n",
    ]
    server = serve("http", "--port", "8080", "--status", "503")
    assert (
        "status code"
        in probe(lab, HttpCheck(connect_ip=R1, connect_port=8080, urls=(HttpUrl(path="/"),))).detail
    )
    events(lab, server)


def test_http_slow_server_times_out(lab: Lab, serve: Start) -> None:
    serve("http", "--port", "8081", "--delay", "3")
    check = HttpCheck(
        connect_ip=R1, connect_port=8081, connect_timeout_s=0.5, urls=(HttpUrl(path="/"),)
    )
    result = probe(lab, check)
    assert (result.ok, result.detail) == (False, "Timeout WEB read url(/)")


def test_ssl_get_with_sni_and_no_verification(lab: Lab, serve: Start, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    server = serve("http", "--port", "8443", "--body", BODY, "--tls", str(cert), str(key))
    md5 = hashlib.md5(BODY.encode(), usedforsecurity=False).hexdigest()
    vhost = "www.example.test"
    check = HttpCheck(
        connect_ip=R1,
        connect_port=8443,
        ssl=True,
        enable_sni=True,
        virtualhost=vhost,
        urls=(HttpUrl(path="/", virtualhost=vhost, digest=md5),),
    )
    assert probe(lab, check).ok
    seen = events(lab, server)
    assert {"event": "sni", "name": "www.example.test"} in seen
    assert any("Host: www.example.test\r\n" in e.get("raw", "") for e in seen)


def test_smtp_banner_helo_quit(lab: Lab, serve: Start) -> None:
    server = serve("smtp", "--port", "2525")
    assert probe(lab, SmtpCheck(connect_ip=R1, connect_port=2525, helo_name="probe.test")).ok
    assert {"event": "helo", "name": "probe.test"} in events(lab, server)
    serve("smtp", "--port", "2526", "--banner-delay", "3")
    slow = probe(lab, SmtpCheck(connect_ip=R1, connect_port=2526, connect_timeout_s=0.5))
    assert (slow.ok, slow.detail) == (False, "Read timeout from server [192.0.2.1]:tcp:2526")
    down = probe(lab, SmtpCheck(connect_ip=R1, connect_port=2599))
    assert not down.ok


def test_dns_answer_rcode_wrong_id_and_unreachable(lab: Lab, serve: Start) -> None:
    server = serve("dns", "--port", "5353")
    assert probe(
        lab, DnsCheck(connect_ip=R1, connect_port=5353, type="A", name="www.example.test")
    ).ok
    queries = [e for e in events(lab, server) if e["event"] == "datagram"]
    assert (
        bytes.fromhex(queries[0]["hex"])[12:] == b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"
    )
    serve("dns", "--port", "5354", "--rcode", "2")
    assert "rcode = 2" in probe(lab, DnsCheck(connect_ip=R1, connect_port=5354)).detail
    serve("dns", "--port", "5355", "--wrong-id")
    result = probe(lab, DnsCheck(connect_ip=R1, connect_port=5355, connect_timeout_s=0.5))
    assert (result.ok, result.detail) == (False, "read timeout from socket")
    closed = probe(lab, DnsCheck(connect_ip=R1, connect_port=5399))
    assert not closed.ok
    assert "ECONNREFUSED" in closed.detail  # ICMP port unreachable on the connected socket


def test_udp_icmp_unreachable_silence_and_reply_pattern(lab: Lab, serve: Start) -> None:
    silent = serve("udp", "--port", "6000")
    quiet = UdpCheck(connect_ip=R1, connect_port=6000, payload=b"\x01\x02", connect_timeout_s=0.5)
    assert probe(lab, quiet).ok  # no ICMP error: open
    assert {"event": "datagram", "hex": "0102", "peer": "::ffff:192.0.2.100"} in events(lab, silent)
    refused = probe(lab, UdpCheck(connect_ip=R1, connect_port=6000, connect_timeout_s=0.5))
    assert (refused.ok, refused.detail) == (False, "ECONNREFUSED")
    serve("udp", "--port", "6001", "--reply", "cafe0001")
    want = UdpCheck(connect_ip=R1, connect_port=6001, require_reply=True, reply_pattern="cafexx01")
    assert probe(lab, want).ok
    wrong = UdpCheck(connect_ip=R1, connect_port=6001, require_reply=True, reply_pattern="beef")
    assert probe(lab, wrong).detail == "reply does not match"
    needs_reply = UdpCheck(
        connect_ip=R1, connect_port=6000, require_reply=True, connect_timeout_s=0.5
    )
    serve("udp", "--port", "6000")
    assert probe(lab, needs_reply).detail == "no reply"


def test_ping_up_and_down(lab: Lab) -> None:
    assert probe(lab, PingCheck(connect_ip=R1)).ok
    assert probe(lab, PingCheck(connect_ip=R1_6)).ok
    assert not probe(lab, PingCheck(connect_ip=NOBODY, connect_timeout_s=0.5)).ok


def test_misc_exit_status_dynamic_weight_and_timeout(lab: Lab, tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text('#!/bin/sh\nexit "$1"\n')
    script.chmod(0o755)

    def misc(code: str, **kw: object) -> MiscCheck:
        return MiscCheck(script=Script(argv=(str(script), code)), timeout_s=5.0, **kw)  # type: ignore[arg-type]

    assert probe(lab, misc("0")).ok
    assert not probe(lab, misc("1")).ok
    assert probe(lab, misc("42", dynamic=True)).exit_status == 42
    hang = MiscCheck(script=Script(argv=("/bin/sleep", "30")), timeout_s=0.5)
    assert probe(lab, hang).detail == "timed out"


def test_checkerset_flapping_tcp_server_reports_down_then_up(lab: Lab, r1: Node) -> None:
    """A real listener stops and starts again; the set reports each RS transition once."""
    check = TcpCheck(
        connect_ip=R1,
        connect_port=8090,
        retry=1,
        delay_before_retry_s=0.2,
        delay_loop_s=0.3,
        warmup_s=0.0,
        connect_timeout_s=1.0,
    )
    rs = RealServer(address=R1, port=8090, checkers=(check,))
    vs = VirtualServer(address=ipaddress.ip_address("192.0.2.200"), port=80, real_servers=(rs,))
    changes: list[RsChange] = []

    async def scenario() -> None:
        changed = asyncio.Event()

        def on_change(change: RsChange) -> None:
            changes.append(change)
            changed.set()

        async def next_change() -> None:
            async with asyncio.timeout(30.0):
                await changed.wait()
            changed.clear()

        cs = CheckerSet(LvsConfig(virtual_servers=(vs,)), on_change, rand=lambda: 0.0)
        assert cs.state(vs, rs).alive  # non-alpha: up before the first check
        task = asyncio.create_task(cs.run())
        try:
            await next_change()  # nothing listens: down at the first failure
            server = r1.spawn(server_argv("tcp", "--port", "8090"), stdout=subprocess.PIPE)
            await asyncio.to_thread(wait_ready, server)
            await next_change()
            await asyncio.to_thread(lab.stop, server)
            assert server.stdout is not None
            server.stdout.close()
            await next_change()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run_in_netns(lab.client.ns, scenario)
    assert [c.alive for c in changes] == [False, True, False]
