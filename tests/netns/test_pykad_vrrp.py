"""pykad routers on a real bridge: election, failover, handover, preemption, reload (issue 4).

Every daemon is a real ``pykad -n -l -D -f CONF`` process in its own namespace; the client's
view comes from the UDP prober. Most tests use VRRPv3 at 0.1 s so a failover takes well under
a second; the VRRPv2 variant runs at keepalived's default 1 s interval.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from pykad.testing.keepalived import (
    DaemonConfig,
    Instance,
    LogTimeout,
    PykadFixture,
    StartDaemon,
    elect,
    entering,
    pair_configs,
)
from pykad.testing.netns import Lab
from pykad.testing.prober import Prober, start_responders

pytestmark = pytest.mark.netns

FAST = Instance(version=3, advert_int=0.1)


@dataclass(frozen=True)
class Variant:
    id: str
    template: Instance

    @property
    def addr(self) -> str:
        return self.template.vips[0].split("/", maxsplit=1)[0]


VARIANTS = [
    Variant("v3-ipv4", FAST),
    Variant("v3-ipv6", replace(FAST, vips=("2001:db8::fe/64",))),
    Variant("v2-auth-1s", Instance(version=2, advert_int=1, auth_pass="pw")),
]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_crash_failover_then_preemption_back(
    lab: Lab, start: StartDaemon, variant: Variant
) -> None:
    r1, r2 = lab.routers
    c1, c2 = pair_configs(r1, r2, variant.template)
    start_responders(lab)
    one, two = elect(start, (PykadFixture, r1, c1), (PykadFixture, r2, c2))
    r1.wait_address(variant.addr)
    assert not r2.has_address(variant.addr)

    with Prober(lab.client, variant.addr) as prober:
        before = prober.wait_for_answer("r1")
        # Crash: link cut and process killed at once (no priority-0 advert, VIP left behind
        # on the dead node, which the cut makes harmless).
        mark = two.mark()
        lab.cut(r1)
        one.kill()
        two.wait_for_log(entering("MASTER"), since=mark)
        moved = prober.wait_for_answer("r2", after=before.t)
        prober.wait_until(moved.t + 0.3)
        assert prober.answers_after(moved.t) == {"r2"}
        # The new master's GARP / unsolicited NA repointed the client (RFC 5798 8.1.2/8.2).
        assert lab.client.neighbours()[variant.addr] == r2.mac()

        # Preemption back: r1 returns with the higher priority.
        mark = two.mark()
        lab.restore(r1)
        one = start(PykadFixture, r1, c1)
        one.wait_for_log(entering("MASTER"), timeout=30)
        two.wait_for_log(entering("BACKUP"), since=mark)
        home = prober.wait_for_answer("r1", after=moved.t)
        prober.wait_until(home.t + 0.3)
        assert prober.answers_after(home.t) == {"r1"}
    assert lab.client.neighbours()[variant.addr] == r1.mac()
    r2.wait_address(variant.addr, present=False)


@pytest.mark.timeout(60)
def test_graceful_handover_on_sigterm_leaves_no_address(lab: Lab, start: StartDaemon) -> None:
    r1, r2 = lab.routers
    c1, c2 = pair_configs(r1, r2, replace(FAST, vips=("192.0.2.254/24", "2001:db8::fe/64")))
    one, two = elect(start, (PykadFixture, r1, c1), (PykadFixture, r2, c2))
    mark = two.mark()
    assert one.stop() == 0
    # RFC 5798 6.4.3: a master that shuts down sends priority 0 and removes its addresses.
    assert not r1.has_address("192.0.2.254")
    assert not r1.has_address("2001:db8::fe")
    assert not one.pidfile("main").exists()
    two.wait_for_log(entering("MASTER"), since=mark)
    r2.wait_address("192.0.2.254")
    assert two.stop() == 0
    for node in (r1, r2):
        leftover = [a for a in node.addresses() if str(a.ip) in ("192.0.2.254", "2001:db8::fe")]
        assert leftover == []


@pytest.mark.timeout(60)
def test_nopreempt_keeps_the_current_master(lab: Lab, start: StartDaemon) -> None:
    r1, r2 = lab.routers
    c1, c2 = pair_configs(r1, r2, replace(FAST, nopreempt=True))
    # r2 (priority 100) is master first; r1 (150) arrives later and must not take over.
    two, one = elect(start, (PykadFixture, r2, c2), (PykadFixture, r1, c1))
    with pytest.raises(LogTimeout):
        one.wait_for_log(entering("MASTER"), timeout=1.0)  # ten advert intervals
    r2.wait_address("192.0.2.254")
    assert not r1.has_address("192.0.2.254")
    # nopreempt does not stop a backup from replacing a master that died.
    lab.cut(r2)
    two.kill()
    one.wait_for_log(entering("MASTER"))
    r1.wait_address("192.0.2.254")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("vip", ["192.0.2.254/24", "2001:db8::fe/64"])
def test_unicast_election_and_failover(lab: Lab, start: StartDaemon, vip: str) -> None:
    r1, r2 = lab.routers
    addr = vip.split("/", maxsplit=1)[0]
    c1, c2 = pair_configs(r1, r2, replace(FAST, vips=(vip,)), unicast=True)
    one, two = elect(start, (PykadFixture, r1, c1), (PykadFixture, r2, c2))
    r1.wait_address(addr)
    assert not r2.has_address(addr)
    mark = two.mark()
    lab.cut(r1)
    one.kill()
    two.wait_for_log(entering("MASTER"), since=mark)
    r2.wait_address(addr)


@pytest.mark.timeout(60)
def test_three_routers_the_next_highest_takes_over(lab3: Lab, start: StartDaemon) -> None:
    r1, r2, r3 = lab3.routers
    cfgs = [
        DaemonConfig(router_id=r.name, instances=(replace(FAST, priority=p),))
        for r, p in ((r1, 150), (r2, 100), (r3, 50))
    ]
    start_responders(lab3)
    one, two = elect(start, (PykadFixture, r1, cfgs[0]), (PykadFixture, r2, cfgs[1]))
    three = start(PykadFixture, r3, cfgs[2])
    three.wait_for_log(entering("BACKUP"))
    with Prober(lab3.client, "192.0.2.254") as prober:
        before = prober.wait_for_answer("r1")
        marks = two.mark(), three.mark()
        lab3.cut(r1)
        one.kill()
        two.wait_for_log(entering("MASTER"), since=marks[0])
        moved = prober.wait_for_answer("r2", after=before.t)
        prober.wait_until(moved.t + 0.3)
        assert prober.answers_after(moved.t) == {"r2"}
    # r3's master-down timer is longer (more skew, RFC 5798 6.1): r2's adverts reset it.
    assert three.count(entering("MASTER"), since=marks[1]) == 0
    assert not r3.has_address("192.0.2.254")


@pytest.mark.timeout(60)
def test_reload_adds_a_vip_without_a_flap(lab: Lab, start: StartDaemon) -> None:
    # A VIP is added to the pair the way an operator does it: both nodes get the new config,
    # the backup first. Between the two reloads the nodes disagree on the VIP list, and each
    # drops the other's adverts (spec §5.7 check 10, as keepalived does), so the second
    # reload must land within one master-down interval: advert_int 1 gives 3.6 s of slack.
    r1, r2 = lab.routers
    c1, c2 = pair_configs(r1, r2, Instance(version=3, advert_int=1))
    start_responders(lab)
    one, two = elect(start, (PykadFixture, r1, c1), (PykadFixture, r2, c2))
    both = ("192.0.2.254/24", "192.0.2.253/24")
    with Prober(lab.client, "192.0.2.254") as prober:
        prober.wait_for_answer("r1")
        marks = one.mark(), two.mark()
        t_reload = prober.wait_for_answer("r1").t
        mark2 = two.reload(c2.with_instance(vips=both))
        two.wait_for_log("Reload complete", since=mark2)
        one.reload(c1.with_instance(vips=both))
        r1.wait_address("192.0.2.253")
        # wait beyond a full master-down interval: a flap would have happened by then
        prober.wait_until(prober.wait_for_answer("r1").t + 4.0, timeout=15.0)
    # No transition anywhere: r1 kept advertising through the reload (spec §7.2 SIGHUP).
    assert one.found("Entering", since=marks[0]) == []
    assert two.found("Entering", since=marks[1]) == []
    after = [s for s in prober.samples() if s.t >= t_reload]
    assert after
    assert {s.responder for s in after} == {"r1"}  # every probe answered, by r1 only
    assert one.running
    assert not r2.has_address("192.0.2.253")


@pytest.mark.timeout(60)
def test_reload_with_a_broken_config_keeps_the_old_one(lab: Lab, start: StartDaemon) -> None:
    r1 = lab.routers[0]
    good = DaemonConfig(router_id="r1", instances=(replace(FAST, priority=150),))
    one = start(PykadFixture, r1, good)
    one.wait_for_log(entering("MASTER"))
    broken = good.render().replace("virtual_router_id 51", "virtual_router_id 300")
    line = broken.splitlines().index("    virtual_router_id 300") + 1
    mark = one.reload(broken)
    located = one.wait_for_log(f"{one.conf_path}:{line}:", since=mark)
    assert "error" in located
    assert one.running
    assert one.found("Entering", since=mark) == []
    assert r1.has_address("192.0.2.254")
    # The old configuration is still the live one: a later good reload applies cleanly.
    one.reload(good.with_instance(vips=("192.0.2.254/24", "192.0.2.253/24")))
    r1.wait_address("192.0.2.253")
    assert one.found("Entering", since=mark) == []
