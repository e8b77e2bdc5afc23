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

Not done here: ``ha_suspend`` (the checkers of such a service always run), SMTP alerts for
real servers, FILE_CHECK updates while running (track files are read at start and reload),
the checker data dump, and migrating checker state across a reload: a reload that changes
the LVS configuration starts new checkers, and every real server takes their initial state
(non-``alpha``: up), so a failed server that stays in the configuration is re-added until
its first check fails again (keepalived keeps it out; CheckerSet has no migration API yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping, Sequence

from pykad.adapters.ipvs import IpvsTable, IpvsUnavailable
from pykad.check.checkerset import CheckerSet, RsChange, rs_key, vs_key
from pykad.config.load import LoadResult
from pykad.config.model import Config, StaticConfig
from pykad.config.model_lvs import LvsConfig
from pykad.errors import AdapterError
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
    LvsNotify,
)
from pykad.runtime.notify import Notifier
from pykad.runtime.tracking import read_track_file

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


def track_file_values(config: Config) -> dict[str, int]:
    """The current value of every track_file, for FILE_CHECK's initial state."""
    return {t.name: read_track_file(t.path) or 0 for t in config.track_files}


class LvsManager:
    """Health checking and IPVS programming for ``config.lvs``."""

    def __init__(
        self,
        config: Config,
        notifier: Notifier,
        *,
        file_values: Mapping[str, int] | None = None,
        release_on_stop: bool = True,
        table: IpvsTable | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier
        self.release_on_stop = release_on_stop
        self.table = table if table is not None else IpvsTable()
        self._file_values = dict(file_values or {})
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
        self._begin(self.config)
        assert self.balancer is not None
        self._queue.put_nowait(self.balancer.start(flush=self.config.global_defs.lvs_flush))
        await self._queue.join()
        self._run_checkers()
        return True

    def _count(self) -> int:
        return len(self.config.lvs.virtual_servers)

    def _begin(self, config: Config) -> None:
        g = config.global_defs
        self.checkers = CheckerSet(
            config.lvs,
            self._on_change,
            track_files={t.name: t for t in config.track_files},
            file_values=self._file_values,
            default_script_user=(g.script_user, g.script_group),
        )
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

    async def _stop_checkers(self) -> None:
        if self.checkers is not None:
            await self.checkers.stop()
        if self._checker_task is not None:
            self._checker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker_task
            self._checker_task = None

    async def reload(self, config: Config, file_values: Mapping[str, int] | None = None) -> None:
        """SIGHUP: a changed LVS configuration gets new checkers and a table diff."""
        old = self.config
        self.config = config
        if file_values is not None:
            self._file_values = dict(file_values)
        if not self.running:
            if config.lvs.virtual_servers and not old.lvs.virtual_servers:
                await self.start()
            return
        if config.lvs == old.lvs:
            return
        await self._stop_checkers()
        self._begin(config)
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
