"""The checker half in its own process, as keepalived's checker child (spec §7.1-§7.4, issue 8).

Why a process. The health checkers of hundreds of real servers share nothing with VRRP but
the configuration file; in one event loop their connects, timeouts and IPVS calls delay the
adverts (bench/checkers_vs_adverts.py measured 10 ms median, 180 ms worst for 300 TCP checks
at delay_loop 1 s). keepalived forks a checker child; pykad starts one too.

Roles (:func:`pid_files_for`): with neither ``-P/--vrrp`` nor ``-C/--check`` the daemon is
the *parent*: it runs VRRP itself and, while the configuration has virtual servers, a
*child*, the same program with the same configuration file and ``-C``
(:func:`child_argv`). ``-P`` and ``-C`` run one half in one process, as before.

The child is told it is one by :data:`PARENT_ENV` (the parent's pid) in its environment,
which it removes at once so that its scripts do not inherit it. It then:

- asks the kernel for SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``, what
  keepalived's children do) and exits if the parent is already gone (:func:`bind_to_parent`),
  so there is never an orphaned checker; SIGTERM makes it stop as on ``pykad stop``: it
  removes the IPVS entries it made (not with ``-I``);
- claims only the checkers pid file (``-c``, default ``/run/checkers.pid``);
- opens no control socket (``--control-socket ''``) and no metrics listener, and sends no
  sd_notify (``NOTIFY_SOCKET`` and ``PYKAD_METRICS`` are not in its environment,
  :func:`child_env`): systemd, ``pykad status`` and Prometheus talk to the parent;
- logs to the same stderr, each line prefixed ``pykad_checkers[PID]:`` (keepalived's
  checker logs as ``Keepalived_healthcheckers[PID]`` in syslog); its process name (comm,
  what ``ps -o comm`` and ``top`` show) is ``pykad_checkers``.

Supervision (:class:`CheckerChild`, in the parent): SIGHUP and the control socket's reload
reach the child as SIGHUP after the parent applied the new configuration; a reload that
adds the first virtual server starts the child, one that removes the last stops it. On stop
the parent sends SIGTERM and waits ``child_wait_time`` (5 s), then SIGKILL. A child that
dies otherwise is logged (``Healthcheck child process(PID) died: Respawning``) and started
again after a back-off (:class:`Backoff`) so that a child that fails at once cannot spin;
with ``-R/--dont-respawn`` the parent logs ``... died: Exiting`` and stops, exit status 1,
as keepalived does. A child that exits with keepalived's permanent errors (1 fatal, 2
configuration) is not restarted either: the parent stops (keepalived: "exited with
permanent error ... Terminating"); e.g. a checkers pid file held by a running keepalived.

The child is started with SIGHUP blocked (the mask survives exec) and unblocks it once its
handlers are installed (:func:`unblock_reload_signal`): a reload right after a (re)start is
then applied instead of killing a child that has no handler yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

from pykad.config.load import LoadResult
from pykad.config.model import Config, IPAddress
from pykad.errors import ExitCode
from pykad.runtime.process import DEFAULT_PID_FILE, DEFAULT_VRRP_PID_FILE

log = logging.getLogger(__name__)

DEFAULT_CHECKERS_PID_FILE = "/run/checkers.pid"  # spec §7.3
PARENT_ENV = "PYKAD_CHECKER_PARENT"
CHILD_NAME = "pykad_checkers"  # comm (15 bytes at most) and the log prefix
CHILD_WAIT_TIME_S = 5.0  # keepalived's child_wait_time (spec §7.2 STOP)
CHILD_ARGV0: list[str] = [sys.executable, "-P", "-m", "pykad"]
"""How the child is started: the same program as the parent (the cmdline names pykad, which
the pid file check of :mod:`pykad.runtime.process` recognises). ``-P``: not the working
directory first on ``sys.path``, so a ``pykad/`` folder there is never what runs."""

# keepalived's exit statuses after which a respawn cannot help (spec §7.4)
PERMANENT_EXITS = {int(ExitCode.FATAL): "FATAL", int(ExitCode.CONFIG): "CONFIG"}
# environment the child must not see: systemd's notify socket (NotifyAccess=main; the
# parent alone speaks for the service) and the metrics listener (the parent's)
_PARENT_ONLY_ENV = ("NOTIFY_SOCKET", "PYKAD_METRICS", "PYKAD_CONTROL_SOCKET")

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PR_SET_NAME = 15


# ---------------------------------------------------------------------------------------------
# Pure parts: who claims which pid file, the child's command line and environment, back-off


def pid_files_for(opts: Mapping[str, object], *, child: bool) -> list[str]:
    """The pid files a process claims (spec §7.3): the parent (and ``-P``) the main and the
    VRRP file, ``-C`` alone the main and the checkers file, the child only the checkers
    file. Duplicates (``-p X -r X``) once."""
    main = str(opts.get("pid_file") or DEFAULT_PID_FILE)
    vrrp = str(opts.get("vrrp_pid_file") or DEFAULT_VRRP_PID_FILE)
    checkers = str(opts.get("checkers_pid_file") or DEFAULT_CHECKERS_PID_FILE)
    if child:
        return [checkers]
    if opts.get("check_only"):
        return list(dict.fromkeys([main, checkers]))
    return list(dict.fromkeys([main, vrrp]))


def splits(opts: Mapping[str, object]) -> bool:
    """Neither ``-P`` nor ``-C``: the checker half runs in a child process."""
    return not opts.get("vrrp_only") and not opts.get("check_only")


def child_argv(opts: Mapping[str, object], *, argv0: Sequence[str] | None = None) -> list[str]:
    """The child's command line: the configuration file (absolute: a relative one would
    follow the child's working directory, which is the parent's today but need not stay so)
    and every option that changes what the checker half does, plus ``-C``, the checkers pid
    file and no control socket. :class:`CheckerChild` adds ``--config-snapshot``: what the
    child runs is the configuration its parent validated (:func:`write_snapshot`)."""
    argv = [*(CHILD_ARGV0 if argv0 is None else argv0), "-n", "-l"]
    argv += ["-f", os.path.abspath(str(opts["conf"])), "-C"]
    argv += ["-c", str(opts.get("checkers_pid_file") or DEFAULT_CHECKERS_PID_FILE)]
    argv += ["--control-socket", ""]
    if opts.get("config_id") is not None:
        argv += ["-i", str(opts["config_id"])]
    for flag, key in (("-e", "all_config"), ("-D", "log_detail"), ("-I", "dont_release_ipvs")):
        if opts.get(key):
            argv.append(flag)
    return argv


def write_snapshot(config: Config, path: str) -> None:
    """The configuration the parent runs, for its checker child (spec §7.1: keepalived's
    children read a copy the parent saved). The child never parses the file itself: a file
    edited or broken on disk since the parent loaded it cannot make the two halves differ,
    nor stop a respawned child (a configuration error is a permanent exit). Written whole
    and renamed into place, in the parent's private directory."""
    tmp = f"{path}.new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        pickle.dump(config, out, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def read_snapshot(path: str) -> LoadResult:
    """What :func:`write_snapshot` wrote, as a load result with no diagnostics (the parent
    has shown them). Only the parent's private directory is read (root, mode 0700)."""
    with open(path, "rb") as src:
        config = pickle.load(src)  # noqa: S301 - our own parent's file, see above
    if not isinstance(config, Config):
        raise TypeError(f"{path}: not a pykad configuration snapshot")
    return LoadResult(config, (), {})


def child_env(environ: Mapping[str, str], parent_pid: int) -> dict[str, str]:
    """The parent's environment without what belongs to the parent alone, plus
    :data:`PARENT_ENV`."""
    env = {k: v for k, v in environ.items() if k not in _PARENT_ONLY_ENV}
    env[PARENT_ENV] = str(parent_pid)
    return env


def take_parent_pid(environ: MutableMapping[str, str]) -> int | None:
    """The parent's pid if this process is a checker child (removed from ``environ``, so
    that the child's scripts and their children do not think they are one)."""
    value = environ.pop(PARENT_ENV, None)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def describe_exit(returncode: int) -> str:
    """``subprocess``'s return code in words, as keepalived's report_child_status."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"killed by signal {name}"
    return f"exited with status {returncode}"


@dataclass
class Backoff:
    """Delays between respawns: a child that keeps dying young waits ``initial_s``, then
    twice as long each time up to ``maximum_s``; one that ran ``stable_s`` or longer
    starts the sequence again. Never zero, so that a stop that races the child's own exit
    (systemd sends SIGTERM to the whole cgroup) is seen before a respawn."""

    initial_s: float = 0.5
    maximum_s: float = 60.0
    stable_s: float = 60.0
    _next_s: float = field(default=0.0, init=False)

    def delay(self, ran_for_s: float) -> float:
        """The wait before the next start of a child that died after ``ran_for_s``."""
        if ran_for_s >= self.stable_s or self._next_s == 0.0:
            self._next_s = self.initial_s
        else:
            self._next_s = min(self._next_s * 2, self.maximum_s)
        return self._next_s


# ---------------------------------------------------------------------------------------------
# In the child


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def bind_to_parent(parent_pid: int) -> bool:
    """Die with the parent: SIGTERM when it exits (``PR_SET_PDEATHSIG``). False if the
    parent is gone already (then no signal would ever come). Names the process
    :data:`CHILD_NAME`."""
    libc = _libc()
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    libc.prctl(_PR_SET_NAME, CHILD_NAME.encode(), 0, 0, 0)
    # after the prctl: a parent that died before it would go unnoticed otherwise
    return os.getppid() == parent_pid


class ChildFormatter(logging.Formatter):
    """keepalived's console line with the checker's name and pid in front of the message."""

    def __init__(self) -> None:
        super().__init__(
            f"%(asctime)s: {CHILD_NAME}[%(process)d]: %(message)s", datefmt="%a %b %e %H:%M:%S %Y"
        )


def unblock_reload_signal() -> None:
    """The parent starts the child with SIGHUP blocked; the child calls this once its
    SIGHUP handler is installed (a pending reload is delivered then)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


# ---------------------------------------------------------------------------------------------
# In the parent


@dataclass(frozen=True)
class ChildSpec:
    """How to start the checker child."""

    argv: Sequence[str]
    env: Mapping[str, str]
    respawn: bool = True  # not with -R/--dont-respawn


class CheckerChild:
    """The parent's side of the checker child: starts, reloads, stops and respawns it.

    The same four coroutines as :class:`~pykad.runtime.lvs.LvsManager`, which the daemon
    runs in-process with ``-C``."""

    def __init__(
        self,
        config: Config,
        spec: ChildSpec,
        *,
        stopping: Callable[[], bool],
        on_fatal: Callable[[], None],
        backoff: Backoff | None = None,
        wait_time_s: float = CHILD_WAIT_TIME_S,
    ) -> None:
        self.config = config
        self.spec = spec
        self._stopping = stopping  # the daemon is stopping: an exit is expected
        self._on_fatal = on_fatal  # the child cannot run: the daemon stops
        self.backoff = backoff or Backoff()
        self.wait_time_s = wait_time_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._wanted = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # cuts a back-off short when the child is not wanted
        self._snapshots: str | None = None  # private directory of the configuration snapshot

    def wanted(self) -> bool:
        """Started and not stopped (a method: mypy would narrow an attribute or property
        across the awaits that change it)."""
        return self._wanted

    @property
    def pid(self) -> int | None:
        proc = self.proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def start(self) -> bool:
        """Start the child if the configuration has virtual servers (not once the daemon
        is stopping: a reload that raced the stop must not leave a child behind)."""
        if not self.config.lvs.virtual_servers or self._stopping():
            return False
        self._wanted = True
        self._wake.clear()
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="checkers")
        return True

    async def reload(self, config: Config) -> None:
        """After the parent applied a reload: the child re-reads the configuration itself
        (SIGHUP), or starts or stops with the first or last virtual server."""
        self.config = config
        if config.lvs.virtual_servers:
            if self._task is None:
                await self.start()
            elif self.pid is not None:
                self._snapshot()  # the child reloads from it
                self._signal(signal.SIGHUP)
            # else: between two starts; the next one reads the new configuration
        elif self._task is not None:
            log.info("No virtual server left - stopping the Healthcheck child process")
            await self.stop()

    async def stop(self) -> None:
        """SIGTERM, wait up to ``wait_time_s`` for the child to remove its IPVS entries,
        then SIGKILL."""
        self._wanted = False
        self._wake.set()
        proc = self.proc
        if proc is not None and proc.returncode is None:
            self._signal(signal.SIGTERM)
            if not await self._exited(self.wait_time_s):
                log.warning(
                    "Healthcheck child process(%d) did not stop within %g s - killing it",
                    proc.pid,
                    self.wait_time_s,
                )
                self._signal(signal.SIGKILL)
                await self._exited(None)
        await self._end_task()
        if self._snapshots is not None:
            shutil.rmtree(self._snapshots, ignore_errors=True)
            self._snapshots = None

    def _snapshot(self) -> str:
        """Write the current configuration for the child (:func:`write_snapshot`)."""
        if self._snapshots is None:
            self._snapshots = tempfile.mkdtemp(prefix="pykad-checkers-")  # mode 0700
        path = os.path.join(self._snapshots, "config.pickle")
        write_snapshot(self.config, path)
        return path

    def local_addresses(self, addresses: Iterable[IPAddress]) -> None:
        """Nothing to pass on: the child watches this host's addresses itself (ha_suspend)."""
        del addresses

    async def close(self) -> None:
        """The daemon is closing (also after a bug, when stop() was not called): no child is
        left behind, and a running one still gets its SIGTERM and the time to remove its
        IPVS entries (spec §7.2) before a SIGKILL."""
        await self.stop()

    async def _end_task(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _exited(self, within_s: float | None) -> bool:
        """Wait (up to ``within_s``) until the supervisor has reaped the child."""
        task = self._task
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return True
        if task is None:  # no supervisor to reap it
            await asyncio.to_thread(proc.wait)
            return True
        _done, pending = await asyncio.wait([task], timeout=within_s)
        return not pending

    def _signal(self, sig: int) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    # ------------------------------------------------------------------ the supervisor task

    async def _supervise(self) -> None:
        while self.wanted():
            try:
                proc = self._spawn()
            except OSError as exc:  # no such program, no memory: no retry will help
                log.error("Healthcheck child process: fork error(%s). Terminating", exc)
                self._fatal()
                return
            started = time.monotonic()
            returncode = await self._wait(proc)
            why = describe_exit(returncode)
            if not self.wanted() or self._stopping():
                log.debug("Healthcheck child process(%d) %s (stopping)", proc.pid, why)
                return
            permanent = PERMANENT_EXITS.get(returncode)
            if permanent is not None:
                log.error(
                    "Healthcheck child process(%d) exited with permanent error %s. Terminating",
                    proc.pid,
                    permanent,
                )
                self._fatal()
                return
            if not self.spec.respawn:
                log.critical("Healthcheck child process(%d) died: Exiting", proc.pid)
                log.info("Healthcheck child process(%d) %s", proc.pid, why)
                self._fatal()
                return
            delay = self.backoff.delay(time.monotonic() - started)
            log.critical("Healthcheck child process(%d) died: Respawning", proc.pid)
            log.info("Healthcheck child process(%d) %s - next start in %g s", proc.pid, why, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if self._stopping():
                return

    def _fatal(self) -> None:
        self._wanted = False
        self._on_fatal()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # SIGHUP blocked across the fork: the child inherits the mask through exec and
        # unblocks it when its handler is in place (unblock_reload_signal). Nothing awaits
        # in between, so no other process of ours is started with it blocked.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            proc = subprocess.Popen(
                [*self.spec.argv, "--config-snapshot", self._snapshot()],
                env=dict(self.spec.env),
                stdin=subprocess.DEVNULL,
                close_fds=True,
                # own process group: a Ctrl-C on the terminal reaches the parent only, which
                # stops the child in order (spec §7.2: the parent propagates signals)
                process_group=0,
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        self.proc = proc
        self.starts += 1
        log.info("Starting Healthcheck child process, pid=%d", proc.pid)
        return proc

    async def _wait(self, proc: subprocess.Popen[bytes]) -> int:
        """The child's exit status, without a thread: its pidfd becomes readable on exit."""
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not exited.done():
                exited.set_result(None)

        pidfd = os.pidfd_open(proc.pid)
        try:
            loop.add_reader(pidfd, readable)
            try:
                await exited
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)
        return proc.wait()
