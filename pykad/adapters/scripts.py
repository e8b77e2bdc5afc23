"""Run a configured script to completion with a timeout (spec §6.3, §9.5 MISC_CHECK).

The execution model of spec §6.3: never a shell (``create_subprocess_exec``), argv[0]
resolved on PATH when it has no ``/``, stdin/stdout/stderr on /dev/null (a script that floods
its output cannot hurt), working directory ``/``, a process group of its own so that a
timeout kills the whole tree (SIGTERM, then SIGKILL ``kill_grace_s`` later), run as the given
uid/gid with the supplementary groups cleared (2.2.7), and an environment without ``IFS``,
``LD_PRELOAD`` and ``LD_LIBRARY_PATH``.

:func:`run_script` is the one-shot form the waiting callers need (MISC_CHECK). The notify
queue (:mod:`pykad.runtime.notify`) and the vrrp_script runner (:mod:`pykad.runtime.tracking`)
keep their own loops (logging, queueing, skipped runs) but resolve users with :func:`run_as`,
start scripts with :func:`spawn` and stop them with :func:`kill_group` /
:func:`sigkill_group`: this module is the one place that knows the execution model.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
from dataclasses import dataclass

# the start-up check (config.security, a lower layer) and the runner agree on the default user
from pykad.config.security import DEFAULT_SCRIPT_USER, user_ids

SCRUBBED_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")


@dataclass(frozen=True, slots=True)
class RunAs:
    uid: int
    gid: int


def lookup(user: str, group: str | None = None) -> RunAs:
    """``user``'s uid and ``group``'s gid (else the user's primary group), by name or
    number, exactly as the configuration check resolved them (config.security.user_ids).

    Raises KeyError for an unknown user or group."""
    uid, gid, _name = user_ids(user, group)
    return RunAs(uid, gid)


def run_as(
    user: str | None, group: str | None, default: tuple[str | None, str | None] = (None, None)
) -> RunAs | None:
    """Who runs a script: its ``USER [GROUP]``, else ``default`` (the global ``script_user``),
    else ``keepalived_script`` when that account exists, else the daemon itself (None).

    None also when nothing would change or we cannot change it (not root). Raises KeyError
    for an unknown user or group.
    """
    if user is None:
        user, group = default
    if user is None:
        try:
            pwd.getpwnam(DEFAULT_SCRIPT_USER)
        except KeyError:
            return None
        user = DEFAULT_SCRIPT_USER
    who = lookup(user, group)
    if os.geteuid() != 0 or (who.uid, who.gid) == (os.getuid(), os.getgid()):
        return None
    return who


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """How a run ended: ``status`` is the exit status, ``-N`` for signal N, None if the
    script could not start or timed out (then ``error`` says which)."""

    status: int | None
    error: str = ""

    @property
    def timed_out(self) -> bool:
        return self.error == "timed out"


def exec_path(argv0: str) -> str:
    """``argv0`` resolved on PATH when it has no ``/`` (spec §6.3), else unchanged."""
    return argv0 if "/" in argv0 else shutil.which(argv0) or argv0


async def spawn(argv: tuple[str, ...], creds: RunAs | None) -> asyncio.subprocess.Process:
    """Start ``argv`` under the execution model above; raises OSError if it cannot exec."""
    extra: dict[str, object] = {}
    if creds is not None:
        # 2.2.7 clears the supplementary groups when it changes user
        extra = {"user": creds.uid, "group": creds.gid, "extra_groups": []}
    return await asyncio.create_subprocess_exec(
        exec_path(argv[0]),
        *argv[1:],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd="/",
        env={k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV},
        process_group=0,  # own group: a timeout kills the whole tree (spec §6.3)
        **extra,  # type: ignore[arg-type]
    )


def sigkill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group now (shutdown, cancellation); the caller reaps."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


async def kill_group(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM the process group, SIGKILL it ``grace_s`` later; reap the leader."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
            return
        except TimeoutError:
            continue
    await proc.wait()


async def run_script(
    argv: tuple[str, ...],
    *,
    creds: RunAs | None = None,
    timeout_s: float,
    kill_grace_s: float = 2.0,
) -> ScriptResult:
    """Run ``argv`` to completion, killing its process group after ``timeout_s``.

    Cancelling the caller kills the process group at once (SIGKILL) and re-raises.
    """
    try:
        proc = await spawn(argv, creds)
    except OSError as exc:
        return ScriptResult(None, f"cannot exec {exec_path(argv[0])}: {exc.strerror}")
    try:
        status = await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        await kill_group(proc, kill_grace_s)
        return ScriptResult(None, "timed out")
    except asyncio.CancelledError:
        sigkill_group(proc)
        await asyncio.shield(proc.wait())
        raise
    return ScriptResult(status)
