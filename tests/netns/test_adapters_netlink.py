"""NetlinkAddresses and LinkMonitor against a real kernel, inside a throwaway namespace.

What the kernel holds is read back with iproute2 (``ip -j``), an independent witness."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from pykad.adapters.netlink import AddressEvent, LinkEvent, LinkMonitor, NetlinkAddresses
from pykad.config.model import VirtualAddress, VirtualRoute, VirtualRule, VrrpInstance
from pykad.testing.netns import Lab, Node

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build network namespaces"),
]

WAIT_S = 5.0


@pytest.fixture
def node() -> Iterator[Node]:
    with Lab(routers=1, client=False) as lab:
        yield lab.routers[0]


@pytest_asyncio.fixture
async def nl(node: Node) -> AsyncIterator[NetlinkAddresses]:
    async with NetlinkAddresses(netns=node.ns) as nl:
        yield nl


def addr_info(node: Node, dev: str = "eth0") -> list[dict[str, Any]]:
    out = json.loads(node.run(["ip", "-j", "addr", "show", "dev", dev]))
    return [info for link in out for info in link.get("addr_info", [])]


def find(node: Node, ip: str) -> dict[str, Any] | None:
    return next((i for i in addr_info(node) if i["local"] == ip), None)


def vip(text: str, **kw: Any) -> VirtualAddress:
    return VirtualAddress(address=ipaddress.ip_interface(text), **kw)


@pytest.mark.asyncio
async def test_vip_with_brd_label_scope_is_added_and_removed_idempotently(
    node: Node, nl: NetlinkAddresses
) -> None:
    # another subnet: the kernel refuses a secondary address whose scope differs (EINVAL)
    a = vip(
        "198.51.100.50/24",
        broadcast=ipaddress.IPv4Address("198.51.100.255"),
        label="eth0:vip",
        scope="link",
    )
    b = vip("203.0.113.9/32", dev="eth0")
    await nl.install([a, b], default_dev="eth0")
    await nl.install([a, b], default_dev="eth0")  # EEXIST is success
    info = find(node, "198.51.100.50")
    assert info is not None
    assert (info["prefixlen"], info["broadcast"], info["label"], info["scope"]) == (
        24,
        "198.51.100.255",
        "eth0:vip",
        "link",
    )
    assert find(node, "203.0.113.9") is not None
    assert await nl.add_address(a, default_dev="eth0") is False  # already there

    await nl.remove([a, b], default_dev="eth0")
    await nl.remove([a, b], default_dev="eth0")  # EADDRNOTAVAIL is success
    assert find(node, "198.51.100.50") is None
    assert find(node, "203.0.113.9") is None
    # the node's own address was never touched
    assert find(node, str(node.ip4)) is not None


@pytest.mark.asyncio
async def test_ipv6_vip_flags_and_preferred_lifetime(node: Node, nl: NetlinkAddresses) -> None:
    host = vip("2001:db8::77/128", nodad=True)
    net = vip("2001:db8:1::1/64", noprefixroute=True)
    await nl.install([host, net], default_dev="eth0")
    h, n = find(node, "2001:db8::77"), find(node, "2001:db8:1::1")
    assert h is not None
    assert n is not None
    # spec §3.2: a /128 VIP is deprecated (preferred_lft 0) unless configured otherwise
    assert h["preferred_life_time"] == 0
    assert h.get("nodad") is True
    assert n["preferred_life_time"] == 4294967295
    assert n.get("noprefixroute") is True
    await nl.remove([host, net], default_dev="eth0")
    assert find(node, "2001:db8::77") is None


@pytest.mark.asyncio
async def test_missing_interface_is_an_adapter_error_on_add_and_success_on_remove(
    nl: NetlinkAddresses,
) -> None:
    from pykad.errors import AdapterError

    gone = vip("192.0.2.60/32", dev="nope0")
    with pytest.raises(AdapterError, match="nope0"):
        await nl.install([gone], default_dev="eth0")
    await nl.remove([gone], default_dev="eth0")


@pytest.mark.asyncio
async def test_virtual_routes_and_rules(node: Node, nl: NetlinkAddresses) -> None:
    route = VirtualRoute(
        dst=ipaddress.ip_network("198.51.100.0/24"),
        via=ipaddress.IPv4Address("192.0.2.254"),
        dev="eth0",
        table=100,
        metric=7,
    )
    hole = VirtualRoute(dst=ipaddress.ip_network("203.0.113.0/25"), type="blackhole")
    rule = VirtualRule(src=ipaddress.ip_network("192.0.2.0/24"), table=100, priority=1000)
    for _ in range(2):  # the second round is all EEXIST
        await nl.install([], [route, hole], [rule], default_dev="eth0")
    routes = json.loads(node.run(["ip", "-j", "route", "show", "table", "100"]))
    assert [(r["dst"], r["gateway"], r["dev"], r["metric"]) for r in routes] == [
        ("198.51.100.0/24", "192.0.2.254", "eth0", 7)
    ]
    main = json.loads(node.run(["ip", "-j", "route", "show", "type", "blackhole"]))
    assert [r["dst"] for r in main] == ["203.0.113.0/25"]
    rules = json.loads(node.run(["ip", "-j", "rule", "show", "pref", "1000"]))
    assert [(r["src"], r["srclen"], r["table"]) for r in rules] == [("192.0.2.0", 24, "100")]

    for _ in range(2):  # the second round is all ESRCH / ENOENT
        await nl.remove([], [route, hole], [rule], default_dev="eth0")
    assert json.loads(node.run(["ip", "-j", "route", "show", "table", "100"])) == []
    assert json.loads(node.run(["ip", "-j", "rule", "show", "pref", "1000"])) == []


@pytest.mark.asyncio
async def test_cleanup_stale_removes_only_our_present_addresses(
    node: Node, nl: NetlinkAddresses
) -> None:
    ours = vip("192.0.2.70/32")
    excluded = vip("198.51.100.70/32")
    absent = vip("192.0.2.71/32")
    node.run(["ip", "addr", "add", "192.0.2.70/32", "dev", "eth0"])
    node.run(["ip", "addr", "add", "198.51.100.70/32", "dev", "eth0"])
    node.run(["ip", "addr", "add", "192.0.2.72/32", "dev", "eth0"])  # not ours
    inst = VrrpInstance(
        name="VI_1",
        vrid=1,
        interface="eth0",
        virtual_addresses=(ours, absent),
        excluded_addresses=(excluded,),
    )
    missing_if = VrrpInstance(name="VI_2", vrid=2, interface="nope0", virtual_addresses=(ours,))
    removed = await nl.cleanup_stale([inst, missing_if])
    assert removed == [ours, excluded]
    assert find(node, "192.0.2.70") is None
    assert find(node, "198.51.100.70") is None
    assert find(node, "192.0.2.72") is not None


@pytest.mark.asyncio
async def test_interface_facts(node: Node, nl: NetlinkAddresses) -> None:
    assert (
        await nl.ifindex("eth0")
        == json.loads(node.run(["ip", "-j", "link", "show", "eth0"]))[0]["ifindex"]
    )
    assert (await nl.mac("eth0") or b"").hex(":") == node.mac()
    assert await nl.link_is_up("eth0") is True
    assert await nl.link_is_up("nope0") is False
    assert await nl.ifindex("nope0") is None
    # a VIP in the same subnet is secondary; one excluded explicitly is skipped too
    node.run(["ip", "addr", "add", "192.0.2.80/24", "dev", "eth0"])
    assert await nl.primary_address("eth0", 4) == node.ip4
    assert await nl.primary_address("eth0", 4, exclude=[node.ip4]) is None
    assert await nl.primary_address("eth0", 6) == node.link_local()
    assert await nl.ipv6_forwarding("eth0") is False
    node.run(["sysctl", "-q", "-w", "net.ipv6.conf.eth0.forwarding=1"])
    assert await nl.ipv6_forwarding("eth0") is True


@pytest.mark.asyncio
async def test_link_monitor_sees_down_up_delete_and_readd(node: Node) -> None:
    links: asyncio.Queue[LinkEvent] = asyncio.Queue()
    addrs: asyncio.Queue[AddressEvent] = asyncio.Queue()
    monitor = LinkMonitor(links.put_nowait, addrs.put_nowait, netns=node.ns)
    await monitor.start()
    try:
        first = monitor.state("eth0")
        assert first is not None
        assert first.up

        async def next_link(name: str) -> LinkEvent:
            while True:
                ev = await asyncio.wait_for(links.get(), WAIT_S)
                if ev.ifname == name:
                    return ev

        async def next_addr(ip: str) -> AddressEvent:
            while True:
                ev = await asyncio.wait_for(addrs.get(), WAIT_S)
                if str(ev.address.ip) == ip:
                    return ev

        node.run(["ip", "link", "set", "eth0", "down"])
        assert await next_link("eth0") == LinkEvent("eth0", first.index, up=False)
        node.run(["ip", "link", "set", "eth0", "up"])
        assert await next_link("eth0") == LinkEvent("eth0", first.index, up=True)

        node.run(["ip", "addr", "add", "192.0.2.90/32", "dev", "eth0"])
        ev = await next_addr("192.0.2.90")
        assert (ev.ifname, ev.family, ev.present) == ("eth0", 4, True)
        node.run(["ip", "addr", "del", "192.0.2.90/32", "dev", "eth0"])
        assert (await next_addr("192.0.2.90")).present is False

        # a veth pair inside the namespace: delete it and create it again (new ifindex)
        node.run(["ip", "link", "add", "tst0", "type", "veth", "peer", "name", "tst1"])
        node.run(["ip", "link", "set", "tst1", "up"])
        node.run(["ip", "link", "set", "tst0", "up"])
        ev1 = await next_link("tst0")
        while not ev1.up:
            ev1 = await next_link("tst0")
        node.run(["ip", "link", "del", "tst0"])
        gone = await next_link("tst0")
        while gone.exists:  # the carrier loss may be reported first
            gone = await next_link("tst0")
        assert (gone.ifindex, gone.exists, gone.up) == (ev1.ifindex, False, False)
        node.run(["ip", "link", "add", "tst0", "type", "veth", "peer", "name", "tst1"])
        back = await next_link("tst0")
        assert back.exists
        assert back.ifindex != ev1.ifindex
        assert back.up is False
    finally:
        await monitor.close()
