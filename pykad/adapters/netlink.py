"""Netlink: virtual addresses, routes and rules, interface facts, and a link/address monitor.

Theory of operation
-------------------
:class:`NetlinkAddresses` implements :class:`~pykad.adapters.ports.AddressPort` with
pyroute2's ``AsyncIPRoute`` (the asyncio-native rtnetlink socket; it worked here for every
request and dump pykad needs, so no thread is involved). Every operation is idempotent, as
pyroute2's own ``ensure``/hooks are (STYLE.md C): adding what is there (``EEXIST``) and
removing what is gone (``EADDRNOTAVAIL``, ``ESRCH``, ``ENOENT``, ``ENODEV``: an interface
that no longer exists holds no address) are success, because a restart or a reload replays
effects. Anything else raises :class:`~pykad.errors.AdapterError`.

Order follows keepalived (spec §5.5 step 5, §5.6): install adds addresses, then routes, then
rules; remove takes rules, then routes, then addresses away.

What an address line means (spec §3.2): ``dev`` defaults to the instance interface (the
``default_dev`` argument); ``peer`` makes the VIP the local end of a point-to-point address;
``scope``/``label``/``brd`` as with ``ip addr``; ``-nodad``, ``home``, ``mngtmpaddr``,
``noprefixroute``, ``autojoin`` become IFA_F_* flags; IPv6 addresses get ``preferred_lft 0``
when they are /128 and nothing was configured (keepalived: a /128 VIP must never be picked as
a source address), forever otherwise.

:meth:`NetlinkAddresses.cleanup_stale` is spec §5.2 step 2: at startup every VIP, eVIP,
virtual route and rule of our instances that is already on the system (left by a crash) is
removed, without any advert.

:class:`LinkMonitor` subscribes to the RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR and
RTNLGRP_IPV6_IFADDR broadcasts (no polling) and calls back with :class:`LinkEvent` (the
interface is up = IFF_UP and IFF_RUNNING, spec §10.15, or it was deleted) and
:class:`AddressEvent`. It subscribes *before* dumping the initial state, so nothing can slip
between the two; an interface deleted and created again (a new ifindex) is reported as
deleted and then as existing with its new index, and a receive-buffer overflow (ENOBUFS)
triggers a resynchronising dump that reports only real differences.

Families are the model's ``4``/``6`` throughout, not AF_* numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK

from pykad.adapters.rawsock import open_socket
from pykad.config.model import (
    IPAddress,
    IPInterface,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VrrpInstance,
)
from pykad.errors import AdapterError

log = logging.getLogger(__name__)

# <linux/if_addr.h>
IFA_F_SECONDARY: Final = 0x01
IFA_F_NODAD: Final = 0x02
IFA_F_DADFAILED: Final = 0x08
IFA_F_HOMEADDRESS: Final = 0x10
IFA_F_TENTATIVE: Final = 0x40
IFA_F_MANAGETEMPADDR: Final = 0x100
IFA_F_NOPREFIXROUTE: Final = 0x200
IFA_F_MCAUTOJOIN: Final = 0x400
INFINITY_LIFE_TIME: Final = 0xFFFFFFFF
# <linux/if.h>
IFF_UP: Final = 0x1
IFF_NOARP: Final = 0x80
IFF_RUNNING: Final = 0x40
# <linux/rtnetlink.h>
RTNH_F_ONLINK: Final = 0x4
FR_ACT_TO_TBL: Final = 1
RT_TABLE_MAIN: Final = 254
NETLINK_ROUTE: Final = 0

SCOPES: Final = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
ROUTE_TYPES: Final = {
    "unicast": 1,
    "local": 2,
    "broadcast": 3,
    "anycast": 4,
    "multicast": 5,
    "blackhole": 6,
    "unreachable": 7,
    "prohibit": 8,
    "throw": 9,
    "nat": 10,
}
ROUTE_PROTOCOLS: Final = {"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": 18}

# Errors that mean "already in the wanted state".
_ADD_OK: Final = frozenset({errno.EEXIST})
_DEL_OK: Final = frozenset(
    {errno.EADDRNOTAVAIL, errno.ESRCH, errno.ENOENT, errno.ENODEV, errno.ENXIO}
)


def _af(family: int) -> int:
    return socket.AF_INET if family == 4 else socket.AF_INET6


def _number(value: str, names: dict[str, int], what: str) -> int:
    if value in names:
        return names[value]
    try:
        return int(value, 0)
    except ValueError:
        raise AdapterError(f"unknown {what} {value!r}") from None


def rtnl_socket(netns: str | None) -> Any:
    """An ``AsyncIPRoute``, in ``netns`` when one is named.

    pyroute2's own ``netns=`` forks a copy of the whole process to create the socket (the copy
    may outlive the call and flush our stdio buffers a second time); instead the netlink
    socket is created by :func:`pykad.adapters.rawsock.open_socket` (a thread that entered
    the namespace) and handed over by file descriptor."""
    if netns is None:
        return AsyncIPRoute()
    sock = open_socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE, netns)
    return AsyncIPRoute(fileno=sock.detach())


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What pykad needs to know about one interface."""

    name: str
    index: int
    flags: int
    mac: bytes
    kind: int  # ARPHRD_* (1 = Ethernet)

    @property
    def up(self) -> bool:
        """IFF_UP and IFF_RUNNING: administratively up with carrier (spec §10.15)."""
        return self.flags & (IFF_UP | IFF_RUNNING) == (IFF_UP | IFF_RUNNING)

    @property
    def noarp(self) -> bool:
        return bool(self.flags & IFF_NOARP)


def _link_info(msg: Any) -> LinkInfo:
    mac_text = _attr(msg, "IFLA_ADDRESS") or ""
    mac = bytes.fromhex(mac_text.replace(":", "")) if mac_text else b""
    return LinkInfo(
        name=str(_attr(msg, "IFLA_IFNAME")),
        index=int(msg["index"]),
        flags=int(msg["flags"]),
        mac=mac,
        kind=int(msg.get("ifi_type", 0) or 0),
    )


def _addr_flags(msg: Any) -> int:
    flags = _attr(msg, "IFA_FLAGS")
    return int(flags if flags is not None else msg["flags"])


def _addr_interface(msg: Any) -> IPInterface:
    # IFA_LOCAL is the address of the interface (IPv4 point-to-point: IFA_ADDRESS is the peer)
    local = _attr(msg, "IFA_LOCAL") or _attr(msg, "IFA_ADDRESS")
    return ipaddress.ip_interface(f"{local}/{msg['prefixlen']}")


# --------------------------------------------------------------------------------------------
# Addresses, routes, rules: the AddressPort


class NetlinkAddresses:
    """AddressPort over rtnetlink, plus interface look-ups. Use ``async with`` or open/close.

    ``netns`` names a network namespace (/run/netns/NAME) to work in (keepalived's
    ``net_namespace``; the tests use it)."""

    def __init__(self, *, netns: str | None = None) -> None:
        self.netns = netns
        self._ipr: Any = None
        self._lock = asyncio.Lock()  # one request at a time on the shared netlink socket

    async def open(self) -> Self:
        if self._ipr is None:
            try:
                self._ipr = rtnl_socket(self.netns)
            except OSError as exc:
                raise AdapterError("open rtnetlink socket", exc.errno, str(exc)) from exc
        return self

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def ipr(self) -> Any:
        if self._ipr is None:
            raise AdapterError("rtnetlink socket is not open")
        return self._ipr

    async def _request(self, op: str, ok: frozenset[int], call: Callable[[], Any]) -> bool:
        """Run one netlink request; True if it changed something, False if ``ok`` errno."""
        async with self._lock:
            try:
                await call()
            except NetlinkError as exc:
                if exc.code in ok:
                    return False
                raise AdapterError(op, exc.code, str(exc)) from exc
            except OSError as exc:
                raise AdapterError(op, exc.errno, str(exc)) from exc
        return True

    async def _dump(self, op: str, call: Callable[[], Any]) -> list[Any]:
        async with self._lock:
            try:
                return [msg async for msg in await call()]
            except NetlinkError as exc:
                raise AdapterError(op, exc.code, str(exc)) from exc
            except OSError as exc:
                raise AdapterError(op, exc.errno, str(exc)) from exc

    # -- interfaces --------------------------------------------------------------------------

    async def link(self, name: str) -> LinkInfo | None:
        """The interface called ``name``, or None when there is none."""
        async with self._lock:
            try:
                msgs = await self.ipr.link("get", ifname=name)
            except NetlinkError as exc:
                if exc.code in (errno.ENODEV, errno.ENOENT):
                    return None
                raise AdapterError(f"get link {name}", exc.code, str(exc)) from exc
        return _link_info(msgs[0]) if msgs else None

    async def links(self) -> list[LinkInfo]:
        return [
            _link_info(m) for m in await self._dump("dump links", lambda: self.ipr.link("dump"))
        ]

    async def ifindex(self, name: str) -> int | None:
        info = await self.link(name)
        return None if info is None else info.index

    async def mac(self, name: str) -> bytes | None:
        info = await self.link(name)
        return None if info is None else info.mac

    async def link_is_up(self, name: str) -> bool:
        """IFF_UP and IFF_RUNNING (spec §10.15); False for a missing interface."""
        info = await self.link(name)
        return info is not None and info.up

    async def ipv6_forwarding(self, name: str) -> bool:
        """``net.ipv6.conf.NAME.forwarding`` (decides the NA Router flag, spec §5.9)."""
        async with self._lock:
            try:
                msgs = await self.ipr.link("get", ifname=name)
            except NetlinkError as exc:
                raise AdapterError(f"get link {name}", exc.code, str(exc)) from exc
        spec = msgs[0].get_attr("IFLA_AF_SPEC") if msgs else None
        inet6 = spec.get_attr("AF_INET6") if spec is not None else None
        conf = inet6.get_attr("IFLA_INET6_CONF") if inet6 is not None else None
        return bool(conf and conf.get("forwarding"))

    async def addresses(
        self, name: str | None = None, family: int | None = None
    ) -> list[tuple[str, IPInterface, int]]:
        """Every address as (ifname, address/prefix, IFA flags), optionally filtered."""
        names = {link.index: link.name for link in await self.links()}
        kwargs: dict[str, Any] = {}
        if family is not None:
            kwargs["family"] = _af(family)
        msgs = await self._dump("dump addresses", lambda: self.ipr.addr("dump", **kwargs))
        found = []
        for msg in msgs:
            ifname = names.get(int(msg["index"]), "")
            if name is None or ifname == name:
                found.append((ifname, _addr_interface(msg), _addr_flags(msg)))
        return found

    async def primary_address(
        self, name: str, family: int, *, exclude: Iterable[IPAddress] = ()
    ) -> IPAddress | None:
        """The advert source keepalived would pick (spec §3.1): the interface's primary
        IPv4 address (the first one that is not secondary), or its IPv6 link-local address
        (usable: not tentative, DAD not failed). ``exclude`` leaves out our own VIPs."""
        skip = set(exclude)
        for _ifname, iface, flags in await self.addresses(name, family):
            if iface.ip in skip:
                continue
            if family == 4 and not flags & IFA_F_SECONDARY:
                return iface.ip
            if (
                family == 6
                and iface.ip.is_link_local
                and not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
            ):
                return iface.ip
        return None

    async def _index_of(self, dev: str) -> int:
        info = await self.link(dev)
        if info is None:
            raise AdapterError(f"interface {dev}", errno.ENODEV, "does not exist")
        return info.index

    # -- addresses ---------------------------------------------------------------------------

    def _addr_args(self, vip: VirtualAddress, index: int, *, adding: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "index": index,
            "family": _af(vip.family),
            "prefixlen": vip.address.network.prefixlen,
        }
        if vip.peer is not None:
            kwargs["local"] = str(vip.ip)
            kwargs["address"] = str(vip.peer)
        else:
            kwargs["address"] = str(vip.ip)
        if not adding:
            return kwargs
        if vip.family == 4:
            if vip.broadcast is not None:
                kwargs["broadcast"] = str(vip.broadcast)
            if vip.label is not None:
                kwargs["label"] = vip.label
            kwargs["scope"] = _number(vip.scope, SCOPES, "scope")
        flags = 0
        for on, bit in (
            (vip.nodad, IFA_F_NODAD),
            (vip.home, IFA_F_HOMEADDRESS),
            (vip.mngtmpaddr, IFA_F_MANAGETEMPADDR),
            (vip.noprefixroute, IFA_F_NOPREFIXROUTE),
            (vip.autojoin, IFA_F_MCAUTOJOIN),
        ):
            if on:
                flags |= bit
        if flags:
            kwargs["flags"] = flags
        preferred = vip.preferred_lft
        if preferred is None and vip.family == 6 and vip.address.network.prefixlen == 128:
            preferred = 0  # spec §3.2: a /128 IPv6 VIP is deprecated unless told otherwise
        if preferred is not None:
            kwargs["preferred_lft"] = INFINITY_LIFE_TIME if preferred < 0 else preferred
        return kwargs

    async def add_address(self, vip: VirtualAddress, *, default_dev: str | None) -> bool:
        """Add one address; False when it was already there."""
        dev = vip.dev or default_dev
        if dev is None:
            raise AdapterError(f"add {vip.address}", None, "no interface to put it on")
        index = await self._index_of(dev)
        kwargs = self._addr_args(vip, index, adding=True)
        changed = await self._request(
            f"add address {vip.address} dev {dev}",
            _ADD_OK,
            lambda: self.ipr.addr("add", **kwargs),
        )
        if changed:
            log.debug("added %s dev %s", vip.address, dev)
        return changed

    async def remove_address(self, vip: VirtualAddress, *, default_dev: str | None) -> bool:
        """Remove one address; False when it was not there (or its interface is gone)."""
        dev = vip.dev or default_dev
        if dev is None:
            return False
        info = await self.link(dev)
        if info is None:
            return False
        kwargs = self._addr_args(vip, info.index, adding=False)
        changed = await self._request(
            f"delete address {vip.address} dev {dev}",
            _DEL_OK,
            lambda: self.ipr.addr("del", **kwargs),
        )
        if changed:
            log.debug("removed %s dev %s", vip.address, dev)
        return changed

    # -- routes ------------------------------------------------------------------------------

    async def _route_args(self, route: VirtualRoute) -> dict[str, Any]:
        family = route.dst.version if route.dst is not None else None
        for known in (route.via, route.src):
            if family is None and known is not None:
                family = known.version
        kwargs: dict[str, Any] = {"family": _af(family or 4)}
        if route.dst is not None:
            kwargs["dst"] = str(route.dst.network_address)
            kwargs["dst_len"] = route.dst.prefixlen
        else:
            kwargs["dst_len"] = 0  # "default"
        kwargs["type"] = _number(route.type, ROUTE_TYPES, "route type")
        kwargs["table"] = route.table if route.table is not None else RT_TABLE_MAIN
        if route.via is not None:
            kwargs["gateway"] = str(route.via)
        if route.src is not None:
            kwargs["prefsrc"] = str(route.src)
        if route.dev is not None:
            kwargs["oif"] = await self._index_of(route.dev)
        if route.scope is not None:
            kwargs["scope"] = _number(route.scope, SCOPES, "scope")
        if route.metric is not None:
            kwargs["priority"] = route.metric
        if route.protocol is not None:
            kwargs["proto"] = _number(route.protocol, ROUTE_PROTOCOLS, "route protocol")
        if route.onlink:
            kwargs["flags"] = RTNH_F_ONLINK
        return kwargs

    async def add_route(self, route: VirtualRoute) -> bool:
        kwargs = await self._route_args(route)
        return await self._request(
            f"add route {route.dst or 'default'}", _ADD_OK, lambda: self.ipr.route("add", **kwargs)
        )

    async def remove_route(self, route: VirtualRoute) -> bool:
        if route.dev is not None and await self.link(route.dev) is None:
            return False  # its interface is gone and took the route with it
        kwargs = await self._route_args(route)
        for key in ("prefsrc", "proto", "flags"):  # not part of a route's identity
            kwargs.pop(key, None)
        return await self._request(
            f"delete route {route.dst or 'default'}",
            _DEL_OK,
            lambda: self.ipr.route("del", **kwargs),
        )

    # -- rules -------------------------------------------------------------------------------

    @staticmethod
    def _rule_args(rule: VirtualRule) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"family": _af(rule.family)}
        if rule.src is not None:
            kwargs["src"] = str(rule.src.network_address)
            kwargs["src_len"] = rule.src.prefixlen
        if rule.dst is not None:
            kwargs["dst"] = str(rule.dst.network_address)
            kwargs["dst_len"] = rule.dst.prefixlen
        if rule.table is not None:
            kwargs["table"] = rule.table
            kwargs["action"] = FR_ACT_TO_TBL
        if rule.priority is not None:
            kwargs["priority"] = rule.priority
        if rule.fwmark is not None:
            kwargs["fwmark"] = rule.fwmark
        if rule.iif is not None:
            kwargs["iifname"] = rule.iif
        if rule.oif is not None:
            kwargs["oifname"] = rule.oif
        return kwargs

    async def add_rule(self, rule: VirtualRule) -> bool:
        kwargs = self._rule_args(rule)
        return await self._request("add rule", _ADD_OK, lambda: self.ipr.rule("add", **kwargs))

    async def remove_rule(self, rule: VirtualRule) -> bool:
        kwargs = self._rule_args(rule)
        return await self._request("delete rule", _DEL_OK, lambda: self.ipr.rule("del", **kwargs))

    # -- the AddressPort ---------------------------------------------------------------------

    async def install(
        self,
        addresses: Sequence[VirtualAddress],
        routes: Sequence[VirtualRoute] = (),
        rules: Sequence[VirtualRule] = (),
        *,
        default_dev: str | None,
    ) -> None:
        """Addresses, then routes, then rules (spec §5.5 step 5). Every item is tried; the
        first failure is raised after the others were attempted."""
        failures: list[AdapterError] = []
        for vip in addresses:
            await self._attempt(failures, self.add_address(vip, default_dev=default_dev))
        for route in routes:
            await self._attempt(failures, self.add_route(route))
        for rule in rules:
            await self._attempt(failures, self.add_rule(rule))
        if failures:
            raise failures[0]

    async def remove(
        self,
        addresses: Sequence[VirtualAddress],
        routes: Sequence[VirtualRoute] = (),
        rules: Sequence[VirtualRule] = (),
        *,
        default_dev: str | None,
    ) -> None:
        """Rules, then routes, then addresses (spec §5.6). Gone already is success."""
        failures: list[AdapterError] = []
        for rule in rules:
            await self._attempt(failures, self.remove_rule(rule))
        for route in routes:
            await self._attempt(failures, self.remove_route(route))
        for vip in addresses:
            await self._attempt(failures, self.remove_address(vip, default_dev=default_dev))
        if failures:
            raise failures[0]

    @staticmethod
    async def _attempt(failures: list[AdapterError], op: Any) -> None:
        try:
            await op
        except AdapterError as exc:
            log.warning("%s", exc)
            failures.append(exc)

    async def cleanup_stale(
        self, instances: Sequence[VrrpInstance], *, default_interface: str = "eth0"
    ) -> list[VirtualAddress]:
        """Spec §5.2 step 2: remove every VIP/eVIP, virtual route and rule of ``instances``
        that is already present (a previous run crashed), for instances whose interface
        exists. No advert is sent. Returns the addresses that were actually removed."""
        removed: list[VirtualAddress] = []
        for inst in instances:
            dev = inst.interface or default_interface
            if await self.link(dev) is None:
                continue
            present = {(ifname, iface) for ifname, iface, _ in await self.addresses()}
            for rule in inst.virtual_rules:
                await self.remove_rule(rule)
            for route in inst.virtual_routes:
                if route.dev is None or await self.link(route.dev) is not None:
                    await self.remove_route(route)
            for vip in (*inst.virtual_addresses, *inst.excluded_addresses):
                if (vip.dev or dev, vip.address) in present and await self.remove_address(
                    vip, default_dev=dev
                ):
                    log.info(
                        "(%s) removed stale address %s dev %s",
                        inst.name,
                        vip.address,
                        vip.dev or dev,
                    )
                    removed.append(vip)
        return removed


# --------------------------------------------------------------------------------------------
# The link / address monitor


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """Interface ``ifname`` changed: ``up`` = IFF_UP and IFF_RUNNING; ``exists`` False when
    it was deleted (then ``up`` is False). A re-created interface comes with a new ifindex."""

    ifname: str
    ifindex: int
    up: bool
    exists: bool = True


@dataclass(frozen=True, slots=True)
class AddressEvent:
    """An address appeared on / disappeared from ``ifname`` (``family`` 4 or 6). An IPv6
    address still tentative (DAD running) or with DAD failed counts as absent."""

    ifname: str
    ifindex: int
    family: int
    address: IPInterface
    present: bool


class LinkMonitor:
    """Calls ``on_link`` / ``on_address`` for every change of interface state or address.

    ``await start()`` subscribes, then takes the initial state (no callbacks for it: read
    it with :meth:`state`); :meth:`run` (started by ``start`` as a task) delivers changes
    until :meth:`close`. Callbacks run in the event loop and must not block."""

    def __init__(
        self,
        on_link: Callable[[LinkEvent], None],
        on_address: Callable[[AddressEvent], None] | None = None,
        *,
        netns: str | None = None,
    ) -> None:
        self.on_link = on_link
        self.on_address = on_address
        self.netns = netns
        self.links: dict[int, LinkInfo] = {}  # by ifindex
        self.present: set[tuple[int, IPInterface]] = set()
        self._ipr: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._subscribe()
        links, present = await self._snapshot()
        self.links, self.present = links, present
        self._task = asyncio.get_running_loop().create_task(self.run(), name="pykad-linkmon")

    async def _subscribe(self) -> None:
        self._ipr = rtnl_socket(self.netns)
        await self._ipr.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)

    async def _snapshot(self) -> tuple[dict[int, LinkInfo], set[tuple[int, IPInterface]]]:
        async with NetlinkAddresses(netns=self.netns) as nl:
            links = {link.index: link for link in await nl.links()}
            index_of = {link.name: link.index for link in links.values()}
            present = {
                (index_of[ifname], iface)
                for ifname, iface, flags in await nl.addresses()
                if ifname in index_of and not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
            }
        return links, present

    def state(self, ifname: str) -> LinkInfo | None:
        for info in self.links.values():
            if info.name == ifname:
                return info
        return None

    async def run(self) -> None:
        while self._ipr is not None:
            try:
                async for msg in self._ipr.get():
                    self._handle(msg)
            except (OSError, NetlinkError) as exc:
                if self._ipr is None:
                    return
                # ENOBUFS (pyroute2 queues it as an error message that get() raises): the
                # kernel dropped broadcasts; re-read the state and report the differences
                # instead of guessing (pyroute2 docs: a new socket is needed).
                log.warning("netlink monitor: %s - resynchronising", exc)
                with contextlib.suppress(Exception):
                    self._ipr.close()
                await self._subscribe()
                await self._resync()

    async def _resync(self) -> None:
        links, present = await self._snapshot()
        for index in list(self.links):
            if index not in links:
                self._link_gone(index)
        for info in links.values():
            self._link_seen(info)
        for index, iface in self.present - present:
            self._address(index, iface, present=False)
        for index, iface in present - self.present:
            self._address(index, iface, present=True)

    def _handle(self, msg: Any) -> None:
        event = msg.get("event")
        if event == "RTM_NEWLINK":
            self._link_seen(_link_info(msg))
        elif event == "RTM_DELLINK":
            self._link_gone(int(msg["index"]))
        elif event in ("RTM_NEWADDR", "RTM_DELADDR"):
            flags = _addr_flags(msg)
            usable = event == "RTM_NEWADDR" and not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
            self._address(int(msg["index"]), _addr_interface(msg), present=usable)

    def _link_seen(self, info: LinkInfo) -> None:
        old = self.links.get(info.index)
        if old is not None and old.name != info.name:
            # renamed: the old name is gone as far as the configuration is concerned
            self._emit(LinkEvent(old.name, old.index, up=False, exists=False))
            old = None
        self.links[info.index] = info
        if old is None or old.up != info.up:
            self._emit(LinkEvent(info.name, info.index, up=info.up))

    def _link_gone(self, index: int) -> None:
        old = self.links.pop(index, None)
        if old is not None:
            for key in [k for k in self.present if k[0] == index]:
                self._address(index, key[1], present=False, name=old.name)
            self._emit(LinkEvent(old.name, index, up=False, exists=False))

    def _address(
        self, index: int, iface: IPInterface, *, present: bool, name: str | None = None
    ) -> None:
        key = (index, iface)
        if present == (key in self.present):
            return
        if present:
            self.present.add(key)
        else:
            self.present.discard(key)
        info = self.links.get(index)
        ifname = name or (info.name if info is not None else "")
        if self.on_address is not None:
            try:
                self.on_address(AddressEvent(ifname, index, iface.version, iface, present))
            except Exception:
                log.exception("address callback failed")

    def _emit(self, event: LinkEvent) -> None:
        try:
            self.on_link(event)
        except Exception:
            log.exception("link callback failed")

    async def close(self) -> None:
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            ipr.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
