"""The pure wire parts of the checkers: HTTP request/response, DNS, UDP patterns, SMTP, ICMP."""

from __future__ import annotations

import hashlib
import ipaddress
import struct

import pytest

from pykad.check import dns, http, misc, ping, smtp, udp
from pykad.check.checkerset import log_line
from pykad.check.core import Report
from pykad.config.model import Script
from pykad.config.model_lvs import (
    HttpCheck,
    HttpProtocol,
    HttpUrl,
    MiscCheck,
    RealServer,
    StatusRange,
    TcpCheck,
    UdpCheck,
    VirtualServer,
)

V4 = ipaddress.ip_address("192.0.2.10")
V6 = ipaddress.ip_address("2001:db8::10")


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        (HttpProtocol.V1_0, b"GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: h\r\n\r\n"),
        (
            HttpProtocol.V1_0C,
            b"GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
            b"Host: h\r\n\r\n",
        ),
        (
            HttpProtocol.V1_1,
            b"GET /x HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
            b"Host: h\r\n\r\n",
        ),
    ],
)
def test_request_is_keepalived_template(protocol: HttpProtocol, expected: bytes) -> None:
    assert http.build_request("/x", protocol, "h") == expected


def test_host_header_vhost_or_address_port() -> None:
    assert http.host_header("www.example.test", V4, 8080) == "www.example.test"
    assert http.host_header(None, V4, 80) == "192.0.2.10:80"
    assert http.host_header(None, V6, 80) == "[2001:db8::10]:80"


def response(status: int, body: bytes) -> http.Response:
    return http.split_response(f"HTTP/1.1 {status} OK\r\nX-A: b\r\n\r\n".encode() + body)


def test_status_digest_and_regex_rules() -> None:
    body = b"hello world"
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    url = HttpUrl(path="/")
    assert http.check_response(url, response(200, body), None) == ""
    assert http.check_response(url, response(299, body), None) == ""
    assert "status code" in http.check_response(url, response(301, body), None)
    coded = HttpUrl(path="/", status_codes=(StatusRange(low=301, high=302),))
    assert http.check_response(coded, response(301, body), None) == ""
    digest = HttpUrl(path="/", digest=md5)
    assert http.check_response(digest, response(200, body), None) == ""
    assert "MD5" in http.check_response(digest, response(200, b"other"), None)
    rx = HttpUrl(path="/", regex="WORLD", regex_options=("caseless",))
    assert http.check_response(rx, response(200, body), http.compile_regex(rx)) == ""
    no = HttpUrl(path="/", regex="world", regex_no_match=True)
    assert "Regex" in http.check_response(no, response(200, body), http.compile_regex(no))
    window = HttpUrl(path="/", regex="world", regex_min_offset=0, regex_max_offset=4)
    assert "Regex" in http.check_response(window, response(200, body), http.compile_regex(window))
    assert http.compile_regex(url) is None


def test_response_parsing_errors() -> None:
    with pytest.raises(http.BadResponse, match="no data"):
        http.split_response(b"")
    with pytest.raises(http.BadResponse, match="no header"):
        http.split_response(b"HTTP/1.0 200 OK\r\n")
    with pytest.raises(http.BadResponse, match="bad status line"):
        http.split_response(b"SSH-2.0-x\r\n\r\n")
    status, headers = http.parse_head(b"HTTP/1.0 404 Nope\r\nContent-Length: 3")
    assert (status, headers) == (404, {"content-length": "3"})


def test_dns_query_and_reply_checks() -> None:
    q = dns.build_query(0x1234, "example.test", "A")
    assert q[:12] == struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    assert q[12:] == b"\x07example\x04test\x00\x00\x01\x00\x01"
    assert dns.encode_name(".") == b"\x00"
    with pytest.raises(ValueError, match="label"):
        dns.encode_name("a..b")
    question = q[12:]
    answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes(4)
    ok = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + question + answer
    assert dns.check_reply(q, ok) is None
    assert dns.check_reply(q, b"\x12") == "reply too short"
    assert dns.check_reply(q, struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0) + question) == "id"
    assert "rcode = 3" in (
        dns.check_reply(q, struct.pack("!HHHHHH", 0x1234, 0x8183, 1, 0, 0, 0) + question) or ""
    )
    assert (
        dns.check_reply(q, struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 1, 0, 0)) == "not a response"
    )
    assert (
        dns.check_reply(q, struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 0, 0, 0) + question)
        == "no answer"
    )
    other = dns.build_query(0x1234, "other.test", "A")[12:]
    assert (
        dns.check_reply(q, struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + other)
        == "question does not match"
    )


def test_udp_reply_pattern_and_lengths() -> None:
    assert udp.pattern_matches("0a0bxx", bytes.fromhex("0a0bff"))
    assert udp.pattern_matches("0ax0", bytes.fromhex("0af0"))
    assert not udp.pattern_matches("0a0b", bytes.fromhex("0a0c"))
    c = UdpCheck(connect_ip=V4, require_reply=True, reply_pattern="ffxx", min_reply_length=2,
                 max_reply_length=3)  # fmt: skip
    assert udp.reply_problem(c, b"\xff\x01") == ""
    assert "length" in udp.reply_problem(c, b"\xff")
    assert "length" in udp.reply_problem(c, b"\xff\x01\x02\x03")
    assert udp.reply_problem(c, b"\xfe\x01") == "reply does not match"


def test_smtp_status_like_keepalived() -> None:
    assert smtp.status_of(b"220 mx ready\r\n") == 220
    assert smtp.status_of(b"250\r\n") == -1  # keepalived strips only the \n: "250\r" fails
    assert smtp.status_of(b"250") == 250
    assert smtp.status_of(b"220-multi") == -1
    assert smtp.status_of(b"22") == -1


def test_ping_echo_build_and_match() -> None:
    req = ping.build_echo(4, 7)
    assert req[0] == 8
    assert req[6:8] == b"\x00\x07"
    reply = bytes([0, 0]) + req[2:]
    assert ping.is_reply(4, reply, 7)
    assert not ping.is_reply(4, reply, 8)
    assert not ping.is_reply(6, reply, 7)
    assert not ping.is_reply(4, b"\x00", 7)


def test_misc_verdicts() -> None:
    plain = MiscCheck(script=Script(argv=("/bin/true",)))
    dyn = MiscCheck(script=Script(argv=("/bin/true",)), dynamic=True)
    assert misc.verdict(plain, 0, "").ok
    assert not misc.verdict(plain, 1, "").ok
    assert not misc.verdict(plain, 5, "").ok
    assert misc.verdict(dyn, 5, "").exit_status == 5
    assert misc.verdict(dyn, 5, "").ok
    assert not misc.verdict(dyn, 1, "").ok
    assert misc.verdict(plain, -9, "").detail == "due to signal 9"
    assert misc.verdict(plain, None, "timed out").detail == "timed out"


def test_log_lines_in_keepalived_words() -> None:
    tcp = TcpCheck(connect_ip=V4, connect_port=80, retry=3)
    rs = RealServer(address=V4, port=80, checkers=(tcp,))
    vs = VirtualServer(address=ipaddress.ip_address("192.0.2.200"), port=80, real_servers=(rs,))
    assert (
        log_line(tcp, rs, vs, Report.SUCCESS, "")
        == "TCP connection to [192.0.2.10]:tcp:80 success."
    )
    assert (
        log_line(tcp, rs, vs, Report.FAILED, "")
        == "TCP_CHECK on service [192.0.2.10]:tcp:80 failed."
    )
    assert (
        log_line(tcp, rs, vs, Report.FAILED_RETRIES, "")
        == "TCP_CHECK on service [192.0.2.10]:tcp:80 failed after 3 retries."
    )
    web = HttpCheck(connect_ip=V4, connect_port=80)
    assert log_line(web, rs, vs, Report.SUCCESS, "") == (
        "Remote Web server [192.0.2.10]:tcp:80 succeed on service."
    )
