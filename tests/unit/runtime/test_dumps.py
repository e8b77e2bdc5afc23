"""SIGUSR1 data / SIGRTMIN+2 JSON dumps and the daemon's pure helpers (spec §7.2, §4.3)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from pathlib import Path

import pytest

from pykad.config.model import (
    Config,
    GlobalDefs,
    UnicastPeer,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VrrpInstance,
)
from pykad.fsm.machine import VrrpMachine
from pykad.runtime.daemon import identity
from pykad.runtime.driver import InstanceDriver, Ports
from pykad.runtime.dumps import DumpContext, dump_path, render_data, render_json, write_atomically

OWN = ipaddress.IPv4Address("192.0.2.1")
VIP = VirtualAddress(address=ipaddress.IPv4Interface("192.0.2.100/24"))

# keepalived 2.2.7's JSON for a fresh master (SIGRTMIN+2), captured on Debian 12.
KEEPALIVED_JSON = (
    '[{"data":{"iname":"VI_1","dont_track_primary":0,"skip_check_adv_addr":0,"strict_mode":0,'
    '"vmac_ifname":"","ifp_ifname":"d0","master_priority":0,"last_transition":1795575725.057705,'
    '"garp_delay":5,"garp_refresh":0,"garp_rep":5,"garp_refresh_rep":1,"garp_lower_prio_delay":5,'
    '"garp_lower_prio_rep":5,"lower_prio_no_advert":0,"higher_prio_send_advert":0,"vrid":51,'
    '"base_priority":100,"effective_priority":100,"vipset":true,"promote_secondaries":false,'
    '"adver_int":1,"master_adver_int":1,"accept":1,"nopreempt":false,"preempt_delay":0,"state":2,'
    '"wantstate":2,"version":2,"smtp_alert":false,"notify_deleted":false,'
    '"vips":["192.0.2.100\\/24 dev d0 scope global set"],"auth_type":0},"stats":{"advert_rcvd":0,'
    '"advert_sent":2,"become_master":1,"release_master":0,"packet_len_err":0,'
    '"advert_interval_err":0,"ip_ttl_err":0,"invalid_type_rcvd":0,"addr_list_err":0,'
    '"invalid_authtype":0,"authtype_mismatch":0,"auth_failure":0,"pri_zero_rcvd":0,'
    '"pri_zero_sent":0}}]'
)


class NullPorts:
    def send(self, payload_for: object) -> None:
        pass

    def absorb_repeats(self, packet: object, on_repeat: object = None) -> None:
        pass  # every packet is delivered (allowed by PacketPort)

    async def install(self, *a: object, **kw: object) -> None:
        pass

    async def remove(self, *a: object, **kw: object) -> None:
        pass

    async def announce(self, *a: object, **kw: object) -> None:
        pass

    def notify(self, kind: str, name: str, event: str, priority: int) -> None:
        pass


def master_driver(vloop: asyncio.AbstractEventLoop, cfg: VrrpInstance) -> InstanceDriver:
    async def scenario() -> InstanceDriver:
        p = NullPorts()
        ports = Ports(packets=p, addresses=p, announcer=p, notifier=p)
        driver = InstanceDriver(VrrpMachine(cfg, own_ip=OWN), ports, source=OWN)
        task = asyncio.create_task(driver.run())
        await asyncio.sleep(4)  # virtual time: past the 3.61 s down interval
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return driver

    return vloop.run_until_complete(scenario())


def instance(**kw: object) -> VrrpInstance:
    args: dict[str, object] = {
        "name": "VI_1",
        "vrid": 51,
        "interface": "d0",
        "virtual_addresses": (VIP,),
    }
    args.update(kw)
    return VrrpInstance(**args)  # type: ignore[arg-type]


def test_json_has_keepalived_keys_and_values(vloop: asyncio.AbstractEventLoop) -> None:
    driver = master_driver(vloop, instance())
    ours = json.loads(render_json([driver]))
    theirs = json.loads(KEEPALIVED_JSON)
    assert list(ours[0]["data"]) == list(theirs[0]["data"])
    assert list(ours[0]["stats"]) == list(theirs[0]["stats"])
    skip = {"last_transition", "master_priority"}  # a time; and see the report on the latter
    assert {k: v for k, v in ours[0]["data"].items() if k not in skip} == {
        k: v for k, v in theirs[0]["data"].items() if k not in skip
    }
    assert ours[0]["stats"]["become_master"] == 1


def test_json_subsecond_interval_is_not_truncated(vloop: asyncio.AbstractEventLoop) -> None:
    driver = master_driver(vloop, instance(version=3, advert_int_cs=10))
    assert json.loads(render_json([driver]))[0]["data"]["adver_int"] == 0.1


def test_data_dump_lines(vloop: asyncio.AbstractEventLoop) -> None:
    peer = UnicastPeer(address=ipaddress.IPv4Address("192.0.2.2"))
    cfg = instance(unicast_src_ip=OWN, unicast_peers=(peer,))
    driver = master_driver(vloop, cfg)
    text = render_data(
        DumpContext(
            config=Config(vrrp_instances=(cfg,)),
            drivers=[driver],
            sockets=["d0/IPv4/unicast 192.0.2.1"],
            sources={"VI_1": "192.0.2.1"},
        )
    )
    for line in (
        "------< VRRP Topology >------",
        " VRRP Instance = VI_1",
        "   State = MASTER",
        "   Using src_ip = 192.0.2.1",
        "     192.0.2.2 min_ttl 0 max_ttl 255",
        "   Virtual Router ID = 51",
        "   Effective priority = 100",
        "   Advert interval = 1 sec",
        "     192.0.2.100/24 dev d0 scope global set",
        " d0/IPv4/unicast 192.0.2.1",
    ):
        assert line in text.splitlines()


def test_dump_path_follows_tmpdir_for_defaults_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", "/var/tmp/x")
    assert dump_path(GlobalDefs().stats_dump_file) == "/var/tmp/x/keepalived.stats"
    assert dump_path("/srv/state.data") == "/srv/state.data"
    monkeypatch.setenv("TMPDIR", "relative")
    assert dump_path(GlobalDefs().json_dump_file) == "/tmp/keepalived.json"


def test_write_atomically(tmp_path: Path) -> None:
    target = tmp_path / "keepalived.stats"
    target.write_text("old")
    write_atomically(str(target), "new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keepalived.stats"]


def test_identity_decides_what_a_reload_keeps() -> None:
    config = Config()
    base = instance()
    assert identity(base, config) == identity(instance(priority=200, advert_int_cs=200), config)
    route = VirtualRoute(dst=ipaddress.ip_network("198.51.100.0/24"))
    assert identity(base, config) == identity(
        instance(virtual_routes=(route,), virtual_rules=(VirtualRule(),)), config
    )
    assert identity(base, config) != identity(instance(vrid=52), config)
    assert identity(base, config) != identity(instance(interface="d1"), config)
    peer = UnicastPeer(address=ipaddress.IPv4Address("192.0.2.2"))
    assert identity(base, config) != identity(
        instance(unicast_src_ip=OWN, unicast_peers=(peer,)), config
    )
    moved = Config(global_defs=GlobalDefs(vrrp_mcast_group4=ipaddress.IPv4Address("224.0.0.19")))
    assert identity(base, config) != identity(base, moved)
