"""keepalived.service: the directives the issue asks for, and `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[3] / "keepalived.service"


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_unit_has_the_contract() -> None:
    d = directives()
    assert d["Type"] == ["notify"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["KillSignal"] == ["SIGTERM"]
    assert d["Restart"] == ["on-failure"]
    assert d["ExecStart"][0].split()[:4] == [
        "/usr/bin/pykad",
        "--dont-fork",
        "--use-file",
        "/etc/keepalived/keepalived.conf",
    ]
    caps = set(d["AmbientCapabilities"][0].split())
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW"} <= caps
    assert set(d["CapabilityBoundingSet"][0].split()) == caps
    assert d["ProtectSystem"] == ["strict"]
    assert d["ProtectHome"] == ["yes"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert set(d["ReadWritePaths"][0].split()) == {"/run", "/tmp"}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart is executable: point it at this venv's pykad
    pykad = Path(sys.executable).parent / "pykad"
    assert pykad.exists()
    unit = tmp_path / "keepalived.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/pykad", str(pykad)))
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    complaints = [ln for ln in (proc.stdout + proc.stderr).splitlines() if unit.name in ln]
    assert proc.returncode == 0, proc.stderr
    assert complaints == []
