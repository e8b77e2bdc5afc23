"""LvsManager (pykad.runtime.lvs): the balancer's effects reach IPVS in order and the notify
FIFOs get keepalived's LVS lines (spec §6.4, §9.6).

The kernel of this machine has no IPVS, so the table here is a recording stand-in with the
IpvsTable interface; the real table is exercised in the vm layer (tests/vm). The Notifier and
its FIFOs are the real ones.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from pathlib import Path

import pytest

from pykad.adapters.ipvs import IpvsDest, IpvsService, IpvsUnavailable
from pykad.check.checkerset import RsChange
from pykad.check.probes import ProbeResult
from pykad.config.load import LoadResult
from pykad.config.model import Config, GlobalDefs, NotifyFifo, TrackFile, VrrpInstance
from pykad.config.model_lvs import (
    FileCheck,
    LvsConfig,
    Protocol,
    RealServer,
    TcpCheck,
    VirtualServer,
)
from pykad.fsm.events import TrackFileChanged
from pykad.runtime.lvs import LvsManager, select_subsystems
from pykad.runtime.notify import Notifier
from pykad.testing.memipvs import MemoryIpvsTable

IP = ipaddress.IPv4Address
RS1 = RealServer(address=IP("192.0.2.21"), port=80)
RS2 = RealServer(address=IP("192.0.2.22"), port=80)
VS = VirtualServer(
    address=IP("192.0.2.10"), port=80, protocol=Protocol.TCP, real_servers=(RS1, RS2)
)


class RecordingTable:
    """The IpvsTable interface, recording the operations in order."""

    def __init__(self, *, available: bool = True) -> None:
        self.available = available
        self.ops: list[tuple[str, str]] = []
        self.closed = False

    async def open(self) -> None:
        if not self.available:
            raise IpvsUnavailable("IPVS: Can't initialize ipvs", None, "- ip_vs missing")

    def close(self) -> None:
        self.closed = True

    async def add_service(self, svc: IpvsService) -> None:
        self.ops.append(("add_service", svc.describe()))

    async def edit_service(self, svc: IpvsService) -> None:
        self.ops.append(("edit_service", svc.describe()))

    async def delete_service(self, svc: IpvsService) -> None:
        self.ops.append(("delete_service", svc.describe()))

    async def add_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        self.ops.append(("add_dest", f"{dest.address} w{dest.weight}"))

    async def edit_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        self.ops.append(("edit_dest", f"{dest.address} w{dest.weight}"))

    async def delete_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        self.ops.append(("delete_dest", f"{dest.address} w{dest.weight}"))

    async def flush(self) -> None:
        self.ops.append(("flush", ""))


def _read_fifo(path: Path) -> list[str]:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.read(fd, 65536).decode().splitlines()
    except BlockingIOError:
        return []
    finally:
        os.close(fd)


@pytest.mark.asyncio
async def test_health_changes_reach_ipvs_in_order_and_the_lvs_fifo(tmp_path: Path) -> None:
    lvs_fifo, vrrp_fifo = tmp_path / "lvs.fifo", tmp_path / "vrrp.fifo"
    config = Config(
        global_defs=GlobalDefs(
            lvs_notify_fifo=NotifyFifo(path=str(lvs_fifo)),
            vrrp_notify_fifo=NotifyFifo(path=str(vrrp_fifo)),
            lvs_flush=True,
        ),
        lvs=LvsConfig(virtual_servers=(VS,)),
    )
    notifier = Notifier(config)
    await notifier.open()
    table = RecordingTable()
    manager = LvsManager(config, notifier, table=table)  # type: ignore[arg-type]
    try:
        assert await manager.start()
        assert table.ops == [
            ("flush", ""),
            ("add_service", "TCP [192.0.2.10]:80"),
            ("add_dest", "192.0.2.21 w1"),
            ("add_dest", "192.0.2.22 w1"),
        ]
        manager._on_change(RsChange(VS, RS1, alive=False, weight=1))  # CheckerSet's callback
        manager._on_change(RsChange(VS, RS2, alive=True, weight=4))
        await manager._queue.join()
        await notifier.drain(5.0)
        assert table.ops[4:] == [("delete_dest", "192.0.2.21 w1"), ("edit_dest", "192.0.2.22 w4")]
        assert _read_fifo(lvs_fifo) == [
            "VS [192.0.2.10]:tcp:80 UP",
            "RS [192.0.2.21]:tcp:80 [192.0.2.10]:tcp:80 DOWN",
        ]
        assert _read_fifo(vrrp_fifo) == []  # LVS lines never go to vrrp_notify_fifo
        await manager.stop()
        assert table.ops[-1] == ("delete_service", "TCP [192.0.2.10]:80")
    finally:
        await manager.close()
        await notifier.close()
    assert table.closed


@pytest.mark.asyncio
async def test_without_ipvs_start_reports_false_and_programs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config(lvs=LvsConfig(virtual_servers=(VS,)))
    notifier = Notifier(config)
    table = RecordingTable(available=False)
    manager = LvsManager(config, notifier, table=table)  # type: ignore[arg-type]
    try:
        assert not await manager.start()
        await manager.stop()
    finally:
        await manager.close()
        await notifier.close()
    assert table.ops == []
    assert "ip_vs missing - the 1 virtual server(s) are disabled" in caplog.text


@pytest.mark.asyncio
async def test_dont_release_ipvs_leaves_the_table_at_stop() -> None:
    config = Config(lvs=LvsConfig(virtual_servers=(VS,)))
    notifier = Notifier(config)
    table = RecordingTable()
    manager = LvsManager(config, notifier, table=table, release_on_stop=False)  # type: ignore[arg-type]
    try:
        assert await manager.start()
        before = list(table.ops)
        await manager.stop()
        assert table.ops == before
    finally:
        await manager.close()
        await notifier.close()


def test_vrrp_only_and_check_only_keep_their_half_of_the_configuration() -> None:
    inst = VrrpInstance(name="VI_1", vrid=1, interface="eth0")
    config = Config(vrrp_instances=(inst,), lvs=LvsConfig(virtual_servers=(VS,)))
    result = LoadResult(config, (), {})
    vrrp = select_subsystems(result, vrrp=True, check=False).config
    check = select_subsystems(result, vrrp=False, check=True).config
    assert vrrp is not None
    assert check is not None
    assert (vrrp.vrrp_instances, vrrp.lvs.virtual_servers) == ((inst,), ())
    assert (check.vrrp_instances, check.lvs.virtual_servers) == ((), (VS,))
    assert select_subsystems(result, vrrp=True, check=True) is result
    assert dataclasses.replace(check, lvs=LvsConfig()) == dataclasses.replace(
        config, vrrp_instances=(), lvs=LvsConfig()
    )


# ------------------------------------------------------------------ reload, ha_suspend, files


def _drive(manager: LvsManager, rs: RealServer, ok: bool) -> None:
    """One probe result for the (first) checker of ``rs``, without I/O (the real probes
    run in tests/netns)."""
    assert manager.checkers is not None
    r = next(r for r in manager.checkers._runnables if r.server.rs == rs)
    assert r.schedule.start(0.0)
    manager.checkers._finish(r, ProbeResult(ok, "" if ok else "ECONNREFUSED"))


def _checked(host: str, **kw: object) -> RealServer:
    address = IP(host)
    check = TcpCheck(connect_ip=address, connect_port=80, warmup_s=3600.0, delay_loop_s=3600.0)
    return RealServer(address=address, port=80, checkers=(check,), **kw)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_reload_keeps_a_failed_server_out_and_leaves_unchanged_services_alone() -> None:
    """spec §9.6 "state of unchanged checkers migrated": the failed real server of a service
    the reload does not touch stays out of IPVS, and that service sees no operation."""
    rs1, rs2, rs3 = _checked("192.0.2.21"), _checked("192.0.2.22"), _checked("192.0.2.23")
    web = VirtualServer(
        address=IP("192.0.2.10"), port=80, protocol=Protocol.TCP, real_servers=(rs1, rs2)
    )
    mail = VirtualServer(
        address=IP("192.0.2.10"), port=25, protocol=Protocol.TCP, real_servers=(rs3,)
    )
    config = Config(lvs=LvsConfig(virtual_servers=(web, mail)))
    notifier = Notifier(config)
    table = MemoryIpvsTable()
    manager = LvsManager(config, notifier, table=table)  # type: ignore[arg-type]
    try:
        assert await manager.start()
        _drive(manager, rs1, ok=False)
        await manager._queue.join()
        assert table.weights()["TCP [192.0.2.10]:80"] == {"192.0.2.22:80": 1}
        before = len(table.ops)
        rs4 = RealServer(address=IP("192.0.2.24"), port=25)
        grown = dataclasses.replace(mail, real_servers=(rs3, rs4))
        await manager.reload(Config(lvs=LvsConfig(virtual_servers=(web, grown))))
        assert table.ops[before:] == ["add_dest TCP [192.0.2.10]:25 192.0.2.24:25 w1"]
        assert manager.checkers is not None
        assert manager.checkers.state(web, rs1).alive is False
        _drive(manager, rs1, ok=True)  # the migrated checker brings it back when it recovers
        await manager._queue.join()
        assert table.ops[-1] == "add_dest TCP [192.0.2.10]:80 192.0.2.21:80 w1"
    finally:
        await manager.close()
        await notifier.close()


@pytest.mark.asyncio
async def test_local_addresses_suspend_and_resume_the_checkers_of_ha_suspend() -> None:
    rs1 = _checked("192.0.2.21")
    vip = IP("192.0.2.10")
    vs = VirtualServer(
        address=vip, port=80, protocol=Protocol.TCP, ha_suspend=True, real_servers=(rs1,)
    )
    config = Config(lvs=LvsConfig(virtual_servers=(vs,)))
    notifier = Notifier(config)
    manager = LvsManager(config, notifier, table=MemoryIpvsTable())  # type: ignore[arg-type]

    def active() -> bool:
        assert manager.checkers is not None
        schedule = manager.checkers.schedule(vs, rs1, 0)
        assert schedule is not None
        return schedule.enabled

    try:
        manager.local_addresses({vip})  # known before the start: applied when it builds
        assert await manager.start()
        assert active()
        manager.local_addresses({IP("192.0.2.1")})  # the VIP left: a backup director
        assert not active()
        await manager.reload(
            Config(
                lvs=LvsConfig(
                    virtual_servers=(
                        dataclasses.replace(
                            vs, quorum=1, real_servers=(rs1, _checked("192.0.2.22"))
                        ),
                    )
                )
            )
        )
        assert not active()  # still known after the reload
        manager.local_addresses({vip, IP("192.0.2.1")})
        assert active()
    finally:
        await manager.close()
        await notifier.close()


@pytest.mark.asyncio
async def test_a_track_file_change_moves_the_weight_in_ipvs(tmp_path: Path) -> None:
    """FILE_CHECK while running (spec §9.5): the manager reads the file at start and
    follows its changes (the inotify path end to end is in tests/netns/test_lvs_runtime)."""
    path = tmp_path / "weight"
    path.write_text("2\n")
    rs1 = RealServer(
        address=IP("192.0.2.21"), port=80, checkers=(FileCheck(track_file="w", weight=3),)
    )
    vs = VirtualServer(
        address=IP("192.0.2.10"), port=80, protocol=Protocol.TCP, real_servers=(rs1,)
    )
    config = Config(
        track_files=(TrackFile(name="w", path=str(path)),),
        lvs=LvsConfig(virtual_servers=(vs,)),
    )
    notifier = Notifier(config)
    table = MemoryIpvsTable()
    manager = LvsManager(config, notifier, table=table)  # type: ignore[arg-type]
    try:
        assert await manager.start()
        assert table.weights() == {"TCP [192.0.2.10]:80": {"192.0.2.21:80": 7}}  # 1 + 2 * 3
        manager._on_file(TrackFileChanged("w", 5))
        await manager._queue.join()
        assert table.weights() == {"TCP [192.0.2.10]:80": {"192.0.2.21:80": 16}}
        manager._on_file(TrackFileChanged("w", -1))  # 1 - 3 < 0: clamped to weight 0
        await manager._queue.join()
        assert table.ops[-1] == "edit_dest TCP [192.0.2.10]:80 192.0.2.21:80 w0"
    finally:
        await manager.close()
        await notifier.close()
