"""The LVS lowering (spec §9): defaults, ranges, keepalived's fix-ups, inheritance, checkers."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pykad.config.diagnostics import Diagnostic, Severity, Status
from pykad.config.grammar import parse_text
from pykad.config.lower_lvs import TOP_LEVEL_KEYWORDS, lower_lvs
from pykad.config.model import GlobalDefs, Script
from pykad.config.model_lvs import (
    BfdCheck,
    DnsCheck,
    FileCheck,
    Forwarding,
    ForwardingMethod,
    HttpCheck,
    HttpProtocol,
    LvsConfig,
    MiscCheck,
    PingCheck,
    Protocol,
    RealServer,
    SmtpCheck,
    StatusRange,
    TcpCheck,
    TunnelChecksum,
    TunnelType,
    UdpCheck,
    VirtualServer,
)

IP = ipaddress.ip_address
SAMPLES = Path("/usr/share/doc/keepalived/samples")


def lower(text: str, **kw: object) -> tuple[LvsConfig, list[Diagnostic]]:
    parsed = parse_text(text, "t.conf")
    assert not [d for d in parsed.diagnostics if d.is_error], parsed.diagnostics
    diags: list[Diagnostic] = []
    blocks = [b for b in parsed.blocks if b.keyword in TOP_LEVEL_KEYWORDS]
    cfg = lower_lvs(blocks, diags, **kw)  # type: ignore[arg-type]
    return cfg, diags


def messages(diags: list[Diagnostic], severity: Severity | None = None) -> list[str]:
    return [d.message for d in diags if severity is None or d.severity is severity]


def errors(diags: list[Diagnostic]) -> list[str]:
    return messages(diags, Severity.ERROR)


def vs_with(body: str, rs: str = "real_server 192.0.2.11 80 {\n}\n", head: str = "") -> str:
    """A TCP virtual server on 192.0.2.100:80 with ``body`` and one real server."""
    return f"{head}virtual_server 192.0.2.100 80 {{\nprotocol TCP\nlb_algo rr\n{body}\n{rs}}}\n"


def one_vs(body: str, rs: str = "real_server 192.0.2.11 80 {\n}\n") -> VirtualServer:
    cfg, diags = lower(vs_with(body, rs))
    assert errors(diags) == []
    (vs,) = cfg.virtual_servers
    return vs


def one_rs(rs_body: str, vs_body: str = "") -> RealServer:
    vs = one_vs(vs_body, f"real_server 192.0.2.11 80 {{\n{rs_body}\n}}\n")
    (rs,) = vs.real_servers
    return rs


def one_checker(checker: str, rs_body: str = "", vs_body: str = "") -> object:
    (c,) = one_rs(f"{checker}\n{rs_body}", vs_body).checkers
    return c


# --------------------------------------------------------------------------------------------
# The source scenario: LVS direct routing, round robin, two real servers with TCP_CHECK


SCENARIO = """
virtual_server 192.0.2.100 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
            retry 3
            delay_before_retry 3
        }
    }
    real_server 192.0.2.12 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
            retry 3
            delay_before_retry 3
        }
    }
}
"""


def test_source_scenario_lvs_dr_pair() -> None:
    cfg, diags = lower(SCENARIO)
    assert errors(diags) == []
    (vs,) = cfg.virtual_servers
    assert (vs.address, vs.port, vs.protocol) == (IP("192.0.2.100"), 80, Protocol.TCP)
    assert (vs.lvs_sched, vs.forwarding.method, vs.delay_loop_s) == ("rr", ForwardingMethod.DR, 6.0)
    assert [(rs.address, rs.port, rs.weight) for rs in vs.real_servers] == [
        (IP("192.0.2.11"), 80, 1),
        (IP("192.0.2.12"), 80, 1),
    ]
    for rs in vs.real_servers:
        assert rs.forwarding.method is ForwardingMethod.DR  # inherited from the VS
        (check,) = rs.checkers
        assert check == TcpCheck(
            retry=3,
            delay_before_retry_s=3.0,
            warmup_s=6.0,  # = delay_loop
            delay_loop_s=6.0,
            connect_ip=rs.address,
            connect_port=80,
            connect_timeout_s=3.0,
        )


def test_scenario_lowers_without_any_diagnostic() -> None:
    _, diags = lower(SCENARIO)
    assert diags == []


# --------------------------------------------------------------------------------------------
# virtual_server defaults and keepalived's defaulting messages (spec §9.2)


def test_virtual_server_defaults_with_messages() -> None:
    cfg, diags = lower("virtual_server 192.0.2.100 80 {\nreal_server 192.0.2.11 80 {\n}\n}\n")
    (vs,) = cfg.virtual_servers
    assert (vs.lvs_sched, vs.forwarding, vs.protocol) == ("wlc", Forwarding(), Protocol.UDP)
    assert (vs.delay_loop_s, vs.connect_timeout_s, vs.quorum, vs.hysteresis) == (60.0, 5.0, 1, 0)
    assert (vs.retry, vs.delay_before_retry_s, vs.warmup_s) == (None, None, None)
    assert (vs.alpha, vs.omega, vs.inhibit_on_failure, vs.ha_suspend) == (False,) * 4
    assert (vs.weight, vs.persistence_timeout_s, vs.smtp_alert, vs.ip_family) == (1, 0, False, 4)
    assert errors(diags) == []
    warnings = messages(diags, Severity.WARNING)
    assert "virtual server 192.0.2.100:80: no protocol set - defaulting to UDP" in warnings
    assert "virtual server 192.0.2.100:80: no scheduler set, setting default 'wlc'" in warnings
    assert (
        "virtual server 192.0.2.100:80: no forwarding method set, setting default NAT" in warnings
    )


def test_every_virtual_server_keyword() -> None:
    vs = one_vs(
        """
        delay_loop 10.5
        connect_timeout 2
        retry 4
        delay_before_retry 0.25
        warmup 0
        inhibit_on_failure
        alpha
        omega
        ha_suspend
        lvs_method TUN type gue port 6080 csum
        persistence_timeout
        persistence_granularity 255.255.255.0
        persistence_engine sip
        hashed
        flag-1
        quorum 2
        hysteresis 1
        quorum_up "/bin/up.sh 'a b'" nobody
        quorum_down /bin/down.sh
        weight 3
        virtualhost www.example.org
        smtp_alert off
        snmp_name web
        sorry_server 192.0.2.200 80
        sorry_server_inhibit
        sorry_server_lvs_method DR
        ip_family inet
        """,
        rs="real_server 192.0.2.11 80 {\n}\nreal_server 192.0.2.12 80 {\n}\n",
    )
    assert (vs.delay_loop_s, vs.connect_timeout_s, vs.retry) == (10.5, 2.0, 4)
    assert (vs.delay_before_retry_s, vs.warmup_s) == (0.25, 0.0)
    assert (vs.inhibit_on_failure, vs.alpha, vs.omega, vs.ha_suspend) == (True,) * 4
    assert vs.forwarding == Forwarding(
        method=ForwardingMethod.TUN,
        tunnel_type=TunnelType.GUE,
        tunnel_port=6080,
        tunnel_checksum=TunnelChecksum.CSUM,
    )
    assert (vs.persistence_timeout_s, vs.persistence_granularity) == (360, "255.255.255.0")
    assert (vs.persistence_engine, vs.sched_flags) == ("sip", ("hashed", "flag-1"))
    assert (vs.quorum, vs.hysteresis, vs.weight) == (2, 1, 3)
    assert vs.quorum_up == Script(argv=("/bin/up.sh", "a b"), user="nobody")
    assert vs.quorum_down == Script(argv=("/bin/down.sh",))
    assert (vs.virtualhost, vs.smtp_alert, vs.snmp_name) == ("www.example.org", False, "web")
    assert vs.sorry_server is not None
    assert (vs.sorry_server.address, vs.sorry_server.port) == (IP("192.0.2.200"), 80)
    assert vs.sorry_server.inhibit
    assert vs.sorry_server.forwarding.method is ForwardingMethod.DR
    assert all(rs.weight == 3 for rs in vs.real_servers)  # VS weight is the RS default


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("lb_algo fastest", "invalid lvs_scheduler 'fastest' - ignoring"),
        ("lvs_method NATT", "unknown [NATT] routing method for virtual server"),
        ("lvs_method TUN type gue", "gue tunnels require port, otherwise cannot have port"),
        ("lvs_method TUN type ipip csum", "ipip tunnels do not support checksum option"),
        ("lvs_method TUN type gre remcsum", "gre tunnels do not support remote checksum option"),
        ("lvs_method TUN type vxlan", "unknown tunnel type vxlan for virtual server"),
        ("persistence_timeout 0", "persistence_timeout: number '0' outside range [1, 2678400]"),
        ("persistence_timeout 2678401", "outside range [1, 2678400]"),
        ("persistence_granularity 255.0.255.0", "invalid IPv4 persistence_granularity"),
        ("protocol ICMP", "unknown protocol ICMP - ignoring"),
        ("quorum 0", "quorum: number '0' outside range [1, 4294967295]"),
        ("hysteresis -1", "hysteresis: negative number '-1'"),
        ("weight 0", "weight: number '0' outside range [1, 2147483647]"),
        ("retry 0", "retry: number '0' outside range [1, 4294967295]"),
        ("delay_loop 0", "delay_loop: number '0' outside range [0.000001, inf]"),
        ("connect_timeout abc", "connect_timeout: invalid number 'abc'"),
        ("smtp_alert maybe", "invalid smtp_alert parameter 'maybe'"),
        ("ip_family inet7", "unknown address family inet7"),
        ("ip_family inet6", "virtual server specified family inet6 conflicts with server family"),
    ],
)
def test_invalid_virtual_server_values_are_located_errors(line: str, message: str) -> None:
    _, diags = lower(vs_with(line))
    errs = [d for d in diags if d.is_error]
    assert len(errs) == 1, errs
    assert message in errs[0].message
    assert errs[0].loc is not None
    assert errs[0].loc.line == 4  # the line of the keyword inside the VS


def test_protocol_is_case_insensitive() -> None:
    assert one_vs("protocol sctp").protocol is Protocol.SCTP


def test_unknown_keyword_warns_with_hint() -> None:
    _, diags = lower(vs_with("delay_lop 5"))
    (unknown,) = [d for d in diags if "unknown keyword" in d.message]
    assert unknown.severity is Severity.WARNING
    assert unknown.message == "unknown keyword 'delay_lop' in virtual_server - ignoring"
    assert unknown.hint == "did you mean 'delay_loop'?"
    assert unknown.loc is not None
    assert (unknown.loc.line, unknown.loc.col) == (4, 1)


def test_missing_parameter_has_its_status() -> None:
    _, diags = lower(vs_with("delay_loop"))
    (err,) = [d for d in diags if d.is_error]
    assert err.status is Status.MISSING_PARAMETER


def test_sh_flags_checked_against_the_final_scheduler() -> None:
    # keepalived rejects sh-port written before `lvs_sched sh` (order-dependent); pykad doesn't
    text = "virtual_server 192.0.2.100 80 {\nprotocol TCP\nsh-port\nlvs_sched sh\nmh-port\n"
    cfg, diags = lower(text + "real_server 192.0.2.11 80 {\n}\n}\n")
    assert cfg.virtual_servers[0].sched_flags == ("sh-port",)
    assert "mh-port only applies to mh scheduler - ignoring" in messages(diags)


def test_ops_requires_udp() -> None:
    cfg, diags = lower(vs_with("ops"))
    assert cfg.virtual_servers[0].sched_flags == ()
    assert any("one packet scheduling requires UDP - resetting" in m for m in messages(diags))


def test_zero_port_makes_the_service_persistent() -> None:
    cfg, diags = lower(
        "virtual_server 192.0.2.100 {\nprotocol TCP\nlb_algo rr\nreal_server 192.0.2.11 {\n}\n}\n"
    )
    assert cfg.virtual_servers[0].persistence_timeout_s == 360
    assert any("zero port only valid for persistent services" in m for m in messages(diags))


def test_quorum_clamped_to_total_weight_and_hysteresis_below_quorum() -> None:
    rs = "real_server 192.0.2.11 80 {\nweight 2\n}\nreal_server 192.0.2.12 80 {\nweight 1\n}\n"
    cfg, diags = lower(vs_with("quorum 10\nhysteresis 5", rs))
    vs = cfg.virtual_servers[0]
    assert (vs.quorum, vs.hysteresis) == (3, 2)
    assert (
        "quorum 10 for virtual server 192.0.2.100:80 exceeds total weight of real servers 3,"
        " reducing quorum to 3" in messages(diags, Severity.WARNING)
    )
    assert any("hysteresis 5 >= quorum 3; setting hysteresis to 2" in m for m in messages(diags))


def test_hysteresis_never_wraps_below_zero() -> None:
    # all weights 0 -> quorum 0; keepalived's unsigned quorum-1 would wrap to 4294967295
    cfg, _ = lower(vs_with("hysteresis 1", "real_server 192.0.2.11 80 {\nweight 0\n}\n"))
    assert (cfg.virtual_servers[0].quorum, cfg.virtual_servers[0].hysteresis) == (0, 0)


def test_virtual_server_without_real_servers_is_dropped() -> None:
    cfg, diags = lower(vs_with("", rs=""))
    assert cfg.virtual_servers == ()
    assert "virtual server 192.0.2.100:80 has no real servers - ignoring" in messages(diags)


def test_smtp_alert_defaults_from_globals() -> None:
    text = vs_with("")
    cfg, _ = lower(text, global_defs=GlobalDefs(smtp_alert=True, smtp_alert_checker=False))
    vs = cfg.virtual_servers[0]
    assert (vs.smtp_alert, vs.real_servers[0].smtp_alert) == (False, False)
    cfg, _ = lower(text, global_defs=GlobalDefs(smtp_alert=True))
    vs = cfg.virtual_servers[0]
    assert (vs.smtp_alert, vs.real_servers[0].smtp_alert) == (True, True)
    cfg, _ = lower(text)  # no global setting: VS off, RS on (spec §9.3)
    vs = cfg.virtual_servers[0]
    assert (vs.smtp_alert, vs.real_servers[0].smtp_alert) == (False, True)


def test_fwmark_service_ignores_protocol_and_ha_suspend() -> None:
    text = "virtual_server fwmark 7 {\nprotocol TCP\nha_suspend\nlb_algo rr\nlb_kind DR\n"
    cfg, diags = lower(text + "real_server 192.0.2.11 80 {\n}\n}\n")
    (vs,) = cfg.virtual_servers
    assert (vs.fwmark, vs.protocol, vs.ha_suspend, vs.label) == (7, None, False, "fwmark 7")
    assert vs.real_servers[0].port == 0  # non-NAT RS of a fwmark service: port cleared
    assert errors(diags) == []
    assert len([m for m in messages(diags) if "fwmark 7" in m]) == 3


def test_ipv6_virtual_server() -> None:
    text = "virtual_server 2001:db8::100 443 {\nprotocol TCP\nlb_algo rr\nlb_kind NAT\n"
    cfg, diags = lower(
        text + "real_server 2001:db8::11 443 {\n}\nreal_server 192.0.2.5 443 {\n}\n}\n"
    )
    (vs,) = cfg.virtual_servers
    assert (vs.ip_family, vs.label) == (6, "[2001:db8::100]:443")
    assert [rs.address for rs in vs.real_servers] == [IP("2001:db8::11")]
    assert any("don't match - skipping real server" in m for m in messages(diags))


# --------------------------------------------------------------------------------------------
# real_server (spec §9.3)


def test_real_server_keywords() -> None:
    rs = one_rs(
        """
        weight 0
        lvs_method TUN
        uthreshold 100
        lthreshold 10
        inhibit_on_failure off
        notify_up "/bin/n up" root root
        notify_down /bin/down
        alpha
        retry 2
        delay_before_retry 4
        warmup 5
        connect_timeout 6
        delay_loop 7
        smtp_alert no
        virtualhost rs.example.org
        snmp_name rs1
        """,
        vs_body="inhibit_on_failure",
    )
    assert (rs.weight, rs.forwarding.method, rs.uthreshold, rs.lthreshold) == (
        0,
        ForwardingMethod.TUN,
        100,
        10,
    )
    assert rs.inhibit_on_failure is False  # RS value beats the VS's
    assert rs.notify_up == Script(argv=("/bin/n", "up"), user="root", group="root")
    assert rs.notify_down == Script(argv=("/bin/down",))
    assert (rs.alpha, rs.retry, rs.delay_before_retry_s, rs.warmup_s) == (True, 2, 4.0, 5.0)
    assert (rs.connect_timeout_s, rs.delay_loop_s, rs.smtp_alert) == (6.0, 7.0, False)
    assert (rs.virtualhost, rs.snmp_name) == ("rs.example.org", "rs1")


def test_real_server_inherits_virtual_server_values() -> None:
    rs = one_rs(
        "",
        vs_body="retry 5\ndelay_before_retry 2\nwarmup 1\nconnect_timeout 9\ndelay_loop 30\n"
        "inhibit_on_failure\nalpha\nweight 4\nlb_kind DR",
    )
    assert (rs.retry, rs.delay_before_retry_s, rs.warmup_s) == (5, 2.0, 1.0)
    assert (rs.connect_timeout_s, rs.delay_loop_s, rs.weight) == (9.0, 30.0, 4)
    assert (rs.inhibit_on_failure, rs.alpha, rs.forwarding.method) == (
        True,
        True,
        ForwardingMethod.DR,
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("weight -1", "weight: negative number '-1'"),
        ("weight 2147483648", "outside range [0, 2147483647]"),
        ("retry 0", "retry: number '0' outside range [1, 4294967295]"),
        ("connect_timeout 0", "connect_timeout: number '0' outside range"),
        ("uthreshold x", "uthreshold: invalid number 'x'"),
        ("alpha perhaps", "invalid alpha parameter 'perhaps'"),
        ('notify_up "/bin/x \'a"', "missing terminating '"),
        ("lvs_method DR type ipip", "tunnel options are only valid with TUN"),
    ],
)
def test_invalid_real_server_values(line: str, message: str) -> None:
    _, diags = lower(vs_with("", f"real_server 192.0.2.11 80 {{\n{line}\n}}\n"))
    errs = errors(diags)
    assert len(errs) == 1, errs
    assert message in errs[0]


def test_duplicate_real_servers_removed_with_message() -> None:
    rs = "real_server 192.0.2.11 80 {\nweight 2\n}\nreal_server 192.0.2.11 80 {\n}\n"
    cfg, diags = lower(vs_with("", rs))
    assert [r.weight for r in cfg.virtual_servers[0].real_servers] == [2]
    assert (
        "VS 192.0.2.100:80: real server 192.0.2.11:80 is duplicated - removing second rs"
        in messages(diags, Severity.WARNING)
    )


def test_ports_reconciled_like_keepalived() -> None:
    rs = (
        "real_server 192.0.2.11 {\n}\n"  # NAT without port: VS port
        "real_server 192.0.2.12 8080 {\n}\n"  # NAT may translate
        "real_server 192.0.2.13 8080 {\nlvs_method DR\n}\n"  # DR cannot: reset to 80
    )
    cfg, diags = lower(vs_with("lb_kind NAT", rs))
    assert [r.port for r in cfg.virtual_servers[0].real_servers] == [80, 8080, 80]
    assert any(
        "real server 192.0.2.13:8080 ports don't match - resetting" in m for m in messages(diags)
    )


def test_sorry_server_matching_a_real_server_takes_its_inhibit() -> None:
    rs = "real_server 192.0.2.11 80 {\ninhibit_on_failure\n}\n"
    cfg, diags = lower(vs_with("sorry_server 192.0.2.11 80\nlb_kind NAT", rs))
    sorry = cfg.virtual_servers[0].sorry_server
    assert sorry is not None
    assert sorry.inhibit is True
    assert any("matches sorry server, but inhibit setting differs" in m for m in messages(diags))


def test_sorry_server_options_without_sorry_server() -> None:
    _, diags = lower(vs_with("sorry_server_inhibit\nsorry_server_lvs_method DR"))
    assert "ignoring sorry_server_inhibit used before or without sorry_server" in messages(diags)
    assert any("sorry_server_lvs_method used before" in m for m in messages(diags))


# --------------------------------------------------------------------------------------------
# Checkers: common options and inheritance (spec §9.4)


def test_checker_inherits_from_real_server_then_virtual_server() -> None:
    c = one_checker(
        "TCP_CHECK {\n}",
        rs_body="connect_timeout 2\nretry 4",
        vs_body="delay_loop 20\ndelay_before_retry 7\nalpha",
    )
    assert c == TcpCheck(
        retry=4,
        delay_before_retry_s=7.0,
        warmup_s=20.0,
        delay_loop_s=20.0,
        alpha=True,
        connect_ip=IP("192.0.2.11"),
        connect_port=80,
        connect_timeout_s=2.0,
    )


def test_checker_own_common_options_win() -> None:
    c = one_checker(
        """TCP_CHECK {
            connect_ip 198.51.100.1
            connect_port 8080
            bindto 192.0.2.1
            bind_port 4000
            bind_if eth0
            fwmark 9
            connect_timeout 1.5
            retry 0
            delay_before_retry 0.5
            warmup 2
            delay_loop 3
            alpha no
            log_all_failures
        }""",
        rs_body="retry 6\nalpha",
    )
    assert c == TcpCheck(
        retry=0,
        delay_before_retry_s=0.5,
        warmup_s=2.0,
        delay_loop_s=3.0,
        alpha=False,
        log_all_failures=True,
        connect_ip=IP("198.51.100.1"),
        connect_port=8080,
        bindto=IP("192.0.2.1"),
        bind_port=4000,
        bind_if="eth0",
        fwmark=9,
        connect_timeout_s=1.5,
    )


@pytest.mark.parametrize(
    ("checker", "retry", "delay_before_retry_s"),
    [
        ("TCP_CHECK {\n}", 1, 1.0),
        ("PING_CHECK {\n}", 1, 1.0),
        ("SMTP_CHECK {\n}", 1, 1.0),
        ("UDP_CHECK {\n}", 1, 1.0),
        ("HTTP_GET {\nurl {\npath /\n}\n}", 1, 3.0),
        ("SSL_GET {\nurl {\npath /\n}\n}", 1, 3.0),
        ("DNS_CHECK {\n}", 3, 60.0),  # delay_before_retry = delay_loop
        ("MISC_CHECK {\nmisc_path /bin/true\n}", 0, 1.0),
    ],
)
def test_per_checker_defaults(checker: str, retry: int, delay_before_retry_s: float) -> None:
    c = one_checker(checker)
    assert isinstance(
        c, TcpCheck | PingCheck | SmtpCheck | UdpCheck | HttpCheck | DnsCheck | MiscCheck
    )
    assert (c.retry, c.delay_before_retry_s, c.delay_loop_s, c.warmup_s) == (
        retry,
        delay_before_retry_s,
        60.0,
        60.0,
    )


def test_unknown_checker_keyword_warns() -> None:
    _, diags = lower(
        vs_with("", "real_server 192.0.2.11 80 {\nTCP_CHECK {\nconect_port 80\n}\n}\n")
    )
    (d,) = [d for d in diags if "unknown keyword" in d.message]
    assert d.message == "unknown keyword 'conect_port' in TCP_CHECK - ignoring"
    assert d.hint == "did you mean 'connect_port'?"


def test_misc_check_rejects_connection_options() -> None:
    _, diags = lower(
        vs_with(
            "",
            "real_server 192.0.2.11 80 {\nMISC_CHECK {\nmisc_path /bin/true\n"
            "connect_port 1\n}\n}\n",
        )
    )
    assert "unknown keyword 'connect_port' in MISC_CHECK - ignoring" in messages(diags)


# --------------------------------------------------------------------------------------------
# Each checker's own keywords (spec §9.5)


def test_http_get_keywords() -> None:
    c = one_checker(
        """HTTP_GET {
            url {
                path /health
                digest 9B3A0C85A887A256D6939DA88AABD8CD
                status_code 200 300-302
                virtualhost url.example.org
                regex "ok|fine"
                regex_no_match
                regex_options caseless multiline
                regex_min_offset 2
                regex_max_offset 100
                regex_stack 1000 2000
            }
            url {
                path /second
            }
            http_protocol 1.0c
            virtualhost chk.example.org
            fast_recovery
            nb_get_retry 2
        }""",
    )
    assert isinstance(c, HttpCheck)
    assert (c.ssl, c.http_protocol, c.virtualhost, c.fast_recovery, c.retry) == (
        False,
        HttpProtocol.V1_0C,
        "chk.example.org",
        True,
        2,
    )
    first, second = c.urls
    assert (first.path, first.digest) == ("/health", "9b3a0c85a887a256d6939da88aabd8cd")
    assert first.status_codes == (StatusRange(low=200, high=200), StatusRange(low=300, high=302))
    assert first.virtualhost == "url.example.org"
    assert (first.regex, first.regex_no_match, first.regex_options) == (
        "ok|fine",
        True,
        ("caseless", "multiline"),
    )
    assert (first.regex_min_offset, first.regex_max_offset, first.regex_stack) == (
        2,
        100,
        (1000, 2000),
    )
    assert (second.status_codes, second.virtualhost) == (
        (StatusRange(low=200, high=299),),
        "chk.example.org",
    )
    assert 250 in second.status_codes[0]


def test_http_virtualhost_inherited_from_rs_then_vs() -> None:
    c = one_checker(
        "HTTP_GET {\nurl {\npath /\n}\n}",
        rs_body="virtualhost rs.example",
        vs_body="virtualhost vs.example",
    )
    assert isinstance(c, HttpCheck)
    assert (c.virtualhost, c.urls[0].virtualhost) == ("rs.example", "rs.example")
    c = one_checker("HTTP_GET {\nurl {\npath /\n}\n}", vs_body="virtualhost vs.example")
    assert isinstance(c, HttpCheck)
    assert c.virtualhost == "vs.example"


def test_ssl_get_keywords_and_ssl_block() -> None:
    text = vs_with(
        "",
        "real_server 192.0.2.11 443 {\nSSL_GET {\nenable_sni\nsni_name a.example\n"
        "url {\npath /\n}\n}\n}\n",
        head="SSL {\npassword secret\nca /etc/ca.pem\ncertificate /etc/c.pem\nkey /etc/k.pem\n}\n",
    )
    cfg, diags = lower(text)
    assert errors(diags) == []
    assert cfg.ssl is not None
    assert (cfg.ssl.password, cfg.ssl.ca, cfg.ssl.certificate, cfg.ssl.key) == (
        "secret",
        "/etc/ca.pem",
        "/etc/c.pem",
        "/etc/k.pem",
    )
    (c,) = cfg.virtual_servers[0].real_servers[0].checkers
    assert isinstance(c, HttpCheck)
    assert (c.ssl, c.enable_sni, c.sni_name) == (True, True, "a.example")


@pytest.mark.parametrize(
    ("body", "message", "severity"),
    [
        ("url {\npath /\nstatus_code 99\n}", "invalid HTTP_GET status code '99'", Severity.ERROR),
        (
            "url {\npath /\nstatus_code 300-200\n}",
            "invalid HTTP_GET status code '300-200'",
            Severity.ERROR,
        ),
        (
            "url {\npath /\ndigest abc\n}",
            "character length should be 32 rather than 3",
            Severity.ERROR,
        ),
        ("url {\npath /\n}\nhttp_protocol 2", "invalid http_protocol version 2", Severity.ERROR),
        ("url {\npath /\nregex_options shouty\n}", "unknown regex option 'shouty'", Severity.ERROR),
        (
            "url {\ndigest 9b3a0c85a887a256d6939da88aabd8cd\n}",
            "url has no path - ignoring",
            Severity.WARNING,
        ),
        ("", "has no urls specified - ignoring", Severity.WARNING),
        (
            "url {\npath /\nregex_no_match\n}",
            "regex parameters specified without regex",
            Severity.WARNING,
        ),
        (
            "url {\npath /\n}\nnb_get_retry 3",
            "nb_get_retry is deprecated - please use 'retry'",
            Severity.WARNING,
        ),
    ],
)
def test_http_get_diagnostics(body: str, message: str, severity: Severity) -> None:
    _, diags = lower(vs_with("", f"real_server 192.0.2.11 80 {{\nHTTP_GET {{\n{body}\n}}\n}}\n"))
    assert any(message in m for m in messages(diags, severity)), diags


def test_misc_check_keywords() -> None:
    c = one_checker(
        "MISC_CHECK {\nmisc_path \"/usr/local/bin/chk.sh arg1 'two words'\"\nmisc_timeout 5\n"
        "misc_dynamic\nuser nobody nogroup\n}"
    )
    assert c == MiscCheck(
        script=Script(argv=("/usr/local/bin/chk.sh", "arg1", "two words")),
        timeout_s=5.0,
        dynamic=True,
        user="nobody",
        group="nogroup",
        retry=0,
    )


def test_misc_timeout_zero_means_delay_loop_and_path_is_required() -> None:
    c = one_checker("MISC_CHECK {\nmisc_path /bin/true\nmisc_timeout 0\ndelay_loop 9\n}")
    assert isinstance(c, MiscCheck)
    assert (c.timeout_s, c.script.argv) == (9.0, ("/bin/true",))
    _, diags = lower(vs_with("", "real_server 192.0.2.11 80 {\nMISC_CHECK {\nmisc_dynamic\n}\n}\n"))
    assert "MISC_CHECK has no misc_path - ignoring" in errors(diags)


def test_smtp_check_keywords_and_host_blocks() -> None:
    rs = one_rs(
        "SMTP_CHECK {\nhelo_name mail.example\nconnect_timeout 10\nretry 2\n"
        "host {\nconnect_ip 198.51.100.7\n}\n"
        "host {\nconnect_ip 198.51.100.8\nconnect_port 2525\n}\n}"
    )
    first, second = rs.checkers
    assert isinstance(first, SmtpCheck)
    assert isinstance(second, SmtpCheck)
    assert (first.helo_name, first.connect_ip, first.connect_port, first.retry) == (
        "mail.example",
        IP("198.51.100.7"),
        80,
        2,
    )
    assert (second.connect_ip, second.connect_port, second.connect_timeout_s) == (
        IP("198.51.100.8"),
        2525,
        10.0,
    )
    default = one_checker("SMTP_CHECK {\n}")
    assert isinstance(default, SmtpCheck)
    assert default.helo_name == "smtpchecker.keepalived.org"


def test_dns_check_keywords() -> None:
    c = one_checker("DNS_CHECK {\ntype aaaa\nname example.org\n}")
    assert isinstance(c, DnsCheck)
    assert (c.type, c.name) == ("AAAA", "example.org")
    d = one_checker("DNS_CHECK {\n}")
    assert isinstance(d, DnsCheck)
    assert (d.type, d.name) == ("SOA", ".")
    _, diags = lower(vs_with("", "real_server 192.0.2.11 80 {\nDNS_CHECK {\ntype AXFR\n}\n}\n"))
    assert "unknown DNS check type 'AXFR'" in errors(diags)


def test_udp_check_keywords() -> None:
    c = one_checker(
        "UDP_CHECK {\npayload Ab12f 3 456\nrequire_reply 0a xX\n"
        "min_reply_length 2\nmax_reply_length 40\n}"
    )
    assert isinstance(c, UdpCheck)
    # free-format hex: odd-length words are zero-padded on the left (man keepalived.conf)
    assert c.payload == bytes.fromhex("0ab12f030456")
    assert (c.require_reply, c.reply_pattern) == (True, "0axx")
    assert (c.min_reply_length, c.max_reply_length) == (2, 40)
    d = one_checker("UDP_CHECK {\n}")
    assert isinstance(d, UdpCheck)
    assert (d.payload, d.require_reply, d.min_reply_length, d.max_reply_length) == (
        None,
        False,
        0,
        255,
    )


def test_udp_check_invalid_values() -> None:
    _, diags = lower(
        vs_with(
            "",
            "real_server 192.0.2.11 80 {\nUDP_CHECK {\npayload zz\n"
            "min_reply_length 9\nmax_reply_length 3\n}\n}\n",
        )
    )
    assert errors(diags) == [
        "invalid hex string 'zz'",
        "UDP_CHECK min_reply_length 9 > max_reply_length 3",
    ]


def test_ping_check() -> None:
    c = one_checker("PING_CHECK {\nconnect_ip 198.51.100.9\n}")
    assert isinstance(c, PingCheck)
    assert c.connect_ip == IP("198.51.100.9")


def test_file_check_and_bfd_check() -> None:
    rs = one_rs(
        "FILE_CHECK {\ntrack_file tf1\nweight -3 reverse\ndynamic\n}\nBFD_CHECK {\nname bfd1\n}"
    )
    assert rs.checkers == (
        FileCheck(track_file="tf1", weight=-3, reverse=True, dynamic=True),
        BfdCheck(name="bfd1"),
    )
    _, diags = lower(
        vs_with("", "real_server 192.0.2.11 80 {\nFILE_CHECK {\nweight 2\n}\nBFD_CHECK {\n}\n}\n")
    )
    assert errors(diags) == [
        "FILE_CHECK has no track_file - ignoring",
        "BFD_CHECK has no name - ignoring",
    ]


def test_file_check_reference_checked_when_track_files_known() -> None:
    text = vs_with("", "real_server 192.0.2.11 80 {\nFILE_CHECK {\ntrack_file tf2\n}\n}\n")
    _, diags = lower(text, track_files={"tf1"})
    assert errors(diags) == ["FILE_CHECK track_file 'tf2' is not defined"]
    _, diags = lower(text, track_files={"tf2"})
    assert errors(diags) == []


# --------------------------------------------------------------------------------------------
# virtual_server_group (spec §9.1)


def test_virtual_server_group_entries_and_reference() -> None:
    text = """
virtual_server_group VSG_1 {
    192.0.2.1 8080
    192.0.2.3-10 80
    192.0.2.250-192.0.3.4 80
    198.51.100.8/29 443
    fwmark 1
    fwmark 2 inet
}
virtual_server group VSG_1 {
    protocol TCP
    lb_algo rr
    real_server 192.0.2.11 80 {
    }
}
"""
    cfg, diags = lower(text)
    assert errors(diags) == []
    (group,) = cfg.virtual_server_groups
    spans = [(str(r.first), str(r.last), r.port) for r in group.ranges]
    assert spans == [
        ("192.0.2.1", "192.0.2.1", 8080),
        ("192.0.2.3", "192.0.2.10", 80),
        ("192.0.2.250", "192.0.3.4", 80),
        ("198.51.100.8", "198.51.100.15", 443),
    ]
    assert [(m.fwmark, m.family) for m in group.fwmarks] == [(1, None), (2, 4)]
    (vs,) = cfg.virtual_servers
    assert (vs.group, vs.label, vs.address) == ("VSG_1", "group VSG_1", None)


def test_ipv6_group_range_uses_hex_last_group() -> None:
    cfg, _ = lower("virtual_server_group G {\n2001:db8::1-1f 80\n}\n")
    (r,) = cfg.virtual_server_groups[0].ranges
    assert (r.first, r.last) == (IP("2001:db8::1"), IP("2001:db8::1f"))


@pytest.mark.parametrize(
    "entry",
    ["192.0.2.10-3", "192.0.2.1-300", "not-an-ip", "192.0.2.1-2001:db8::1", "192.0.2.1 70000"],
)
def test_bad_group_entries_are_errors(entry: str) -> None:
    _, diags = lower(f"virtual_server_group G {{\n{entry}\n192.0.2.1 80\n}}\n")
    (err,) = [d for d in diags if d.is_error]
    assert err.loc is not None
    assert err.loc.line == 2


def test_empty_group_removed_and_undefined_group_is_an_error() -> None:
    text = (
        "virtual_server_group EMPTY {\n}\n"
        "virtual_server group EMPTY {\nreal_server 192.0.2.11 80 {\n}\n}\n"
        "virtual_server group VSG_2 {\nreal_server 192.0.2.11 80 {\n}\n}\n"
    )
    cfg, diags = lower(text)
    assert cfg.virtual_servers == ()
    assert "virtual server group EMPTY has no entries - removing" in messages(
        diags, Severity.WARNING
    )
    (err,) = [d for d in diags if d.is_error]
    assert err.message == "virtual_server_group 'VSG_2' is not defined - ignoring virtual server"
    assert err.loc is not None
    assert (err.loc.line, err.loc.col) == (7, 22)


def test_unknown_top_level_and_block_shape_errors() -> None:
    _, diags = lower("virtual_server 192.0.2.100 80 {\nreal_server 192.0.2.11 80\n}\n")
    assert "missing '{' after 'real_server'" in errors(diags)


# --------------------------------------------------------------------------------------------
# Debian's sample configurations lower without error diagnostics


LVS_SAMPLES = (
    sorted(p for p in SAMPLES.iterdir() if "virtual_server" in p.read_text(errors="replace"))
    if SAMPLES.is_dir()
    else []
)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="Debian's keepalived samples are not installed")
@pytest.mark.parametrize("path", LVS_SAMPLES, ids=lambda p: p.name)
def test_debian_samples_lower_without_errors(path: Path) -> None:
    parsed = parse_text(path.read_text(), str(path))
    diags: list[Diagnostic] = []
    cfg = lower_lvs([b for b in parsed.blocks if b.keyword in TOP_LEVEL_KEYWORDS], diags)
    assert errors(diags) == []
    assert cfg.virtual_servers  # every sample's virtual servers survive validation
    assert all(vs.real_servers for vs in cfg.virtual_servers)


def test_samples_cover_every_lvs_sample_file() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("Debian's keepalived samples are not installed")
    assert len(LVS_SAMPLES) >= 15
