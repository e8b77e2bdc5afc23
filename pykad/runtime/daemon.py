"""The daemon: startup, one driver task per instance, signals, reload, shutdown (spec §5.2, §7).

Theory of operation. :class:`Daemon` owns the shared adapters (netlink, the VRRP socket pool,
the link/address monitor, the GARP/NA announcer, the notifier) and an ``asyncio.TaskGroup``
holding one :class:`~pykad.runtime.driver.InstanceDriver` task per ``vrrp_instance``.

Startup follows keepalived (spec §5.2): stale VIPs/routes/rules of our instances are removed
without any advert (a previous run crashed), static addresses are installed, then each
instance gets its advert source (``mcast_src_ip``/``unicast_src_ip`` or the interface's
primary address), the initial state of what it tracks (its interface, tracked interfaces,
track files), its socket registration, and ``Startup``. Only then is systemd told
``READY=1``.

Signals (``loop.add_signal_handler``, spec §7.2): SIGTERM/SIGINT stop (masters resign with
priority 0 and remove their addresses, STOP notifies get 1 s); SIGHUP reloads; SIGUSR1,
SIGUSR2, SIGRTMIN+2 write the data, stats and JSON dumps; SIGRTMAX-1 writes the stats and
clears them (keepalived's STATS_CLEAR).

Reload (spec §5.2 step 6, §7.2 SIGHUP): a broken new configuration is reported with its
located diagnostics and the running one stays. Otherwise instances are matched by name:
the same identity (VRID, family, interface, unicast or multicast, unicast source or
multicast group, VMAC) keeps its machine and state, and gets ``Reconfigure`` only if its
configuration changed (a MASTER stays MASTER, no flap, no duplicate notify); anything else
is a removal (``Shutdown(deleted=True)``) and/or a new instance. If the sync groups change,
their members restart (pykad does not merge sync-group state across a reload).

Tracking (spec §4.2-4.4): :class:`~pykad.runtime.tracking.Trackers` runs the vrrp_scripts,
watches the track files and counts the tracked processes; its events go to every instance's
inbox (the machine ignores what it does not track). It starts before the instances, so their
machines begin with every state already known (scripts: once their first run reported).

The checker half (spec §7.1, §9): with virtual servers and neither ``-P`` nor ``-C`` the
daemon runs VRRP and supervises a checker child process
(:class:`~pykad.runtime.checker_child.CheckerChild`), so that health checks never delay
adverts; with ``-C`` (and in that child) :class:`~pykad.runtime.lvs.LvsManager` runs the
checkers in this event loop. Both sit behind :class:`CheckerHalf`.

Not done here (later issues): VMAC interfaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pykad import __version__
from pykad.adapters.announce import PacketAnnouncer
from pykad.adapters.netlink import AddressEvent, LinkEvent, LinkMonitor, NetlinkAddresses
from pykad.adapters.ports import AnnouncePort, ReceivedPacket
from pykad.adapters.rawsock import PacketCallback, VrrpSender, VrrpSocketPool
from pykad.config.diagnostics import Diagnostic, render
from pykad.config.load import startup_errors
from pykad.config.model import Config, IPAddress, VrrpInstance
from pykad.errors import AdapterError, ExitCode
from pykad.fsm.events import (
    GroupForce,
    Reconfigure,
    Shutdown,
    SourceAddressChanged,
    TrackerChanged,
)
from pykad.fsm.machine import VrrpMachine
from pykad.fsm.syncgroup import SyncGroup
from pykad.fsm.tracking import relations_for
from pykad.runtime.checker_child import (
    CheckerChild,
    ChildFormatter,
    ChildSpec,
    bind_to_parent,
    child_argv,
    child_env,
    pid_files_for,
    read_snapshot,
    splits,
    take_parent_pid,
    unblock_reload_signal,
)
from pykad.runtime.control import control_path as resolve_control_path
from pykad.runtime.driver import InstanceDriver, Ports
from pykad.runtime.dumps import DumpContext, dump_path, render_data, render_json, write_atomically
from pykad.runtime.lvs import LvsManager, select_subsystems
from pykad.runtime.notify import Notifier
from pykad.runtime.operator import Operator
from pykad.runtime.process import (
    PidFileError,
    claim_pid_files,
    release_pid_files,
    setup_logging,
)
from pykad.runtime.stats import render_stats
from pykad.runtime.status import ReloadOutcome
from pykad.runtime.systemd import sd_notify
from pykad.runtime.tracking import TrackerEvent, Trackers

log = logging.getLogger(__name__)

STOP_NOTIFY_DEADLINE_S = 1.0  # spec §6.3: STOP notify scripts get 1 s at shutdown
DRIVER_STOP_TIMEOUT_S = 5.0  # keepalived's child_wait_time
GROUP_SETTLE_TIMEOUT_S = 5.0  # a group notify_master waits at most this for its members


class Loaded(Protocol):
    """What :func:`pykad.config.load.load` returns (LoadResult)."""

    @property
    def config(self) -> Config | None: ...
    @property
    def diagnostics(self) -> Sequence[Diagnostic]: ...
    @property
    def lines(self) -> Mapping[str, Sequence[str]]: ...


class CheckerHalf(Protocol):
    """The checker half as the daemon drives it: in this process
    (:class:`~pykad.runtime.lvs.LvsManager`) or in a child
    (:class:`~pykad.runtime.checker_child.CheckerChild`)."""

    async def start(self) -> bool: ...
    async def reload(self, config: Config) -> None: ...
    async def stop(self) -> None: ...
    async def close(self) -> None: ...
    def local_addresses(self, addresses: Iterable[IPAddress]) -> None:
        """The addresses on this host's interfaces now (ha_suspend, spec §9.2)."""
        ...


@dataclass(eq=False)
class _Slot:
    """One running instance."""

    driver: InstanceDriver
    sender: VrrpSender
    source: IPAddress | None
    task: asyncio.Task[None] | None = None


def identity(cfg: VrrpInstance, config: Config) -> tuple[object, ...]:
    """What must stay equal for a reloaded instance to keep its state (spec §5.2 step 6)."""
    g = config.global_defs
    group = cfg.mcast_group or (g.vrrp_mcast_group4 if cfg.family == 4 else g.vrrp_mcast_group6)
    where = cfg.unicast_src_ip if cfg.is_unicast else group
    return (cfg.vrid, cfg.family, cfg.interface, cfg.is_unicast, where, cfg.use_vmac)


def _socket_args(cfg: VrrpInstance) -> tuple[object, ...]:
    return (cfg.unicast_peers, cfg.unicast_ttl, cfg.source_ip, cfg.mcast_group)


class Daemon:
    """Runs a loaded configuration until a stop signal; ``await run()`` gives the exit code."""

    def __init__(
        self,
        config: Config,
        *,
        loader: Callable[[], Loaded] | None = None,
        netns: str | None = None,
        release_vips: bool = True,
        script_timeout_s: float = 30.0,
        announcer: AnnouncePort | None = None,
        control_path: str | None = None,
        metrics_listen: tuple[str, int] | None = None,
        config_file: str | None = None,
        release_ipvs: bool = True,
        checker_child: ChildSpec | None = None,
        vrrp: bool = True,
        checkers: bool = True,
        child: bool = False,
    ) -> None:
        """``vrrp`` / ``checkers``: the halves this daemon runs (False with ``-C`` / ``-P``;
        the checker half runs in the ``checker_child`` when one is given); ``child``: this
        is the checker child of another pykad."""
        self.config = config
        self.loader = loader
        self.netns = netns
        self.release_vips = release_vips
        self.netlink = NetlinkAddresses(netns=netns)
        self.pool = VrrpSocketPool(
            netns=netns, log_unknown_vrids=config.global_defs.log_unknown_vrids
        )
        self.notifier = Notifier(
            config,
            script_timeout_s=script_timeout_s,
            vrrp=vrrp,
            lvs=checkers and checker_child is None,
            global_fifo_script=not child,
        )
        self.notifier.group_settled = self._group_settled
        self.monitor = LinkMonitor(self._on_link, self._on_address, netns=netns)
        self.trackers = Trackers(config, self._on_tracker)
        self._stop = asyncio.Event()
        self._failed = False  # a part we cannot run without died (the checker child, -R)
        # the checker half (spec §9): IPVS from the health checks; -I keeps IPVS at exit
        self.lvs: CheckerHalf
        if checker_child is not None:
            self.lvs = CheckerChild(
                config, checker_child, stopping=self._stop.is_set, on_fatal=self.fail
            )
        else:
            self.lvs = LvsManager(
                config,
                self.notifier,
                release_on_stop=release_ipvs,
            )
        self._announcer = announcer
        # the operator interface (pykad.runtime.operator): control socket, metrics
        self.control_path = control_path
        self.metrics_listen = metrics_listen
        self.config_file = config_file
        self.operator: Operator | None = None
        self.last_reload: ReloadOutcome | None = None
        self._owned_announcer: PacketAnnouncer | None = None
        self.slots: dict[str, _Slot] = {}
        self.groups: dict[str, SyncGroup] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[object]] = set()
        self._refreshing: set[tuple[str, int]] = set()  # (ifname, family) queued
        self._gone_links: set[str] = set()
        self._own_ips: frozenset[IPAddress] = frozenset()
        self._own_ips_of: Config | None = None  # the config _own_ips was computed from

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> ExitCode:
        # What exists now (the modules, the configuration) lives as long as the daemon: the
        # cyclic collector need not walk it again. Without this, the first full collection
        # walked it when a fresh daemon became master and delayed its GARP by 20-35 ms
        # (bench/failover.py --timeline, preemption: 2.5-4.5 ms after the advert with it).
        # Nothing is lost: a collection at this point finds no garbage.
        gc.freeze()
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        code = ExitCode.OK
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                code = await self._start()
                if code is ExitCode.OK:
                    await self._open_operator()
                    sd_notify("READY=1", f"MAINPID={os.getpid()}", "STATUS=running")
                    log.info("Startup complete")
                    await self._stop.wait()
                await self._shutdown()
                if self._failed:
                    code = ExitCode.FATAL
        except* AdapterError as group:
            for exc in group.exceptions:
                log.error("Fatal: %s", exc)
            code = ExitCode.FATAL
            await self._emergency_release()
        except* Exception as bugs:
            for bug in bugs.exceptions:
                log.critical("pykad bug: %r", bug, exc_info=bug)
            code = ExitCode.PROGRAM_ERROR
            await self._emergency_release()
        finally:
            self._remove_signals(loop)
            await self._close()
            if self.operator is not None:  # last: `pykad stop` waits for this
                await self.operator.close()
        log.info("Stopped pykad v%s", __version__)
        return code

    def request_stop(self) -> None:
        self._stop.set()

    def fail(self) -> None:
        """Stop with exit status 1: a part the daemon cannot run without is gone."""
        self._failed = True
        self._stop.set()

    async def _open_operator(self) -> None:
        """Control socket and metrics listener, once startup is complete (before READY=1,
        so that `systemctl start` returning means `pykad status` answers)."""
        if self.control_path is not None or self.metrics_listen is not None:
            self.operator = Operator(
                self,
                control_path=self.control_path,
                metrics_listen=self.metrics_listen,
                config_file=self.config_file,
            )
            await self.operator.open()

    async def _start(self) -> ExitCode:
        cfg = self.config
        try:
            await self.netlink.open()
            await self.monitor.start()
            self._local_addresses_changed()
            await self.notifier.open()
            if self._announcer is None:
                self._owned_announcer = self._make_announcer()
                self._announcer = self._owned_announcer
            # spec §5.2 step 2: leftovers of a crashed run go, without adverts
            await self.netlink.cleanup_stale(
                cfg.vrrp_instances, default_interface=cfg.global_defs.default_interface
            )
            await self._install_static(cfg)
            await self.trackers.start()
            self._build_groups(cfg)
            # One primary-address read per interface: no await between the instances, so
            # none of them runs (and times out) while the later ones are still being set up.
            known: dict[tuple[str, int], IPAddress | None] = {}
            for inst in cfg.vrrp_instances:
                await self._start_instance(inst, known)
            await self.lvs.start()  # without IPVS it logs why and VRRP runs on (or: the child)
        except AdapterError as exc:
            log.error("Startup failed: %s", exc)
            if exc.errno in (errno.EPERM, errno.EACCES):
                return ExitCode.NO_PERMISSION  # no CAP_NET_RAW / CAP_NET_ADMIN
            if exc.errno == errno.ENODEV:
                return ExitCode.CONFIG  # "Non-existent interface specified in configuration"
            return ExitCode.FATAL
        except ValueError as exc:  # an instance pykad cannot run (AH auth, duplicate VRID)
            log.error("Startup failed: %s", exc)
            return ExitCode.CONFIG
        return ExitCode.OK

    def _make_announcer(self) -> PacketAnnouncer:
        g = self.config.global_defs
        announcer = PacketAnnouncer(
            self.netlink,
            netns=self.netns,
            garp_interval_s=g.vrrp_garp_interval_s,
            gna_interval_s=g.vrrp_gna_interval_s,
        )
        announcer.configure(self.config.vrrp_instances)
        return announcer

    async def _install_static(self, cfg: Config) -> None:
        st = cfg.static
        if st.addresses or st.routes or st.rules:
            await self.netlink.install(
                st.addresses, st.routes, st.rules, default_dev=cfg.global_defs.default_interface
            )

    async def _remove_static(self, cfg: Config) -> None:
        st = cfg.static
        if st.addresses or st.routes or st.rules:
            await self.netlink.remove(
                st.addresses, st.routes, st.rules, default_dev=cfg.global_defs.default_interface
            )

    def _build_groups(self, cfg: Config) -> None:
        self.groups = {g.name: SyncGroup(g.name, g.members) for g in cfg.sync_groups}

    async def _shutdown(self) -> None:
        """spec §5.8: every instance gets Shutdown (masters send priority 0 and release).
        A reload being applied finishes first (none starts once stopping)."""
        async with self._reload_lock:
            await self._stop_all()

    async def _stop_all(self) -> None:
        sd_notify("STOPPING=1", "STATUS=stopping")
        log.info("Stopping")
        # at once, not after the instances: a checker child stops in parallel (the parent
        # SIGTERMs its children first, spec §7.2)
        checkers = asyncio.get_running_loop().create_task(self.lvs.stop(), name="stop checkers")
        for slot in self.slots.values():
            slot.driver.inbox.put_nowait(Shutdown())
        tasks = [s.task for s in self.slots.values() if s.task is not None]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=DRIVER_STOP_TIMEOUT_S)
            for task in pending:
                task.cancel()
        await checkers
        await self.notifier.drain(STOP_NOTIFY_DEADLINE_S)
        with contextlib.suppress(AdapterError):
            await self._remove_static(self.config)

    async def _emergency_release(self) -> None:
        """After a bug: still take our addresses away, so nothing is left behind."""
        for slot in self.slots.values():
            cfg = slot.driver.cfg
            if slot.driver.machine.state == "MASTER" and self.release_vips:
                with contextlib.suppress(AdapterError, OSError):
                    await self.netlink.remove(
                        (*cfg.virtual_addresses, *cfg.excluded_addresses),
                        cfg.virtual_routes,
                        cfg.virtual_rules,
                        default_dev=cfg.interface,
                    )

    async def _close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.trackers.close()
        self.pool.close()
        await self.monitor.close()
        await self.lvs.close()
        await self.notifier.close()
        if self._owned_announcer is not None:
            self._owned_announcer.close()
        self.netlink.close()

    # ------------------------------------------------------------------ instances

    async def _source_for(
        self, cfg: VrrpInstance, known: dict[tuple[str, int], IPAddress | None] | None = None
    ) -> IPAddress | None:
        """The advert source (spec §3.1); ``known`` caches reads by (interface, family)."""
        if cfg.source_ip is not None:
            return cfg.source_ip
        if cfg.interface is None:
            return None
        key = (cfg.interface, cfg.family)
        if known is not None and key in known:
            return known[key]
        source = await self.netlink.primary_address(
            cfg.interface, cfg.family, exclude=self._our_addresses()
        )
        if known is not None:
            known[key] = source
        return source

    def _our_addresses(self) -> frozenset[IPAddress]:
        """Every VIP and eVIP of the configuration (computed once per configuration: every
        address event asks)."""
        if self._own_ips_of is not self.config:
            self._own_ips = frozenset(
                v.ip
                for inst in self.config.vrrp_instances
                for v in (*inst.virtual_addresses, *inst.excluded_addresses)
            )
            self._own_ips_of = self.config
        return self._own_ips

    def _initial_trackers(self, cfg: VrrpInstance) -> dict[tuple[str, str], bool]:
        """Interfaces from the link monitor (a missing one is down); scripts that reported
        and process quorums from the trackers (a script with no result yet stays unknown)."""
        states = self.trackers.states()
        for rel in relations_for(cfg):
            if rel.kind == "interface":
                info = self.monitor.state(rel.name)
                states[rel.key] = info is not None and info.up
        return states

    async def _start_instance(
        self, cfg: VrrpInstance, known: dict[tuple[str, int], IPAddress | None] | None = None
    ) -> None:
        if cfg.use_vmac:
            log.warning(
                "(%s) use_vmac is not supported by pykad - using %s", cfg.name, cfg.interface
            )
        source = await self._source_for(cfg, known)
        sync = self.groups.get(cfg.sync_group) if cfg.sync_group else None
        machine = VrrpMachine(
            cfg,
            own_ip=source,
            initial_trackers=self._initial_trackers(cfg),
            initial_files=self.trackers.file_values(),
            source_present=source is not None,
            sync=sync,
        )
        name = cfg.name
        sender = self.pool.register_instance(
            cfg,
            self._receiver(name),
            source=source,
            global_defs=self.config.global_defs,
        )
        assert self._announcer is not None
        ports = Ports(
            packets=sender,
            addresses=self.netlink,
            announcer=self._announcer,
            notifier=self.notifier,
        )
        try:
            driver = InstanceDriver(
                machine,
                ports,
                source=source,
                global_defs=self.config.global_defs,
                group_router=self._route_group,
                startup_delay_s=self.config.global_defs.vrrp_startup_delay_s,
            )
        except ValueError:  # an RxPolicy pykad cannot apply (AH): free the VRID again
            sender.close()
            raise
        driver.release_vips_on_stop = self.release_vips
        slot = _Slot(driver, sender, source)
        self.slots[name] = slot
        assert self._tg is not None
        slot.task = self._tg.create_task(driver.run(), name=f"vrrp {name}")

    def _receiver(self, name: str) -> PacketCallback:
        """The socket callback of instance ``name`` (looked up per packet: the driver of a
        reloaded instance may be replaced)."""

        def receive(pkt: ReceivedPacket) -> None:
            slot = self.slots.get(name)
            if slot is not None:
                slot.driver.on_packet(pkt)

        return receive

    async def _stop_instance(self, name: str, *, deleted: bool) -> None:
        slot = self.slots[name]
        slot.driver.inbox.put_nowait(Shutdown(deleted=deleted))
        if slot.task is not None:
            await asyncio.wait([slot.task], timeout=DRIVER_STOP_TIMEOUT_S)
        slot.sender.close()
        del self.slots[name]

    async def _group_settled(self, group: str, state: str) -> None:
        """Wait until every running member of ``group`` has executed its move to ``state``.

        keepalived sends a sync group's notifies after it has forced every member into the
        new state (vrrp_sync.c), and its address changes are synchronous; here the members
        follow through their own inboxes, so the group's notify_master waits for all of them
        to have their addresses installed (issue 5: notify_master only after the addresses).
        Bounded: a member that cannot follow delays the group notification, never blocks it.
        """
        sync = self.groups.get(group)
        if sync is None:
            return
        drivers = [self.slots[m].driver for m in sync.members if m in self.slots]

        async def member(driver: InstanceDriver) -> None:
            async with driver.settled:
                await driver.settled.wait_for(
                    lambda: driver.settled_state == state or sync.state != state
                )

        try:
            async with asyncio.timeout(GROUP_SETTLE_TIMEOUT_S):
                await asyncio.gather(*(member(d) for d in drivers))
        except TimeoutError:
            late = [d.name for d in drivers if d.settled_state != state]
            log.warning("Sync group %s: %s not %s yet - notifying anyway", group, late, state)

    def _route_group(self, group: str, state: str, origin: str) -> None:
        """GroupSync from one member -> GroupForce for the others (spec §4.1)."""
        sync = self.groups.get(group)
        if sync is None:
            return
        for member in sync.members:
            slot = self.slots.get(member)
            if member != origin and slot is not None:
                slot.driver.inbox.put_nowait(GroupForce(state))

    # ------------------------------------------------------------------ tracking events

    def _on_tracker(self, event: TrackerEvent) -> None:
        """A script, file or process changed: every instance hears it; the machine knows
        whether (and with what weight) it tracks the object (spec §4.3)."""
        for slot in self.slots.values():
            slot.driver.inbox.put_nowait(event)

    # ------------------------------------------------------------------ link / address events

    def _on_link(self, ev: LinkEvent) -> None:
        if not ev.exists:
            self._gone_links.add(ev.ifname)
        elif ev.ifname in self._gone_links:
            # re-created interface: sockets held the old ifindex (bind + group membership)
            self._gone_links.discard(ev.ifname)
            try:
                self.pool.reopen(ev.ifname)
            except AdapterError as exc:
                log.error("Reopening VRRP sockets on %s failed: %s", ev.ifname, exc)
        for slot in self.slots.values():
            keys = {r.key for r in relations_for(slot.driver.cfg)}
            if ("interface", ev.ifname) in keys:
                slot.driver.inbox.put_nowait(TrackerChanged("interface", ev.ifname, ev.up))

    def _on_address(self, ev: AddressEvent) -> None:
        # Our own VIPs are never the advert source (spec §3.1, ``_source_for`` excludes
        # them): installing them needs no re-read. Any other address change on an interface
        # queues one re-read for all its instances. (Per instance and per event, 255
        # instances going MASTER cost 255 x 255 netlink dumps and flapped, bench/scale.py.)
        own = ev.address.ip in self._our_addresses()
        refresh = False
        for slot in self.slots.values():
            cfg = slot.driver.cfg
            if cfg.family != ev.family:
                continue
            if cfg.source_ip is not None:
                if cfg.track_src_ip and ev.address.ip == cfg.source_ip:
                    slot.driver.inbox.put_nowait(SourceAddressChanged(present=ev.present))
            elif cfg.interface == ev.ifname and not own:
                refresh = True
        key = (ev.ifname, ev.family)
        if refresh and key not in self._refreshing:
            self._refreshing.add(key)
            self._spawn(self._refresh_sources(*key))
        self._local_addresses_changed()

    def _local_addresses_changed(self) -> None:
        """ha_suspend (spec §9.2): the checkers follow the addresses on this host."""
        self.lvs.local_addresses(iface.ip for _, iface in self.monitor.present)

    def _spawn(self, coro: Coroutine[object, object, object]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh_sources(self, ifname: str, family: int) -> None:
        """The primary address of ``ifname`` may have changed: re-pick the advert source of
        every instance on it without a configured one (one netlink read serves them all)."""
        self._refreshing.discard((ifname, family))  # a change from now on queues another read
        try:
            source = await self.netlink.primary_address(
                ifname, family, exclude=self._our_addresses()
            )
        except AdapterError as exc:
            log.warning("Cannot read the addresses of %s: %s", ifname, exc)
            return
        for slot in self.slots.values():
            cfg = slot.driver.cfg
            if (
                cfg.source_ip is not None
                or cfg.interface != ifname
                or cfg.family != family
                or source == slot.source
            ):
                continue
            slot.source = source
            slot.sender.set_source(source)
            slot.driver.inbox.put_nowait(
                SourceAddressChanged(present=source is not None, address=source)
            )

    # ------------------------------------------------------------------ signals

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        loop.add_signal_handler(signal.SIGUSR1, self.write_data_dump)
        loop.add_signal_handler(signal.SIGUSR2, self.write_stats_dump)
        loop.add_signal_handler(signal.SIGRTMIN + 2, self.write_json_dump)
        loop.add_signal_handler(signal.SIGRTMAX - 1, lambda: self.write_stats_dump(clear=True))
        unblock_reload_signal()  # a checker child starts with SIGHUP blocked until now

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGUSR1,
            signal.SIGUSR2,
            signal.SIGRTMIN + 2,
            signal.SIGRTMAX - 1,
        ):
            loop.remove_signal_handler(sig)

    def _drivers(self) -> list[InstanceDriver]:
        return [s.driver for s in self.slots.values()]

    def _write(self, what: str, path: str, text: str) -> None:
        try:
            write_atomically(path, text)
        except OSError as exc:
            log.error("Cannot write %s to %s: %s", what, path, exc)
        else:
            log.info("Printing VRRP %s for process(%d) on signal", what, os.getpid())

    def write_data_dump(self) -> None:
        ctx = DumpContext(
            config=self.config,
            drivers=self._drivers(),
            sockets=self.pool.channels(),
            sources={n: str(s.source or "(none)") for n, s in self.slots.items()},
        )
        self._write("data", dump_path(self.config.global_defs.state_dump_file), render_data(ctx))

    def write_stats_dump(self, *, clear: bool = False) -> None:
        text = render_stats((d.name, d.stats) for d in self._drivers())
        self._write("stats", dump_path(self.config.global_defs.stats_dump_file), text)
        if clear:
            for d in self._drivers():
                d.stats.clear()

    def write_json_dump(self) -> None:
        path = dump_path(self.config.global_defs.json_dump_file)
        self._write("as json", path, render_json(self._drivers()))

    # ------------------------------------------------------------------ reload

    async def reload(self) -> bool:
        """SIGHUP (spec §7.2): apply a new configuration, or keep the old one if it is broken."""
        async with self._reload_lock:
            if self.loader is None or self._stop.is_set():
                why = "stopping" if self._stop.is_set() else "no configuration file to reload"
                self.last_reload = ReloadOutcome(False, time.time(), why)
                return False
            sd_notify("RELOADING=1", "STATUS=reloading")
            log.info("Reloading")
            try:
                ok = await self._reload()
            finally:
                sd_notify("READY=1", "STATUS=running")
            return ok

    async def _reload(self) -> bool:
        assert self.loader is not None
        result = await asyncio.to_thread(self.loader)
        if self._stop.is_set():  # a stop came while the file was read: apply nothing
            self.last_reload = ReloadOutcome(False, time.time(), "stopping")
            return False
        text = render(result.diagnostics, result.lines)
        errors = startup_errors(result.diagnostics)  # script security only warns
        for line in text.splitlines():
            (log.error if errors else log.warning)("%s", line)
        new = result.config
        if errors or new is None:
            log.error("Reload failed - keeping the running configuration")
            why = "the configuration has errors - the running one is kept"
            self.last_reload = ReloadOutcome(False, time.time(), why, text)
            return False
        old = self.config
        old_by_name = {i.name: i for i in old.vrrp_instances}
        new_by_name = {i.name: i for i in new.vrrp_instances}
        groups_changed = old.sync_groups != new.sync_groups
        grouped = {m for g in (*old.sync_groups, *new.sync_groups) for m in g.members}

        keep: dict[str, VrrpInstance] = {}
        restart: list[str] = []
        for name, old_cfg in old_by_name.items():
            new_cfg = new_by_name.get(name)
            if new_cfg is None:
                continue
            same = identity(old_cfg, old) == identity(new_cfg, new)
            if same and not (groups_changed and name in grouped):
                keep[name] = new_cfg
            else:
                restart.append(name)
        removed = [n for n in old_by_name if n not in new_by_name]
        # 1. removals first: their DELETED notifies use the old scripts, and the VRID they
        #    free may be taken by a new instance on the same socket
        for name in removed:
            await self._stop_instance(name, deleted=True)
        for name in restart:
            await self._stop_instance(name, deleted=False)
        # 2. the new configuration becomes current
        self.config = new
        await self.notifier.update(new)
        await self.lvs.reload(new)
        if old.static != new.static:
            with contextlib.suppress(AdapterError):
                await self._remove_static(old)
            await self._install_static(new)
        if groups_changed:
            self._build_groups(new)
        if self._owned_announcer is not None:
            self._owned_announcer.configure(new.vrrp_instances)  # GARP/NA pacing per interface
        # 3. matching instances keep their state; changed ones are reconfigured
        for name, new_cfg in keep.items():
            slot = self.slots[name]
            slot.driver.gdefs = new.global_defs
            old_cfg = old_by_name[name]
            if _socket_args(old_cfg) != _socket_args(new_cfg):
                self._rebind(slot, new_cfg)
            if new_cfg != old_cfg:
                slot.driver.inbox.put_nowait(Reconfigure(new_cfg))
            if new.global_defs.fifo_write_vrrp_states_on_reload:
                m = slot.driver.machine
                self.notifier.write_fifo("INSTANCE", name, str(m.state), m.effective_priority)
        if new.global_defs.fifo_write_vrrp_states_on_reload and not groups_changed:
            # keepalived resends "the VRRP instance and group states" (2.2.x ChangeLog);
            # rebuilt groups restart their members, which notify anyway
            for group in self.groups.values():
                if group.state != "INIT":
                    self.notifier.write_fifo("GROUP", group.name, group.state, 0)
        # after the Reconfigure events: the trackers re-report every state (spec §4.2: a
        # script of the same name keeps its result) and the machines track the new objects
        await self.trackers.update(new)
        # 4. new (and restarted) instances start
        known: dict[tuple[str, int], IPAddress | None] = {}
        for inst in new.vrrp_instances:
            if inst.name not in self.slots:
                try:
                    await self._start_instance(inst, known)
                except (AdapterError, ValueError) as exc:
                    log.error("(%s) cannot start: %s", inst.name, exc)
        log.info(
            "Reload complete: %d kept, %d removed, %d started",
            len(keep),
            len(removed),
            len(new_by_name) - len(keep),
        )
        self.last_reload = ReloadOutcome(
            True,
            time.time(),
            f"{len(keep)} kept, {len(removed)} removed, {len(new_by_name) - len(keep)} started",
            text,
        )
        return True

    def _rebind(self, slot: _Slot, cfg: VrrpInstance) -> None:
        """Peers/TTL/source changed: register the instance on its (possibly new) socket."""
        name = cfg.name
        slot.sender.close()
        source = cfg.source_ip or slot.source
        slot.sender = self.pool.register_instance(
            cfg,
            self._receiver(name),
            source=source,
            global_defs=self.config.global_defs,
        )
        slot.source = source
        slot.driver.ports = dataclasses.replace(slot.driver.ports, packets=slot.sender)
        if source is not None:
            slot.driver.set_source(source)


# ---------------------------------------------------------------------------------------------
# The command line's run mode


def run_from_cli(opts: Mapping[str, object]) -> ExitCode:
    """``pykad -f FILE`` (click's options dict from :mod:`pykad.cli`): the parent, ``-P``,
    ``-C``, or the checker child a parent started (:mod:`pykad.runtime.checker_child`)."""
    from pykad.config.load import load

    parent = take_parent_pid(os.environ)
    handler = setup_logging(detail=bool(opts.get("log_detail")))
    if parent is not None:
        handler.setFormatter(ChildFormatter())
    try:
        if parent is not None and not bind_to_parent(parent):
            log.error("The parent pykad (pid %d) is gone - not starting", parent)
            return ExitCode.FATAL
        log.info("Starting pykad v%s", __version__)
        log.info("Command line: %s", " ".join(repr(a) for a in sys.argv))
        conf = str(opts["conf"])
        config_id = opts.get("config_id")
        all_config = bool(opts.get("all_config"))

        snapshot = _opt_str(opts.get("config_snapshot"))

        def loader() -> Loaded:
            if snapshot is not None:  # a checker child: what its parent validated
                result = read_snapshot(snapshot)
            else:
                result = load(
                    conf,
                    config_id=None if config_id is None else str(config_id),
                    all_config=all_config,
                )
            # -P / -C: only the VRRP or only the checker half, as keepalived's children
            return select_subsystems(
                result, vrrp=not opts.get("check_only"), check=not opts.get("vrrp_only")
            )

        result = loader()
        errors = startup_errors(result.diagnostics)
        if parent is None or errors:  # a child's warnings: its parent has shown them
            sys.stderr.write(render(result.diagnostics, result.lines))
        # keepalived runs in spite of a SECURITY VIOLATION; refused scripts are not run
        if result.config is None or errors:
            if not os.path.exists(conf):
                log.error("Configuration file %s missing", conf)
                return ExitCode.NO_CONFIG
            log.error("Configuration %s unusable - not starting", conf)
            return ExitCode.CONFIG
        log.info("Configuration file %s", conf)
        written: list[str] = []
        try:
            written = claim_pid_files(pid_files_for(opts, child=parent is not None))
        except PidFileError as exc:
            log.error("%s", exc)
            return ExitCode.FATAL
        try:
            return asyncio.run(
                _serve(
                    result.config,
                    loader,
                    release_vips=not opts.get("dont_release_vrrp"),
                    control_path=resolve_control_path(_opt_str(opts.get("control_socket"))),
                    metrics_listen=_opt_listen(opts.get("metrics")),
                    config_file=os.path.abspath(conf),
                    release_ipvs=not opts.get("dont_release_ipvs"),
                    checker_child=_child_spec(opts),
                    vrrp=not opts.get("check_only"),
                    checkers=not opts.get("vrrp_only"),
                    child=parent is not None,
                )
            )
        finally:
            release_pid_files(written)
    finally:
        logging.getLogger().removeHandler(handler)


def _child_spec(opts: Mapping[str, object]) -> ChildSpec | None:
    """The checker child of a parent (neither -P nor -C), or None."""
    if not splits(opts):
        return None
    return ChildSpec(
        child_argv(opts),
        child_env(os.environ, os.getpid()),
        respawn=not opts.get("dont_respawn"),
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_listen(value: object) -> tuple[str, int] | None:
    """``--metrics`` as the command line parsed it: (host, port) or None."""
    if isinstance(value, tuple) and len(value) == 2:
        return str(value[0]), int(value[1])
    return None


async def _serve(
    config: Config,
    loader: Callable[[], Loaded],
    *,
    release_vips: bool,
    control_path: str | None = None,
    metrics_listen: tuple[str, int] | None = None,
    config_file: str | None = None,
    release_ipvs: bool = True,
    checker_child: ChildSpec | None = None,
    vrrp: bool = True,
    checkers: bool = True,
    child: bool = False,
) -> ExitCode:
    return await Daemon(
        config,
        loader=loader,
        release_vips=release_vips,
        control_path=control_path,
        metrics_listen=metrics_listen,
        config_file=config_file,
        release_ipvs=release_ipvs,
        checker_child=checker_child,
        vrrp=vrrp,
        checkers=checkers,
        child=child,
    ).run()
