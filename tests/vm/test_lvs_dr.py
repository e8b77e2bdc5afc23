"""LVS direct routing with configs/lvs-dr as written, on a kernel with IPVS (issue 8).

Topology (pykad.testing.netns.Lab, one bridge): director1 192.0.2.1 and director2 192.0.2.2
share the VIP 192.0.2.10 by VRRP; real servers 192.0.2.21 and 192.0.2.22 own the VIP on
``lo`` with arp_ignore=1/arp_announce=2 and run a web server that answers with its name; the
client is 192.0.2.100. Runs inside the VM of tests/vm/test_vm.py.
"""

from __future__ import annotations

import ipaddress
import itertools
import signal
import socket
from pathlib import Path

import pytest

from pykad.adapters.ipvs import FWD_DROUTE, IpvsDest, IpvsService
from pykad.testing.keepalived import PykadFixture
from pykad.testing.lvs import (
    Web,
    fetch,
    ipvsadm_table,
    read_ipvs,
    real_server_dr,
    start_directors,
    wait_until,
)
from pykad.testing.netns import Lab

VIP = "192.0.2.10"
URL = f"http://{VIP}/"
RS = ("192.0.2.21", "192.0.2.22")
# configs/lvs-dr: delay_loop 6, connect_timeout 3, retry 3, delay_before_retry 3
DOWN_WITHIN_S = 6 + (3 + 1) * (3 + 3)


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _configs() -> list[str]:
    return [(CONFIGS / f"lvs-dr/director{i}.conf").read_text() for i in (1, 2)]


@pytest.mark.vm_inner
@pytest.mark.timeout(600)
def test_lvs_dr_pair_balances_removes_a_dead_server_and_fails_over(
    lab: Lab, webs: list[Web], directors: list[PykadFixture]
) -> None:
    d1, d2, n1, n2 = lab.routers
    for node, address, name in ((n1, RS[0], "web1"), (n2, RS[1], "web2")):
        real_server_dr(node, address, VIP)
        web = Web(node, name)
        webs.append(web)
        web.start()
    for address, name in zip(RS, ("web1", "web2"), strict=True):
        wait_until(
            f"{name} serving", lambda a=address, n=name: fetch(lab.client, f"http://{a}/") == n, 30
        )

    directors += start_directors(lab, _configs())
    wait_until(f"VIP {VIP} on director1", lambda: d1.has_address(VIP), 30)

    # The IPVS table, read back two ways, is what configs/lvs-dr asks for (on both
    # directors: keepalived programs IPVS on the backup too, only the VIP decides).
    expected = {
        IpvsService(
            family=socket.AF_INET,
            protocol=socket.IPPROTO_TCP,
            address=ipaddress.IPv4Address(VIP),
            port=80,
            scheduler="rr",
        ): [
            IpvsDest(address=ipaddress.IPv4Address(a), port=80, forward=FWD_DROUTE, weight=1)
            for a in RS
        ]
    }
    for director in (d1, d2):
        wait_until(
            "both real servers in IPVS",
            lambda d=director: (
                ipvsadm_table(d) == {f"TCP {VIP}:80 rr": [(f"{a}:80", "Route", 1) for a in RS]}
            ),
            60,
        )
    table = read_ipvs(d1)
    assert {svc: sorted(dests, key=repr) for svc, dests in table.items()} == expected

    # Round robin: consecutive requests alternate between the two web servers.
    answers = [fetch(lab.client, URL) for _ in range(6)]
    assert set(answers) == {"web1", "web2"}, answers
    assert all(a != b for a, b in itertools.pairwise(answers)), answers

    # A dead web server leaves the pool within delay_loop plus the retries.
    webs[0].stop()
    line = f"Removing service [{RS[0]}]:tcp:80 from VS [{VIP}]:tcp:80"
    directors[0].wait_for_log(line, timeout=DOWN_WITHIN_S + 60)
    assert ipvsadm_table(d1) == {f"TCP {VIP}:80 rr": [(f"{RS[1]}:80", "Route", 1)]}
    assert [fetch(lab.client, URL) for _ in range(4)] == ["web2"] * 4

    # The master director crashes: director2 takes the VIP and serves from its own pool.
    lab.cut(d1)
    assert directors[0].proc is not None
    lab.stop(directors[0].proc, sig=signal.SIGKILL)
    directors[1].wait_for_log("Entering MASTER STATE", timeout=60)
    wait_until("the pool answering through director2", lambda: fetch(lab.client, URL) == "web2", 60)
    assert ipvsadm_table(d2) == {f"TCP {VIP}:80 rr": [(f"{RS[1]}:80", "Route", 1)]}
