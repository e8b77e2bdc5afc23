"""Hypothesis over random FakeLans: the election invariants of STYLE §F / issue 3.

1. Once the LAN is quiet there is exactly one MASTER per VRID and it has the highest
   effective priority (whatever happened before: late starts, faults, partitions).
2. Among equal top priorities that contend together, the higher primary address wins.
3. With nopreempt, a master is never displaced by a higher priority.
4. Every InstallVips is balanced by a RemoveVips when the instance leaves MASTER.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from pykad.fsm.effects import InstallVips, RemoveVips
from pykad.fsm.events import TrackerChanged
from pykad.fsm.machine import State
from pykad.testing.builders import instance
from pykad.testing.fakelan import FakeLan

QUIET_AT = 120.0  # far beyond any down interval after the last disturbance (t <= 40)


@st.composite
def lan_params(draw: st.DrawFn) -> tuple[int, int, list[int], list[float]]:
    version = draw(st.sampled_from([2, 3]))
    interval_cs = draw(st.sampled_from([100, 200] if version == 2 else [25, 100, 150]))
    n = draw(st.integers(2, 5))
    prios = draw(st.lists(st.integers(1, 254), min_size=n, max_size=n, unique=True))
    starts = draw(st.lists(st.sampled_from([0.0, 0.5, 3.0, 7.25, 20.0]), min_size=n, max_size=n))
    return version, interval_cs, prios, starts


def build(version: int, interval_cs: int, prios: list[int], starts: list[float]) -> FakeLan:
    lan = FakeLan(latency=0.0005)
    for i, (prio, start) in enumerate(zip(prios, starts, strict=True)):
        cfg = instance(
            f"r{i}",
            priority=prio,
            primary=f"192.0.2.{i + 1}",
            version=version,
            advert_int=interval_cs / 100,
        )
        lan.add(cfg, start_at=start)
    return lan


disturbance = st.tuples(
    st.floats(1.0, 40.0, allow_nan=False),
    st.integers(0, 4),
    st.sampled_from(["fault", "cut"]),
    st.floats(0.5, 15.0, allow_nan=False),
)


@given(params=lan_params(), events=st.lists(disturbance, max_size=4))
def test_one_master_with_highest_priority_after_quiet(
    params: tuple[int, int, list[int], list[float]],
    events: list[tuple[float, int, str, float]],
) -> None:
    version, interval_cs, prios, starts = params
    lan = build(version, interval_cs, prios, starts)
    n = len(prios)
    actions: list[tuple[float, str, str]] = []
    for at, idx, kind, length in events:
        name = f"r{idx % n}"
        actions += [(at, name, f"{kind}-on"), (at + length, name, f"{kind}-off")]
    for at, name, action in sorted(actions):
        if action.startswith("fault"):
            lan.at(at, name, TrackerChanged("interface", "eth0", up=action == "fault-off"))
            continue
        lan.run_until(at)
        if action == "cut-on":
            lan.cut(name)
        else:
            lan.heal()
    lan.heal()
    lan.run_until(QUIET_AT)
    best = max(range(n), key=lambda i: prios[i])
    assert lan.masters() == [f"r{best}"]
    for i in range(n):
        assert lan.machine(f"r{i}").state in (State.MASTER, State.BACKUP)


@given(
    n=st.integers(2, 5),
    prio=st.integers(1, 254),
    hosts=st.lists(st.integers(1, 254), min_size=5, max_size=5, unique=True),
    version=st.sampled_from([2, 3]),
)
def test_equal_priorities_contending_together_elect_the_highest_address(
    n: int, prio: int, hosts: list[int], version: int
) -> None:
    lan = FakeLan(latency=0.0005)
    for i in range(n):
        lan.add(instance(f"r{i}", priority=prio, primary=f"192.0.2.{hosts[i]}", version=version))
    lan.run_until(60.0)
    winner = max(range(n), key=lambda i: hosts[i])
    assert lan.masters() == [f"r{winner}"]
    assert lan.machine(f"r{winner}").own_ip == ipaddress.ip_address(f"192.0.2.{hosts[winner]}")


@given(
    first=st.integers(1, 253),
    others=st.lists(st.integers(1, 254), min_size=1, max_size=4),
    late=st.lists(st.floats(5.0, 50.0, allow_nan=False), min_size=4, max_size=4),
)
def test_nopreempt_master_is_never_displaced(
    first: int, others: list[int], late: list[float]
) -> None:
    lan = FakeLan(latency=0.0005)
    lan.add(instance("r0", priority=first, primary="192.0.2.1", preempt=False))
    for i, prio in enumerate(others, start=1):
        lan.add(
            instance(f"r{i}", priority=prio, primary=f"192.0.2.{i + 1}", preempt=False),
            start_at=late[i - 1],
        )
    lan.run_until(100.0)
    assert lan.masters() == ["r0"]
    assert lan.transitions("r0") == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]


@given(params=lan_params(), events=st.lists(disturbance, max_size=5), stop_at=st.floats(41, 90))
def test_every_install_is_balanced_by_a_removal(
    params: tuple[int, int, list[int], list[float]],
    events: list[tuple[float, int, str, float]],
    stop_at: float,
) -> None:
    version, interval_cs, prios, starts = params
    lan = build(version, interval_cs, prios, starts)
    n = len(prios)
    for at, idx, _, length in events:
        name = f"r{idx % n}"
        lan.at(at, name, TrackerChanged("interface", "eth0", up=False))
        lan.at(at + length, name, TrackerChanged("interface", "eth0", up=True))
    for i in range(n):
        lan.stop(f"r{i}", at=stop_at)
    lan.run_until(stop_at + 1)
    for i in range(n):
        vip_effects = [
            type(e).__name__
            for e in lan.effects(f"r{i}")
            if isinstance(e, InstallVips | RemoveVips)
        ]
        # strictly alternating install/remove, ending released
        assert vip_effects == ["InstallVips", "RemoveVips"] * (len(vip_effects) // 2)
        assert lan.machine(f"r{i}").state is State.INIT
