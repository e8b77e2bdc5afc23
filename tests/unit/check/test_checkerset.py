"""CheckerSet bookkeeping without I/O: initial states, FILE_CHECK weights, keys, ha_suspend."""

from __future__ import annotations

import ipaddress

from pykad.check.checkerset import CheckerSet, RsChange, rs_key, vs_key
from pykad.check.core import RsState
from pykad.config.model import TrackFile
from pykad.config.model_lvs import (
    FileCheck,
    LvsConfig,
    Protocol,
    RealServer,
    TcpCheck,
    VirtualServer,
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


def test_ha_suspend_starts_disabled_and_set_enabled_toggles() -> None:
    rs = RealServer(address=A, port=80, checkers=(TcpCheck(connect_ip=A),))
    vs, lvs = build(rs, ha_suspend=True)
    cs = CheckerSet(lvs, lambda _c: None, clock=lambda: 0.0, rand=lambda: 0.0)
    assert not cs._runnables[0].schedule.enabled
    cs.set_enabled(vs, True)
    assert cs._runnables[0].schedule.enabled
