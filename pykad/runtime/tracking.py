"""Tracking runners: the world turned into the machine's tracker events (spec §4.2-4.4, §3.5).

Theory of operation. :class:`Trackers` owns one runner per tracked object of the running
configuration and reports every change through one callback as a
:class:`~pykad.fsm.events.TrackerChanged` (``script``/``process``) or
:class:`~pykad.fsm.events.TrackFileChanged`; the daemon puts it in the inbox of every
instance and :class:`~pykad.fsm.tracking.Tracking` does the §4.3 arithmetic (weights,
reverse, clamping, FAULT). Nothing here knows about weights. Interfaces are not here: the
daemon's :class:`~pykad.adapters.netlink.LinkMonitor` reports them from netlink broadcasts.

* ``vrrp_script`` (§4.2, §6.3): :class:`ScriptRunner`, one per script however many instances
  and groups track it. Every ``interval`` it execs the argv (never a shell) with stdio on
  /dev/null (a script that floods output writes into nothing), in a process group of its own,
  as the script's user. A run still going at the next tick makes that tick a logged skip
  (keepalived HEAD; 2.2.7 starts a second copy - a bug). After ``timeout`` the group gets
  SIGTERM, SIGKILL 2 s later, and the run is a failure. Exit 0 is success; anything else,
  death by a signal included, is failure. :class:`RiseFall` is keepalived's counter, pure.
* ``track_file`` (§4.3): :class:`FileWatcher` reads each file (127 bytes, ``strtol`` base 0,
  missing or empty = 0) at start and whenever inotify reports it written, moved in, moved
  away or deleted. The *directory* is watched, so a file that does not exist yet, or that is
  replaced by a rename, is seen. ``init_file`` writes the initial value first.
* ``vrrp_track_process`` (§4.4): :class:`ProcessWatcher` counts matching processes by
  scanning /proc every ``PROCESS_SCAN_INTERVAL_S``; :class:`ProcessQuorum` (pure) applies
  quorum/quorum_max and the fork/terminate delays. keepalived listens to the proc connector
  instead; pykad does not, because that netlink multicast reports every process of the host
  whatever the namespace, drops events when its buffer overflows (so a /proc rescan is
  needed anyway), and needs CAP_NET_ADMIN in the initial namespace. A scan of /proc costs a
  few milliseconds and runs in a worker thread, never in the event loop.

Everything is asynchronous: a hanging script, a slow /proc scan or a burst of inotify
events never delays an instance's adverts (each instance has its own driver task).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from pykad.adapters.scripts import RunAs, exec_path, kill_group, run_as, sigkill_group, spawn
from pykad.config.model import Config, GlobalDefs, TrackFile, TrackProcess, VrrpScript
from pykad.config.security import refused_scripts, script_key
from pykad.fsm.events import TrackerChanged, TrackFileChanged
from pykad.fsm.tracking import Key

log = logging.getLogger(__name__)

TrackerEvent = TrackerChanged | TrackFileChanged
OnEvent = Callable[[TrackerEvent], None]

KILL_GRACE_S: Final = 2.0  # spec §4.2: SIGKILL 2 s after the timeout's SIGTERM
PROCESS_SCAN_INTERVAL_S: Final = 0.25
TRACK_FILE_READ_MAX: Final = 127  # spec §4.3: keepalived reads into a 128-byte buffer
_INT_MIN: Final = -(2**31)
_INT_MAX: Final = 2**31 - 1
_LONG_MIN: Final = -(2**63)
_LONG_MAX: Final = 2**63 - 1

# --------------------------------------------------------------------------------------------
# Pure parts: rise/fall, track file values, process quorum and matching


class RiseFall:
    """keepalived's rise/fall counter of one vrrp_script (spec §4.2), with no I/O.

    ``result`` runs over 0..rise+fall-1 and the script is OK when ``result >= rise``. ``up``
    is None until the first result (unless ``init_fail``, which starts it failed), then the
    script's state. :meth:`record` returns the new state when a result changed it.
    """

    def __init__(
        self, rise: int, fall: int, *, init_fail: bool = False, carried: bool | None = None
    ) -> None:
        self.rise = rise
        self.fall = fall
        self.up: bool | None
        if carried is not None:
            # spec §4.2 last bullet: a reload keeps the state of a script of the same name
            self.up = carried
            self.result = self._top if carried else 0
        else:
            self.up = False if init_fail else None
            self.result = 0 if init_fail else rise - 1

    @property
    def _top(self) -> int:
        return self.rise + self.fall - 1

    def record(self, ok: bool) -> bool | None:
        changed: bool | None = None
        if ok:
            if self.result < self.rise - 1:
                self.result += 1
            elif self.result != self._top:
                if self.result < self.rise:  # == rise-1: FAILED (or unknown) -> OK
                    changed = True
                self.result = self._top
        elif self.result > self.rise:
            self.result -= 1
        else:
            # result == rise: OK -> FAILED; the very first result decides too (§4.2)
            if self.result == self.rise or self.up is None:
                changed = False
            self.result = 0
        if changed is not None:
            self.up = changed
        return changed


def strtol(text: bytes) -> tuple[int, bool]:
    """C ``strtol(text, NULL, 0)``: (value, overflowed). Leading blanks, a sign, ``0x`` hex,
    ``0`` octal, as many digits as parse; no digits give 0."""
    s = text.split(b"\0", 1)[0].lstrip(b" \t\n\v\f\r")
    sign = 1
    if s[:1] in (b"+", b"-"):
        sign = -1 if s[:1] == b"-" else 1
        s = s[1:]
    base = 10
    if s[:2].lower() == b"0x" and s[2:3] and s[2:3] in b"0123456789abcdefABCDEF":
        base, s = 16, s[2:]
    elif s[:1] == b"0":
        base = 8
    digits = "0123456789abcdef"[:base]
    n = 0
    for ch in s.decode("latin-1").lower():
        d = digits.find(ch)
        if d < 0:
            break
        n = n * base + d
    value = sign * n
    if value > _LONG_MAX:
        return _LONG_MAX, True
    if value < _LONG_MIN:
        return _LONG_MIN, True
    return value, False


def track_file_value(data: bytes) -> int | None:
    """A track file's value (spec §4.3): empty is 0; None (keepalived: "Invalid number ...
    - ignoring", the previous value stays) when it does not fit a C int."""
    if not data:
        return 0
    value, overflow = strtol(data[:TRACK_FILE_READ_MAX])
    if overflow or not _INT_MIN <= value <= _INT_MAX:
        return None
    return value


def read_track_file(path: str) -> int | None:
    """Read a track file now: a missing or unreadable file is 0 (spec §4.3)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        data = os.read(fd, TRACK_FILE_READ_MAX)
    except OSError:
        data = b""
    finally:
        os.close(fd)
    return track_file_value(data)


class ProcessQuorum:
    """Quorum of one vrrp_track_process with its fork/terminate delays (spec §4.4), pure.

    ``up`` is "the number of matching processes is in [quorum, quorum_max]" (quorum_max 0:
    no process may run), debounced: a gain is reported once it has held for
    ``fork_delay_s``, a loss once it has held for ``terminate_delay_s``.
    """

    def __init__(self, proc: TrackProcess, count: int) -> None:
        self.proc = proc
        self.up = self.in_range(count)  # keepalived takes the initial count as is
        self._pending: bool | None = None
        self.deadline: float | None = None

    def in_range(self, count: int) -> bool:
        qmax = self.proc.quorum_max
        if qmax == 0:
            return count == 0
        return count >= self.proc.quorum and (qmax is None or count <= qmax)

    def observe(self, count: int, now: float) -> bool | None:
        """A new count at ``now``; the new state if it changed."""
        want = self.in_range(count)
        if want == self.up:
            self._pending, self.deadline = None, None
            return None
        if self._pending is not want:
            delay = self.proc.fork_delay_s if want else self.proc.terminate_delay_s
            self._pending, self.deadline = want, now + delay
        assert self.deadline is not None
        if now < self.deadline:
            return None
        self.up, self._pending, self.deadline = want, None, None
        return want


def _cmdline_params(proc: TrackProcess) -> bytes:
    return b"".join(a.encode() + b"\0" for a in proc.args)


def process_matches(proc: TrackProcess, comm: str, cmdline: bytes) -> bool:
    """Does a process (``comm``, NUL-separated ``cmdline``) count for ``proc`` (spec §4.4)?

    Without ``full_command`` the 15-character comm name is compared; with it argv[0]. The
    parameters (if any were configured) then match ``exact`` (all of them), ``partial``
    (the configured ones lead the actual ones) or ``initial`` (the same, the last configured
    word may be the start of the actual one).
    """
    if not proc.full_command:
        return comm == proc.process
    argv0, _, params = cmdline.partition(b"\0")
    if argv0.decode(errors="surrogateescape") != proc.process:
        return False
    want = _cmdline_params(proc)
    if not want:
        return True
    if proc.param_match == "exact":
        return params == want
    if proc.param_match == "partial":
        return params.startswith(want)
    return params.startswith(want[:-1])  # initial


def count_processes(procs: Iterable[TrackProcess], proc_root: str = "/proc") -> dict[str, int]:
    """Scan ``proc_root`` once: the number of live (not zombie) matches for each process."""
    procs = tuple(procs)
    counts = dict.fromkeys((p.name for p in procs), 0)
    need_cmdline = any(p.full_command for p in procs)
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return counts
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc_root}/{entry}/stat", "rb") as f:
                stat = f.read(512)
            cmdline = b""
            if need_cmdline:
                with open(f"{proc_root}/{entry}/cmdline", "rb") as f:
                    cmdline = f.read(4096)
        except OSError:
            continue  # the process ended while we looked
        # "pid (comm) S ...": comm may itself contain ')' - the last one closes it
        left, right = stat.find(b"("), stat.rfind(b")")
        if left < 0 or right < 0 or stat[right + 2 : right + 3] == b"Z":
            continue
        comm = stat[left + 1 : right].decode(errors="surrogateescape")
        for p in procs:
            if process_matches(p, comm, cmdline):
                counts[p.name] += 1
    return counts


# --------------------------------------------------------------------------------------------
# Running vrrp_scripts


Credentials = RunAs  # the uid/gid a script runs as (pykad.adapters.scripts)


def script_credentials(script: VrrpScript, gdefs: GlobalDefs) -> Credentials | None:
    """Who runs the script (spec §4.2, §6.3): its ``user [group]``, else ``script_user``,
    else ``keepalived_script`` if that account exists, else the daemon itself (None).
    Raises KeyError for an unknown user or group."""
    own = (gdefs.script_user, gdefs.script_group)
    return run_as(script.script.user, script.script.group, own)


class ScriptRunner:
    """Runs one vrrp_script every interval and reports its state changes (spec §4.2)."""

    def __init__(
        self,
        script: VrrpScript,
        gdefs: GlobalDefs,
        on_event: OnEvent,
        *,
        carried: bool | None = None,
        kill_grace_s: float = KILL_GRACE_S,
        refusal: str | None = None,
    ) -> None:
        self.script = script
        self.refusal = refusal  # why the script is disabled (spec §6.3 script security)
        self.name = script.name
        self.on_event = on_event
        self.kill_grace_s = kill_grace_s
        self.counter = RiseFall(
            script.rise, script.fall, init_fail=script.init_fail, carried=carried
        )
        self.runs = 0  # completed runs
        self.skipped = 0  # ticks skipped because the previous run was still going
        self.last_status: int | None = None  # exit status of the last run (-signal, None)
        self.last_duration_s: float | None = None  # wall time of the last completed run
        self.duration_total_s = 0.0  # over all completed runs (metrics: rate / runs)
        self._creds: Credentials | None = None
        self._creds_error: str | None = None
        try:
            self._creds = script_credentials(script, gdefs)
        except KeyError as exc:
            self._creds_error = str(exc.args[0])
        self._task: asyncio.Task[None] | None = None
        self._run: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def up(self) -> bool | None:
        return self.counter.up

    def start(self) -> None:
        if self.refusal is not None:
            # A disabled script never runs. pykad reports it failed once (keepalived drops
            # it from tracking instead): an unverified check never counts as healthy.
            log.error("%s", self.refusal)
            if self.counter.up is not False:
                self.counter = RiseFall(self.script.rise, self.script.fall, carried=False)
                self.on_event(TrackerChanged("script", self.name, False))
            return
        self._task = asyncio.get_running_loop().create_task(
            self._tick(), name=f"vrrp_script {self.name}"
        )

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.script.interval_s
        next_at = loop.time()  # spec §4.2: the first run is scheduled at once
        while True:
            if self._run is not None and not self._run.done():
                self.skipped += 1
                log.warning(
                    "Track script %s is already running, expect idle - skipping run", self.name
                )
            else:
                self._run = loop.create_task(self._run_once(), name=f"run {self.name}")
            next_at += interval
            now = loop.time()
            if next_at < now:  # we were late (a loaded host): do not try to catch up
                next_at = now + interval
            await asyncio.sleep(next_at - now)

    async def _run_once(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        ok, why = await self._execute()
        self.last_duration_s = loop.time() - started
        self.duration_total_s += self.last_duration_s
        self.runs += 1
        changed = self.counter.record(ok)
        if changed is True:
            log.info("VRRP_Script(%s) succeeded", self.name)
        elif changed is False and why != "timed_out":
            log.info("VRRP_Script(%s) failed (%s)", self.name, why)
        if changed is not None:
            self.on_event(TrackerChanged("script", self.name, changed))

    async def _execute(self) -> tuple[bool, str]:
        """One run: (success, why it failed)."""
        argv = self.script.script.argv
        if self._creds_error is not None:
            log.error("VRRP_Script(%s) cannot run: %s", self.name, self._creds_error)
            return False, self._creds_error
        try:
            proc = await spawn(argv, self._creds)
        except OSError as exc:
            argv0 = exec_path(argv[0])
            log.error("VRRP_Script(%s) cannot exec %s: %s", self.name, argv0, exc.strerror)
            return self._status(None, f"cannot exec: {exc.strerror}")
        self._proc = proc
        try:
            status = await asyncio.wait_for(proc.wait(), self.script.effective_timeout_s)
        except TimeoutError:
            log.warning("VRRP_Script(%s) timed_out", self.name)
            await kill_group(proc, self.kill_grace_s)  # §4.2: SIGTERM, SIGKILL 2 s later
            return self._status(None, "timed_out")
        finally:
            self._proc = None
        if status == 0:
            return self._status(0, "")
        if status < 0:
            return self._status(status, f"due to signal {-status}")
        return self._status(status, f"exited with status {status}")

    def _status(self, status: int | None, why: str) -> tuple[bool, str]:
        if status != self.last_status and status is not None:
            log.info("Script `%s` now returning %d", self.name, status)
        self.last_status = status
        return status == 0, why

    async def close(self) -> None:
        for task in (self._task, self._run):
            if task is not None:
                task.cancel()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            sigkill_group(proc)
            await proc.wait()
        for task in (self._task, self._run):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


# --------------------------------------------------------------------------------------------
# track_file with inotify (stdlib ctypes on libc)

IN_CLOSE_WRITE: Final = 0x008
IN_MOVED_FROM: Final = 0x040
IN_MOVED_TO: Final = 0x080
IN_DELETE: Final = 0x200
IN_Q_OVERFLOW: Final = 0x4000
IN_ISDIR: Final = 0x40000000
IN_NONBLOCK: Final = os.O_NONBLOCK
IN_CLOEXEC: Final = os.O_CLOEXEC
_WATCH_MASK: Final = IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
_EVENT: Final = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len


class Inotify:
    """A non-blocking inotify descriptor (inotify(7)) through libc, read in the event loop."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd: int = fd

    def add_watch(self, path: str, mask: int) -> int:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")
        return int(wd)

    def read(self) -> list[tuple[int, int, str]]:
        """Every pending event as (wd, mask, name)."""
        events: list[tuple[int, int, str]] = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return events
            if not buf:
                return events
            pos = 0
            while pos + _EVENT.size <= len(buf):
                wd, mask, _cookie, length = _EVENT.unpack_from(buf, pos)
                raw = buf[pos + _EVENT.size : pos + _EVENT.size + length]
                events.append((wd, mask, os.fsdecode(raw.rstrip(b"\0"))))
                pos += _EVENT.size + length

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def init_track_file(tf: TrackFile, *, reload: bool) -> None:
    """``init_file [VALUE] [overwrite]`` (spec §4.3): write the value when the file is
    missing, or always with ``overwrite`` (but not over a non-regular file, nor on reload)."""
    if tf.init_file is None:
        return
    try:
        st = os.stat(tf.path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not tf.init_file_overwrite or reload:
            return
        if not os.path.isfile(tf.path):
            log.error("Cannot initialise track file %s - it is not a regular file", tf.name)
            return
    try:
        with open(tf.path, "w", encoding="ascii") as f:
            f.write(f"{tf.init_file}\n")
    except OSError as exc:
        log.error("Unable to initialise track file %s: %s", tf.name, exc.strerror)


class FileWatcher:
    """Values of the track files, kept current with inotify on their directories (§4.3)."""

    def __init__(self, files: Iterable[TrackFile], on_event: OnEvent) -> None:
        self.files = {tf.name: tf for tf in files}
        self.on_event = on_event
        self.values: dict[str, int] = {}
        self._inotify: Inotify | None = None
        self._watch: dict[tuple[int, str], list[str]] = {}  # (wd, base name) -> track files
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, *, reload: bool = False) -> None:
        for tf in self.files.values():
            init_track_file(tf, reload=reload)
            self.values[tf.name] = read_track_file(tf.path) or 0
        if not self.files:
            return
        try:
            self._inotify = Inotify()
        except OSError as exc:
            log.error("Unable to monitor track files: %s", exc)
            return
        for tf in self.files.values():
            # keepalived: the file's real path if it exists, else its directory's (§4.3)
            real = os.path.realpath(tf.path)
            directory, base = os.path.split(real)
            if not os.path.isdir(directory):
                log.error("Track file directory for %s does not exist - not watching", tf.name)
                continue
            try:
                wd = self._inotify.add_watch(directory, _WATCH_MASK)
            except OSError as exc:
                log.error("track file %s is not accessible: %s", tf.name, exc)
                continue
            self._watch.setdefault((wd, base), []).append(tf.name)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._inotify.fd, self._readable)

    def _readable(self) -> None:
        assert self._inotify is not None
        for wd, mask, base in self._inotify.read():
            if mask & IN_Q_OVERFLOW:
                # events were lost: read every file again
                for name, tf in self.files.items():
                    self._update(name, read_track_file(tf.path))
                continue
            if mask & IN_ISDIR:
                continue
            for name in self._watch.get((wd, base), ()):
                if mask & (IN_DELETE | IN_MOVED_FROM):
                    self._update(name, 0)  # the file went away: it reads as 0
                else:
                    self._update(name, read_track_file(self.files[name].path))

    def _update(self, name: str, value: int | None) -> None:
        if value is None:
            log.info("Invalid number read from %s - ignoring", self.files[name].path)
            return
        if self.values.get(name) == value:
            return
        self.values[name] = value
        log.debug("track_file %s now reads %d", name, value)
        self.on_event(TrackFileChanged(name, value))

    def close(self) -> None:
        if self._inotify is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._inotify.fd)
            self._inotify.close()
            self._inotify = None
        self._watch.clear()


# --------------------------------------------------------------------------------------------
# vrrp_track_process by /proc scanning


class ProcessWatcher:
    """Counts the tracked processes every ``scan_interval_s`` and reports quorum changes."""

    def __init__(
        self,
        procs: Iterable[TrackProcess],
        on_event: OnEvent,
        *,
        scan_interval_s: float = PROCESS_SCAN_INTERVAL_S,
        proc_root: str = "/proc",
    ) -> None:
        self.procs = tuple(procs)
        self.on_event = on_event
        self.scan_interval_s = scan_interval_s
        self.proc_root = proc_root
        self.quorums: dict[str, ProcessQuorum] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if not self.procs:
            return
        counts = count_processes(self.procs, self.proc_root)
        self.quorums = {p.name: ProcessQuorum(p, counts[p.name]) for p in self.procs}
        for name, q in self.quorums.items():
            log.info("Quorum %s for tracked process %s", "gained" if q.up else "lost", name)
        self._task = asyncio.get_running_loop().create_task(self._scan(), name="track_process")

    def states(self) -> dict[str, bool]:
        return {name: q.up for name, q in self.quorums.items()}

    async def _scan(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.scan_interval_s)
            counts = await asyncio.to_thread(count_processes, self.procs, self.proc_root)
            now = loop.time()
            for name, q in self.quorums.items():
                changed = q.observe(counts[name], now)
                if changed is not None:
                    log.info(
                        "Quorum %s for tracked process %s", "gained" if changed else "lost", name
                    )
                    self.on_event(TrackerChanged("process", name, changed))

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --------------------------------------------------------------------------------------------
# All of it for one configuration


def _used(config: Config) -> tuple[set[str], set[str], set[str]]:
    """Names of the scripts, files and processes some instance tracks (group trackers are
    attached to the members by the lowering, spec §4.1)."""
    scripts: set[str] = set()
    files: set[str] = set()
    procs: set[str] = set()
    for inst in config.vrrp_instances:
        scripts.update(t.name for t in inst.track_scripts)
        files.update(t.name for t in inst.track_files)
        procs.update(t.name for t in inst.track_processes)
    return scripts, files, procs


class Trackers:
    """Every tracking runner of a configuration; events go to ``on_event``."""

    def __init__(
        self,
        config: Config,
        on_event: OnEvent,
        *,
        process_scan_interval_s: float = PROCESS_SCAN_INTERVAL_S,
        kill_grace_s: float = KILL_GRACE_S,
    ) -> None:
        self.config = config
        self.on_event = on_event
        self.process_scan_interval_s = process_scan_interval_s
        self.kill_grace_s = kill_grace_s
        self.scripts: dict[str, ScriptRunner] = {}
        self.files = FileWatcher((), on_event)
        self.processes = ProcessWatcher((), on_event)

    async def start(self) -> None:
        await self._apply(self.config, {}, reload=False)

    def states(self) -> dict[Key, bool]:
        """Known states of scripts (those with a result) and processes, for new machines."""
        out: dict[Key, bool] = {}
        for name, runner in self.scripts.items():
            if runner.up is not None:
                out[("script", name)] = runner.up
        for name, up in self.processes.states().items():
            out[("process", name)] = up
        return out

    def file_values(self) -> dict[str, int]:
        return dict(self.files.values)

    async def update(self, config: Config) -> None:
        """A reload: runners restart with the new settings; a script of the same name keeps
        its state (spec §4.2), files and processes are read again.

        Every known state is then reported once more: an instance that tracks an object
        only since this reload learns its state (the daemon queues the instances'
        ``Reconfigure`` before calling this; a repeated state changes nothing)."""
        carried = {n: r.up for n, r in self.scripts.items() if r.up is not None}
        await self.close()
        self.config = config
        await self._apply(config, carried, reload=True)
        for (kind, name), up in self.states().items():
            self.on_event(TrackerChanged(kind, name, up))
        for name, value in self.files.values.items():
            self.on_event(TrackFileChanged(name, value))

    async def _apply(self, config: Config, carried: Mapping[str, bool], *, reload: bool) -> None:
        scripts, files, procs = _used(config)
        g = config.global_defs
        refused = refused_scripts(config) if scripts else {}
        for vs in config.vrrp_scripts:
            if vs.name in scripts:
                verdict = refused.get(script_key(vs.script))
                refusal = None
                if verdict is not None and verdict.insecure:
                    refusal = (
                        f"Unsafe permissions found for script '{verdict.path}' - disabling:"
                        f" {verdict.problem}"
                    )
                elif verdict is not None:
                    refusal = f"Disabling {verdict.where} script {verdict.message}"
                self.scripts[vs.name] = ScriptRunner(
                    vs,
                    g,
                    self.on_event,
                    carried=carried.get(vs.name),
                    kill_grace_s=self.kill_grace_s,
                    refusal=refusal,
                )
        self.files = FileWatcher((f for f in config.track_files if f.name in files), self.on_event)
        self.files.start(reload=reload)
        self.processes = ProcessWatcher(
            (p for p in config.track_processes if p.name in procs),
            self.on_event,
            scan_interval_s=self.process_scan_interval_s,
        )
        self.processes.start()
        for runner in self.scripts.values():
            runner.start()

    async def close(self) -> None:
        await asyncio.gather(*(r.close() for r in self.scripts.values()))
        self.scripts.clear()
        self.files.close()
        await self.processes.close()


__all__ = [
    "Credentials",
    "FileWatcher",
    "Inotify",
    "ProcessQuorum",
    "ProcessWatcher",
    "RiseFall",
    "ScriptRunner",
    "Trackers",
    "count_processes",
    "init_track_file",
    "process_matches",
    "read_track_file",
    "script_credentials",
    "strtol",
    "track_file_value",
]
