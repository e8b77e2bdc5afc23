"""CheckerSet: every checker of every real server, reporting real-server health (spec §9.4-9.6).

The contract with the load-balancer side (``pykad.runtime``):

* ``CheckerSet(lvs, on_change, ...)`` builds one :class:`~pykad.check.core.RetrySchedule`
  per runnable checker and one :class:`~pykad.check.core.RsHealth` per real server. Before
  :meth:`CheckerSet.run` starts, :meth:`CheckerSet.state` / :meth:`CheckerSet.states` give the
  initial health (non-alpha checkers start UP, alpha ones DOWN, FILE_CHECK from the current
  file values) so IPVS can be programmed at startup exactly as keepalived does (§9.6).
* :meth:`CheckerSet.run` (a coroutine, run it as a task; cancel it or call :meth:`stop` to end)
  runs one task per checker. Whenever a real server's ``alive`` or effective ``weight``
  changes, ``on_change(RsChange)`` is called, synchronously, from the event loop. The
  callback must not block; it may schedule its own work.
* :meth:`CheckerSet.set_enabled` implements ``ha_suspend`` (checkers of a VS do not probe
  while its VIP is not configured here); :meth:`CheckerSet.set_file_value` feeds FILE_CHECK
  with a track file's new value (the track-file watcher lives in the runtime).

Real servers are keyed by :func:`vs_key` / :func:`rs_key` (addresses and ports, as keepalived
matches them on reload), never by object identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from pykad.check.core import (
    Report,
    RetrySchedule,
    RsHealth,
    RsState,
    Timing,
    file_check_delta,
    misc_dynamic_delta,
)
from pykad.check.dns import dns_probe
from pykad.check.http import HttpProbe
from pykad.check.misc import MiscProbe
from pykad.check.ping import PingProbe
from pykad.check.probes import Probe, ProbeResult, hostport, tcp_probe
from pykad.check.smtp import smtp_probe
from pykad.check.udp import udp_probe
from pykad.config.model import TrackFile
from pykad.config.model_lvs import (
    BfdCheck,
    Checker,
    CheckerBase,
    ConnectChecker,
    DnsCheck,
    FileCheck,
    HttpCheck,
    IPAddress,
    LvsConfig,
    MiscCheck,
    PingCheck,
    RealServer,
    SmtpCheck,
    SslConfig,
    TcpCheck,
    UdpCheck,
    VirtualServer,
)

log = logging.getLogger(__name__)

VsKey = tuple[str, str]  # (label, protocol): "192.0.2.1:80"/"fwmark 1"/"group G", "TCP"
RsKey = tuple[IPAddress, int]


def vs_key(vs: VirtualServer) -> VsKey:
    return (vs.label, "" if vs.protocol is None else vs.protocol.value)


def rs_key(rs: RealServer) -> RsKey:
    return (rs.address, rs.port)


@dataclass(frozen=True, slots=True)
class RsChange:
    """A real server's health changed: it is now ``alive`` with effective ``weight``."""

    vs: VirtualServer
    rs: RealServer
    alive: bool
    weight: int


ChangeCallback = Callable[[RsChange], None]
ProbeFactory = Callable[[Checker], Probe | None]


def probe_for(
    checker: Checker,
    *,
    ssl_config: SslConfig | None = None,
    default_script_user: tuple[str | None, str | None] = (None, None),
) -> Probe | None:
    """The probe of a runnable checker; None for FILE_CHECK/BFD_CHECK (they are not polled)."""
    match checker:
        case TcpCheck():
            return lambda: tcp_probe(checker)
        case HttpCheck():
            return HttpProbe(checker, ssl_config)
        case SmtpCheck():
            return lambda: smtp_probe(checker)
        case DnsCheck():
            return lambda: dns_probe(checker)
        case UdpCheck():
            return lambda: udp_probe(checker)
        case PingCheck():
            return PingProbe(checker)
        case MiscCheck():
            return MiscProbe(checker, default_script_user)
        case _:
            return None


# --------------------------------------------------------------------------------------------
# Log lines in keepalived's words (check_tcp.c, check_http.c, check_smtp.c, check_dns.c,
# check_udp.c, check_ping.c, check_misc.c of 2.2.7).


def _proto_of(checker: CheckerBase) -> str:
    return "udp" if isinstance(checker, DnsCheck | UdpCheck) else "tcp"


def _target(checker: CheckerBase, rs: RealServer) -> str:
    if isinstance(checker, PingCheck):
        return f"[{checker.connect_ip}]"
    if isinstance(checker, ConnectChecker):
        return hostport(checker.connect_ip, checker.connect_port, _proto_of(checker))
    return hostport(rs.address, rs.port)


def log_line(
    checker: CheckerBase, rs: RealServer, vs: VirtualServer, report: Report, detail: str
) -> str:
    """The line keepalived logs for ``report`` (only called for a non-NONE report)."""
    target = _target(checker, rs)
    ok = report is Report.SUCCESS
    after = f" after {checker.retry} retries" if report is Report.FAILED_RETRIES else ""
    match checker:
        case HttpCheck():
            if ok:
                return f"Remote Web server {target} succeed on service."
            return f"HTTP_CHECK on service {target} failed{after}."
        case SmtpCheck():
            if ok:
                return f"Remote SMTP server {target} succeed on service."
            # check_smtp.c smtp_final logs the reason ("Bad greeting banner from server ...")
            return f"SMTP_CHECK {detail or f'on service {target} failed'}{after}."
        case DnsCheck():
            return f"DNS_CHECK ({target}) {'succeed' if ok else detail or 'failed'}{after}."
        case UdpCheck():
            if ok:
                return f"UDP connection to {target} success."
            return f"UDP_CHECK on service {target} failed{after}."
        case PingCheck():
            if ok:
                return f"ICMP connection to {target} success."
            if after:
                return f"ICMP CHECK on service {target} of {vs.label} failed{after}."
            return f"ICMP CHECK on service {target} failed."
        case MiscCheck():
            verdict = "succeeded" if ok else "failed"
            why = f" ({detail})" if detail else ""
            return (
                f"Misc check for [{hostport(rs.address, rs.port)} VS {vs.label}] by "
                f"[{' '.join(checker.script.argv)}] {verdict}{why}{after}."
            )
        case _:
            if ok:
                return f"TCP connection to {target} success."
            return f"TCP_CHECK on service {target} failed{after}."


# --------------------------------------------------------------------------------------------


class _Server:
    """One real server of one virtual server: its health and its checkers."""

    __slots__ = ("health", "rs", "vs")

    def __init__(self, vs: VirtualServer, rs: RealServer, health: RsHealth) -> None:
        self.vs, self.rs, self.health = vs, rs, health


@dataclass(slots=True)
class _Runnable:
    server: _Server
    index: int  # the checker's position in rs.checkers (its RsHealth slot)
    checker: CheckerBase
    schedule: RetrySchedule
    probe: Probe


@dataclass(slots=True)
class _FileWatch:
    server: _Server
    index: int
    weight: int
    reverse: bool


class CheckerSet:
    """Runs all checkers of an :class:`LvsConfig` and reports real-server health changes."""

    def __init__(
        self,
        lvs: LvsConfig,
        on_change: ChangeCallback,
        *,
        track_files: Mapping[str, TrackFile] | None = None,
        file_values: Mapping[str, int] | None = None,
        default_script_user: tuple[str | None, str | None] = (None, None),
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        probe_factory: ProbeFactory | None = None,
    ) -> None:
        """``track_files``: the configured track files by name (FILE_CHECK without its own
        weight takes the file's); ``file_values``: their current values (missing = 0);
        ``clock``: the time source (the event loop's clock on Linux); ``rand``: the warmup
        randomness in [0, 1]; ``probe_factory``: replaces :func:`probe_for` (tests, bench).
        """
        self._on_change = on_change
        self._clock = clock
        self._rand = rand
        self._tracks = dict(track_files or {})
        self._make_probe: ProbeFactory = probe_factory or (
            lambda c: probe_for(c, ssl_config=lvs.ssl, default_script_user=default_script_user)
        )
        self._servers: dict[tuple[VsKey, RsKey], _Server] = {}
        self._runnables: list[_Runnable] = []
        self._files: dict[str, list[_FileWatch]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        values = dict(file_values or {})
        now = clock()
        for vs in lvs.virtual_servers:
            for rs in vs.real_servers:
                self._add_server(vs, rs, values, now)

    def _add_server(
        self, vs: VirtualServer, rs: RealServer, values: Mapping[str, int], now: float
    ) -> None:
        initial: list[bool] = []
        deltas: list[int] = []
        runnable: list[tuple[int, CheckerBase, Probe]] = []
        watches: list[tuple[int, str, int, bool]] = []
        for index, checker in enumerate(rs.checkers):
            up, delta = True, 0
            if isinstance(checker, FileCheck):
                weight, reverse = self._file_weight(checker)
                watches.append((index, checker.track_file, weight, reverse))
                file_delta = file_check_delta(values.get(checker.track_file, 0), weight, reverse)
                up, delta = file_delta is not None, file_delta or 0
            elif isinstance(checker, BfdCheck):
                # pykad has no BFD: keepalived would follow the session; say so, keep it up.
                log.warning(
                    "BFD_CHECK %s for RS %s of VS %s is not supported - treating it as up",
                    checker.name,
                    hostport(rs.address, rs.port),
                    vs.label,
                )
            elif (probe := self._make_probe(checker)) is None:
                log.warning("%s is not supported - treating it as up", type(checker).__name__)
            else:
                up = not checker.alpha
                runnable.append((index, checker, probe))
            initial.append(up)
            deltas.append(delta)
        server = _Server(vs, rs, RsHealth(rs.weight, initial, deltas))
        self._servers[(vs_key(vs), rs_key(rs))] = server
        for index, base, probe in runnable:
            fast = isinstance(base, HttpCheck) and base.fast_recovery
            schedule = RetrySchedule(
                Timing.of(base, fast_recovery=fast),
                now=now,
                rand=self._rand(),
                enabled=not vs.ha_suspend,
            )
            self._runnables.append(_Runnable(server, index, base, schedule, probe))
        for index, name, weight, reverse in watches:
            self._files.setdefault(name, []).append(_FileWatch(server, index, weight, reverse))

    def _file_weight(self, checker: FileCheck) -> tuple[int, bool]:
        """FILE_CHECK's (weight, reverse): its own, else the track_file's (spec §9.5)."""
        if checker.weight is not None:
            return checker.weight, checker.reverse
        track = self._tracks.get(checker.track_file)
        if track is None:
            return 1, checker.reverse
        return track.weight, track.reverse

    # ------------------------------------------------------------------------ queries

    def state(self, vs: VirtualServer, rs: RealServer) -> RsState:
        """The current health of one real server (KeyError if it is not in this set)."""
        return self._servers[(vs_key(vs), rs_key(rs))].health.state

    def states(self) -> dict[tuple[VsKey, RsKey], RsState]:
        return {key: s.health.state for key, s in self._servers.items()}

    def checker_up(self, vs: VirtualServer, rs: RealServer, index: int) -> bool:
        """Whether checker ``index`` of ``rs.checkers`` is up."""
        return self._servers[(vs_key(vs), rs_key(rs))].health.checker_up(index)

    def __iter__(self) -> Iterator[tuple[VirtualServer, RealServer, RsState]]:
        for s in self._servers.values():
            yield s.vs, s.rs, s.health.state

    def next_deadline(self) -> float | None:
        """The earliest due probe (for dumps and tests); None when nothing is scheduled."""
        deadlines = [d for r in self._runnables if (d := r.schedule.next_deadline()) is not None]
        return min(deadlines, default=None)

    # ------------------------------------------------------------------------ inputs

    def set_enabled(self, vs: VirtualServer, enabled: bool) -> None:
        """``ha_suspend``: enable/disable the checkers of ``vs`` (effective at their next run)."""
        key = vs_key(vs)
        for r in self._runnables:
            if vs_key(r.server.vs) == key and r.schedule.enabled != enabled:
                r.schedule.enabled = enabled
                log.info(
                    "%sctivating healthchecker for service %s for VS %s",
                    "A" if enabled else "Dea",
                    hostport(r.server.rs.address, r.server.rs.port),
                    vs.label,
                )

    def set_file_value(self, name: str, value: int) -> None:
        """FILE_CHECK: track file ``name`` now reads ``value``."""
        for w in self._files.get(name, ()):
            delta = file_check_delta(value, w.weight, w.reverse)
            self._update(w.server, w.index, up=delta is not None, delta=delta or 0)

    # ------------------------------------------------------------------------ running

    async def run(self) -> None:
        """Run every checker until cancelled or :meth:`stop`."""
        loop = asyncio.get_running_loop()
        for r in self._runnables:
            task = loop.create_task(
                self._run_one(r), name=f"checker {_target(r.checker, r.server.rs)}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            if self._tasks:
                await asyncio.gather(*self._tasks)
            else:
                await asyncio.Event().wait()  # nothing to poll: FILE_CHECK only
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Cancel every checker task (running probes are abandoned, their sockets closed)."""
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_one(self, r: _Runnable) -> None:
        schedule = r.schedule
        while not self._stopping:
            deadline = schedule.next_deadline()
            assert deadline is not None
            delay = deadline - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if not schedule.start(self._clock()):
                continue
            try:
                result = await r.probe()
            except asyncio.CancelledError:
                schedule.cancel(self._clock())
                raise
            except Exception as exc:  # a probe bug must not kill the other checkers
                log.exception("Checker %s crashed", _target(r.checker, r.server.rs))
                result = ProbeResult(False, f"internal error: {exc}")
            self._finish(r, result)

    def _finish(self, r: _Runnable, result: ProbeResult) -> None:
        outcome = r.schedule.finish(result.ok, self._clock())
        server, checker = r.server, r.checker
        if outcome.report is not Report.NONE:
            log.info(log_line(checker, server.rs, server.vs, outcome.report, result.detail))
        elif not result.ok and checker.log_all_failures and r.schedule.is_up:
            log.info("%s: %s", _target(checker, server.rs), result.detail or "check failed")
        delta: int | None = None
        if (
            isinstance(checker, MiscCheck)
            and checker.dynamic
            and result.ok
            and result.exit_status is not None
        ):
            delta = misc_dynamic_delta(result.exit_status, server.rs.weight)
        self._update(server, r.index, up=outcome.up, delta=delta)

    def _update(self, server: _Server, index: int, *, up: bool, delta: int | None) -> None:
        changed = server.health.update(index, up=up, delta=delta)
        if changed is not None:
            self._on_change(RsChange(server.vs, server.rs, changed.alive, changed.weight))


__all__ = [
    "ChangeCallback",
    "CheckerSet",
    "RsChange",
    "RsKey",
    "RsState",
    "VsKey",
    "probe_for",
    "rs_key",
    "vs_key",
]
