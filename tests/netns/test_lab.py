"""The lab itself: topology, link cut, and that nothing is left behind however it ends."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from pykad.testing.netns import (
    NS_PREFIX,
    Lab,
    list_namespaces,
    ns_pids,
    process_gone,
    sweep_orphans,
)

pytestmark = pytest.mark.netns


def _ours(prefix: str) -> list[str]:
    return [ns for ns in list_namespaces() if ns.startswith(prefix + "-")]


def _ping(lab: Lab, dst: str) -> bool:
    # three probes: the first can be lost while the client re-resolves ARP after a cut
    out = lab.client.run(["ping", "-c3", "-i0.2", "-W1", dst], check=False)
    return "bytes from" in out


def test_topology_reaches_every_router_and_close_removes_everything() -> None:
    lab = Lab(routers=3)
    with lab:
        assert len(_ours(lab.prefix)) == 5  # bridge, 3 routers, client
        for r in lab.routers:
            assert _ping(lab, str(r.ip4))
            assert _ping(lab, str(r.ip6))
            assert r.link_local().is_link_local
        table = lab.client.neighbours()
        assert table[str(lab.routers[0].ip4)] == lab.routers[0].mac()
        sleeper = lab.routers[0].spawn(["sleep", "300"])
        # a grandchild the lab never saw: found through `ip netns pids`
        lab.routers[1].run(["sh", "-c", "sleep 300 >/dev/null 2>&1 &"])
        strays = ns_pids(lab.routers[1].ns)
        assert len(strays) == 1
    assert _ours(lab.prefix) == []
    assert sleeper.returncode == -signal.SIGTERM
    assert process_gone(strays[0])
    lab.close()  # idempotent


def test_cut_isolates_a_router_until_restored(lab: Lab) -> None:
    r1, r2 = lab.routers
    lab.cut(r1)
    assert not _ping(lab, str(r1.ip4))
    assert _ping(lab, str(r2.ip4))
    lab.restore(r1)
    assert _ping(lab, str(r1.ip4))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signalled_process_leaves_no_namespace_or_process(sig: signal.Signals) -> None:
    code = (
        "import sys, threading\n"
        "from pykad.testing.netns import Lab\n"
        "with Lab(routers=1) as lab:\n"
        "    p = lab.routers[0].spawn(['sleep', '300'])\n"
        "    print(lab.prefix, p.pid, flush=True)\n"
        "    threading.Event().wait(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    prefix, pid = proc.stdout.readline().split()
    assert _ours(prefix)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode != 0
    assert _ours(prefix) == []
    assert process_gone(int(pid))


def test_sweep_removes_only_labs_of_dead_processes() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{NS_PREFIX}{dead.pid}-1-sw"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    with Lab(routers=1) as live:
        try:
            assert stale in sweep_orphans()
            assert stale not in list_namespaces()
            assert len(_ours(live.prefix)) == 3
        finally:
            subprocess.run(["ip", "netns", "del", stale], check=False, capture_output=True)
