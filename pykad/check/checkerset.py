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
* ``on_alert(CheckerAlert)`` (optional) is called when one checker changes state, which is
  when keepalived's checkers send their SMTP alert for a real server (spec §9.6): the alert
  names the checker's words ("=> TCP CHECK failed on service <=") and the real server's
  alive state after the change. Whether a mail goes out is the runtime's business.
* :meth:`CheckerSet.set_local_addresses` implements ``ha_suspend`` (spec §9.2: checkers of
  a VS do not probe while its address is not configured here, and keep their state);
  :meth:`CheckerSet.set_file_value` feeds FILE_CHECK with a track file's new value (the
  track-file watcher lives in the runtime).
* ``CheckerSet(new_lvs, ..., previous=old_set)`` is a reload (spec §9.6 "state of unchanged
  checkers migrated", keepalived ``migrate_checkers``): a checker of a real server that
  stays (same VS and RS keys) and whose configuration is equal to one of the old checkers
  of that real server takes over that checker's state - up/down, retry counter, dynamic
  weight delta, ha_suspend activity and its next run time. New and changed checkers start
  fresh. Stop the old set (:meth:`stop`) before building the new one: a probe the stop
  abandoned is due again at once.

Real servers are keyed by :func:`vs_key` / :func:`rs_key` (addresses and ports, as keepalived
matches them on reload), never by object identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    VirtualServerGroup,
)

log = logging.getLogger(__name__)

VsKey = tuple[str, str]  # (label, protocol): "192.0.2.1:80"/"fwmark 1"/"group G", "TCP"
RsKey = tuple[IPAddress, int]


def vs_key(vs: VirtualServer) -> VsKey:
    return (vs.label, "" if vs.protocol is None else vs.protocol.value)


def rs_key(rs: RealServer) -> RsKey:
    return (rs.address, rs.port)


@dataclass(frozen=True, slots=True)
class CheckerAlert:
    """One checker of ``rs`` went ``up`` (or down); the real server is now ``rs_alive``.

    ``body`` is keepalived's alert text for this checker (``=> TCP CHECK succeed on service
    <=``)."""

    vs: VirtualServer
    rs: RealServer
    up: bool
    rs_alive: bool
    body: str


@dataclass(frozen=True, slots=True)
class RsChange:
    """A real server's health changed: it is now ``alive`` with effective ``weight``."""

    vs: VirtualServer
    rs: RealServer
    alive: bool
    weight: int


ChangeCallback = Callable[[RsChange], None]
AlertCallback = Callable[[CheckerAlert], None]
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


def alert_body(checker: CheckerBase, ok: bool, detail: str) -> str:
    """The body of keepalived's SMTP alert when ``checker`` goes up (``ok``) or down (the
    strings of check_tcp.c, check_http.c, check_smtp.c, check_dns.c, check_udp.c,
    check_ping.c and check_misc.c; HTTP/SSL and SMTP name the failure's reason)."""
    verdict = "succeed" if ok else "failed"
    match checker:
        case HttpCheck() | SmtpCheck():
            if not ok and detail:
                return f"=> CHECK failed on service : {detail} <="
            return f"=> CHECK {verdict} on service <="
        case DnsCheck():
            return f"=> DNS_CHECK: {verdict} on service <="
        case UdpCheck():
            word = "UDP CHECK"
        case PingCheck():
            word = "ICMP CHECK"
        case MiscCheck():
            word = "MISC CHECK"
        case _:
            word = "TCP CHECK"
    return f"=> {word} {verdict} on service <="


# --------------------------------------------------------------------------------------------


class _Server:
    """One real server of one virtual server: its health and its checkers."""

    __slots__ = ("health", "rs", "runnables", "vs")

    def __init__(self, vs: VirtualServer, rs: RealServer, health: RsHealth) -> None:
        self.vs, self.rs, self.health = vs, rs, health
        self.runnables: dict[int, _Runnable] = {}  # by checker index


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


AddressMatch = Callable[[IPAddress], bool]


def _vs_addresses(vs: VirtualServer, groups: Mapping[str, VirtualServerGroup]) -> AddressMatch:
    """Whether an address is one of ``vs``'s (its own, or one in its group's ranges)."""
    if vs.address is not None:
        own = vs.address
        return lambda a: a == own
    group = groups.get(vs.group or "")
    ranges = [] if group is None else [(int(r.first), int(r.last), r.family) for r in group.ranges]
    return lambda a: any(lo <= int(a) <= hi and a.version == fam for lo, hi, fam in ranges)


def _migrated(
    old: _Server | None, checker: Checker, taken: set[int]
) -> tuple[int, _Runnable | None] | None:
    """The index (and runnable) of an old checker of the same real server with the same
    configuration that no other new checker took yet; None for a new/changed checker."""
    if old is None:
        return None
    for index, previous in enumerate(old.rs.checkers):
        if index not in taken and previous == checker:
            taken.add(index)
            return index, old.runnables.get(index)
    return None


class CheckerSet:
    """Runs all checkers of an :class:`LvsConfig` and reports real-server health changes."""

    def __init__(
        self,
        lvs: LvsConfig,
        on_change: ChangeCallback,
        *,
        on_alert: AlertCallback | None = None,
        track_files: Mapping[str, TrackFile] | None = None,
        file_values: Mapping[str, int] | None = None,
        default_script_user: tuple[str | None, str | None] = (None, None),
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        probe_factory: ProbeFactory | None = None,
        previous: CheckerSet | None = None,
    ) -> None:
        """``on_alert``: called when a checker changes state (SMTP alerts);
        ``track_files``: the configured track files by name (FILE_CHECK without its own
        weight takes the file's); ``file_values``: their current values (missing = 0);
        ``clock``: the time source (the event loop's clock on Linux); ``rand``: the warmup
        randomness in [0, 1]; ``probe_factory``: replaces :func:`probe_for` (tests, bench);
        ``previous``: the set of the configuration before a reload, already stopped, whose
        unchanged checkers' state is migrated.
        """
        self._on_change = on_change
        self._on_alert = on_alert
        self._clock = clock
        self._rand = rand
        self._tracks = dict(track_files or {})
        self._make_probe: ProbeFactory = probe_factory or (
            lambda c: probe_for(c, ssl_config=lvs.ssl, default_script_user=default_script_user)
        )
        self._servers: dict[tuple[VsKey, RsKey], _Server] = {}
        self._runnables: list[_Runnable] = []
        self._by_vs: dict[VsKey, list[_Runnable]] = {}  # ha_suspend acts per virtual server
        self._files: dict[str, list[_FileWatch]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        groups = {g.name: g for g in lvs.virtual_server_groups}
        # ha_suspend (spec §9.2): which virtual servers follow which addresses
        self._suspendable: dict[VsKey, AddressMatch] = {}
        self._local: frozenset[IPAddress] | None = None  # unknown until the runtime says
        values = dict(file_values or {})
        now = clock()
        old = previous._servers if previous is not None else {}
        for vs in lvs.virtual_servers:
            if vs.ha_suspend:
                if vs.address is None and vs.group is None:
                    log.warning(
                        "VS %s: ha_suspend needs an address to follow - ignored for fwmark",
                        vs.label,
                    )
                else:
                    self._suspendable[vs_key(vs)] = _vs_addresses(vs, groups)
            for rs in vs.real_servers:
                prev = old.get((vs_key(vs), rs_key(rs)))
                self._add_server(vs, rs, values, now, prev)
        if previous is not None and previous._local is not None:
            self.set_local_addresses(previous._local)

    def _add_server(
        self,
        vs: VirtualServer,
        rs: RealServer,
        values: Mapping[str, int],
        now: float,
        old: _Server | None,
    ) -> None:
        initial: list[bool] = []
        deltas: list[int] = []
        runnable: list[tuple[int, CheckerBase, Probe, RetrySchedule | None]] = []
        watches: list[tuple[int, str, int, bool]] = []
        taken: set[int] = set()
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
                schedule = None
                match = _migrated(old, checker, taken)
                if match is not None and old is not None:
                    # keepalived migrate_checkers: same checker, same state and counters
                    old_index, previous = match
                    up = old.health.checker_up(old_index)
                    delta = old.health.checker_delta(old_index)
                    schedule = previous.schedule if previous is not None else None
                    if schedule is not None and old.vs.ha_suspend != vs.ha_suspend:
                        schedule.enabled = vs_key(vs) not in self._suspendable
                runnable.append((index, checker, probe, schedule))
            initial.append(up)
            deltas.append(delta)
        server = _Server(vs, rs, RsHealth(rs.weight, initial, deltas))
        self._servers[(vs_key(vs), rs_key(rs))] = server
        for index, base, probe, carried in runnable:
            fast = isinstance(base, HttpCheck) and base.fast_recovery
            schedule = carried or RetrySchedule(
                Timing.of(base, fast_recovery=fast),
                now=now,
                rand=self._rand(),
                # ha_suspend: off until the runtime says the VS's address is here
                enabled=vs_key(vs) not in self._suspendable,
            )
            r = _Runnable(server, index, base, schedule, probe)
            server.runnables[index] = r
            self._runnables.append(r)
            self._by_vs.setdefault(vs_key(vs), []).append(r)
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

    def schedule(self, vs: VirtualServer, rs: RealServer, index: int) -> RetrySchedule | None:
        """The retry schedule of checker ``index`` of ``rs.checkers`` (None: not polled)."""
        r = self._servers[(vs_key(vs), rs_key(rs))].runnables.get(index)
        return None if r is None else r.schedule

    def __iter__(self) -> Iterator[tuple[VirtualServer, RealServer, RsState]]:
        for s in self._servers.values():
            yield s.vs, s.rs, s.health.state

    def next_deadline(self) -> float | None:
        """The earliest due probe (for dumps and tests); None when nothing is scheduled."""
        deadlines = [d for r in self._runnables if (d := r.schedule.next_deadline()) is not None]
        return min(deadlines, default=None)

    # ------------------------------------------------------------------------ inputs

    def _set_enabled(self, key: VsKey, enabled: bool) -> None:
        """``ha_suspend``: enable/disable the checkers of one VS (effective at their next
        run; a suspended checker keeps its state, keepalived ``update_checker_activity``)."""
        for r in self._by_vs.get(key, ()):
            if r.schedule.enabled != enabled:
                r.schedule.enabled = enabled
                log.info(
                    "%s healthchecker for service %s for VS %s",
                    "Activating" if enabled else "Suspending",
                    hostport(r.server.rs.address, r.server.rs.port),
                    r.server.vs.label,
                )

    def set_local_addresses(self, addresses: Iterable[IPAddress]) -> None:
        """``ha_suspend`` (spec §9.2): the addresses now configured on local interfaces. The
        checkers of a VS with ``ha_suspend`` run while one of its addresses is among them
        (a master director) and are suspended otherwise (a backup director)."""
        local = frozenset(addresses)
        self._local = local
        for key, matches in self._suspendable.items():
            self._set_enabled(key, any(matches(a) for a in local))

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
        if outcome.changed and self._on_alert is not None:
            # keepalived's epilogues mail after update_svr_checker_state, with the real
            # server's new alive state in the subject
            self._on_alert(
                CheckerAlert(
                    server.vs,
                    server.rs,
                    outcome.up,
                    server.health.state.alive,
                    alert_body(checker, outcome.up, result.detail),
                )
            )

    def _update(self, server: _Server, index: int, *, up: bool, delta: int | None) -> None:
        changed = server.health.update(index, up=up, delta=delta)
        if changed is not None:
            self._on_change(RsChange(server.vs, server.rs, changed.alive, changed.weight))


__all__ = [
    "AlertCallback",
    "ChangeCallback",
    "CheckerAlert",
    "CheckerSet",
    "RsChange",
    "RsKey",
    "RsState",
    "VsKey",
    "alert_body",
    "probe_for",
    "rs_key",
    "vs_key",
]
