"""Notify scripts and FIFO lines: pykad's :class:`~pykad.adapters.ports.NotifyPort` (spec §6).

What happens for one notification (spec §6.1), in order: the state's own script
(``notify_master`` ...) with exactly its configured argv; the generic ``notify`` script with
``INSTANCE|GROUP <name> <STATE> <prio>`` appended (§6.2); one line
``INSTANCE "<name>" <STATE> <prio>`` to every open FIFO (§6.4); then the SMTP alert, if
``smtp_alert`` (:mod:`pykad.runtime.mail`, sent in the background).

Scripts keepalived disables at start-up (missing, not executable by their user, unknown
user, or insecure under ``enable_script_security``; see
:func:`pykad.config.security.refused_scripts`) are logged once, naming the file and the
problem, and never run.
A sync group's MASTER notification first waits (bounded) until every member has executed
its own move to MASTER (``group_settled``, set by the daemon), so the group's
``notify_master`` runs with all the members' addresses installed.

Execution model (§6.3): never a shell (``create_subprocess_exec``), stdin/stdout/stderr on
/dev/null, working directory ``/``, a process group of its own (a timeout kills the whole
tree), run as the configured user (the script's own ``USER [GROUP]``, else ``script_user``,
else ``keepalived_script`` when that account exists, else the daemon's user) with the
supplementary groups cleared as 2.2.7 does. The environment is the daemon's minus
``IFS``/``LD_PRELOAD``/``LD_LIBRARY_PATH`` (keepalived HEAD). All of it is
:mod:`pykad.adapters.scripts`, shared with vrrp_script and MISC_CHECK.

keepalived forks and forgets. pykad keeps a queue per instance (and per sync group) so that
notifications of one instance start in the order the state machine produced them; the queue
waits for a notification's scripts before starting the next one, bounded by
``script_timeout_s`` after which the script's process group is killed and the hang reported.
The protocol never waits for any of this: :meth:`Notifier.notify` only enqueues.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pykad.adapters.scripts import RunAs, kill_group, lookup, run_as, sigkill_group, spawn
from pykad.config.model import Config, NotifyFifo, Script
from pykad.config.model import Notify as NotifyScripts
from pykad.config.security import ScriptVerdict, refused_scripts, script_key
from pykad.runtime.mail import Mailer

log = logging.getLogger(__name__)

# spec §6.1: the state-specific script for each notification event
_STATE_SCRIPT = {
    "MASTER": "master",
    "BACKUP": "backup",
    "FAULT": "fault",
    "STOP": "stop",
    "DELETED": "deleted",
}
Credentials = RunAs  # the uid/gid a script runs as (pykad.adapters.scripts)


@dataclass(frozen=True, slots=True)
class _Command:
    argv: tuple[str, ...]
    creds: Credentials | None  # None: run as the daemon's own user
    label: str  # for logs: notify_master, notify, ...


@dataclass(frozen=True, slots=True)
class _Job:
    commands: tuple[_Command, ...]
    fifo_line: bytes
    lvs: bool = False  # an LVS line: notify_fifo + lvs_notify_fifo, not vrrp_notify_fifo
    # awaited before anything runs: a group's MASTER notification waits for its members
    gate: Callable[[], Awaitable[None]] | None = None
    mail: tuple[str, str, str] | None = None  # (kind, name, event) for the SMTP alert


def fifo_line(kind: str, name: str, event: str, priority: int) -> bytes:
    """``INSTANCE "VI_1" MASTER 100\\n`` (spec §6.4); groups always report priority 0."""
    return f'{kind} "{name}" {event} {0 if kind == "GROUP" else priority}\n'.encode()


def notify_argv(script: Script, kind: str, name: str, event: str, priority: int) -> tuple[str, ...]:
    """The generic ``notify`` argv: configured words + TYPE NAME STATE PRIO (spec §6.2)."""
    prio = 0 if kind == "GROUP" else priority
    return (*script.argv, kind, name, event, str(prio))


class Notifier:
    """Runs notify scripts and writes FIFO lines for every instance and sync group.

    FIFOs by process (spec §6.4, as keepalived's VRRP and checker processes): ``vrrp`` opens
    ``vrrp_notify_fifo``, ``lvs`` opens ``lvs_notify_fifo``, every process the global
    ``notify_fifo``. Each FIFO's script is started by one process only (a FIFO with two
    readers would split its lines between them): ``global_fifo_script`` False leaves the
    global one to the other process (the checker child leaves it to its parent)."""

    def __init__(
        self,
        config: Config,
        *,
        script_timeout_s: float = 30.0,
        kill_grace_s: float = 1.0,
        vrrp: bool = True,
        lvs: bool = True,
        global_fifo_script: bool = True,
    ) -> None:
        self._config = config
        self.vrrp, self.lvs, self.global_fifo_script = vrrp, lvs, global_fifo_script
        self.script_timeout_s = script_timeout_s
        self.kill_grace_s = kill_grace_s
        self._queues: dict[tuple[str, str], asyncio.Queue[_Job]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.subprocess.Process] = set()
        self._fifos: dict[str, int] = {}  # path -> fd
        self._created_fifos: set[str] = set()
        self._fifo_scripts: list[asyncio.subprocess.Process] = []
        self.failures = 0  # scripts that could not start or were killed at their timeout
        self._refused = self._check_scripts(config)
        self.mailer = Mailer(config)  # spec §6.1 step 5: after the scripts and the FIFO line
        # set by the daemon: waits until every member of a sync group has entered a state,
        # so that the group's notify_master runs after all the members' addresses are up
        self.group_settled: Callable[[str, str], Awaitable[None]] | None = None

    # ---------------------------------------------------------------- configuration / FIFOs

    def _fifo_specs(self) -> list[NotifyFifo]:
        g = self._config.global_defs
        specs = [f for f in (g.notify_fifo, g.vrrp_notify_fifo) if f is not None]
        # spec §6.4: the vrrp FIFO is ignored when it names the global one
        if len(specs) == 2 and specs[0].path == specs[1].path:
            specs.pop()
        return specs

    def _lvs_fifo_specs(self) -> list[NotifyFifo]:
        """The FIFOs that get the LVS ``VS``/``RS`` lines: notify_fifo and lvs_notify_fifo
        (spec §6.4; keepalived ipwrapper.c notify_fifo_vs/notify_fifo_rs)."""
        g = self._config.global_defs
        specs = [f for f in (g.notify_fifo, g.lvs_notify_fifo) if f is not None]
        if len(specs) == 2 and specs[0].path == specs[1].path:
            specs.pop()
        return specs

    def _all_fifo_specs(self) -> list[NotifyFifo]:
        """The FIFOs this process writes to: the global one and its halves' ones."""
        g = self._config.global_defs
        specs = [
            *([g.notify_fifo] if g.notify_fifo is not None else []),
            *(self._fifo_specs() if self.vrrp else []),
            *(self._lvs_fifo_specs() if self.lvs else []),
        ]
        return list({s.path: s for s in specs}.values())

    def _starts_script_of(self, spec: NotifyFifo) -> bool:
        """Whether this process starts ``spec``'s script (the global one: maybe not)."""
        g = self._config.global_defs
        is_global = g.notify_fifo is not None and spec.path == g.notify_fifo.path
        return self.global_fifo_script or not is_global

    @staticmethod
    def _check_scripts(config: Config) -> dict[tuple[str, str | None, str | None], ScriptVerdict]:
        """The notify scripts keepalived would disable at start-up (spec §6.3), logged once
        per configuration in keepalived's words plus the file and the exact problem."""
        refused = refused_scripts(config)
        for v in refused.values():
            if v.where.startswith(("vrrp_script ", "virtual_server")):
                continue  # vrrp_script / checker scripts: their runners report them
            if v.insecure:
                log.error(
                    "Unsafe permissions found for script '%s' - disabling: %s", v.path, v.problem
                )
            else:
                log.warning("Disabling %s script %s", v.where, v.message)
        return refused

    def _command(self, script: Script, argv: tuple[str, ...], label: str) -> _Command | None:
        if script_key(script) in self._refused:
            log.debug("%s `%s` is disabled - not running it", label, argv[0])
            return None
        g = self._config.global_defs
        try:
            # None when not root (we cannot change user) or nothing would change
            creds = run_as(script.user, script.group, (g.script_user, g.script_group))
        except KeyError:
            own = script.user is not None
            user, group = (script.user, script.group) if own else (g.script_user, g.script_group)
            log.error("%s: unknown user/group %s:%s - not running %s", label, user, group, argv[0])
            self.failures += 1
            return None
        return _Command(argv, creds, label)

    async def open(self) -> None:
        """Create and open the configured FIFOs, and start their ``*_fifo_script``s."""
        await self.mailer.open()
        for spec in self._all_fifo_specs():
            fd = self._open_fifo(spec)
            if fd is None:
                continue
            self._fifos[spec.path] = fd
            if spec.script is not None and self._starts_script_of(spec):
                cmd = self._command(spec.script, (*spec.script.argv, spec.path), "fifo_script")
                if cmd is not None:
                    proc = await self._spawn(cmd)
                    if proc is not None:
                        self._fifo_scripts.append(proc)

    def _open_fifo(self, spec: NotifyFifo) -> int | None:
        try:
            try:
                st = os.stat(spec.path)
            except FileNotFoundError:
                os.mkfifo(spec.path, 0o644)
                os.chmod(spec.path, 0o644)  # mkfifo obeys the umask; keepalived wants 0644
                self._created_fifos.add(spec.path)
                if spec.user is not None:
                    owner = lookup(spec.user, spec.group)
                    os.chown(spec.path, owner.uid, owner.gid)
            else:
                if not stat.S_ISFIFO(st.st_mode):
                    log.error("notify FIFO %s exists and is not a FIFO - ignoring", spec.path)
                    return None
            # O_RDWR: opening never blocks and writes never fail with ENXIO/EPIPE when no
            # reader is attached (keepalived does the same).
            return os.open(spec.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, KeyError) as exc:
            log.error("Unable to open notify FIFO %s: %s", spec.path, exc)
            return None

    async def update(self, config: Config) -> None:
        """A reload: new scripts apply to notifications queued from now on; FIFOs reopened."""
        old_specs = self._all_fifo_specs()
        self._config = config
        self._refused = self._check_scripts(config)
        self.mailer.update(config)
        if self._all_fifo_specs() != old_specs:
            await self._close_fifos()
            await self.open()

    # ---------------------------------------------------------------- NotifyPort

    def notify(self, kind: str, name: str, event: str, priority: int) -> None:
        """Queue the scripts and FIFO lines for ``kind`` (INSTANCE|GROUP) ``name``."""
        scripts = self._scripts_for(kind, name)
        commands: list[_Command | None] = []
        if scripts is not None and event == "MASTER_RX_LOWER_PRI":
            own = scripts.master_rx_lower_pri  # runs with no extra arguments (spec §6.2)
            if own is not None:
                commands.append(self._command(own, own.argv, "notify_master_rx_lower_pri"))
        elif scripts is not None and event in _STATE_SCRIPT:
            own = getattr(scripts, _STATE_SCRIPT[event])
            if own is not None:
                commands.append(self._command(own, own.argv, "notify_" + _STATE_SCRIPT[event]))
            if scripts.generic is not None:
                argv = notify_argv(scripts.generic, kind, name, event, priority)
                commands.append(self._command(scripts.generic, argv, "notify"))
        gate = None
        if kind == "GROUP" and event == "MASTER" and self.group_settled is not None:
            gate = functools.partial(self.group_settled, name, event)
        job = _Job(
            tuple(c for c in commands if c is not None),
            fifo_line(kind, name, event, priority),
            gate=gate,
            mail=(kind, name, event),
        )
        self._enqueue((kind, name), job)

    def notify_lvs(self, key: str, script: Script | None, label: str, line: str) -> None:
        """An LVS notification (spec §9.6): ``notify_up``/``notify_down`` or
        ``quorum_up``/``quorum_down`` with no extra argument, then ``line`` (``RS ...`` /
        ``VS ...``) to notify_fifo and lvs_notify_fifo. Same ``key``: run in order."""
        cmd = None if script is None else self._command(script, script.argv, label)
        job = _Job(() if cmd is None else (cmd,), f"{line}\n".encode(), lvs=True)
        self._enqueue(("LVS", key), job)

    def _enqueue(self, key: tuple[str, str], job: _Job) -> None:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            task = asyncio.get_running_loop().create_task(
                self._worker(queue), name=f"notify {key[0]} {key[1]}"
            )
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        queue.put_nowait(job)

    def write_fifo(self, kind: str, name: str, event: str, priority: int) -> None:
        """A FIFO line only, now (``fifo_write_vrrp_states_on_reload``, spec §6.1)."""
        self._write_fifos(fifo_line(kind, name, event, priority))

    def _scripts_for(self, kind: str, name: str) -> NotifyScripts | None:
        if kind == "GROUP":
            for group in self._config.sync_groups:
                if group.name == name:
                    return group.notify
            return None
        for inst in self._config.vrrp_instances:
            if inst.name == name:
                return inst.notify
        return None

    # ---------------------------------------------------------------- execution

    async def _worker(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._run_job(job)
            finally:
                queue.task_done()

    async def _run_job(self, job: _Job) -> None:
        if job.gate is not None:
            await job.gate()
        procs = [(cmd, await self._spawn(cmd)) for cmd in job.commands]
        self._write_fifos(job.fifo_line, lvs=job.lvs)
        if job.mail is not None:
            self.mailer.alert(*job.mail)
        for cmd, proc in procs:
            if proc is not None:
                await self._wait(cmd, proc)

    async def _spawn(self, cmd: _Command) -> asyncio.subprocess.Process | None:
        try:
            proc = await spawn(cmd.argv, cmd.creds)
        except OSError as exc:
            self.failures += 1
            log.error("Failed to exec %s `%s`: %s", cmd.label, " ".join(cmd.argv), exc)
            return None
        self._running.add(proc)
        log.debug("Executing %s `%s` (pid %d)", cmd.label, " ".join(cmd.argv), proc.pid)
        return proc

    async def _wait(self, cmd: _Command, proc: asyncio.subprocess.Process) -> None:
        try:
            await asyncio.wait_for(proc.wait(), self.script_timeout_s)
        except TimeoutError:
            self.failures += 1
            log.warning(
                "%s `%s` (pid %d) timed out after %gs - killing its process group",
                cmd.label,
                " ".join(cmd.argv),
                proc.pid,
                self.script_timeout_s,
            )
            await kill_group(proc, self.kill_grace_s)  # like keepalived (spec §6.3)
        finally:
            self._running.discard(proc)

    def _write_fifos(self, line: bytes, *, lvs: bool = False) -> None:
        paths = {s.path for s in (self._lvs_fifo_specs() if lvs else self._fifo_specs())}
        for path, fd in self._fifos.items():
            if path not in paths:
                continue
            try:
                os.write(fd, line)
            except BlockingIOError:
                log.debug("notify FIFO %s full - dropping %r", path, line)
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    log.warning("Write to notify FIFO %s failed: %s", path, exc)

    # ---------------------------------------------------------------- shutdown

    async def drain(self, timeout_s: float) -> bool:
        """Wait for every queued notification to finish, at most ``timeout_s``.

        At shutdown keepalived gives the STOP scripts 1 s, then SIGKILLs their process groups
        (spec §6.3). Returns True when everything finished in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        joins = [q.join() for q in self._queues.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*joins), timeout_s)
        except TimeoutError:
            for proc in list(self._running):
                log.warning("Killing notify script pid %d at shutdown", proc.pid)
                sigkill_group(proc)
            return False
        return await self.mailer.drain(max(0.0, deadline - loop.time()))

    async def close(self) -> None:
        """Stop the workers, kill what still runs, close and unlink our FIFOs."""
        for task in list(self._workers):
            task.cancel()
        for proc in list(self._running):
            sigkill_group(proc)
            await proc.wait()
        self._running.clear()
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)
        self._queues.clear()
        await self.mailer.close()
        await self._close_fifos()

    async def _close_fifos(self) -> None:
        for proc in self._fifo_scripts:
            await kill_group(proc, self.kill_grace_s)
        self._fifo_scripts.clear()
        for fd in self._fifos.values():
            os.close(fd)
        self._fifos.clear()
        for path in self._created_fifos:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._created_fifos.clear()
