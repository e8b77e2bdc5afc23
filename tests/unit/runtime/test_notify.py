"""Notify scripts and FIFO lines, run for real: recording scripts in tmp_path (spec §6)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykad.config.model import (
    Config,
    GlobalDefs,
    Notify,
    NotifyFifo,
    Script,
    VrrpInstance,
    VrrpSyncGroup,
)
from pykad.runtime.notify import Notifier, fifo_line, notify_argv

RECORDER = """#!/bin/sh
# one line per run: the script name, then every argument in brackets; built first and
# appended in one write, so that scripts running at the same time never mix their lines
line=$(basename "$0")
for a in "$@"; do line="$line [$a]"; done
printf '%s\\n' "$line" >> "{log}"
"""


def recorder(tmp_path: Path, name: str, body: str | None = None) -> str:
    log = tmp_path / "calls.log"
    path = tmp_path / name
    path.write_text(body if body is not None else RECORDER.replace("{log}", str(log)))
    path.chmod(0o755)
    return str(path)


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def config(notify: Notify, *, fifo: str | None = None, groups: tuple[str, ...] = ()) -> Config:
    inst = VrrpInstance(name="VI 1", vrid=51, interface="eth0", notify=notify)
    sync = tuple(VrrpSyncGroup(name=g, members=("VI 1",), notify=notify) for g in groups)
    gdefs = GlobalDefs(notify_fifo=NotifyFifo(path=fifo) if fifo else None)
    return Config(global_defs=gdefs, vrrp_instances=(inst,), sync_groups=sync)


def test_argv_and_fifo_line_formats() -> None:
    script = Script(argv=("/etc/keepalived/n.sh", "extra"))
    assert notify_argv(script, "INSTANCE", "VI_1", "MASTER", 100) == (
        "/etc/keepalived/n.sh",
        "extra",
        "INSTANCE",
        "VI_1",
        "MASTER",
        "100",
    )
    assert notify_argv(script, "GROUP", "G", "BACKUP", 100)[-1] == "0"
    assert fifo_line("INSTANCE", "VI_1", "MASTER", 100) == b'INSTANCE "VI_1" MASTER 100\n'
    assert fifo_line("GROUP", "G1", "FAULT", 77) == b'GROUP "G1" FAULT 0\n'


@pytest.mark.asyncio
async def test_state_script_then_generic_then_fifo_in_order(tmp_path: Path) -> None:
    notify = Notify(
        master=Script(argv=(recorder(tmp_path, "to_master"), "a b")),
        backup=Script(argv=(recorder(tmp_path, "to_backup"),)),
        stop=Script(argv=(recorder(tmp_path, "to_stop"),)),
        generic=Script(argv=(recorder(tmp_path, "generic"), "x")),
    )
    fifo = str(tmp_path / "fifo")
    notifier = Notifier(config(notify, fifo=fifo), script_timeout_s=10)
    await notifier.open()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert stat.S_IMODE(os.stat(fifo).st_mode) == 0o644
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        notifier.notify("INSTANCE", "VI 1", "BACKUP", 100)
        notifier.notify("INSTANCE", "VI 1", "MASTER", 101)
        notifier.notify("INSTANCE", "VI 1", "MASTER_PRIORITY", 90)  # FIFO only
        notifier.notify("INSTANCE", "VI 1", "STOP", 90)
        assert await notifier.drain(10)
        lines = os.read(reader, 4096).decode().splitlines()
    finally:
        os.close(reader)
        await notifier.close()
    # the state script and the generic one of one event both start before the FIFO line;
    # events are serialised, so the per-event pairs appear in order (either order inside one)
    got = calls(tmp_path)
    assert sorted(got[0:2]) == ["generic [x] [INSTANCE] [VI 1] [BACKUP] [100]", "to_backup"]
    assert sorted(got[2:4]) == ["generic [x] [INSTANCE] [VI 1] [MASTER] [101]", "to_master [a b]"]
    assert sorted(got[4:6]) == ["generic [x] [INSTANCE] [VI 1] [STOP] [90]", "to_stop"]
    assert len(got) == 6
    assert lines == [
        'INSTANCE "VI 1" BACKUP 100',
        'INSTANCE "VI 1" MASTER 101',
        'INSTANCE "VI 1" MASTER_PRIORITY 90',
        'INSTANCE "VI 1" STOP 90',
    ]
    with pytest.raises(FileNotFoundError):  # we created it, so we removed it
        os.stat(fifo)


@pytest.mark.asyncio
async def test_group_and_rx_lower_pri_and_deleted(tmp_path: Path) -> None:
    notify = Notify(
        deleted=Script(argv=(recorder(tmp_path, "deleted"),)),
        master_rx_lower_pri=Script(argv=(recorder(tmp_path, "lower"), "arg")),
        generic=Script(argv=(recorder(tmp_path, "generic"),)),
    )
    notifier = Notifier(config(notify, groups=("G1",)))
    await notifier.open()
    try:
        notifier.notify("GROUP", "G1", "FAULT", 200)
        notifier.notify("INSTANCE", "VI 1", "MASTER_RX_LOWER_PRI", 100)
        assert await notifier.drain(10)
        notifier.notify("INSTANCE", "VI 1", "DELETED", 100)
        assert await notifier.drain(10)
    finally:
        await notifier.close()
    got = calls(tmp_path)
    assert got[:2] == ["generic [GROUP] [G1] [FAULT] [0]", "lower [arg]"] or got[:2] == [
        "lower [arg]",
        "generic [GROUP] [G1] [FAULT] [0]",
    ]
    assert sorted(got[2:]) == ["deleted", "generic [INSTANCE] [VI 1] [DELETED] [100]"]


@pytest.mark.asyncio
async def test_one_instance_notifications_never_overlap(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    slow = recorder(
        tmp_path,
        "slow",
        f'#!/bin/sh\necho "slow start" >> {log}\nsleep 0.3\necho "slow end" >> {log}\n',
    )
    notify = Notify(master=Script(argv=(slow,)), backup=Script(argv=(recorder(tmp_path, "fast"),)))
    notifier = Notifier(config(notify))
    try:
        notifier.notify("INSTANCE", "VI 1", "MASTER", 100)
        notifier.notify("INSTANCE", "VI 1", "BACKUP", 100)
        assert await notifier.drain(10)
    finally:
        await notifier.close()
    assert calls(tmp_path) == ["slow start", "slow end", "fast"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def _wait_dead(pid: int) -> bool:
    for _ in range(200):  # bounded poll: reaping by init has no event to await
        if not _alive(pid):
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.asyncio
async def test_hanging_script_is_killed_with_its_process_group(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = f"""#!/bin/sh
trap '' TERM
sleep 60 &
echo $! > {tmp_path}/child
echo $$ > {tmp_path}/parent
wait
"""
    hang = recorder(tmp_path, "hang", body)
    notify = Notify(master=Script(argv=(hang,)), backup=Script(argv=(recorder(tmp_path, "next"),)))
    notifier = Notifier(config(notify), script_timeout_s=0.3, kill_grace_s=0.2)
    try:
        notifier.notify("INSTANCE", "VI 1", "MASTER", 100)
        notifier.notify("INSTANCE", "VI 1", "BACKUP", 100)
        assert await notifier.drain(10)
    finally:
        await notifier.close()
    parent = int((tmp_path / "parent").read_text())
    child = int((tmp_path / "child").read_text())
    assert await _wait_dead(parent)
    assert await _wait_dead(child)
    assert notifier.failures == 1
    assert "timed out after 0.3s - killing its process group" in caplog.text
    assert calls(tmp_path) == ["next"]  # the queue went on after the kill


@pytest.mark.asyncio
async def test_drain_deadline_kills_stop_scripts(tmp_path: Path) -> None:
    body = f"#!/bin/sh\necho $$ > {tmp_path}/pid\nexec sleep 60\n"
    notify = Notify(stop=Script(argv=(recorder(tmp_path, "stop", body),)))
    notifier = Notifier(config(notify))
    try:
        notifier.notify("INSTANCE", "VI 1", "STOP", 100)
        assert not await notifier.drain(0.5)
    finally:
        await notifier.close()
    assert await _wait_dead(int((tmp_path / "pid").read_text()))


@pytest.mark.asyncio
async def test_unusable_scripts_are_disabled_at_start_and_exec_failures_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = recorder(tmp_path, "gone")
    notify = Notify(
        master=Script(argv=(str(tmp_path / "absent"),)),
        backup=Script(argv=(recorder(tmp_path, "b"),), user="no-such-user-pykad"),
        fault=Script(argv=(gone,)),
    )
    notifier = Notifier(config(notify))
    os.unlink(gone)  # vanishes after start-up: exec fails at run time
    try:
        for event in ("MASTER", "BACKUP", "FAULT"):
            notifier.notify("INSTANCE", "VI 1", event, 100)
        assert await notifier.drain(10)
    finally:
        await notifier.close()
    # keepalived disables missing scripts and unknown users at start-up (spec §6.3)
    assert (
        f"Disabling vrrp_instance VI 1 notify_master script {tmp_path}/absent: does not exist"
        in (caplog.text)
    )
    assert "notify_backup script" in caplog.text
    assert "cannot run: user 'no-such-user-pykad' does not exist" in caplog.text
    assert notifier.failures == 1
    assert f"Failed to exec notify_fault `{gone}`" in caplog.text
    assert calls(tmp_path) == []


def _secure_config(notify: Notify, *, secure: bool) -> Config:
    gdefs = GlobalDefs(enable_script_security=secure, script_user="root")
    inst = VrrpInstance(name="VI_1", vrid=51, interface="eth0", notify=notify)
    return Config(global_defs=gdefs, vrrp_instances=(inst,))


@pytest.mark.asyncio
@pytest.mark.skipif(os.geteuid() != 0, reason="root-run script security applies to root")
async def test_world_writable_script_is_refused_under_script_security(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """spec §6.3: enable_script_security disables a root-run script others can rewrite, and
    the log names the file and the exact permission problem; without it, it runs."""
    script = recorder(tmp_path, "to_master")
    os.chmod(script, 0o777)
    notify = Notify(master=Script(argv=(script,)))
    for secure in (True, False):
        notifier = Notifier(_secure_config(notify, secure=secure))
        try:
            notifier.notify("INSTANCE", "VI_1", "MASTER", 100)
            assert await notifier.drain(10)
        finally:
            await notifier.close()
        if secure:
            assert calls(tmp_path) == []
            assert (
                f"Unsafe permissions found for script '{script}' - disabling:"
                f" file {script} is writable by others (mode 0777)"
            ) in caplog.text
    assert calls(tmp_path) == ["to_master"]


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path lives under a 0700 root dir)."""
    path = Path(tempfile.mkdtemp(prefix="pykad-notify-", dir="/tmp"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.mark.asyncio
@pytest.mark.skipif(os.geteuid() != 0, reason="changing the script user needs root")
async def test_script_runs_as_the_configured_user(world_dir: Path) -> None:
    out = world_dir / "id"
    body = f"#!/bin/sh\nid -u > {out}\nid -G >> {out}\n"
    notify = Notify(master=Script(argv=(recorder(world_dir, "who", body),), user="nobody"))
    notifier = Notifier(config(notify))
    try:
        notifier.notify("INSTANCE", "VI 1", "MASTER", 100)
        assert await notifier.drain(10)
    finally:
        await notifier.close()
    nobody = pwd.getpwnam("nobody")
    uid, groups = out.read_text().splitlines()
    assert int(uid) == nobody.pw_uid
    assert groups.split() == [str(nobody.pw_gid)]  # supplementary groups cleared (2.2.7)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("role", "opened", "started"),
    [
        ({}, ["g", "v", "l"], ["g", "v", "l"]),  # one process runs both halves (tests)
        ({"lvs": False}, ["g", "v"], ["g", "v"]),  # -P, or the parent of a checker child
        ({"vrrp": False, "global_fifo_script": False}, ["g", "l"], ["l"]),  # the child
        ({"vrrp": False}, ["g", "l"], ["g", "l"]),  # -C alone
    ],
)
async def test_each_process_opens_its_fifos_and_one_starts_each_script(
    tmp_path: Path, role: dict[str, bool], opened: list[str], started: list[str]
) -> None:
    """spec §6.4: the VRRP side writes vrrp_notify_fifo, the checkers lvs_notify_fifo, both
    the global one; no FIFO gets its script started twice (two readers would split its
    lines), so the checker child leaves the global script to its parent."""

    def fifo(name: str) -> NotifyFifo:
        # one file per script, renamed into place whole: two scripts appending to one log
        # interleave their writes
        out = tmp_path / name
        body = f'#!/bin/sh\necho "$1" > {out}.part && mv {out}.part {out}.started\n'
        return NotifyFifo(
            path=str(tmp_path / f"{name}.fifo"),
            script=Script(argv=(recorder(tmp_path, f"{name}script", body),)),
        )

    def started_scripts() -> list[str]:
        return sorted(n.removesuffix(".started") for n in os.listdir(tmp_path) if ".st" in n)

    gdefs = GlobalDefs(notify_fifo=fifo("g"), vrrp_notify_fifo=fifo("v"), lvs_notify_fifo=fifo("l"))
    notifier = Notifier(Config(global_defs=gdefs), **role)
    await notifier.open()
    try:
        made = sorted(name for name in os.listdir(tmp_path) if name.endswith(".fifo"))
        assert made == sorted(f"{n}.fifo" for n in opened)
        for _ in range(500):  # the scripts record their start, each in its own time
            if len(started_scripts()) >= len(started):
                break
            await asyncio.sleep(0.01)
    finally:
        await notifier.close()
    assert started_scripts() == sorted(started)
    for name in started:  # each got its FIFO's path as its last argument
        assert (tmp_path / f"{name}.started").read_text() == f"{tmp_path / name}.fifo\n"
