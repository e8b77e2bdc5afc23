"""Hypothesis: ``VrrpMachine.absorbs_repeats`` promises what the runtime relies on.

The runtime lets the socket absorb byte-identical repeats of an advert for which
``absorbs_repeats`` holds, and hands the machine only the latest of them. That is exact only
if a copy of the advert, handled at any later time, returns no effect and changes nothing but
the master-down deadline. Checked here on machines driven through random histories (adverts
from two peers at several priorities and intervals, time passing, faults), for every
candidate advert at every step.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pykad.config.model import TrackInterface
from pykad.fsm.events import AdvertReceived, Event, Startup, TimersDue, TrackerChanged
from pykad.fsm.machine import State, VrrpMachine
from pykad.testing.builders import instance
from pykad.testing.repeats import check_repeat

OWN = ipaddress.IPv4Address("192.0.2.2")
PEERS = (ipaddress.IPv4Address("192.0.2.1"), ipaddress.IPv4Address("192.0.2.3"))
PRIORITIES = (0, 50, 100, 150, 255)
# eth1 down takes 60 off the priority: the effective priority moves under a running
# preempt delay or a followed master
TRACKED = (TrackInterface(name="eth1", weight=-60),)


config = st.fixed_dictionaries(
    {
        "version": st.sampled_from([2, 3]),
        "priority": st.sampled_from([50, 100, 200]),
        "preempt": st.booleans(),
        "preempt_delay_s": st.sampled_from([0.0, 2.0]),
    }
)
step = st.one_of(
    st.tuples(
        st.just("advert"),
        st.integers(0, 1),
        st.sampled_from(PRIORITIES),
        st.sampled_from([100, 50]),
    ),
    st.tuples(st.just("wait"), st.floats(0.01, 5.0, allow_nan=False)),
    st.tuples(st.just("timers")),
    st.tuples(st.just("link"), st.sampled_from(["eth0", "eth1"]), st.booleans()),
)


@given(cfg=config, steps=st.lists(step, max_size=25), later=st.floats(0.0, 10.0))
def test_an_absorbed_repeat_only_moves_the_deadline(
    cfg: dict[str, Any], steps: list[tuple[Any, ...]], later: float
) -> None:
    machine = VrrpMachine(instance(primary=str(OWN), track_interfaces=TRACKED, **cfg), own_ip=OWN)
    now = 0.0
    machine.handle(Startup(), now)
    for item in steps:
        event: Event
        match item:
            case ("advert", peer, prio, interval_cs):
                event = AdvertReceived(src=PEERS[peer], priority=prio, adver_int_cs=interval_cs)
            case ("wait", dt):
                now += dt
                continue
            case ("timers",):
                deadline = machine.next_deadline()
                now = max(now, deadline if deadline is not None else now)
                event = TimersDue()
            case ("link", name, up):
                event = TrackerChanged("interface", name, up=up)
        machine.handle(event, now)
        for peer in PEERS:
            for prio in PRIORITIES:
                for interval_cs in (100, 50):
                    adv = AdvertReceived(src=peer, priority=prio, adver_int_cs=interval_cs)
                    if machine.absorbs_repeats(adv):
                        check_repeat(machine, adv, now + later)


@given(cfg=config, prio=st.sampled_from([50, 100, 150, 255]))
def test_a_backup_following_its_master_absorbs_its_adverts(cfg: dict[str, Any], prio: int) -> None:
    """The promise is not empty: the steady case the runtime is for is recognised whenever
    the master is at least as high as us, or nopreempt keeps a lower one."""
    machine = VrrpMachine(instance(primary=str(OWN), **cfg), own_ip=OWN)
    machine.handle(Startup(), 0.0)
    adv = AdvertReceived(src=PEERS[0], priority=prio, adver_int_cs=100)
    machine.handle(adv, 0.5)
    machine.handle(adv, 1.5)  # a second one: a preempt delay has started by now
    assert machine.state is State.BACKUP
    expected = prio >= cfg["priority"] or not cfg["preempt"]
    assert machine.absorbs_repeats(adv) is expected
