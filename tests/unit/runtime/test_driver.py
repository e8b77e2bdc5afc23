"""The instance driver on a virtual-time loop: real machine, real codec, recording ports.

No wall-clock time passes: the loop jumps to the machine's deadlines (see conftest.py), so
the times asserted below are the machine's own (down interval = 3 x 1 s + skew(100)).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from pykad.adapters.ports import ReceivedPacket
from pykad.config.model import (
    Auth,
    AuthType,
    IPAddress,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VrrpInstance,
)
from pykad.errors import AdapterError, InvalidTransition
from pykad.fsm import timing
from pykad.fsm.effects import Effect
from pykad.fsm.events import AdvertReceived, Event, Reconfigure, Shutdown, TrackerChanged
from pykad.fsm.machine import VrrpMachine
from pykad.proto.advert import Advert, decode, encode
from pykad.proto.constants import VRRP_GROUP_V4
from pykad.runtime.driver import Inbox, InstanceDriver, Ports

OWN = ipaddress.IPv4Address("192.0.2.1")
PEER = ipaddress.IPv4Address("192.0.2.2")
VIP = VirtualAddress(address=ipaddress.IPv4Interface("192.0.2.100/24"))
DOWN_S = timing.master_down_s(100, 100, 2)  # 3 x 1 s + (256 - 100) / 256


@dataclass
class Recorder:
    loop: asyncio.AbstractEventLoop
    calls: list[tuple[float, str, object]] = field(default_factory=list)
    fail_install: bool = False
    absorbing: tuple[ReceivedPacket, Callable[[float], None]] | None = None

    def add(self, what: str, detail: object) -> None:
        self.calls.append((self.loop.time(), what, detail))

    def kinds(self) -> list[str]:
        return [what for _, what, _ in self.calls]

    # PacketPort
    def send(self, payload_for: Callable[[IPAddress], bytes]) -> None:
        advert = decode(payload_for(VRRP_GROUP_V4), family=4, src=OWN, dst=VRRP_GROUP_V4)
        self.add("send", advert.priority)

    def absorb_repeats(
        self, packet: ReceivedPacket | None, on_repeat: Callable[[float], None] | None = None
    ) -> None:
        """Recorded; a test plays the socket by calling ``repeat()``."""
        self.absorbing = None if packet is None or on_repeat is None else (packet, on_repeat)

    def repeat(self) -> None:
        """The socket read a byte-identical copy of the absorbed packet, now."""
        assert self.absorbing is not None, "the driver did not ask to absorb repeats"
        self.absorbing[1](self.loop.time())

    # AddressPort
    async def install(
        self,
        addresses: Sequence[VirtualAddress],
        routes: Sequence[VirtualRoute] = (),
        rules: Sequence[VirtualRule] = (),
        *,
        default_dev: str | None,
    ) -> None:
        self.add("install", (tuple(str(a.address) for a in addresses), default_dev))
        if self.fail_install:
            raise AdapterError("add address", 1, "EPERM")

    async def remove(
        self,
        addresses: Sequence[VirtualAddress],
        routes: Sequence[VirtualRoute] = (),
        rules: Sequence[VirtualRule] = (),
        *,
        default_dev: str | None,
    ) -> None:
        self.add("remove", (tuple(str(a.address) for a in addresses), default_dev))

    # AnnouncePort
    async def announce(
        self, addresses: Sequence[VirtualAddress], repeat: int, *, default_dev: str | None
    ) -> None:
        self.add("announce", (tuple(str(a.ip) for a in addresses), repeat))

    # NotifyPort
    def notify(self, kind: str, name: str, event: str, priority: int) -> None:
        self.add("notify", (kind, name, str(event), priority))


def instance(**kw: object) -> VrrpInstance:
    args: dict[str, object] = {
        "name": "VI_1",
        "vrid": 51,
        "interface": "eth0",
        "virtual_addresses": (VIP,),
    }
    args.update(kw)
    return VrrpInstance(**args)  # type: ignore[arg-type]


def make_driver(rec: Recorder, cfg: VrrpInstance) -> InstanceDriver:
    machine = VrrpMachine(cfg, own_ip=OWN)
    ports = Ports(packets=rec, addresses=rec, announcer=rec, notifier=rec)
    return InstanceDriver(machine, ports, source=OWN)


def advert_packet(
    priority: int, *, src: IPAddress = PEER, ttl: int = 255, **kw: object
) -> ReceivedPacket:
    fields: dict[str, object] = {
        "version": 2,
        "vrid": 51,
        "priority": priority,
        "adver_int_cs": 100,
        "addresses": (VIP.ip,),
    }
    fields.update(kw)
    payload = encode(Advert(**fields), src=src, dst=VRRP_GROUP_V4)  # type: ignore[arg-type]
    return ReceivedPacket(
        ifindex=2,
        src=src,
        dst=VRRP_GROUP_V4,
        ttl=ttl,
        payload=payload,
        ip_total_length=20 + len(payload),
    )


async def _until(driver: InstanceDriver, t: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(t - loop.time())


def test_startup_master_shutdown_port_calls_in_order(vloop: asyncio.AbstractEventLoop) -> None:
    rec = Recorder(vloop)

    async def scenario() -> InstanceDriver:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        await _until(driver, DOWN_S + 2.5)  # master, then two more adverts at +1 s, +2 s
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    driver = vloop.run_until_complete(scenario())
    vip = (("192.0.2.100/24",), "eth0")
    assert rec.calls == [
        (0.0, "notify", ("INSTANCE", "VI_1", "BACKUP", 100)),
        (DOWN_S, "send", 100),  # spec §5.5: the advert goes out before the addresses
        (DOWN_S, "install", vip),
        (DOWN_S, "notify", ("INSTANCE", "VI_1", "MASTER", 100)),
        (DOWN_S, "announce", (("192.0.2.100",), 5)),  # background burst, after the notify
        (DOWN_S + 1, "send", 100),
        (DOWN_S + 2, "send", 100),
        (DOWN_S + 2.5, "send", 0),  # spec §5.8: masters resign with priority 0
        (DOWN_S + 2.5, "remove", vip),
        (DOWN_S + 2.5, "notify", ("INSTANCE", "VI_1", "STOP", 100)),
    ]
    assert driver.stats.advert_sent == 4
    assert driver.stats.pri_zero_sent == 1
    assert driver.stats.become_master == 1
    assert driver.finished


def test_higher_priority_advert_demotes_and_garbage_is_counted(
    vloop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(vloop)
    caplog.set_level(logging.DEBUG, logger="pykad.runtime.driver")

    async def scenario() -> InstanceDriver:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        await _until(driver, DOWN_S + 0.5)
        assert driver.machine.state == "MASTER"
        driver.on_packet(advert_packet(150, ttl=64))  # wrong TTL: discarded
        driver.on_packet(advert_packet(150, ttl=64))  # counted again, logged once
        driver.on_packet(advert_packet(150, addresses=()))  # VIP count mismatch in MASTER
        driver.on_packet(advert_packet(100, adver_int_cs=200))  # v2 interval mismatch
        await _until(driver, DOWN_S + 0.6)
        assert driver.machine.state == "MASTER"
        driver.on_packet(advert_packet(150))
        await _until(driver, DOWN_S + 0.7)
        assert driver.machine.state == "BACKUP"
        assert driver.machine.master_ip == PEER
        driver.on_packet(advert_packet(0))  # the master resigns
        await _until(driver, DOWN_S + 0.8)
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    driver = vloop.run_until_complete(scenario())
    stats = driver.stats
    assert (stats.ip_ttl_err, stats.addr_list_err, stats.advert_interval_err) == (2, 1, 1)
    assert (stats.advert_rcvd, stats.pri_zero_rcvd, stats.release_master) == (2, 1, 1)
    assert caplog.text.count("invalid TTL/HL. Received 64 and expect 255") == 1
    demoted = [c for c in rec.calls if c[0] == pytest.approx(DOWN_S + 0.6)]
    assert [c[1] for c in demoted] == ["remove", "notify"]
    assert demoted[1][2] == ("INSTANCE", "VI_1", "BACKUP", 100)


def test_inbox_next_returns_events_or_none_at_the_timeout(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    async def scenario() -> list[tuple[float, object]]:
        loop = asyncio.get_running_loop()
        inbox = Inbox()
        got: list[tuple[float, object]] = []

        async def take(wait_s: float | None) -> None:
            event = await inbox.next(wait_s)
            got.append((loop.time(), event))

        await take(2.0)  # nothing comes: None after 2 s
        loop.call_later(0.5, inbox.put_nowait, Shutdown())
        await take(2.0)  # woken by the put at 2.5
        loop.call_later(7.0, inbox.put_nowait, Shutdown(deleted=True))
        await take(None)  # no timeout: waits for it
        inbox.put_nowait(Shutdown())
        await take(0.0)  # queued already: returned
        await take(0.0)  # empty and due: None at once
        return got

    assert vloop.run_until_complete(scenario()) == [
        (2.0, None),
        (2.5, Shutdown()),
        (9.5, Shutdown(deleted=True)),
        (9.5, Shutdown()),
        (9.5, None),
    ]


def test_repeated_adverts_each_count_and_a_reconfigure_validates_again(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    """The driver reuses the validation of a byte-identical repeat (a steady master sends the
    same advert every interval): every repeat still reaches the machine and the counters,
    and a new configuration (a new receive policy) validates the same bytes again."""
    rec = Recorder(vloop)
    same = advert_packet(150)

    async def scenario() -> InstanceDriver:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        for second in range(10):  # 10 s of adverts: far past one master-down interval
            await _until(driver, 0.5 + second)
            driver.on_packet(same)
        await _until(driver, 10.0)
        assert driver.machine.state == "BACKUP"  # every repeat reset the down timer
        # v2: a receiver whose advert_int differs discards the advert (spec §5.7)
        driver.inbox.put_nowait(Reconfigure(instance(advert_int_cs=200)))
        await _until(driver, 10.1)
        driver.on_packet(same)
        await _until(driver, 10.2)
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    driver = vloop.run_until_complete(scenario())
    assert (driver.stats.advert_rcvd, driver.stats.advert_interval_err) == (10, 1)


def test_adapter_failure_is_logged_and_the_machine_goes_on(
    vloop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(vloop, fail_install=True)

    async def scenario() -> InstanceDriver:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        await _until(driver, DOWN_S + 1.5)
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    driver = vloop.run_until_complete(scenario())
    assert driver.stats.other["adapter_errors"] == 1
    assert "(VI_1) InstallVips failed: add address: errno 1 EPERM" in caplog.text
    assert rec.kinds()[rec.kinds().index("install") + 1 :][:3] == ["notify", "announce", "send"]


def test_startup_delay_keeps_init_then_starts(vloop: asyncio.AbstractEventLoop) -> None:
    rec = Recorder(vloop)

    async def scenario() -> InstanceDriver:
        machine = VrrpMachine(instance(), own_ip=OWN)
        ports = Ports(packets=rec, addresses=rec, announcer=rec, notifier=rec)
        driver = InstanceDriver(machine, ports, source=OWN, startup_delay_s=10)
        task = asyncio.create_task(driver.run())
        await _until(driver, 5)
        driver.on_packet(advert_packet(200))  # INIT ignores adverts (spec §5.7 check 3)
        await _until(driver, 9.9)
        assert driver.machine.state == "INIT"
        await _until(driver, 10.1)
        assert driver.machine.state == "BACKUP"
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    driver = vloop.run_until_complete(scenario())
    assert rec.calls[0] == (10.0, "notify", ("INSTANCE", "VI_1", "BACKUP", 100))
    assert driver.stats.advert_rcvd == 0


def test_auth_pass_is_sent_and_checked(vloop: asyncio.AbstractEventLoop) -> None:
    rec = Recorder(vloop)
    auth = Auth(type=AuthType.PASS, password=b"secret\0\0")

    async def scenario() -> InstanceDriver:
        driver = make_driver(rec, instance(auth=auth))
        payload = driver.encoder.payload_for(100)(VRRP_GROUP_V4)
        assert payload[-8:] == b"secret\0\0"
        task = asyncio.create_task(driver.run())
        await _until(driver, 1)
        driver.on_packet(advert_packet(200, auth_type=1, auth_data=b"wrong\0\0\0"))
        driver.on_packet(advert_packet(200))  # no auth at all
        driver.on_packet(advert_packet(200, auth_type=1, auth_data=b"secret\0\0"))
        await _until(driver, 2)
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    driver = vloop.run_until_complete(scenario())
    assert (driver.stats.auth_failure, driver.stats.authtype_mismatch) == (1, 1)
    assert driver.stats.advert_rcvd == 1
    assert driver.machine.master_ip == PEER


# ---------------------------------------------------------------------- the fast path


def test_a_steady_backup_handles_adverts_in_the_receive_callback(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    """While the task waits idle, an advert is decided at once (no task wake-up): the
    machine has learned the master when on_packet returns, and the inbox stays empty."""
    rec = Recorder(vloop)

    async def scenario() -> InstanceDriver:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        await _until(driver, 0.5)
        assert driver.inbox.idle
        driver.on_packet(advert_packet(150))
        assert driver.machine.master_ip == PEER
        assert driver.inbox.empty()
        assert driver.inbox.idle
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    driver = vloop.run_until_complete(scenario())
    assert driver.stats.advert_rcvd == 1


def test_a_packet_during_effects_waits_for_them(vloop: asyncio.AbstractEventLoop) -> None:
    """A higher-priority advert that arrives while the new master's VIPs are being installed
    is handled after that event's effects (install, then notify MASTER), not in between."""
    rec = Recorder(vloop)
    gate = asyncio.Event()
    install = rec.install

    async def slow_install(*args: object, **kw: object) -> None:
        await install(*args, **kw)  # type: ignore[arg-type]
        await gate.wait()

    rec.install = slow_install  # type: ignore[method-assign]

    async def scenario() -> InstanceDriver:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        await _until(driver, DOWN_S + 0.1)  # MASTER, blocked in install
        assert rec.kinds()[-1] == "install"
        driver.on_packet(advert_packet(150))
        assert not driver.inbox.idle
        assert driver.inbox.qsize() == 1
        assert driver.machine.state == "MASTER"  # not decided yet
        gate.set()
        await _until(driver, DOWN_S + 0.2)
        assert driver.machine.state == "BACKUP"
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    vloop.run_until_complete(scenario())
    notified = [detail for _, what, detail in rec.calls if what == "notify"]
    assert [n[2] for n in notified] == ["BACKUP", "MASTER", "BACKUP", "STOP"]  # type: ignore[index]
    removed = next(t for t, what, _ in rec.calls if what == "remove")
    assert removed == pytest.approx(DOWN_S + 0.1)  # the demotion, once the install returned
    assert rec.kinds().index("remove") > rec.kinds().index("install")


def test_a_resigning_master_moves_the_deadline_earlier(vloop: asyncio.AbstractEventLoop) -> None:
    """Priority 0 in BACKUP: master down after Skew_Time (RFC 5798 6.4.2 (380)-(385)); the
    inbox timer, armed for the full down interval, is re-armed for the earlier deadline."""
    rec = Recorder(vloop)

    async def scenario() -> None:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        await _until(driver, 1.0)
        driver.on_packet(advert_packet(150))
        await _until(driver, 2.0)
        driver.on_packet(advert_packet(0))
        await _until(driver, 3.0)
        driver.inbox.put_nowait(Shutdown())
        await task

    vloop.run_until_complete(scenario())
    became = next(t for t, what, _ in rec.calls if what == "install")
    assert became == pytest.approx(2.0 + timing.skew_s(100, 100, 2))


def test_a_master_sends_from_the_timer_and_effects_keep_their_order(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    """A lower-priority advert to a master (spec §5.4 item 3) is answered at once, in the
    receive callback: the forced advert, then the notify, in the machine's order; the advert
    timer then restarts from that send."""
    rec = Recorder(vloop)

    async def scenario() -> None:
        driver = make_driver(rec, instance(garp_lower_prio_repeat=0))
        task = asyncio.create_task(driver.run())
        await _until(driver, DOWN_S + 0.5)
        mark = len(rec.calls)
        driver.on_packet(advert_packet(50))
        assert rec.kinds()[mark:] == ["send", "notify"]
        await _until(driver, DOWN_S + 1.9)
        driver.inbox.put_nowait(Shutdown())
        await task

    vloop.run_until_complete(scenario())
    sends = [t for t, what, prio in rec.calls if what == "send" and prio == 100]
    assert sends == pytest.approx([DOWN_S, DOWN_S + 0.5, DOWN_S + 1.5])


def test_a_machine_error_in_the_fast_path_ends_the_task(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    """A bug in the machine raised in a receive callback is not lost in the socket pool's
    handler: the driver's task raises it, as it would have handled the event itself."""
    rec = Recorder(vloop)

    class Broken(VrrpMachine):
        def handle(self, event: Event, now: float) -> list[Effect]:
            if isinstance(event, AdvertReceived):
                raise InvalidTransition(self.state, self.state, "broken")
            return super().handle(event, now)

    async def scenario() -> None:
        machine = Broken(instance(), own_ip=OWN)
        ports = Ports(packets=rec, addresses=rec, announcer=rec, notifier=rec)
        driver = InstanceDriver(machine, ports, source=OWN)
        task = asyncio.create_task(driver.run())
        await _until(driver, 0.5)
        driver.on_packet(advert_packet(150))
        with pytest.raises(InvalidTransition):
            await task

    vloop.run_until_complete(scenario())


def test_inbox_deadline_read_again_when_the_timer_fires(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    """A deadline pushed later needs no new timer: the armed one fires, reads it again and
    waits on; one moved earlier is re-armed by deadline_changed(). on_due() handling the
    expiry keeps the wait going."""

    async def scenario() -> list[tuple[object, float]]:
        loop = asyncio.get_running_loop()
        inbox = Inbox()
        at: list[float | None] = [1.0]
        handled: list[float] = []
        got: list[tuple[object, float]] = []

        def on_due() -> bool:
            handled.append(loop.time())
            if len(handled) == 1:
                at[0] = 2.5  # handled here; the next deadline
                return True
            return False

        def push_later() -> None:
            at[0] = 1.5

        loop.call_later(0.5, push_later)
        got.append((await inbox.wait(lambda: at[0], loop.time, on_due), loop.time()))
        assert handled == [1.5, 2.5]

        def pull_earlier() -> None:
            at[0] = 3.0
            inbox.deadline_changed()

        at[0] = 10.0
        loop.call_later(0.1, pull_earlier)
        got.append((await inbox.wait(lambda: at[0], loop.time), loop.time()))
        inbox.close()
        return got

    assert vloop.run_until_complete(scenario()) == [(None, 2.5), (None, 3.0)]


def test_absorbed_repeats_keep_a_backup_and_time_its_takeover(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    """A steady backup asks the socket to absorb its master's repeats (the machine says they
    only push the deadline); each one counts, and the machine gets the latest when its timer
    comes: it stays BACKUP for as long as they come and takes over exactly the down interval
    after the last one."""
    rec = Recorder(vloop)

    async def scenario() -> InstanceDriver:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        await _until(driver, 0.5)
        driver.on_packet(advert_packet(150))
        assert rec.absorbing is not None
        for second in range(1, 10):  # absorbed copies at 1.5 ... 9.5, far past DOWN_S
            await _until(driver, 0.5 + second)
            rec.repeat()
        await _until(driver, 9.5 + DOWN_S - 0.01)
        assert driver.machine.state == "BACKUP"
        await _until(driver, 9.5 + DOWN_S + 0.5)
        assert driver.machine.state == "MASTER"
        assert rec.absorbing is None  # a master absorbs nothing
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    driver = vloop.run_until_complete(scenario())
    assert driver.stats.advert_rcvd == 10
    became = next(t for t, what, _ in rec.calls if what == "install")
    assert became == pytest.approx(9.5 + DOWN_S)


def test_an_event_stops_absorbing_and_comes_after_the_repeats_before_it(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    """Anything put in the inbox stops the absorbing at once, and the machine gets the
    repeats read before it first (the deadline is the last repeat's)."""
    rec = Recorder(vloop)

    async def scenario() -> None:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        await _until(driver, 0.5)
        driver.on_packet(advert_packet(150))
        await _until(driver, 1.0)
        rec.repeat()
        await _until(driver, 1.2)
        driver.inbox.put_nowait(TrackerChanged("interface", "eth9", up=False))  # untracked
        assert rec.absorbing is None
        await _until(driver, 1.3)
        assert driver.machine.next_deadline() == pytest.approx(1.0 + DOWN_S)
        driver.inbox.put_nowait(Shutdown())
        await task

    vloop.run_until_complete(scenario())


def test_another_advert_after_absorbed_repeats_goes_the_full_path(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    """A different advert (the master resigns) is decided after the repeats read before it,
    and is not absorbed itself: master down at its time + Skew_Time."""
    rec = Recorder(vloop)

    async def scenario() -> InstanceDriver:
        driver = make_driver(rec, instance())
        task = asyncio.create_task(driver.run())
        await _until(driver, 0.5)
        driver.on_packet(advert_packet(150))
        await _until(driver, 1.5)
        rec.repeat()
        await _until(driver, 2.0)
        driver.on_packet(advert_packet(0))
        assert rec.absorbing is None
        await _until(driver, 3.0)
        driver.inbox.put_nowait(Shutdown())
        await task
        return driver

    driver = vloop.run_until_complete(scenario())
    assert (driver.stats.advert_rcvd, driver.stats.pri_zero_rcvd) == (3, 1)
    became = next(t for t, what, _ in rec.calls if what == "install")
    assert became == pytest.approx(2.0 + timing.skew_s(100, 100, 2))
