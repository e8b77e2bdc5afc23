"""The checker child (pykad.runtime.checker_child): who claims which pid file, the child's
command line and environment, the respawn back-off, and the supervisor driving real (tiny)
child processes: respawn, reload by SIGHUP (blocked until the child's handler is in place),
-R, permanent errors, stop with SIGKILL after the wait time (spec §7.1-§7.4).

No root needed; nothing sleeps: every wait is for a log line or a process exit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import os
import pickle
import signal
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykad.config.model import Config
from pykad.config.model_lvs import LvsConfig, RealServer, VirtualServer
from pykad.runtime.checker_child import (
    DEFAULT_CHECKERS_PID_FILE,
    PARENT_ENV,
    Backoff,
    CheckerChild,
    ChildSpec,
    child_argv,
    child_env,
    describe_exit,
    pid_files_for,
    read_snapshot,
    splits,
    take_parent_pid,
    write_snapshot,
)

VS = VirtualServer(
    address=ipaddress.IPv4Address("192.0.2.10"),
    port=80,
    real_servers=(RealServer(address=ipaddress.IPv4Address("192.0.2.21"), port=80),),
)
WITH_VS = Config(lvs=LvsConfig(virtual_servers=(VS,)))
NO_VS = Config()


# ---------------------------------------------------------------------------------- pure parts


def test_pid_files_of_each_role() -> None:
    opts: dict[str, object] = {"pid_file": "/x/main.pid", "vrrp_pid_file": "/x/vrrp.pid"}
    assert pid_files_for(opts, child=False) == ["/x/main.pid", "/x/vrrp.pid"]
    assert pid_files_for({**opts, "vrrp_only": True}, child=False) == [
        "/x/main.pid",
        "/x/vrrp.pid",
    ]
    assert pid_files_for({**opts, "check_only": True}, child=False) == [
        "/x/main.pid",
        DEFAULT_CHECKERS_PID_FILE,
    ]
    assert pid_files_for(
        {**opts, "check_only": True, "checkers_pid_file": "/x/c.pid"}, child=True
    ) == ["/x/c.pid"]
    assert pid_files_for({"pid_file": "/x/one", "vrrp_pid_file": "/x/one"}, child=False) == [
        "/x/one"
    ]
    assert pid_files_for({}, child=False) == ["/run/keepalived.pid", "/run/vrrp.pid"]


def test_only_neither_half_flag_splits() -> None:
    assert splits({})
    assert not splits({"vrrp_only": True})
    assert not splits({"check_only": True})


def test_child_argv_carries_what_changes_the_checker_half(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plain = child_argv({"conf": "k.conf"}, argv0=["pykad"])
    assert plain == [
        "pykad", "-n", "-l", "-f", str(tmp_path / "k.conf"), "-C",
        "-c", DEFAULT_CHECKERS_PID_FILE, "--control-socket", "",
    ]  # fmt: skip
    full = child_argv(
        {
            "conf": "/etc/k.conf",
            "config_id": "lb1",
            "all_config": True,
            "log_detail": True,
            "dont_release_ipvs": True,
            "checkers_pid_file": "/x/c.pid",
            "dont_release_vrrp": True,  # the VRRP half's: not passed
            "metrics": ("127.0.0.1", 9650),  # the parent's: not passed
            "control_socket": "/x/ctl",  # the parent's: not passed
        },
        argv0=["pykad"],
    )
    assert full == [
        "pykad", "-n", "-l", "-f", "/etc/k.conf", "-C", "-c", "/x/c.pid",
        "--control-socket", "", "-i", "lb1", "-e", "-D", "-I",
    ]  # fmt: skip
    # the interpreter of the parent, never the working directory first on sys.path (-P)
    assert child_argv({"conf": "/k"})[:4] == [sys.executable, "-P", "-m", "pykad"]


def test_child_env_drops_what_belongs_to_the_parent() -> None:
    env = child_env(
        {
            "PATH": "/bin",
            "NOTIFY_SOCKET": "/run/systemd/notify",
            "PYKAD_METRICS": "9650",
            "PYKAD_CONTROL_SOCKET": "/x/ctl",
        },
        1234,
    )
    assert env == {"PATH": "/bin", PARENT_ENV: "1234"}


def test_take_parent_pid_removes_the_marker() -> None:
    environ = {PARENT_ENV: "42", "PATH": "/bin"}
    assert take_parent_pid(environ) == 42
    assert environ == {"PATH": "/bin"}
    assert take_parent_pid(environ) is None
    assert take_parent_pid({PARENT_ENV: "x"}) is None


def test_describe_exit() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-9) == "killed by signal SIGKILL"
    assert describe_exit(-200) == "killed by signal 200"


def test_backoff_doubles_for_young_deaths_and_restarts_after_a_stable_run() -> None:
    b = Backoff(initial_s=0.5, maximum_s=4.0, stable_s=60.0)
    assert [b.delay(1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.delay(60.0) == 0.5  # ran long enough: a fresh sequence
    assert b.delay(0.1) == 1.0


# ---------------------------------------------------------------------------------- supervisor


class LogWaiter(logging.Handler):
    """Lets a test await the n-th log line containing a text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._changed = asyncio.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    async def wait(self, text: str, n: int = 1) -> None:
        async with asyncio.timeout(30):
            async with self._changed:
                await self._changed.wait_for(lambda: self.count(text) >= n)


@pytest.fixture
def logs() -> Iterator[LogWaiter]:
    handler = LogWaiter()
    logger = logging.getLogger("pykad.runtime.checker_child")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


class Owner:
    """The daemon's side: stopping flag and the fatal callback."""

    def __init__(self) -> None:
        self.stopping = False
        self.fatal = asyncio.Event()


# A child that waits for a signal; the arguments the supervisor appends (--config-snapshot
# PATH) are its positional parameters.
SLEEPER = ["sh", "-c", "exec sleep 60", "child"]


def supervisor(
    config: Config, argv: list[str], owner: Owner, *, respawn: bool = True, wait_s: float = 5.0
) -> CheckerChild:
    return CheckerChild(
        config,
        ChildSpec(argv, dict(os.environ), respawn=respawn),
        stopping=lambda: owner.stopping,
        on_fatal=owner.fatal.set,
        backoff=Backoff(initial_s=0.0, maximum_s=0.0),
        wait_time_s=wait_s,
    )


# The child of the respawn test: 1st start exits 3; the 2nd exits 7 on SIGHUP (its handler
# installed before it unblocks SIGHUP, as pykad's child does); the 3rd waits for SIGTERM.
RESPAWN_CHILD = """
import os, signal, sys
with open(sys.argv[1], "a") as f:
    f.write("x")
n = len(open(sys.argv[1]).read())
if n == 1:
    sys.exit(3)
if n == 2:
    signal.signal(signal.SIGHUP, lambda *_: os._exit(7))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
while True:
    signal.pause()
"""


@pytest.mark.asyncio
async def test_respawn_and_a_reload_that_comes_before_the_childs_handler(
    logs: LogWaiter, tmp_path: Path
) -> None:
    owner = Owner()
    argv = [sys.executable, "-c", RESPAWN_CHILD, str(tmp_path / "starts")]
    child = supervisor(WITH_VS, argv, owner)
    try:
        assert await child.start()
        await logs.wait("Starting Healthcheck child process", 2)
        first = logs.lines[0].rsplit("=", 1)[1]
        assert f"Healthcheck child process({first}) died: Respawning" in logs.lines
        assert f"Healthcheck child process({first}) exited with status 3 - next start in 0 s" in (
            logs.lines
        )
        # at once after the (re)start: the child may not have its handler yet; SIGHUP waits
        # blocked until it has (killed by SIGHUP otherwise, not "status 7")
        await child.reload(WITH_VS)
        await logs.wait("exited with status 7")
        await logs.wait("Starting Healthcheck child process", 3)
        assert child.pid is not None
        last = child.proc
        await child.stop()
        assert last is not None
        assert last.returncode == -signal.SIGTERM
        assert child.starts == 3
        assert not owner.fatal.is_set()
        assert logs.count("died") == 2  # the stop is no death
    finally:
        await child.close()


@pytest.mark.asyncio
async def test_reloads_start_and_stop_the_child_with_the_virtual_servers(
    logs: LogWaiter,
) -> None:
    owner = Owner()
    child = supervisor(NO_VS, SLEEPER, owner)
    try:
        assert not await child.start()
        assert child.pid is None
        await child.reload(WITH_VS)
        await logs.wait("Starting Healthcheck child process")
        proc = child.proc
        assert proc is not None
        assert child.pid == proc.pid
        await child.reload(NO_VS)
        assert "No virtual server left - stopping the Healthcheck child process" in logs.lines
        assert proc.returncode == -signal.SIGTERM
        assert child.pid is None
        await child.reload(NO_VS)
        assert child.starts == 1
    finally:
        await child.close()


@pytest.mark.asyncio
async def test_dont_respawn_and_permanent_errors_stop_the_daemon(logs: LogWaiter) -> None:
    owner = Owner()
    child = supervisor(WITH_VS, ["sh", "-c", "exit 0"], owner, respawn=False)
    try:
        await child.start()
        await owner.fatal.wait()
        assert logs.lines[-2].endswith("died: Exiting")
        assert logs.lines[-1].endswith("exited with status 0")
    finally:
        await child.close()
    for code, name in ((1, "FATAL"), (2, "CONFIG")):
        owner = Owner()
        child = supervisor(WITH_VS, ["sh", "-c", f"exit {code}"], owner)
        try:
            await child.start()
            await owner.fatal.wait()
            assert logs.lines[-1].endswith(f"exited with permanent error {name}. Terminating")
            assert child.starts == 1
        finally:
            await child.close()


@pytest.mark.asyncio
async def test_a_child_that_cannot_be_started_stops_the_daemon(
    logs: LogWaiter, tmp_path: Path
) -> None:
    owner = Owner()
    child = supervisor(WITH_VS, [str(tmp_path / "no-such-program")], owner)
    try:
        await child.start()
        await owner.fatal.wait()
        assert "Healthcheck child process: fork error(" in logs.lines[-1]
        assert child.starts == 0
    finally:
        await child.close()


@pytest.mark.asyncio
async def test_an_exit_while_the_daemon_stops_is_not_a_death(
    logs: LogWaiter, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    os.mkfifo(go)
    owner = Owner()
    child = supervisor(WITH_VS, ["sh", "-c", f"read x < {go}; exit 0"], owner)
    try:
        await child.start()
        await logs.wait("Starting Healthcheck child process")
        owner.stopping = True  # e.g. systemd's SIGTERM reached both processes at once
        await asyncio.to_thread(go.write_text, "x\n")  # now the child exits
        await logs.wait("exited with status 0 (stopping)")
        await child.stop()
        assert logs.count("died") == 0
        assert not owner.fatal.is_set()
    finally:
        await child.close()


@pytest.mark.asyncio
async def test_stop_kills_a_child_that_outlives_the_wait_time(
    logs: LogWaiter, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    os.mkfifo(ready)
    owner = Owner()
    # SIGTERM ignored (the disposition survives exec); the FIFO says it is ignored now
    script = f'trap "" TERM; echo > {ready}; exec sleep 60'
    child = supervisor(WITH_VS, ["sh", "-c", script], owner, wait_s=0.2)
    try:
        await child.start()
        await asyncio.to_thread(ready.read_text)
        await child.stop()
        assert child.proc is not None
        assert child.proc.returncode == -signal.SIGKILL
        assert logs.count("did not stop within 0.2 s - killing it") == 1
    finally:
        await child.close()


@pytest.mark.asyncio
async def test_close_leaves_no_child_and_stops_it_gracefully(logs: LogWaiter) -> None:
    """close() also runs after a bug, without stop(): the child still gets SIGTERM first, so
    that it can remove its IPVS entries (spec §7.2)."""
    child = supervisor(WITH_VS, SLEEPER, Owner())
    await child.start()
    await logs.wait("Starting Healthcheck child process")
    proc = child.proc
    await child.close()
    assert proc is not None
    assert proc.returncode == -signal.SIGTERM


@pytest.mark.asyncio
async def test_no_child_is_started_once_the_daemon_stops(logs: LogWaiter) -> None:
    """A reload that raced the stop must not start a child after the checkers stopped."""
    owner = Owner()
    owner.stopping = True
    child = supervisor(WITH_VS, SLEEPER, owner)
    assert not await child.start()
    assert child.proc is None
    await child.close()


@pytest.mark.asyncio
async def test_the_child_runs_the_parents_configuration_from_a_snapshot(
    logs: LogWaiter, tmp_path: Path
) -> None:
    """spec §7.1: the child reads a copy its parent saved, written before every start and
    every SIGHUP, in a private directory removed when the child stops."""
    out = tmp_path / "args"
    script = f'echo "$@" > {out}.tmp && mv {out}.tmp {out}; exec sleep 60'
    child = supervisor(WITH_VS, ["sh", "-c", script, "child"], Owner())
    try:
        await child.start()
        await logs.wait("Starting Healthcheck child process")
        for _ in range(500):
            if written(out):
                break
            await asyncio.sleep(0.01)
        flag, path = out.read_text().split()
        assert flag == "--config-snapshot"
        assert read_snapshot(path).config == WITH_VS
        assert mode(os.path.dirname(path)) == 0o700
        other = Config(lvs=LvsConfig(virtual_servers=(dataclasses.replace(VS, port=81),)))
        await child.reload(other)
        assert read_snapshot(path).config == other
    finally:
        await child.stop()
    assert not written(Path(path).parent)


def written(path: Path) -> bool:
    return path.exists()


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_snapshot_round_trip_is_private_and_typed(tmp_path: Path) -> None:
    path = str(tmp_path / "config.pickle")
    write_snapshot(WITH_VS, path)
    assert mode(path) == 0o600
    loaded = read_snapshot(path)
    assert (loaded.config, loaded.diagnostics) == (WITH_VS, ())
    with open(path, "wb") as f:
        pickle.dump(["not", "a", "config"], f)
    with pytest.raises(TypeError, match="not a pykad configuration snapshot"):
        read_snapshot(path)
