"""Pid files (spec §7.3) and the keepalived log line format."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykad.runtime.process import (
    PidFileError,
    claim_pid_files,
    release_pid_files,
    setup_logging,
)


def test_claim_writes_our_pid_and_release_removes_it(tmp_path: Path) -> None:
    paths = [str(tmp_path / "keepalived.pid"), str(tmp_path / "vrrp.pid")]
    written = claim_pid_files(paths)
    assert written == paths
    for p in paths:
        assert Path(p).read_text() == f"{os.getpid()}\n"
        assert Path(p).stat().st_mode & 0o777 == 0o644
    release_pid_files(written)
    assert not any(Path(p).exists() for p in paths)


def test_stale_pid_file_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.pid"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    path.write_text(dead.stdout)  # that process has exited
    claim_pid_files([str(path)])
    assert path.read_text() == f"{os.getpid()}\n"


def test_live_daemon_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.pid"
    # a live process whose command line names keepalived: /proc shows the symlink's path
    link = tmp_path / "keepalived"
    link.symlink_to(shutil.which("sleep") or "/bin/sleep")
    proc = subprocess.Popen([str(link), "30"])
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        for _ in range(500):  # Popen may return before the exec: bounded wait for it
            if b"keepalived" in cmdline.read_bytes():
                break
            threading.Event().wait(0.01)
        path.write_text(f"{proc.pid}\n")
        with pytest.raises(PidFileError, match=f"daemon is already running \\(pid {proc.pid}"):
            claim_pid_files([str(path)])
        assert path.read_text() == f"{proc.pid}\n"  # left alone
    finally:
        proc.kill()
        proc.wait()


def test_release_leaves_a_file_that_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "vrrp.pid"
    path.write_text("1\n")
    release_pid_files([str(path)])
    assert path.exists()


@pytest.fixture
def restore_levels() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("pykad")
    levels = root.level, ours.level
    try:
        yield
    finally:
        root.setLevel(levels[0])
        ours.setLevel(levels[1])


@pytest.mark.usefixtures("restore_levels")
def test_log_lines_look_like_keepalived() -> None:
    stream = io.StringIO()
    handler = setup_logging(detail=False, stream=stream)
    try:
        logging.getLogger("pykad.runtime.driver").info("(VI_1) Entering MASTER STATE")
        logging.getLogger("pykad.runtime.driver").debug("(VI_1) detail only")
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue()
    # keepalived: "Wed Nov 25 03:02:05 2026: (VI_1) Entering MASTER STATE"
    assert re.fullmatch(
        r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d \d{4}: "
        r"\(VI_1\) Entering MASTER STATE\n",
        line,
    )


@pytest.mark.usefixtures("restore_levels")
def test_detail_shows_debug_lines() -> None:
    stream = io.StringIO()
    handler = setup_logging(detail=True, stream=stream)
    try:
        logging.getLogger("pykad.fsm").debug("(VI_1) Receive advertisement timeout")
        logging.getLogger("some.library").info("noise")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "(VI_1) Receive advertisement timeout" in stream.getvalue()
    assert "noise" not in stream.getvalue()
