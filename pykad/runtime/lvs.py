"""The load balancer in the daemon: checkers -> :class:`Balancer` -> IPVS, scripts, FIFOs.

Theory of operation. :class:`LvsManager` is the asyncio shell around the pure
:class:`~pykad.runtime.balancer.Balancer` (spec §9.6). It opens the kernel's IPVS table
(:class:`~pykad.adapters.ipvs.IpvsTable`), builds the
:class:`~pykad.check.checkerset.CheckerSet` of the configuration, programs the services and
the real servers that start up (``Balancer.start``), then runs the checkers. Every health
change the checkers report (synchronously, from the event loop) goes through the balancer
and its effects are executed by one worker task, in order, so that IPVS always sees the
operations in the order they were decided. Scripts and FIFO lines go to the daemon's
:class:`~pykad.runtime.notify.Notifier`.

keepalived runs this half in its own process (the checker child); pykad runs it in the same
event loop as VRRP, so an IPVS failure must never stop VRRP: without IPVS in the kernel
:meth:`LvsManager.start` logs the missing ``ip_vs`` module and returns False, and failed
IPVS operations are logged and counted. The checkers sleep in their own tasks and their
probes never block, so hundreds of them do not delay adverts (bench/checkers_vs_adverts.py).

Reload (spec §9.6): the checkers are stopped and a new
:class:`~pykad.check.checkerset.CheckerSet` is built from the old one, so every checker
whose real server stays and whose configuration did not change keeps its state (up/down,
retry counter, dynamic weight, ha_suspend activity, next run); the balancer then diffs the
table with those states, so unchanged services see no IPVS operation and a failed real
server that stays in the configuration stays out of the pool.

``ha_suspend`` (spec §9.2): the daemon tells :meth:`LvsManager.local_addresses` the
addresses configured on local interfaces, at start and on every change; the checkers of a
suspending virtual server run only while its address is among them.

FILE_CHECK (spec §9.5): the manager watches the track files its FILE_CHECKs use with
:class:`~pykad.runtime.tracking.FileWatcher` (inotify) and feeds every new value to the
checkers, so the real server's weight or state follows the file at once.

SMTP alerts (spec §9.6): a checker that changes state mails ``[router_id] Realserver [rs]
of virtual server [vs] - UP|DOWN`` when the real server has ``smtp_alert`` (on by default);
the balancer's quorum changes mail ``Virtualserver [vs] - UP|DOWN`` for a virtual server
with ``smtp_alert``; both go through the notifier's :class:`~pykad.runtime.mail.Mailer`.

Not done here: the checker data dump, BFD_CHECK (treated as up), the global
``no_checker_emails`` (not in the configuration model: every checker transition is mailed).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Sequence

from pykad.adapters.ipvs import IpvsTable, IpvsUnavailable
from pykad.check.checkerset import CheckerAlert, CheckerSet, RsChange, rs_key, vs_key
from pykad.config.load import LoadResult
from pykad.config.model import Config, StaticConfig, TrackFile
from pykad.config.model_lvs import FileCheck, IPAddress, LvsConfig
from pykad.errors import AdapterError
from pykad.fsm.events import TrackFileChanged
from pykad.runtime.balancer import (
    AddDest,
    AddService,
    Balancer,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    FlushIpvs,
    LvsEffect,
    LvsMail,
    LvsNotify,
    rs_mail_subject,
)
from pykad.runtime.notify import Notifier
from pykad.runtime.tracking import FileWatcher, TrackerEvent

log = logging.getLogger(__name__)


def select_subsystems(result: LoadResult, *, vrrp: bool, check: bool) -> LoadResult:
    """``-P``/``--vrrp`` drops the virtual servers, ``-C``/``--check`` the VRRP side
    (instances, sync groups, static addresses), like keepalived's two children."""
    config = result.config
    if config is None or (vrrp and check):
        return result
    if not check:
        config = dataclasses.replace(config, lvs=LvsConfig())
    if not vrrp:
        config = dataclasses.replace(
            config, vrrp_instances=(), sync_groups=(), static=StaticConfig()
        )
    return dataclasses.replace(result, config=config)


def file_check_tracks(config: Config) -> tuple[TrackFile, ...]:
    """The track files some FILE_CHECK of ``config.lvs`` follows."""
    used = {
        c.track_file
        for vs in config.lvs.virtual_servers
        for rs in vs.real_servers
        for c in rs.checkers
        if isinstance(c, FileCheck)
    }
    return tuple(t for t in config.track_files if t.name in used)


class LvsManager:
    """Health checking and IPVS programming for ``config.lvs``."""

    def __init__(
        self,
        config: Config,
        notifier: Notifier,
        *,
        release_on_stop: bool = True,
        table: IpvsTable | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier
        self.release_on_stop = release_on_stop
        self.table = table if table is not None else IpvsTable()
        # FILE_CHECK values: the manager's own watcher (it reads every file when it starts)
        self.files = FileWatcher((), self._on_file)
        self._local: frozenset[IPAddress] | None = None  # unknown until the daemon says
        self.checkers: CheckerSet | None = None
        self.balancer: Balancer | None = None
        self._checker_task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[list[LvsEffect]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.failures = 0  # IPVS operations that failed

    @property
    def running(self) -> bool:
        return self.balancer is not None

    async def start(self) -> bool:
        """Open IPVS, program the table and start the checkers. False (logged) when the
        kernel has no IPVS: the virtual servers are then disabled and VRRP runs on."""
        if not self.config.lvs.virtual_servers:
            return False
        try:
            await self.table.open()
        except IpvsUnavailable as exc:
            log.error("%s - the %d virtual server(s) are disabled", exc, self._count())
            return False
        except AdapterError as exc:
            log.error("IPVS: cannot open the IPVS table: %s - virtual servers disabled", exc)
            return False
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="ipvs")
        self._watch_files(self.config, reload=False)
        self._begin(self.config)
        assert self.balancer is not None
        self._queue.put_nowait(self.balancer.start(flush=self.config.global_defs.lvs_flush))
        await self._queue.join()
        self._run_checkers()
        return True

    def _count(self) -> int:
        return len(self.config.lvs.virtual_servers)

    def _watch_files(self, config: Config, *, reload: bool) -> None:
        """FILE_CHECK while running (spec §9.5): read and watch the files the checkers use."""
        self.files.close()
        self.files = FileWatcher(file_check_tracks(config), self._on_file)
        self.files.start(reload=reload)

    def _begin(self, config: Config, previous: CheckerSet | None = None) -> None:
        g = config.global_defs
        self.checkers = CheckerSet(
            config.lvs,
            self._on_change,
            on_alert=self._on_alert,
            track_files={t.name: t for t in config.track_files},
            file_values=self.files.values,
            default_script_user=(g.script_user, g.script_group),
            previous=previous,
        )
        if self._local is not None:
            self.checkers.set_local_addresses(self._local)
        states = self.checkers.states()
        if self.balancer is None:
            self.balancer = Balancer(config.lvs, states)
        else:
            self._queue.put_nowait(self.balancer.reconfigure(config.lvs, states))

    def _run_checkers(self) -> None:
        assert self.checkers is not None
        self._checker_task = asyncio.get_running_loop().create_task(
            self.checkers.run(), name="checkers"
        )

    def _on_change(self, change: RsChange) -> None:
        if self.balancer is None:
            return
        effects = self.balancer.rs_changed(
            vs_key(change.vs), rs_key(change.rs), alive=change.alive, weight=change.weight
        )
        if effects:
            self._queue.put_nowait(effects)

    def _on_alert(self, alert: CheckerAlert) -> None:
        """A checker changed state: keepalived's per-checker SMTP alert (spec §9.6), queued
        behind the IPVS operations and notifications of the same change."""
        if self.balancer is not None and alert.rs.smtp_alert:
            subject = rs_mail_subject(alert.vs, alert.rs, alert.rs_alive)
            self._queue.put_nowait([LvsMail(subject, alert.body)])

    def _on_file(self, event: TrackerEvent) -> None:
        if isinstance(event, TrackFileChanged) and self.checkers is not None:
            self.checkers.set_file_value(event.name, event.value)

    def local_addresses(self, addresses: Iterable[IPAddress]) -> None:
        """``ha_suspend`` (spec §9.2): the addresses now configured on this host's interfaces
        (all of them, every family). Call it once the addresses are known at start and again
        after every address change; it never blocks. Before the first call the checkers of a
        virtual server with ``ha_suspend`` do not run (keepalived waits for its netlink dump
        the same way)."""
        self._local = frozenset(addresses)
        if self.checkers is not None:
            self.checkers.set_local_addresses(self._local)

    async def _stop_checkers(self) -> None:
        if self.checkers is not None:
            await self.checkers.stop()
        if self._checker_task is not None:
            self._checker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker_task
            self._checker_task = None

    async def reload(self, config: Config) -> None:
        """SIGHUP: a changed LVS configuration gets new checkers, migrated from the old ones
        (spec §9.6), and a table diff."""
        old = self.config
        self.config = config
        if not self.running:
            if config.lvs.virtual_servers and not old.lvs.virtual_servers:
                await self.start()
            return
        tracks = file_check_tracks(config)
        if config.lvs == old.lvs and tracks == file_check_tracks(old):
            return
        previous = self.checkers
        await self._stop_checkers()
        self._watch_files(config, reload=True)
        self._begin(config, previous)
        await self._queue.join()
        self._run_checkers()

    async def stop(self) -> None:
        """Shutdown: stop the checkers, then remove what we programmed (not with ``-I``)."""
        await self._stop_checkers()
        if self.balancer is not None:
            g = self.config.global_defs
            self._queue.put_nowait(
                self.balancer.stop(release=self.release_on_stop, flush=g.lvs_flush_on_stop)
            )
            await self._queue.join()
            self.balancer = None

    async def close(self) -> None:
        await self._stop_checkers()
        self.files.close()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self.table.close()

    # ------------------------------------------------------------------ effects

    async def _work(self) -> None:
        while True:
            effects = await self._queue.get()
            try:
                await self.apply(effects)
            finally:
                self._queue.task_done()

    async def apply(self, effects: Sequence[LvsEffect]) -> None:
        for effect in effects:
            try:
                await self._apply_one(effect)
            except AdapterError as exc:
                self.failures += 1
                log.error("%s", exc)

    async def _apply_one(self, effect: LvsEffect) -> None:
        t = self.table
        match effect:
            case AddService(svc):
                await t.add_service(svc)
            case EditService(svc):
                await t.edit_service(svc)
            case DeleteService(svc):
                await t.delete_service(svc)
            case AddDest(svc, dest):
                await t.add_dest(svc, dest)
            case EditDest(svc, dest):
                await t.edit_dest(svc, dest)
            case DeleteDest(svc, dest):
                await t.delete_dest(svc, dest)
            case FlushIpvs():
                await t.flush()
            case LvsNotify(key, script, label, line):
                self.notifier.notify_lvs(key, script, label, line)
            case LvsMail(subject, body):
                self.notifier.mailer.lvs_alert(subject, body)
