"""On a kernel without IPVS the virtual servers fail with a clear message and VRRP runs on.

This machine's kernel has no ``ip_vs`` and cannot load modules: the directors of
configs/lvs-dr must say which module is missing, keep running, and still elect a master that
holds the VIP (issue 8). The IPVS side itself is proven in the vm layer (tests/vm).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pykad.testing.keepalived import PykadFixture, StartDaemon
from pykad.testing.netns import Lab

pytestmark = pytest.mark.netns

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.timeout(90)
def test_virtual_servers_name_the_missing_ip_vs_module_while_vrrp_elects(
    lab: Lab, start: StartDaemon
) -> None:
    if Path("/proc/net/ip_vs").exists():
        pytest.skip("this kernel has IPVS loaded; the vm layer tests that case")
    r1, r2 = lab.routers
    texts = [(CONFIGS / f"lvs-dr/director{i}.conf").read_text() for i in (1, 2)]
    one = start(PykadFixture, r1, texts[0])  # type: ignore[arg-type]
    two = start(PykadFixture, r2, texts[1])  # type: ignore[arg-type]
    for daemon in (one, two):
        line = daemon.wait_for_log("ip_vs kernel module not available", timeout=30)
        assert "IPVS: Can't initialize ipvs" in line
        assert "the 1 virtual server(s) are disabled" in line
    one.wait_for_log("(VI_LVS) Entering MASTER STATE", timeout=30)
    two.wait_for_log("(VI_LVS) Entering BACKUP STATE", timeout=30)
    r1.wait_address("192.0.2.10", timeout=10)
    assert not r2.has_address("192.0.2.10")
    assert one.running
    assert two.running
