"""The demo (``scripts/demo``) runs end to end and cleans up, also when interrupted."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pykad.testing.netns import list_namespaces, ns_pids, process_gone

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]


def _demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pykad.testing.demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )


def _read_until(proc: subprocess.Popen[str], text: str, timeout: float) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"demo never printed {text!r}:\n{''.join(lines)}")


def test_scripts_demo_is_the_executable_entry_point() -> None:
    script = REPO / "scripts" / "demo"
    assert os.access(script, os.X_OK)
    assert "python -m pykad.testing.demo" in script.read_text()


@pytest.mark.timeout(90)
def test_demo_runs_end_to_end_and_leaves_nothing() -> None:
    proc = _demo("--pause", "0.5")
    out, _ = proc.communicate(timeout=80)
    assert proc.returncode == 0, out
    for expected in (
        "r1: (VI_1) Entering MASTER STATE",
        "r1 holds the VIP",
        "client traffic moved to r2 after an outage of",
        "answering now: ['r2']",
        "preemption",
        "client traffic back on r1",
        "processes stopped, the lab's namespaces deleted",
    ):
        assert expected in out, out
    prefix = re.search(r"lab (pk-\d+-\d+)-\*", out)
    assert prefix is not None
    assert not [ns for ns in list_namespaces() if ns.startswith(prefix.group(1))]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("daemon", ["pykad", "keepalived"])
def test_ctrl_c_midway_leaves_no_namespace_or_process(daemon: str) -> None:
    proc = _demo("--pause", "30", "--daemon", daemon)
    try:
        head = _read_until(proc, "answered by r1", timeout=40)
        match = re.search(r"lab (pk-\d+-\d+)-\*", "".join(head))
        assert match is not None
        prefix = match.group(1)
        namespaces = [ns for ns in list_namespaces() if ns.startswith(prefix)]
        assert len(namespaces) == 4
        pids = [pid for ns in namespaces for pid in ns_pids(ns)]
        assert len(pids) >= 5  # two daemons, two responders, the prober
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "interrupted: the lab was cleaned up" in out
    assert not [ns for ns in list_namespaces() if ns.startswith(prefix)]
    assert [pid for pid in pids if not process_gone(pid)] == []
