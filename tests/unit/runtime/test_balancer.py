"""The pure health -> IPVS logic (pykad.runtime.balancer), keepalived ipwrapper.c (spec §9.6)."""

from __future__ import annotations

import ipaddress
import logging
import socket

import pytest

from pykad.adapters.ipvs import (
    FWD_DROUTE,
    FWD_TUNNEL,
    SVC_F_PERSISTENT,
    SVC_F_SCHED1,
    SVC_F_SCHED2,
    TUN_F_CSUM,
    TUN_GUE,
    IpvsDest,
    IpvsService,
)
from pykad.check.checkerset import RsState, rs_key, vs_key
from pykad.config.model import Script
from pykad.config.model_lvs import (
    Forwarding,
    ForwardingMethod,
    LvsConfig,
    Protocol,
    RealServer,
    SorryServer,
    TunnelChecksum,
    TunnelType,
    VirtualServer,
    VirtualServerGroup,
    VsgAddressRange,
    VsgFwmark,
)
from pykad.runtime.balancer import (
    AddDest,
    AddService,
    Balancer,
    DeleteDest,
    DeleteService,
    EditDest,
    FlushIpvs,
    LvsEffect,
    LvsMail,
    LvsNotify,
    effects_summary,
    services_for,
)

IP = ipaddress.IPv4Address
VIP = IP("192.0.2.10")
DR = Forwarding(method=ForwardingMethod.DR)
UP_SCRIPT = Script(argv=("/bin/up",))
DOWN_SCRIPT = Script(argv=("/bin/down",))


def rs(host: int, *, weight: int = 1, **kw: object) -> RealServer:
    return RealServer(
        address=IP(f"192.0.2.{host}"),
        port=80,
        weight=weight,
        forwarding=DR,
        notify_up=UP_SCRIPT,
        notify_down=DOWN_SCRIPT,
        **kw,  # type: ignore[arg-type]
    )


def vs(*servers: RealServer, **kw: object) -> VirtualServer:
    fields: dict[str, object] = {
        "address": VIP,
        "port": 80,
        "protocol": Protocol.TCP,
        "lvs_sched": "rr",
        "forwarding": DR,
        "real_servers": servers,
        "quorum_up": Script(argv=("/bin/qup",)),
        "quorum_down": Script(argv=("/bin/qdown",)),
    }
    fields.update(kw)
    return VirtualServer(**fields)  # type: ignore[arg-type]


def balancer(*servers: VirtualServer, down: tuple[int, ...] = ()) -> Balancer:
    """A balancer whose real servers are up except the hosts in ``down``."""
    states = {
        (vs_key(v), rs_key(r)): RsState(r.address.packed[-1] not in down, r.weight)
        for v in servers
        for r in v.real_servers
    }
    return Balancer(LvsConfig(virtual_servers=servers), states)


def change(
    b: Balancer, v: VirtualServer, host: int, *, alive: bool, weight: int = 1
) -> list[LvsEffect]:
    return b.rs_changed(vs_key(v), (IP(f"192.0.2.{host}"), 80), alive=alive, weight=weight)


def dests(b: Balancer) -> dict[str, int]:
    return {f"{d.address}": d.weight for ds in b.table().values() for d in ds}


def fifo(effects: list[LvsEffect]) -> list[str]:
    return [e.fifo_line for e in effects if isinstance(e, LvsNotify)]


def scripts(effects: list[LvsEffect]) -> list[str]:
    return [e.script.argv[0] for e in effects if isinstance(e, LvsNotify) and e.script]


SVC = IpvsService(
    family=socket.AF_INET, protocol=socket.IPPROTO_TCP, address=VIP, port=80, scheduler="rr"
)


def dest(host: int, weight: int = 1) -> IpvsDest:
    return IpvsDest(address=IP(f"192.0.2.{host}"), port=80, forward=FWD_DROUTE, weight=weight)


# --------------------------------------------------------------------------------- startup


def test_start_adds_the_service_and_the_live_servers_then_gains_quorum(
    caplog: pytest.LogCaptureFixture,
) -> None:
    v = vs(rs(21), rs(22))
    b = balancer(v)
    with caplog.at_level(logging.INFO):
        effects = b.start()
    assert effects[:3] == [AddService(SVC), AddDest(SVC, dest(21)), AddDest(SVC, dest(22))]
    # keepalived set_quorum_states: no RS alive before init_services -> "Gained quorum" at start
    assert fifo(effects) == ["VS [192.0.2.10]:tcp:80 UP"]
    assert scripts(effects) == ["/bin/qup"]
    assert "Gained quorum 1+0=1 <= 2 for VS [192.0.2.10]:tcp:80" in caplog.text


def test_lvs_flush_empties_ipvs_before_anything_is_added() -> None:
    effects = balancer(vs(rs(21))).start(flush=True)
    assert effects[:2] == [FlushIpvs(), AddService(SVC)]


def test_alpha_servers_start_out_of_the_pool_and_inhibited_ones_with_weight_0() -> None:
    v = vs(rs(21), rs(22, alpha=True), rs(23, alpha=True, inhibit_on_failure=True))
    b = balancer(v, down=(22, 23))
    b.start()
    assert dests(b) == {"192.0.2.21": 1, "192.0.2.23": 0}


def test_starting_without_quorum_installs_the_sorry_server_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sorry = SorryServer(address=IP("192.0.2.99"), port=80, forwarding=DR)
    v = vs(rs(21, alpha=True), sorry_server=sorry)
    b = balancer(v, down=(21,))
    with caplog.at_level(logging.INFO):
        effects = b.start()
    assert dests(b) == {"192.0.2.99": 1}
    assert fifo(effects) == ["VS [192.0.2.10]:tcp:80 DOWN"]
    assert "Starting with quorum down 1+0=1 > 0 for VS [192.0.2.10]:tcp:80" in caplog.text
    assert "Adding sorry server [192.0.2.99]:tcp:80 to VS [192.0.2.10]:tcp:80" in caplog.text


def test_starting_without_quorum_and_without_sorry_server_is_silent() -> None:
    effects = balancer(vs(rs(21, alpha=True)), down=(21,)).start()
    assert fifo(effects) == []


# ------------------------------------------------------------------------ health changes


def test_a_failed_server_is_removed_with_its_notifications(
    caplog: pytest.LogCaptureFixture,
) -> None:
    v = vs(rs(21), rs(22))
    b = balancer(v)
    b.start()
    with caplog.at_level(logging.INFO):
        effects = change(b, v, 21, alive=False)
    assert [e for e in effects if not isinstance(e, LvsNotify)] == [DeleteDest(SVC, dest(21))]
    assert fifo(effects) == ["RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 DOWN"]
    assert scripts(effects) == ["/bin/down"]
    assert "Removing service [192.0.2.21]:tcp:80 from VS [192.0.2.10]:tcp:80" in caplog.text
    back = change(b, v, 21, alive=True)
    assert [e for e in back if not isinstance(e, LvsNotify)] == [AddDest(SVC, dest(21))]
    assert fifo(back) == ["RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 UP"]
    assert scripts(back) == ["/bin/up"]


def test_inhibit_on_failure_keeps_the_server_with_weight_0(
    caplog: pytest.LogCaptureFixture,
) -> None:
    v = vs(rs(21, inhibit_on_failure=True, weight=5), rs(22))
    b = balancer(v)
    b.start()
    with caplog.at_level(logging.INFO):
        effects = change(b, v, 21, alive=False, weight=5)
    assert EditDest(SVC, dest(21, 0)) in effects
    assert "Disabling service [192.0.2.21]:tcp:80 of VS [192.0.2.10]:tcp:80" in caplog.text
    with caplog.at_level(logging.INFO):
        assert EditDest(SVC, dest(21, 5)) in change(b, v, 21, alive=True, weight=5)
    assert "Enabling service [192.0.2.21]:tcp:80 of VS [192.0.2.10]:tcp:80" in caplog.text


def test_a_dynamic_weight_change_edits_the_destination() -> None:
    v = vs(rs(21), rs(22))
    b = balancer(v)
    b.start()
    assert change(b, v, 22, alive=True, weight=7) == [EditDest(SVC, dest(22, 7))]
    assert change(b, v, 22, alive=True, weight=7) == []


def test_a_late_report_for_an_unknown_server_does_nothing() -> None:
    v = vs(rs(21))
    b = balancer(v)
    b.start()
    assert change(b, v, 77, alive=False) == []


# ------------------------------------------------------------------ quorum, sorry server


def test_quorum_loss_swaps_the_pool_for_the_sorry_server_and_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sorry = SorryServer(address=IP("192.0.2.99"), port=80, forwarding=DR)
    v = vs(rs(21), rs(22), rs(23), quorum=2, sorry_server=sorry)
    b = balancer(v)
    b.start()
    change(b, v, 21, alive=False)
    assert dests(b) == {"192.0.2.22": 1, "192.0.2.23": 1}  # W=2 >= quorum 2
    with caplog.at_level(logging.INFO):
        lost = change(b, v, 22, alive=False)
    assert "Lost quorum 2-0=2 > 1 for VS [192.0.2.10]:tcp:80" in caplog.text
    assert dests(b) == {"192.0.2.99": 1}
    assert fifo(lost)[-1] == "VS [192.0.2.10]:tcp:80 DOWN"
    assert scripts(lost) == ["/bin/down", "/bin/qdown"]
    # while the sorry server is the pool, transitions are tracked but not pushed to IPVS
    for host, alive in ((23, False), (21, True)):  # W=0, then W=1: still no quorum
        tracked = change(b, v, host, alive=alive)
        assert [e for e in tracked if not isinstance(e, LvsNotify)] == []
        assert len(fifo(tracked)) == 1  # the RS line only
    assert dests(b) == {"192.0.2.99": 1}
    with caplog.at_level(logging.INFO):
        gained = change(b, v, 22, alive=True)  # W=2 again
    assert "Gained quorum 2+0=2 <= 2 for VS [192.0.2.10]:tcp:80" in caplog.text
    assert "Removing sorry server [192.0.2.99]:tcp:80 from VS [192.0.2.10]:tcp:80" in caplog.text
    assert dests(b) == {"192.0.2.21": 1, "192.0.2.22": 1}
    assert fifo(gained)[-1] == "VS [192.0.2.10]:tcp:80 UP"


def test_hysteresis_delays_both_the_loss_and_the_regain_of_quorum() -> None:
    v = vs(*(rs(h) for h in (21, 22, 23, 24, 25)), quorum=3, hysteresis=1)
    b = balancer(v)
    b.start()
    assert b.quorum(vs_key(v))
    change(b, v, 21, alive=False)
    change(b, v, 22, alive=False)  # W=3 ... 3-1=2: still up
    change(b, v, 23, alive=False)  # W=2: not below 2
    assert b.quorum(vs_key(v))
    change(b, v, 24, alive=False)  # W=1 < 2: lost
    assert not b.quorum(vs_key(v))
    change(b, v, 21, alive=True)
    change(b, v, 22, alive=True)  # W=3 < 3+1
    assert not b.quorum(vs_key(v))
    change(b, v, 23, alive=True)  # W=4 >= 4: regained
    assert b.quorum(vs_key(v))


def test_sorry_server_inhibit_keeps_an_idle_sorry_server_with_weight_0() -> None:
    sorry = SorryServer(address=IP("192.0.2.99"), port=80, inhibit=True, forwarding=DR)
    v = vs(rs(21), sorry_server=sorry)
    b = balancer(v)
    b.start()
    assert dests(b) == {"192.0.2.21": 1, "192.0.2.99": 0}
    effects = change(b, v, 21, alive=False)
    assert EditDest(SVC, dest(99, 1)) in effects
    assert dests(b) == {"192.0.2.99": 1}


def test_quorum_loss_without_sorry_server_only_notifies() -> None:
    v = vs(rs(21), rs(22), quorum=2)
    b = balancer(v)
    b.start()
    effects = change(b, v, 21, alive=False)
    assert dests(b) == {"192.0.2.22": 1}
    assert fifo(effects)[-1] == "VS [192.0.2.10]:tcp:80 DOWN"


# --------------------------------------------------------------------------------- shutdown


def test_stop_deletes_what_was_created_and_omega_notifies_on_the_way_down() -> None:
    v = vs(rs(21), rs(22), omega=True)
    b = balancer(v)
    b.start()
    effects = b.stop()
    assert effects[0] == DeleteService(SVC)
    assert fifo(effects) == [
        "RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 DOWN",
        "RS [192.0.2.22]:tcp:80 [192.0.2.10]:tcp:80 DOWN",
        "VS [192.0.2.10]:tcp:80 DOWN",
    ]
    assert b.table() == {}


def test_stop_without_omega_is_quiet_and_dont_release_ipvs_keeps_everything() -> None:
    v = vs(rs(21))
    quiet = balancer(v)
    quiet.start()
    assert quiet.stop() == [DeleteService(SVC)]
    kept = balancer(v)
    kept.start()
    assert kept.stop(release=False) == []  # -I
    assert kept.table() != {}


def test_lvs_flush_on_stop_flushes_instead_of_deleting_one_by_one() -> None:
    b = balancer(vs(rs(21)))
    b.start()
    assert b.stop(flush=True) == [FlushIpvs()]


# ---------------------------------------------------------------------------- reload


def test_reload_keeps_state_removes_gone_servers_and_adds_new_ones() -> None:
    v = vs(rs(21), rs(22))
    b = balancer(v)
    b.start()
    change(b, v, 22, alive=False)
    new_v = vs(rs(22), rs(23))
    states = {
        (vs_key(new_v), rs_key(r)): RsState(r.address.packed[-1] != 22, 1)
        for r in new_v.real_servers
    }
    effects = b.reconfigure(LvsConfig(virtual_servers=(new_v,)), states)
    assert DeleteDest(SVC, dest(21)) in effects
    assert AddDest(SVC, dest(23)) in effects
    assert fifo(effects) == ["RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 DOWN"]
    assert dests(b) == {"192.0.2.23": 1}


def test_reload_removing_a_virtual_server_deletes_its_service() -> None:
    v1, v2 = vs(rs(21)), vs(rs(22), port=443)
    b = balancer(v1, v2)
    b.start()
    effects = b.reconfigure(LvsConfig(virtual_servers=(v1,)), {})
    gone = IpvsService(
        family=socket.AF_INET, protocol=socket.IPPROTO_TCP, address=VIP, port=443, scheduler="rr"
    )
    assert DeleteService(gone) in effects
    assert "VS [192.0.2.10]:tcp:443 DOWN" in fifo(effects)


# ------------------------------------------------------------------- model -> IPVS values


def test_a_group_is_one_service_per_address_and_per_fwmark() -> None:
    group = VirtualServerGroup(
        name="G",
        ranges=(VsgAddressRange(first=IP("192.0.2.1"), last=IP("192.0.2.3"), port=8080),),
        fwmarks=(VsgFwmark(fwmark=5),),
    )
    v = vs(rs(21), address=None, port=0, group="G")
    services = services_for(v, {"G": group})
    assert [s.describe() for s in services] == [
        "TCP [192.0.2.1]:8080",
        "TCP [192.0.2.2]:8080",
        "TCP [192.0.2.3]:8080",
        "FWM 5",
    ]
    b = Balancer(LvsConfig(virtual_server_groups=(group,), virtual_servers=(v,)), {})
    effects = b.start()
    assert effects_summary(effects)[:2] == [
        "AddService TCP [192.0.2.1]:8080",
        "AddDest TCP [192.0.2.1]:8080 [192.0.2.21]:80 w1",
    ]
    assert fifo(effects) == ["VS [G]:0 UP"]


def test_persistence_scheduler_flags_and_tunnels_reach_the_ipvs_values() -> None:
    tun = Forwarding(
        method=ForwardingMethod.TUN,
        tunnel_type=TunnelType.GUE,
        tunnel_port=6080,
        tunnel_checksum=TunnelChecksum.CSUM,
    )
    v = vs(
        RealServer(address=IP("192.0.2.21"), port=80, forwarding=tun, uthreshold=9),
        fwmark=3,
        address=None,
        protocol=None,
        lvs_sched="sh",
        sched_flags=("sh-port", "sh-fallback"),
        persistence_timeout_s=300,
        persistence_granularity="255.255.255.0",
    )
    (svc,) = services_for(v, {})
    assert (svc.fwmark, svc.scheduler, svc.timeout, svc.netmask) == (3, "sh", 300, 24)
    assert svc.flags == SVC_F_PERSISTENT | SVC_F_SCHED1 | SVC_F_SCHED2
    b = balancer(v)
    effects = b.start()
    (d,) = [e.dest for e in effects if isinstance(e, AddDest)]
    assert (d.forward, d.tun_type, d.tun_port, d.tun_flags, d.u_threshold) == (
        FWD_TUNNEL,
        TUN_GUE,
        6080,
        TUN_F_CSUM,
        9,
    )
    assert fifo(effects) == ["VS FWM 3 UP"]


# ------------------------------------------------------------------------- reload migration


def test_a_reload_with_migrated_states_leaves_unchanged_services_alone() -> None:
    """spec §9.6: with the checkers' states migrated (CheckerSet(previous=...)), a service
    the reload does not change sees no IPVS operation, and its failed server stays out."""
    kept, changed = vs(rs(21), rs(22)), vs(rs(23), port=443)
    b = balancer(kept, changed)
    b.start()
    change(b, kept, 22, alive=False)
    grown = vs(rs(23), rs(24), port=443)
    lvs = LvsConfig(virtual_servers=(kept, grown))
    states = {
        (vs_key(v), rs_key(r)): RsState(r.address.packed[-1] != 22, 1)
        for v in lvs.virtual_servers
        for r in v.real_servers
    }
    effects = b.reconfigure(lvs, states)
    svc_443 = IpvsService(
        family=socket.AF_INET, protocol=socket.IPPROTO_TCP, address=VIP, port=443, scheduler="rr"
    )
    assert effects == [AddDest(svc_443, dest(24))]
    assert dests(b) == {"192.0.2.21": 1, "192.0.2.23": 1, "192.0.2.24": 1}


# ------------------------------------------------------------------------------- SMTP alerts


def mails(effects: list[LvsEffect]) -> list[tuple[str, str]]:
    return [(e.subject, e.body) for e in effects if isinstance(e, LvsMail)]


def test_quorum_changes_mail_a_virtual_server_with_smtp_alert() -> None:
    v = vs(rs(21, weight=3), rs(22), quorum=3, hysteresis=1, smtp_alert=True)
    b = balancer(v)
    name = "Virtualserver [192.0.2.10]:tcp:80"
    assert mails(b.start()) == [(f"{name} - UP", "=> Starting with quorum up 3+1=4 <= 4 <=")]
    assert mails(change(b, v, 21, alive=False, weight=3)) == [
        (f"{name} - DOWN", "=> Lost quorum 3-1=2 > 1 <=")
    ]
    assert mails(change(b, v, 21, alive=True, weight=3)) == [
        (f"{name} - UP", "=> Gained quorum 3+1=4 <= 4 <=")
    ]
    quiet = vs(rs(21), rs(22))  # smtp_alert is off for a VS unless configured
    q = balancer(quiet)
    assert mails(q.start()) == []
    assert mails(change(q, quiet, 21, alive=False)) == []


def test_starting_with_quorum_down_mails_it() -> None:
    sorry = SorryServer(address=IP("192.0.2.99"), port=80, forwarding=DR)
    v = vs(rs(21), sorry_server=sorry, smtp_alert=True)
    b = balancer(v, down=(21,))
    assert mails(b.start()) == [
        ("Virtualserver [192.0.2.10]:tcp:80 - DOWN", "=> Starting with quorum down 1+0=1 > 0 <=")
    ]


def test_real_servers_removed_by_a_reload_or_stopped_with_omega_are_mailed() -> None:
    silent = rs(23, smtp_alert=False)
    v = vs(rs(21), rs(22), silent, omega=True, smtp_alert=True)
    b = balancer(v)
    b.start()
    effects = b.reconfigure(LvsConfig(virtual_servers=(vs(rs(22), omega=True),)), {})
    assert mails(effects) == [
        (
            "Realserver [192.0.2.21]:tcp:80 of virtual server [192.0.2.10]:tcp:80 - DOWN",
            "=> Removing <=",
        )
    ]  # 23 has smtp_alert off; the new VS has no smtp_alert, so no quorum mail
    assert mails(b.stop()) == [
        (
            "Realserver [192.0.2.22]:tcp:80 of virtual server [192.0.2.10]:tcp:80 - DOWN",
            "=> Shutting down <=",
        )
    ]
    w = vs(rs(21), omega=True, smtp_alert=True)
    c = balancer(w)
    c.start()
    assert mails(c.stop())[-1] == (
        "Virtualserver [192.0.2.10]:tcp:80 - DOWN",
        "=> Shutting down <=",
    )


def test_a_removed_virtual_server_with_quorum_mails_the_loss() -> None:
    v1, v2 = vs(rs(21)), vs(rs(22), port=443, smtp_alert=True)
    b = balancer(v1, v2)
    b.start()
    effects = b.reconfigure(LvsConfig(virtual_servers=(v1,)), {})
    assert ("Virtualserver [192.0.2.10]:tcp:443 - DOWN", "=> Lost quorum 1-0=1 > 0 <=") in mails(
        effects
    )
    assert effects_summary([LvsMail("S", "B")]) == ["mail S B"]
