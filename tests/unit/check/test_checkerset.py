"""CheckerSet bookkeeping without I/O: initial states, FILE_CHECK weights, keys, ha_suspend."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from typing import Any

import pytest

from pykad.check.checkerset import (
    CheckerAlert,
    CheckerSet,
    RsChange,
    alert_body,
    rs_key,
    vs_key,
)
from pykad.check.core import RetrySchedule, RsState
from pykad.check.probes import Probe, ProbeResult
from pykad.config.model import Script, TrackFile
from pykad.config.model_lvs import (
    DnsCheck,
    FileCheck,
    HttpCheck,
    HttpUrl,
    LvsConfig,
    MiscCheck,
    PingCheck,
    Protocol,
    RealServer,
    SmtpCheck,
    TcpCheck,
    UdpCheck,
    VirtualServer,
    VirtualServerGroup,
    VsgAddressRange,
)

A = ipaddress.ip_address("192.0.2.10")
B = ipaddress.ip_address("192.0.2.11")


def build(*servers: RealServer, ha_suspend: bool = False) -> tuple[VirtualServer, LvsConfig]:
    vs = VirtualServer(
        address=ipaddress.ip_address("192.0.2.200"),
        port=80,
        protocol=Protocol.TCP,
        ha_suspend=ha_suspend,
        real_servers=servers,
    )
    return vs, LvsConfig(virtual_servers=(vs,))


def never_probe(_checker: object) -> None:
    raise AssertionError("no probe expected")


def test_initial_state_follows_alpha_and_file_values() -> None:
    plain = RealServer(address=A, port=80, weight=3, checkers=(TcpCheck(connect_ip=A),))
    alpha = RealServer(address=B, port=80, checkers=(TcpCheck(connect_ip=B, alpha=True),))
    vs, lvs = build(plain, alpha)
    cs = CheckerSet(lvs, lambda _c: None, clock=lambda: 0.0, rand=lambda: 0.0)
    assert cs.state(vs, plain) == RsState(True, 3)
    assert cs.state(vs, alpha) == RsState(False, 1)
    assert cs.states()[(vs_key(vs), rs_key(alpha))].alive is False
    assert vs_key(vs) == ("192.0.2.200:80", "TCP")
    assert cs.next_deadline() == 1.0  # bootstrap delay, no warmup drawn
    assert [rs.address for _, rs, _ in cs] == [A, B]


def test_file_check_changes_weight_and_liveness() -> None:
    rs = RealServer(
        address=A,
        port=80,
        weight=10,
        checkers=(FileCheck(track_file="tf", weight=5), FileCheck(track_file="gate", weight=0)),
    )
    vs, lvs = build(rs)
    changes: list[RsChange] = []
    cs = CheckerSet(
        lvs,
        changes.append,
        file_values={"tf": 2},
        probe_factory=never_probe,
        clock=lambda: 0.0,
    )
    assert cs.state(vs, rs) == RsState(True, 20)
    cs.set_file_value("tf", -1)
    cs.set_file_value("gate", 1)  # weight 0: a non-zero value is DOWN
    cs.set_file_value("gate", 1)  # no change, no report
    cs.set_file_value("gate", 0)
    cs.set_file_value("unknown", 3)
    assert [(c.alive, c.weight) for c in changes] == [(True, 5), (False, 5), (True, 5)]
    assert cs.checker_up(vs, rs, 1)


def test_file_check_without_weight_takes_the_track_files() -> None:
    rs = RealServer(address=A, port=80, checkers=(FileCheck(track_file="tf"),))
    vs, lvs = build(rs)
    tracks = {"tf": TrackFile(name="tf", path="/nonexistent", weight=-4, reverse=True)}
    cs = CheckerSet(lvs, lambda _c: None, track_files=tracks, file_values={"tf": 3})
    assert cs.state(vs, rs) == RsState(True, 13)  # 1 + 3 * -4 * -1


def test_ha_suspend_starts_disabled_until_the_address_is_local() -> None:
    rs = RealServer(address=A, port=80, checkers=(TcpCheck(connect_ip=A),))
    vs, lvs = build(rs, ha_suspend=True)
    cs = CheckerSet(lvs, lambda _c: None, clock=lambda: 0.0, rand=lambda: 0.0)
    assert not cs._runnables[0].schedule.enabled
    assert vs.address is not None
    cs.set_local_addresses({vs.address})
    assert cs._runnables[0].schedule.enabled


# ---------------------------------------------------------------------------- helpers


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_probe(cs: CheckerSet, rs: RealServer, ok: bool, *, now: float, index: int = 0) -> None:
    """One probe of checker ``index`` of ``rs`` finishing with ``ok`` at ``now`` (no I/O)."""
    clock = cs._clock
    assert isinstance(clock, Clock)
    clock.now = now
    r = next(r for r in cs._runnables if r.server.rs == rs and r.index == index)
    assert r.schedule.start(now)
    cs._finish(r, ProbeResult(ok, "" if ok else "ECONNREFUSED"))


def enabled(schedule: RetrySchedule | None) -> bool:
    assert schedule is not None
    return schedule.enabled


def fake_probe(_checker: object) -> Probe:
    async def probe() -> ProbeResult:
        raise AssertionError("tests drive the probes by hand")

    return probe


def checker_set(lvs: LvsConfig, clock: Clock, **kw: Any) -> CheckerSet:
    return CheckerSet(
        lvs,
        kw.pop("on_change", lambda _c: None),
        clock=clock,
        rand=lambda: 0.0,
        probe_factory=fake_probe,
        **kw,
    )


# ---------------------------------------------------------------------------- reload migration


def test_reload_keeps_a_failed_checker_down_with_its_schedule_and_counters() -> None:
    clock = Clock()
    tcp_a = TcpCheck(connect_ip=A, retry=2, delay_loop_s=10.0, warmup_s=0.0)
    tcp_b = TcpCheck(connect_ip=B, retry=2, delay_loop_s=10.0, warmup_s=0.0)
    rs_a = RealServer(address=A, port=80, checkers=(tcp_a,))
    rs_b = RealServer(address=B, port=80, checkers=(tcp_b,))
    vs, lvs = build(rs_a, rs_b)
    old = checker_set(lvs, clock)
    run_probe(old, rs_a, False, now=1.0)  # first failure decides: DOWN
    run_probe(old, rs_b, True, now=1.0)
    run_probe(old, rs_b, False, now=11.0)  # B: up, one retry used
    due_a = old.schedule(vs, rs_a, 0).next_deadline()  # type: ignore[union-attr]
    clock.now = 12.0
    # the reload changes the virtual server (quorum) and adds a real server
    rs_c = RealServer(address=ipaddress.ip_address("192.0.2.12"), port=80)
    new_vs = dataclasses.replace(vs, quorum=2, real_servers=(rs_a, rs_b, rs_c))
    new = checker_set(LvsConfig(virtual_servers=(new_vs,)), clock, previous=old)
    assert new.state(new_vs, rs_a) == RsState(False, 1)  # not re-added until it recovers
    assert new.state(new_vs, rs_b) == RsState(True, 1)
    assert new.state(new_vs, rs_c) == RsState(True, 1)
    sched_a = new.schedule(new_vs, rs_a, 0)
    sched_b = new.schedule(new_vs, rs_b, 0)
    assert sched_a is not None
    assert sched_b is not None
    assert sched_a.next_deadline() == due_a == 11.0
    assert (sched_a.is_up, sched_a.has_run, sched_b.retry_it) == (False, True, 1)
    # the migrated counter goes on: B's next failure is its last retry, the one after fails
    changes: list[RsChange] = []
    new._on_change = changes.append
    run_probe(new, rs_b, False, now=13.0)
    run_probe(new, rs_b, False, now=14.0)
    assert [(c.rs.address, c.alive) for c in changes] == [(B, False)]


def test_reload_starts_a_changed_checker_fresh_and_keeps_dynamic_weights() -> None:
    clock = Clock()
    misc = MiscCheck(script=Script(argv=("/bin/true",)), dynamic=True, warmup_s=0.0)
    tcp = TcpCheck(connect_ip=A, warmup_s=0.0)
    rs = RealServer(address=A, port=80, weight=5, checkers=(misc, tcp))
    vs, lvs = build(rs)
    old = checker_set(lvs, clock)
    r = next(r for r in old._runnables if r.index == 0)
    assert r.schedule.start(1.0)
    old._finish(r, ProbeResult(True, exit_status=9))  # misc_dynamic: weight 9 - 2 = 7
    run_probe(old, rs, False, now=1.0, index=1)
    assert old.state(vs, rs) == RsState(False, 7)
    clock.now = 30.0
    changed_tcp = dataclasses.replace(tcp, connect_port=8080)
    new_rs = dataclasses.replace(rs, checkers=(changed_tcp, misc))  # reordered and changed
    new_vs = dataclasses.replace(vs, real_servers=(new_rs,))
    new = checker_set(LvsConfig(virtual_servers=(new_vs,)), clock, previous=old)
    assert new.checker_up(new_vs, new_rs, 1)  # the misc checker, found at its new index
    assert new.checker_up(new_vs, new_rs, 0)  # the changed TCP_CHECK starts fresh: up
    assert new.state(new_vs, new_rs) == RsState(True, 7)  # dynamic weight carried
    fresh = new.schedule(new_vs, new_rs, 0)
    assert fresh is not None
    assert not fresh.has_run
    assert fresh.next_deadline() == 31.0  # bootstrap delay from the reload


def test_a_probe_abandoned_by_the_reload_runs_again_at_once() -> None:
    clock = Clock()
    rs = RealServer(address=A, port=80, checkers=(TcpCheck(connect_ip=A, warmup_s=0.0),))
    vs, lvs = build(rs)
    old = checker_set(lvs, clock)
    sched = old.schedule(vs, rs, 0)
    assert sched is not None
    assert sched.start(1.0)
    sched.cancel(2.5)  # what the checker task does when the reload cancels it
    new = checker_set(lvs, clock, previous=old)
    assert new.next_deadline() == 2.5


# ---------------------------------------------------------------------------- ha_suspend


def test_ha_suspend_follows_the_local_addresses_and_keeps_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    rs = RealServer(address=A, port=80, checkers=(TcpCheck(connect_ip=A, warmup_s=0.0),))
    vs, lvs = build(rs, ha_suspend=True)
    cs = checker_set(lvs, clock)
    sched = cs.schedule(vs, rs, 0)
    assert sched is not None
    assert not sched.enabled
    vip = ipaddress.ip_address("192.0.2.200")
    cs.set_local_addresses({vip, A})
    assert enabled(sched)
    run_probe(cs, rs, False, now=1.0)
    cs.set_local_addresses({A})  # the VIP moved to the other director
    assert not sched.start(2.0)  # suspended: no probe, rescheduled after delay_loop
    assert sched.next_deadline() == 2.0 + sched.timing.delay_loop_s
    assert cs.state(vs, rs) == RsState(False, 1)  # the state is kept while suspended
    cs.set_local_addresses({vip})
    assert enabled(sched)
    assert "Suspending healthchecker for service [192.0.2.10]:tcp:80 for VS 192.0.2.200:80" in (
        caplog.text
    )
    assert caplog.text.count("Activating healthchecker for service [192.0.2.10]:tcp:80") == 2


def test_ha_suspend_of_a_group_and_of_a_fwmark_service(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rs = RealServer(address=A, port=80, checkers=(TcpCheck(connect_ip=A, warmup_s=0.0),))
    group = VirtualServerGroup(
        name="G",
        ranges=(
            VsgAddressRange(
                first=ipaddress.ip_address("198.51.100.10"),
                last=ipaddress.ip_address("198.51.100.20"),
                port=80,
            ),
        ),
    )
    by_group = VirtualServer(group="G", protocol=Protocol.TCP, ha_suspend=True, real_servers=(rs,))
    by_mark = VirtualServer(fwmark=7, ha_suspend=True, real_servers=(rs,))
    lvs = LvsConfig(virtual_server_groups=(group,), virtual_servers=(by_group, by_mark))
    cs = checker_set(lvs, clock)
    grouped, marked = cs.schedule(by_group, rs, 0), cs.schedule(by_mark, rs, 0)
    assert grouped is not None
    assert marked is not None
    cs.set_local_addresses({ipaddress.ip_address("198.51.100.21")})
    assert not enabled(grouped)
    cs.set_local_addresses({ipaddress.ip_address("198.51.100.15")})
    assert enabled(grouped)
    # a fwmark service has no address to follow: ha_suspend is ignored, with a warning
    assert "VS fwmark 7: ha_suspend needs an address to follow" in caplog.text
    assert enabled(marked)  # it runs, whatever the addresses
    cs.set_local_addresses(())
    assert enabled(marked)
    assert not enabled(grouped)


# ---------------------------------------------------------------------------- alerts


def test_checker_transitions_raise_alerts_with_keepalived_bodies() -> None:
    clock = Clock()
    tcp = TcpCheck(connect_ip=A, warmup_s=0.0, retry=1)
    alpha = TcpCheck(connect_ip=B, warmup_s=0.0, alpha=True)
    rs_a = RealServer(address=A, port=80, checkers=(tcp,))
    rs_b = RealServer(address=B, port=80, checkers=(alpha,))
    _vs, lvs = build(rs_a, rs_b)
    alerts: list[CheckerAlert] = []
    cs = checker_set(lvs, clock, on_alert=alerts.append)
    run_probe(cs, rs_a, True, now=1.0)  # up already: no alert
    run_probe(cs, rs_b, True, now=1.0)  # alpha: DOWN -> UP
    run_probe(cs, rs_a, False, now=2.0)  # a retry left: no verdict, no alert
    run_probe(cs, rs_a, False, now=3.0)  # DOWN
    run_probe(cs, rs_a, False, now=4.0)  # still DOWN: nothing new
    run_probe(cs, rs_a, True, now=5.0)
    assert [(a.rs.address, a.up, a.rs_alive, a.body) for a in alerts] == [
        (B, True, True, "=> TCP CHECK succeed on service <="),
        (A, False, False, "=> TCP CHECK failed on service <="),
        (A, True, True, "=> TCP CHECK succeed on service <="),
    ]


def test_alert_bodies_per_checker_type() -> None:
    misc = MiscCheck(script=Script(argv=("/bin/true",)))
    http = HttpCheck(connect_ip=A, urls=(HttpUrl(path="/"),))
    cases = [
        (UdpCheck(connect_ip=A), True, "", "=> UDP CHECK succeed on service <="),
        (PingCheck(connect_ip=A), False, "", "=> ICMP CHECK failed on service <="),
        (misc, False, "exit 1", "=> MISC CHECK failed on service <="),
        (DnsCheck(connect_ip=A), True, "", "=> DNS_CHECK: succeed on service <="),
        (http, True, "", "=> CHECK succeed on service <="),
        (
            http,
            False,
            "HTTP status code error",
            "=> CHECK failed on service : HTTP status code error <=",
        ),
        (SmtpCheck(connect_ip=A), False, "", "=> CHECK failed on service <="),
    ]
    for checker, ok, detail, body in cases:
        assert alert_body(checker, ok, detail) == body
