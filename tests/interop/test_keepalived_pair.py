"""keepalived against keepalived: the fixtures themselves, before pykad takes a side."""

from __future__ import annotations

import time

import pytest

from pykad.testing.keepalived import Instance, KeepalivedFixture, StartDaemon, pair_configs
from pykad.testing.netns import Lab
from pykad.testing.prober import Prober, start_responders

pytestmark = pytest.mark.interop

VIP = "192.0.2.254"


def test_keepalived_pair_elects_and_fails_over(lab: Lab, start: StartDaemon) -> None:
    r1, r2 = lab.routers
    c1, c2 = pair_configs(r1, r2, Instance(version=3, advert_int=0.1))
    k2 = start(KeepalivedFixture, r2, c2)
    k2.wait_for_log("(VI_1) Entering MASTER STATE")
    mark = k2.mark()
    k1 = start(KeepalivedFixture, r1, c1)
    k1.wait_for_log("(VI_1) Entering MASTER STATE")  # priority 150 preempts
    k2.wait_for_log("(VI_1) Entering BACKUP STATE", since=mark)
    r1.wait_address(VIP)
    assert not r2.has_address(VIP)
    mark = k2.mark()
    lab.cut(r1)
    k1.kill()
    k2.wait_for_log("(VI_1) Entering MASTER STATE", since=mark)
    r2.wait_address(VIP)


def test_prober_sees_keepalived_failover_with_one_answering_router(
    lab: Lab, start: StartDaemon
) -> None:
    r1, r2 = lab.routers
    c1, c2 = pair_configs(r1, r2, Instance(version=3, advert_int=0.1))
    start_responders(lab)
    k1 = start(KeepalivedFixture, r1, c1)
    k1.wait_for_log("(VI_1) Entering MASTER STATE")
    k2 = start(KeepalivedFixture, r2, c2)
    k2.wait_for_log("(VI_1) Entering BACKUP STATE")
    with Prober(lab.client, VIP) as prober:
        prober.wait_for_answer("r1")
        crash = time.monotonic()
        lab.cut(r1)
        k1.kill()
        settled = prober.wait_for_answer("r2", after=crash).t
        prober.wait_until(settled + 0.3)
    assert prober.answers_after(settled) == {"r2"}
    # The crash was visible to the client (probes lost until the backup's master-down timer
    # fired), and the prober measured it; durations themselves are bench material.
    lost = [s for s in prober.samples() if crash <= s.t < settled and s.responder is None]
    assert lost
    assert prober.outage(crash) >= settled - lost[0].t
