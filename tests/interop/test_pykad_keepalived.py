"""pykad and keepalived 2.2.7 on one bridge, in both directions (issue 4, "Evidence").

Each test is one migration-day story for one protocol variant: the priority-150 router
(r1) wins the election, a graceful SIGTERM hands the VIP over with a priority-0 advert, r1
comes back and preempts, then r1 crashes (link cut + SIGKILL) and r2 takes over.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pykad.testing.keepalived import (
    Instance,
    KeepalivedFixture,
    PykadFixture,
    StartDaemon,
    elect,
    entering,
    pair_configs,
)
from pykad.testing.netns import Lab
from pykad.testing.prober import Prober, start_responders

pytestmark = pytest.mark.interop


@dataclass(frozen=True)
class Variant:
    id: str
    template: Instance
    unicast: bool = False


VARIANTS = [
    # RFC 3768 with simple password auth at keepalived's default 1 s interval
    Variant("v2-auth-pass", Instance(version=2, advert_int=1, auth_pass="s3cr3t")),
    # RFC 5798 over IPv4, multicast: checksum over the pseudo-header with dst 224.0.0.18
    Variant("v3-ipv4", Instance(version=3, advert_int=0.1)),
    # RFC 5798 over IPv6: ff02::12 from the link-local source
    Variant("v3-ipv6", Instance(version=3, advert_int=0.1, vips=("2001:db8::fe/64",))),
    # RFC 5798 unicast: each peer's copy has its own pseudo-header checksum (spec §5.9)
    Variant("v3-unicast", Instance(version=3, advert_int=0.1), unicast=True),
]

DIRECTIONS = {
    "pykad-master": (PykadFixture, KeepalivedFixture),
    "keepalived-master": (KeepalivedFixture, PykadFixture),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_election_handover_preemption_crash(
    lab: Lab, start: StartDaemon, variant: Variant, direction: str
) -> None:
    first_kind, second_kind = DIRECTIONS[direction]
    r1, r2 = lab.routers
    vip = variant.template.vips[0].split("/", maxsplit=1)[0]
    c1, c2 = pair_configs(r1, r2, variant.template, unicast=variant.unicast)

    # Election: the higher priority holds the VIP, the other one stays backup.
    one, two = elect(start, (first_kind, r1, c1), (second_kind, r2, c2))
    r1.wait_address(vip)
    assert not r2.has_address(vip)

    # Graceful handover: SIGTERM -> priority 0 advert, VIP removed, the peer takes over.
    mark = two.mark()
    assert one.stop() == 0
    assert not r1.has_address(vip)
    two.wait_for_log(entering("MASTER"), since=mark)
    r2.wait_address(vip)

    # Preemption: r1 comes back with the higher priority and takes the VIP back.
    mark = two.mark()
    one = start(first_kind, r1, c1)
    one.wait_for_log(entering("MASTER"), timeout=30)
    two.wait_for_log(entering("BACKUP"), since=mark)
    r2.wait_address(vip, present=False)
    r1.wait_address(vip)

    # Crash: r1's link goes down with its process; r2 becomes master on its own timer.
    mark = two.mark()
    lab.cut(r1)
    one.kill()
    two.wait_for_log(entering("MASTER"), since=mark)
    r2.wait_address(vip)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_client_follows_the_vip_across_implementations(
    lab: Lab, start: StartDaemon, direction: str
) -> None:
    first_kind, second_kind = DIRECTIONS[direction]
    r1, r2 = lab.routers
    c1, c2 = pair_configs(r1, r2, Instance(version=3, advert_int=0.1))
    start_responders(lab)
    one, two = elect(start, (first_kind, r1, c1), (second_kind, r2, c2))
    with Prober(lab.client, "192.0.2.254") as prober:
        before = prober.wait_for_answer("r1")
        mark = two.mark()
        lab.cut(r1)
        one.kill()
        two.wait_for_log(entering("MASTER"), since=mark)
        moved = prober.wait_for_answer("r2", after=before.t)
        prober.wait_until(moved.t + 0.3)
    assert prober.answers_after(moved.t) == {"r2"}
    # the new master's gratuitous ARP repointed the client's cache entry
    assert lab.client.neighbours()["192.0.2.254"] == r2.mac()
