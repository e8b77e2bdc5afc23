"""The operator interface of a running daemon: control socket and metrics listener.

Glue between :class:`~pykad.runtime.daemon.Daemon` and the generic parts
(:mod:`pykad.runtime.control`, :mod:`pykad.runtime.status`, :mod:`pykad.runtime.metrics`),
so the daemon itself needs only three calls: :meth:`Operator.open` when startup is complete
(before READY=1), :meth:`Operator.close` when it has stopped, and the reload outcome it
records in ``Daemon.last_reload``.

Neither listener is allowed to stop VRRP: if the control socket path is taken by a live
daemon or the metrics address cannot be bound, the error is logged and the daemon runs
without it (a node that refuses to be highly available because of its monitoring would be
the wrong trade).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pykad import __version__
from pykad.runtime.control import CommandError, ControlError, ControlServer
from pykad.runtime.metrics import MetricsServer, ScriptSample, process_info, render_metrics
from pykad.runtime.status import DaemonInfo, status_document

if TYPE_CHECKING:
    from pykad.runtime.daemon import Daemon

log = logging.getLogger(__name__)


class Operator:
    """``control_path``: the Unix socket (None: none); ``metrics_listen``: (host, port) of
    the HTTP listener (None: none); ``config_file``: shown by ``pykad status``."""

    def __init__(
        self,
        daemon: Daemon,
        *,
        control_path: str | None = None,
        metrics_listen: tuple[str, int] | None = None,
        config_file: str | None = None,
    ) -> None:
        self.daemon = daemon
        self.config_file = config_file
        self.control = None if control_path is None else ControlServer(control_path, self.handle)
        self.metrics = (
            None if metrics_listen is None else MetricsServer(*metrics_listen, self.metrics_text)
        )
        loop = asyncio.get_running_loop()
        self._clock = loop.time
        self._started = loop.time()
        self._started_wall = time.time()

    async def open(self) -> None:
        if self.control is not None:
            try:
                await self.control.start()
            except ControlError as exc:
                log.error("%s - running without a control socket", exc)
                self.control = None
        if self.metrics is not None:
            try:
                await self.metrics.start()
            except OSError as exc:
                host, port = self.metrics.host, self.metrics.port
                log.error("Metrics listener %s port %d: %s - not serving metrics", host, port, exc)
                self.metrics = None

    async def close(self) -> None:
        if self.metrics is not None:
            await self.metrics.close()
        if self.control is not None:
            await self.control.close()

    # -- what the commands answer ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        d = self.daemon
        now = self._clock()
        info = DaemonInfo(
            pid=os.getpid(),
            version=__version__,
            config_file=self.config_file,
            started_at=self._started_wall,
            uptime_s=now - self._started,
            last_reload=d.last_reload,
        )
        drivers = [s.driver for s in d.slots.values()]
        sources = {name: s.source for name, s in d.slots.items()}
        return status_document(info, drivers, sources, now=now, started=self._started)

    def metrics_text(self) -> str:
        d = self.daemon
        drivers = [s.driver for s in d.slots.values()]
        announcer = d._announcer  # PacketAnnouncer counts frames; a test's fake may not
        # from the runners: one per vrrp_script, whatever tracks it
        scripts = [
            ScriptSample(
                name=r.name,
                up=r.up,
                runs=r.runs,
                skipped=r.skipped,
                last_duration_s=r.last_duration_s,
                duration_total_s=r.duration_total_s,
            )
            for r in d.trackers.scripts.values()
        ]
        return render_metrics(
            drivers,
            version=__version__,
            announced=getattr(announcer, "sent_by", None),
            process=process_info(),
            scripts=scripts,
        )

    async def handle(self, cmd: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """The control socket's commands (:data:`pykad.runtime.control.COMMANDS`)."""
        d = self.daemon
        if cmd == "status":
            return self.status()
        if cmd == "metrics":
            return {"text": self.metrics_text()}
        if cmd == "stop":
            log.info("Stop requested on the control socket")
            d.request_stop()
            return {"pid": os.getpid(), "stopping": True}
        if cmd == "reload":
            log.info("Reload requested on the control socket")
            await d.reload()
            outcome = d.last_reload
            if outcome is None:  # pragma: no cover - reload() always records one
                raise CommandError("the reload left no outcome")
            return outcome.as_dict()
        raise CommandError(f"unknown command {cmd!r}")
