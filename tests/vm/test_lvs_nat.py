"""LVS NAT with configs/lvs-nat, on a kernel with IPVS (issue 8).

Topology (pykad.testing.netns.Lab, one bridge carrying two networks): director1 192.0.2.1 /
198.51.100.1 and director2 192.0.2.2 / 198.51.100.2 share 192.0.2.10 (the service) and
198.51.100.254 (the real servers' gateway) by VRRP; the real servers 198.51.100.21 and .22
have no route to the client except through that gateway; the client is 192.0.2.100 and knows
nothing of 198.51.100.0/24. Runs inside the VM of tests/vm/test_vm.py.
"""

from __future__ import annotations

import itertools
import signal
from pathlib import Path

import pytest

from pykad.testing.keepalived import PykadFixture
from pykad.testing.lvs import Web, fetch, ipvsadm_table, start_directors, wait_until
from pykad.testing.netns import IFNAME, Lab

VIP = "192.0.2.10"
GATEWAY = "198.51.100.254"
URL = f"http://{VIP}/"
RS = ("198.51.100.21", "198.51.100.22")
# configs/lvs-nat: delay_loop 2, connect_timeout 2, retry 1, delay_before_retry 1
DOWN_WITHIN_S = 2 + (1 + 1) * (2 + 1)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.vm_inner
@pytest.mark.timeout(600)
def test_lvs_nat_pair_balances_removes_a_dead_server_and_fails_over(
    lab: Lab, webs: list[Web], directors: list[PykadFixture]
) -> None:
    d1, d2, n1, n2 = lab.routers
    for i, director in enumerate((d1, d2), 1):
        director.run(["ip", "addr", "add", f"198.51.100.{i}/24", "dev", IFNAME])
        director.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        for conf in ("all", IFNAME):  # both networks on one link: no redirects to the RSs
            director.run(["sysctl", "-q", "-w", f"net.ipv4.conf.{conf}.send_redirects=0"])
    for node, address, name in ((n1, RS[0], "web1"), (n2, RS[1], "web2")):
        node.run(["ip", "-4", "addr", "flush", "dev", IFNAME])  # off the client's network
        node.run(["ip", "addr", "add", f"{address}/24", "dev", IFNAME])
        node.run(["ip", "route", "add", "default", "via", GATEWAY])
        web = Web(node, name)
        webs.append(web)
        web.start()

    texts = [(CONFIGS / f"lvs-nat/director{i}.conf").read_text() for i in (1, 2)]
    directors += start_directors(lab, texts)
    wait_until(f"VIP {VIP} on director1", lambda: d1.has_address(VIP), 30)
    for director in (d1, d2):
        wait_until(
            "both real servers in IPVS",
            lambda d=director: (
                ipvsadm_table(d) == {f"TCP {VIP}:80 rr": [(f"{a}:80", "Masq", 1) for a in RS]}
            ),
            60,
        )

    answers = [fetch(lab.client, URL) for _ in range(6)]
    assert set(answers) == {"web1", "web2"}, answers
    assert all(a != b for a, b in itertools.pairwise(answers)), answers

    webs[1].stop()
    line = f"Removing service [{RS[1]}]:tcp:80 from VS [{VIP}]:tcp:80"
    directors[0].wait_for_log(line, timeout=DOWN_WITHIN_S + 60)
    assert ipvsadm_table(d1) == {f"TCP {VIP}:80 rr": [(f"{RS[0]}:80", "Masq", 1)]}
    assert [fetch(lab.client, URL) for _ in range(4)] == ["web1"] * 4

    lab.cut(d1)
    assert directors[0].proc is not None
    lab.stop(directors[0].proc, sig=signal.SIGKILL)
    directors[1].wait_for_log("Entering MASTER STATE", timeout=60)
    wait_until("the pool answering through director2", lambda: fetch(lab.client, URL) == "web1", 60)
