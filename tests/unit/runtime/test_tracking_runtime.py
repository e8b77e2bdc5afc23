"""The tracking runners for real: subprocesses, inotify and /proc (spec §4.2-4.4).

Real scripts in tmp_path with short intervals; tests wait for the events the runners report
(with generous timeouts), never for a wall-clock duration.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from pykad.config.model import (
    Config,
    GlobalDefs,
    Script,
    TrackFile,
    TrackProcess,
    TrackRef,
    VrrpInstance,
    VrrpScript,
)
from pykad.fsm.events import TrackerChanged, TrackFileChanged
from pykad.runtime.tracking import (
    FileWatcher,
    ProcessWatcher,
    ScriptRunner,
    TrackerEvent,
    Trackers,
)

WAIT_S = 20.0  # generous: the host is shared and loaded


class Events:
    """Collects the runners' events; ``next()`` waits for the following one."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[TrackerEvent] = asyncio.Queue()
        self.seen: list[TrackerEvent] = []

    def __call__(self, event: TrackerEvent) -> None:
        self.seen.append(event)
        self.queue.put_nowait(event)

    async def next(self) -> TrackerEvent:
        return await asyncio.wait_for(self.queue.get(), WAIT_S)


def script_file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def vscript(argv: str, **kw: object) -> VrrpScript:
    fields: dict[str, object] = {"interval_s": 0.1, **kw}
    return VrrpScript(name="chk", script=Script(argv=(argv,)), **fields)  # type: ignore[arg-type]


async def wait_until(cond: object, what: str) -> None:
    assert callable(cond)
    for _ in range(int(WAIT_S / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest_asyncio.fixture
async def runners() -> AsyncIterator[list[ScriptRunner]]:
    started: list[ScriptRunner] = []
    try:
        yield started
    finally:
        for r in started:
            await r.close()


# ------------------------------------------------------------------------ vrrp_script


@pytest.mark.asyncio
async def test_script_state_follows_rise_and_fall(
    tmp_path: Path, runners: list[ScriptRunner], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pykad.runtime.tracking")
    status = tmp_path / "status"
    status.write_text("0")
    path = script_file(tmp_path, "chk.sh", f'exit "$(cat {status})"\n')
    events = Events()
    runner = ScriptRunner(vscript(path, rise=2, fall=2), GlobalDefs(), events)
    runners.append(runner)
    runner.start()
    assert await events.next() == TrackerChanged("script", "chk", True)  # first result decides
    status.write_text("3")
    assert await events.next() == TrackerChanged("script", "chk", False)
    assert runner.last_status == 3
    status.write_text("0")
    assert await events.next() == TrackerChanged("script", "chk", True)
    text = caplog.text
    assert "VRRP_Script(chk) succeeded" in text
    assert "VRRP_Script(chk) failed (exited with status 3)" in text
    assert "Script `chk` now returning 3" in text
    assert events.seen == [TrackerChanged("script", "chk", s) for s in (True, False, True)]


@pytest.mark.asyncio
async def test_hanging_script_is_killed_at_its_timeout_and_runs_never_overlap(
    tmp_path: Path, runners: list[ScriptRunner], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pykad.runtime.tracking")
    pids = tmp_path / "pids"
    # the script and a child of it both hang: the whole process group must go
    path = script_file(tmp_path, "hang.sh", f"sleep 600 &\necho $$ $! >> {pids}\nwait\n")
    events = Events()
    runner = ScriptRunner(
        vscript(path, interval_s=0.1, timeout_s=0.5), GlobalDefs(), events, kill_grace_s=0.5
    )
    runners.append(runner)
    runner.start()
    assert await events.next() == TrackerChanged("script", "chk", False)
    assert "VRRP_Script(chk) timed_out" in caplog.text
    # the run was killed at its timeout, so it lasted at least that long (metrics report it)
    assert runner.last_duration_s is not None
    assert runner.last_duration_s >= 0.5
    assert runner.duration_total_s >= runner.last_duration_s
    await wait_until(lambda: runner.skipped > 0, "a skipped tick")
    assert "Track script chk is already running, expect idle - skipping run" in caplog.text
    await runner.close()
    started = [line.split() for line in pids.read_text().splitlines()]
    # one run at a time: every run but the last was over before the next one started
    assert len(started) >= 1
    for script_pid, child_pid in started:
        await wait_until(lambda p=int(child_pid): not _alive(p), f"child {child_pid} killed")
        await wait_until(lambda p=int(script_pid): not _alive(p), f"script {script_pid} gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours is not a hanging script
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"


@pytest.mark.asyncio
async def test_script_flooding_its_output_still_reports(
    tmp_path: Path, runners: list[ScriptRunner]
) -> None:
    path = script_file(
        tmp_path, "flood.sh", "head -c 20000000 /dev/zero\nhead -c 20000000 /dev/zero >&2\n"
    )
    events = Events()
    runner = ScriptRunner(vscript(path, interval_s=0.5, timeout_s=20), GlobalDefs(), events)
    runners.append(runner)
    runner.start()
    assert await events.next() == TrackerChanged("script", "chk", True)


@pytest.mark.asyncio
async def test_missing_script_and_death_by_signal_are_failures(
    tmp_path: Path, runners: list[ScriptRunner], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pykad.runtime.tracking")
    events = Events()
    missing = ScriptRunner(vscript(str(tmp_path / "nope")), GlobalDefs(), events)
    runners.append(missing)
    missing.start()
    assert await events.next() == TrackerChanged("script", "chk", False)
    assert "cannot exec" in caplog.text
    killed = ScriptRunner(
        vscript(script_file(tmp_path, "k.sh", "kill -TERM $$\n"), init_fail=False),
        GlobalDefs(),
        events,
    )
    runners.append(killed)
    killed.start()
    assert await events.next() == TrackerChanged("script", "chk", False)
    assert f"failed (due to signal {int(signal.SIGTERM)})" in caplog.text


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="pykad-w1-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def written_by_scripts(directory: Path) -> list[str]:
    return [p.read_text().strip() for p in directory.glob("out.*")]


@pytest.mark.asyncio
@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")
async def test_script_runs_as_its_user(world_dir: Path, runners: list[ScriptRunner]) -> None:
    path = script_file(world_dir, "who.sh", f"id -u > {world_dir}/out.$$\nexit 0\n")
    events = Events()
    vs = VrrpScript(name="chk", script=Script(argv=(path,), user="nobody"), interval_s=5.0)
    runner = ScriptRunner(vs, GlobalDefs(script_user="root"), events)
    runners.append(runner)
    runner.start()
    assert await events.next() == TrackerChanged("script", "chk", True)
    assert written_by_scripts(world_dir) == [str(pwd.getpwnam("nobody").pw_uid)]


# ------------------------------------------------------------------------ track_file


@pytest.mark.asyncio
async def test_track_file_changes_are_seen_through_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "weight"
    events = Events()
    watcher = FileWatcher([TrackFile(name="tf", path=str(path))], events)
    watcher.start()
    try:
        assert watcher.values == {"tf": 0}  # missing = 0
        path.write_text("5\n")
        assert await events.next() == TrackFileChanged("tf", 5)
        other = tmp_path / "new"
        other.write_text("0x20")
        other.rename(path)  # replaced by a rename (moved in)
        assert await events.next() == TrackFileChanged("tf", 32)
        (tmp_path / "unrelated").write_text("9")
        path.unlink()
        assert await events.next() == TrackFileChanged("tf", 0)
        path.write_text("-7")
        assert await events.next() == TrackFileChanged("tf", -7)
        assert events.seen == [
            TrackFileChanged("tf", v) for v in (5, 32, 0, -7)
        ]  # nothing for the unrelated file
    finally:
        watcher.close()


@pytest.mark.asyncio
async def test_track_file_init_value_is_read_at_start(tmp_path: Path) -> None:
    path = tmp_path / "weight"
    watcher = FileWatcher([TrackFile(name="tf", path=str(path), init_file=-3)], Events())
    watcher.start()
    try:
        assert watcher.values == {"tf": -3}
        assert path.read_text() == "-3\n"
    finally:
        watcher.close()


# ------------------------------------------------------------------------ track_process


def spawn(binary: Path, n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([str(binary), "600"]) for _ in range(n)]


@pytest.mark.asyncio
async def test_process_quorum_is_gained_and_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pykad.runtime.tracking")
    comm = "pkt" + secrets.token_hex(4)  # unique on this host; comm keeps 15 characters
    binary = tmp_path / comm
    shutil.copy("/bin/sleep", binary)
    events = Events()
    watcher = ProcessWatcher(
        [TrackProcess(name="svc", process=comm, quorum=2)], events, scan_interval_s=0.05
    )
    watcher.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        assert watcher.states() == {"svc": False}
        procs += spawn(binary, 2)
        assert await events.next() == TrackerChanged("process", "svc", True)
        procs[0].kill()
        procs[0].wait()
        assert await events.next() == TrackerChanged("process", "svc", False)
        assert "Quorum gained for tracked process svc" in caplog.text
        assert "Quorum lost for tracked process svc" in caplog.text
    finally:
        await watcher.close()
        for p in procs:
            p.kill()
            p.wait()


# ------------------------------------------------------------------------ Trackers


def config_with(script: VrrpScript, *, used: bool = True) -> Config:
    refs = (TrackRef(name=script.name),) if used else ()
    inst = VrrpInstance(name="VI_1", vrid=1, interface="eth0", track_scripts=refs)
    return Config(vrrp_instances=(inst,), vrrp_scripts=(script,))


@pytest.mark.asyncio
async def test_trackers_run_used_scripts_and_carry_results_over_a_reload(
    tmp_path: Path,
) -> None:
    ok = script_file(tmp_path, "ok.sh", "exit 0\n")
    events = Events()
    trackers = Trackers(config_with(vscript(ok, interval_s=5.0)), events)
    await trackers.start()
    try:
        assert trackers.states() == {}  # no result yet: unknown
        assert await events.next() == TrackerChanged("script", "chk", True)
        assert trackers.states() == {("script", "chk"): True}
        # reload with a script of the same name that now fails, with fall 3: the OK state
        # is carried over (spec §4.2) and re-reported; one failure does not flip it
        bad = script_file(tmp_path, "bad.sh", "exit 1\n")
        await trackers.update(config_with(vscript(bad, interval_s=5.0, fall=3)))
        assert await events.next() == TrackerChanged("script", "chk", True)
        await wait_until(lambda: trackers.scripts["chk"].runs >= 1, "the first run")
        assert trackers.states() == {("script", "chk"): True}
        # a script no instance tracks is not run at all
        await trackers.update(config_with(vscript(ok), used=False))
        assert trackers.scripts == {}
    finally:
        await trackers.close()


@pytest.mark.asyncio
@pytest.mark.skipif(os.geteuid() != 0, reason="scripts run as root only when we are root")
async def test_insecure_script_is_refused_and_reported_failed(
    world_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """enable_script_security: a root-run script in a world-writable directory is never run;
    the log names the file and the problem (spec §6.3)."""
    ran = world_dir / "ran"
    path = script_file(world_dir, "chk.sh", f"touch {ran}\nexit 0\n")
    config = config_with(vscript(path))
    config = replace(
        config, global_defs=GlobalDefs(enable_script_security=True, script_user="root")
    )
    events = Events()
    trackers = Trackers(config, events)
    await trackers.start()
    try:
        assert await events.next() == TrackerChanged("script", "chk", False)
        assert trackers.states() == {("script", "chk"): False}
        assert f"Unsafe permissions found for script '{path}' - disabling:" in caplog.text
        assert str(world_dir) in caplog.text.split("disabling:", 1)[1]
        assert not ran.exists()
    finally:
        await trackers.close()
