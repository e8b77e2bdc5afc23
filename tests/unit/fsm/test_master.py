"""MASTER rules (RFC 5798 6.4.3, spec §5.4), becoming MASTER (spec §5.5), GARP schedule."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from pykad.config.model import VirtualRoute, VirtualRule
from pykad.fsm.effects import (
    Announce,
    InstallVips,
    Log,
    Notify,
    RemoveVips,
    SendAdvert,
    Transition,
)
from pykad.fsm.events import AdvertReceived, Startup, TimersDue
from pykad.fsm.machine import State, VrrpMachine
from pykad.testing.builders import instance, vip
from pykad.testing.fakelan import FakeLan

OWN = ipaddress.ip_address("192.0.2.10")
LOWER_IP = ipaddress.ip_address("192.0.2.5")
HIGHER_IP = ipaddress.ip_address("192.0.2.50")


def master(**kw: Any) -> VrrpMachine:
    """A machine that became MASTER at t=0 via the owner path or at its down timer."""
    kw.setdefault("primary", str(OWN))
    m = VrrpMachine(instance(**kw))
    m.handle(Startup(), 0.0)
    if m.state is State.BACKUP:
        deadline = m.next_deadline()
        assert deadline is not None
        m.handle(TimersDue(), deadline)
    assert m.state is State.MASTER
    return m


def test_effects_on_becoming_master_are_in_keepalived_order() -> None:
    cfg = instance(
        primary=str(OWN),
        excluded_addresses=(vip("198.51.100.7/24"),),
        virtual_routes=(VirtualRoute(dst=ipaddress.ip_network("203.0.113.0/24")),),
        virtual_rules=(VirtualRule(table=100),),
    )
    m = VrrpMachine(cfg)
    m.handle(Startup(), 0.0)
    effects = m.handle(TimersDue(), 3.609375)[1:]  # after the debug timeout log
    addrs = (*cfg.virtual_addresses, *cfg.excluded_addresses)
    assert effects == [
        SendAdvert(100),
        Log("Entering MASTER STATE"),
        Transition("BACKUP", "MASTER", "master down timer"),
        InstallVips(addrs, cfg.virtual_routes, cfg.virtual_rules),
        Announce(addrs, 5),
        Notify("MASTER", 100),
    ]
    assert m.next_deadline() == 3.609375 + 1.0


def test_owner_with_state_master_becomes_master_at_once() -> None:
    m = VrrpMachine(instance(state="MASTER", priority=255))
    effects = m.handle(Startup(), 0.0)
    assert effects[0] == SendAdvert(255)
    assert Notify("BACKUP", 255) not in effects  # an owner only notifies MASTER (§6.1)
    assert m.state is State.MASTER


def test_owner_without_state_master_waits() -> None:
    m = VrrpMachine(instance(state="BACKUP", priority=255))
    m.handle(Startup(), 0.0)
    assert m.state is State.BACKUP


def test_adverts_every_interval() -> None:
    m = master()
    t0 = m.next_deadline()
    assert t0 is not None
    assert m.handle(TimersDue(), t0) == [SendAdvert(100)]
    assert m.next_deadline() == t0 + 1.0


def test_master_answers_priority_zero_immediately() -> None:
    m = master()
    effects = m.handle(AdvertReceived(LOWER_IP, 0, 100), 4.0)
    assert effects == [SendAdvert(100), Log("Master received priority 0 message", logging.DEBUG)]
    assert m.next_deadline() == 5.0  # the advert timer restarts because we sent one
    assert m.state is State.MASTER


def test_lower_priority_gets_an_advert_garps_and_fifo_event() -> None:
    m = master(garp_lower_prio_repeat=2, garp_lower_prio_delay_s=5.0, garp_master_delay_s=0.0)
    effects = m.handle(AdvertReceived(HIGHER_IP, 50, 100), 4.0)
    assert effects == [
        Log(
            f"Received advert from {HIGHER_IP} with lower priority 50, ours 100, "
            "forcing new election"
        ),
        SendAdvert(100),
        Announce(m.cfg.virtual_addresses, 2),
        Notify("MASTER_RX_LOWER_PRI", 100),
    ]
    assert m.state is State.MASTER
    # the delayed lower-priority burst
    m.handle(TimersDue(), 5.0)  # regular advert
    assert m.handle(TimersDue(), 9.0) == [SendAdvert(100), Announce(m.cfg.virtual_addresses, 2)]


def test_lower_priority_burst_without_delay_is_not_repeated() -> None:
    m = master(garp_lower_prio_repeat=1, garp_lower_prio_delay_s=0.0, garp_master_delay_s=0.0)
    m.handle(AdvertReceived(HIGHER_IP, 50, 100), 4.0)
    assert m.next_deadline() == 5.0
    assert m.handle(TimersDue(), 5.0) == [SendAdvert(100)]


def test_lower_prio_no_advert_stays_quiet() -> None:
    m = master(lower_prio_no_advert=True, garp_lower_prio_repeat=0)
    deadline = m.next_deadline()
    effects = m.handle(AdvertReceived(HIGHER_IP, 50, 100), 4.0)
    assert effects == [
        Log(f"Received advert from {HIGHER_IP} with lower priority 50, ours 100"),
        Notify("MASTER_RX_LOWER_PRI", 100),
    ]
    assert m.next_deadline() == deadline  # no advert sent, so the timer is not restarted


def test_equal_priority_lower_address_is_lower() -> None:
    m = master()
    effects = m.handle(AdvertReceived(LOWER_IP, 100, 100), 4.0)
    assert SendAdvert(100) in effects
    assert m.state is State.MASTER


def test_higher_priority_makes_backup_silently() -> None:
    m = master()
    effects = m.handle(AdvertReceived(LOWER_IP, 200, 100), 4.0)
    assert effects == [
        Log(f"Master received advert from {LOWER_IP} with higher priority 200, ours 100"),
        Log("Entering BACKUP STATE"),
        Transition("MASTER", "BACKUP", "higher priority advert"),
        RemoveVips(m.cfg.virtual_addresses),
        Notify("BACKUP", 100),
    ]
    assert m.next_deadline() == 4.0 + 3 + 156 / 256
    assert (m.master_ip, m.master_priority) == (LOWER_IP, 200)


def test_equal_priority_higher_address_wins() -> None:
    m = master()
    effects = m.handle(AdvertReceived(HIGHER_IP, 100, 100), 4.0)
    assert effects[0] == Log(
        f"Master received advert from {HIGHER_IP} with same priority 100 but higher IP "
        "address than ours"
    )
    assert m.state is State.BACKUP


def test_v3_master_learns_interval_when_yielding() -> None:
    m = master(version=3)
    m.handle(AdvertReceived(HIGHER_IP, 200, 300), 4.0)
    assert m.master_adver_int_cs == 300
    assert m.next_deadline() == 4.0 + 9 + 156 * 300 / 25600


def test_higher_prio_send_advert() -> None:
    m = master(higher_prio_send_advert=True)
    effects = m.handle(AdvertReceived(HIGHER_IP, 200, 100), 4.0)
    assert effects[0] == SendAdvert(100)
    assert m.state is State.BACKUP


def test_equal_priority_from_our_own_address_warns() -> None:
    m = master()
    effects = m.handle(AdvertReceived(OWN, 100, 100), 4.0)
    assert effects == [
        Log(
            "WARNING - equal priority advert received from remote host with our IP address.",
            logging.WARNING,
        )
    ]
    assert m.state is State.MASTER


def test_two_owners_reduce_local_priority() -> None:
    m = master(state="MASTER", priority=255)
    effects = m.handle(AdvertReceived(LOWER_IP, 255, 100), 4.0)
    assert effects[0].level == logging.ERROR  # type: ignore[union-attr]
    assert "both configured as address owner" in effects[0].message  # type: ignore[union-attr]
    # 255 > 254: the other owner wins (keepalived 2.2.7 vrrp_state_master_rx)
    assert (m.base_priority, m.effective_priority, m.state) == (254, 254, State.BACKUP)


def test_two_owners_on_a_lan_end_with_one_master() -> None:
    lan = FakeLan(latency=0.001)
    a = lan.add(instance("VI_a", state="MASTER", priority=255, primary="192.0.2.1"))
    b = lan.add(instance("VI_b", state="MASTER", priority=255, primary="192.0.2.2"))
    lan.run_until(30.0)
    assert len(lan.masters()) == 1
    assert {a.effective_priority, b.effective_priority} == {254}
    assert lan.masters() == ["VI_b"]  # then equal 254: the higher address wins


def test_garp_schedule_delay_and_refresh() -> None:
    m = master(
        garp_master_repeat=3,
        garp_master_delay_s=2.5,
        garp_master_refresh_s=10.0,
        garp_master_refresh_repeat=2,
    )
    t0 = m.last_transition[0]  # type: ignore[index]
    addrs = m.cfg.virtual_addresses
    schedule: list[tuple[float, int]] = []
    now = t0
    while now < t0 + 25:
        deadline = m.next_deadline()
        assert deadline is not None
        now = deadline
        for e in m.handle(TimersDue(), now):
            if isinstance(e, Announce):
                assert e.addresses == addrs
                schedule.append((round(now - t0, 6), e.repeat))
    assert schedule == [(2.5, 3), (10.0, 2), (20.0, 2)]


def test_no_announce_without_addresses_or_with_zero_delay() -> None:
    m = master(vips=(), garp_master_delay_s=0.0)
    assert not [e for e in m.handle(TimersDue(), 100.0) if isinstance(e, Announce)]
    assert m.next_deadline() == 101.0


def test_lan_lower_priority_master_is_answered_and_displaced() -> None:
    # split brain healing: two masters after a partition; the lower one yields at once
    lan = FakeLan()
    hi = lan.add(instance("VI_hi", priority=200, primary="192.0.2.1"))
    lo = lan.add(instance("VI_lo", priority=100, primary="192.0.2.2"))
    lan.run_until(10.0)
    lan.cut("VI_hi")
    lan.run_until(20.0)
    assert (hi.state, lo.state) == (State.MASTER, State.MASTER)
    lan.heal()
    lan.run_until(22.0)
    assert lan.masters() == ["VI_hi"]
    assert lan.transitions("VI_lo")[-1] == ("MASTER", "BACKUP")
