"""The kernel's IPVS table through pyroute2's generic netlink ``IPVS`` family (spec §9.6).

Theory of operation. :class:`IpvsService` and :class:`IpvsDest` are plain values describing
one IPVS virtual service and one destination (real server) the way the kernel stores them;
the load-balancer core (:mod:`pykad.runtime.balancer`) computes them from the configuration
and this module only writes and reads them. Like :mod:`pykad.adapters.netlink` every write is
idempotent, because startup, reload and shutdown replay operations: adding what exists edits
it (``EEXIST``), deleting what is gone (``ESRCH``/``ENOENT``) is success.

A kernel without IPVS has no ``IPVS`` generic netlink family. keepalived then runs
``modprobe ip_vs`` once and retries; so does :meth:`IpvsTable.open`, which raises
:class:`IpvsUnavailable` naming the missing module when that does not help (a kernel built
without IPVS, a container that cannot load modules). The caller keeps VRRP running.

The table is the one of the calling process's network namespace (run the daemon in the
namespace, ``ip netns exec``): pyroute2's ``netns=`` proxy, and even a socket created after
an in-process ``setns``, get EINVAL from the kernel for destination requests (seen on Debian's
6.1 kernel), while the same requests from a process started in the namespace work.

pyroute2 quirks handled here: its ``tun_port`` attribute is encoded in host byte order while
the kernel reads ``IPVS_DEST_ATTR_TUN_PORT`` as big endian, and the service netmask is typed
as an IPv4 address although for IPv6 the kernel reads a prefix length from the same 32 bits.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Any, Final

from pyroute2.ipvs import AsyncIPVS, IPVSDest, IPVSService
from pyroute2.netlink.exceptions import NetlinkError

from pykad.config.model_lvs import IPAddress
from pykad.errors import AdapterError

log = logging.getLogger(__name__)

# include/uapi/linux/ip_vs.h: service flags
SVC_F_PERSISTENT: Final = 0x0001
SVC_F_HASHED: Final = 0x0002  # set by the kernel on every listed service
SVC_F_ONEPACKET: Final = 0x0004
SVC_F_SCHED1: Final = 0x0008
SVC_F_SCHED2: Final = 0x0010
SVC_F_SCHED3: Final = 0x0020
# connection flags: forwarding methods of a destination
FWD_MASQ: Final = 0
FWD_TUNNEL: Final = 2
FWD_DROUTE: Final = 3
FWD_NAMES: Final = {FWD_MASQ: "Masq", FWD_TUNNEL: "Tunnel", FWD_DROUTE: "Route"}
# tunnel types and checksum flags of a TUN destination (kernel >= 5.2 / 5.3)
TUN_IPIP: Final = 0
TUN_GUE: Final = 1
TUN_GRE: Final = 2
TUN_F_NOCSUM: Final = 0
TUN_F_CSUM: Final = 1
TUN_F_REMCSUM: Final = 2

MODULE: Final = "ip_vs"
_MODPROBE_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class IpvsService:
    """One IPVS virtual service: address/protocol/port, or a firewall mark."""

    family: int  # socket.AF_INET or socket.AF_INET6
    protocol: int = 0  # IPPROTO_TCP/UDP/SCTP; 0 for a fwmark service
    address: IPAddress | None = None
    port: int = 0
    fwmark: int = 0
    scheduler: str = "wlc"
    flags: int = 0  # SVC_F_* (without HASHED)
    timeout: int = 0  # persistence timeout in seconds; 0: not persistent
    netmask: int = 0  # persistence granularity as a prefix length; 0: the family's full length
    pe_name: str | None = None  # persistence engine

    @property
    def key(self) -> tuple[int, int, IPAddress | None, int, int]:
        """What identifies a service in the kernel (the other fields can be edited)."""
        return (self.family, self.protocol, self.address, self.port, self.fwmark)

    def describe(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark}"
        proto = {socket.IPPROTO_TCP: "TCP", socket.IPPROTO_UDP: "UDP"}.get(self.protocol, "SCTP")
        return f"{proto} [{self.address}]:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class IpvsDest:
    """One destination (real server or sorry server) of a service."""

    address: IPAddress
    port: int = 0
    forward: int = FWD_MASQ
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: int = TUN_IPIP
    tun_port: int = 0
    tun_flags: int = TUN_F_NOCSUM

    @property
    def key(self) -> tuple[IPAddress, int]:
        return (self.address, self.port)


class IpvsUnavailable(AdapterError):
    """The kernel has no IPVS (module ``ip_vs`` not loaded and not loadable)."""


def _family_bits(family: int) -> int:
    return 32 if family == socket.AF_INET else 128


def _service_nla(svc: IpvsService) -> IPVSService:
    fields: dict[str, Any] = {"af": svc.family}
    if svc.fwmark:
        fields["fwmark"] = svc.fwmark
    else:
        fields.update(protocol=svc.protocol, addr=str(svc.address), port=svc.port)
    bits = svc.netmask or _family_bits(svc.family)
    if svc.family == socket.AF_INET:
        fields["netmask"] = str(ipaddress.IPv4Network(f"0.0.0.0/{bits}").netmask)
    else:
        # the kernel reads the prefix length from the same host-order u32
        fields["netmask"] = socket.inet_ntoa(struct.pack("=I", bits))
    fields.update(
        sched_name=svc.scheduler,
        timeout=svc.timeout,
        flags={"flags": svc.flags, "mask": 0xFFFFFFFF & ~SVC_F_HASHED},
    )
    if svc.pe_name:
        fields["pe_name"] = svc.pe_name
    return IPVSService(**fields)


def _dest_nla(dest: IpvsDest) -> IPVSDest:
    return IPVSDest(
        addr=str(dest.address),
        port=dest.port,
        fwd_method=dest.forward,
        weight=dest.weight,
        u_thresh=dest.u_threshold,
        l_thresh=dest.l_threshold,
        tun_type=dest.tun_type,
        tun_port=socket.htons(dest.tun_port),  # pyroute2 packs host order; kernel reads be16
        tun_flags=dest.tun_flags,
    )


def _service_from(attrs: dict[str, Any]) -> IpvsService:
    family = int(attrs.get("IPVS_SVC_ATTR_AF", socket.AF_INET))
    fwmark = int(attrs.get("IPVS_SVC_ATTR_FWMARK", 0))
    address: IPAddress | None = None
    if not fwmark and attrs.get("IPVS_SVC_ATTR_ADDR") is not None:
        address = ipaddress.ip_address(attrs["IPVS_SVC_ATTR_ADDR"])
    raw_mask = attrs.get("IPVS_SVC_ATTR_NETMASK")
    netmask = 0
    if raw_mask is not None:
        if family == socket.AF_INET:
            netmask = ipaddress.IPv4Network(f"0.0.0.0/{raw_mask}").prefixlen
        else:
            netmask = struct.unpack("=I", socket.inet_aton(raw_mask))[0]
    if netmask == _family_bits(family):
        netmask = 0
    flags = attrs.get("IPVS_SVC_ATTR_FLAGS") or {}
    return IpvsService(
        family=family,
        protocol=0 if fwmark else int(attrs.get("IPVS_SVC_ATTR_PROTOCOL", 0)),
        address=address,
        port=0 if fwmark else int(attrs.get("IPVS_SVC_ATTR_PORT", 0)),
        fwmark=fwmark,
        scheduler=str(attrs.get("IPVS_SVC_ATTR_SCHED_NAME", "")),
        flags=int(flags.get("flags", 0)) & ~SVC_F_HASHED,
        timeout=int(attrs.get("IPVS_SVC_ATTR_TIMEOUT", 0)),
        netmask=netmask,
        pe_name=attrs.get("IPVS_SVC_ATTR_PE_NAME") or None,
    )


def _dest_from(attrs: dict[str, Any]) -> IpvsDest:
    return IpvsDest(
        address=ipaddress.ip_address(attrs["IPVS_DEST_ATTR_ADDR"]),
        port=int(attrs.get("IPVS_DEST_ATTR_PORT", 0)),
        forward=int(attrs.get("IPVS_DEST_ATTR_FWD_METHOD", 0)) & 0x7,
        weight=int(attrs.get("IPVS_DEST_ATTR_WEIGHT", 0)),
        u_threshold=int(attrs.get("IPVS_DEST_ATTR_U_THRESH", 0)),
        l_threshold=int(attrs.get("IPVS_DEST_ATTR_L_THRESH", 0)),
        tun_type=int(attrs.get("IPVS_DEST_ATTR_TUN_TYPE", 0)),
        tun_port=socket.ntohs(int(attrs.get("IPVS_DEST_ATTR_TUN_PORT", 0))),
        tun_flags=int(attrs.get("IPVS_DEST_ATTR_TUN_FLAGS", 0)),
    )


def _attrs(msg: Any, nla: str) -> dict[str, Any]:
    inner = msg.get_attr(nla)
    return {} if inner is None else dict(inner["attrs"])


class IpvsTable:
    """Idempotent writes to, and a read-back of, the kernel's IPVS table."""

    def __init__(self, *, modprobe: bool = True) -> None:
        self.modprobe = modprobe
        self._sock: AsyncIPVS | None = None

    async def open(self) -> None:
        """Bind to the IPVS family, loading ``ip_vs`` once if it is missing (keepalived's
        ``modprobe_ipvs``). Raises :class:`IpvsUnavailable` naming the module."""
        try:
            self._sock = await self._bind()
            return
        except NetlinkError as exc:
            if exc.code != errno.ENOENT:
                raise AdapterError("IPVS: open", exc.code, str(exc)) from exc
            first = exc
        if self.modprobe and await _modprobe(MODULE):
            try:
                self._sock = await self._bind()
                return
            except NetlinkError as exc:
                first = exc
        raise IpvsUnavailable(
            "IPVS: Can't initialize ipvs",
            None,  # keepalived's words, then why: ENOENT alone would not say it
            f"- {MODULE} kernel module not available (the kernel has no IPVS generic netlink"
            f" family and 'modprobe {MODULE}' did not add it)",
        ) from first

    async def _bind(self) -> AsyncIPVS:
        sock = AsyncIPVS()
        try:
            await sock.setup_endpoint()
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def _ipvs(self) -> AsyncIPVS:
        if self._sock is None:
            raise AdapterError("IPVS: table not open")
        return self._sock

    async def _call(self, what: str, coro: Any, ok: tuple[int, ...] = ()) -> bool:
        """Run one request; False when it failed with an errno in ``ok``."""
        try:
            await coro
        except NetlinkError as exc:
            if exc.code in ok:
                return False
            raise AdapterError(f"IPVS: {what}", exc.code, str(exc)) from exc
        return True

    # ---------------------------------------------------------------- services

    async def add_service(self, svc: IpvsService) -> None:
        """Add ``svc``; if it exists, make its parameters equal to ``svc``."""
        if not await self._call(
            f"add service {svc.describe()}",
            self._ipvs.service("add", service=_service_nla(svc)),
            ok=(errno.EEXIST,),
        ):
            await self.edit_service(svc)

    async def edit_service(self, svc: IpvsService) -> None:
        await self._call(
            f"edit service {svc.describe()}", self._ipvs.service("set", service=_service_nla(svc))
        )

    async def delete_service(self, svc: IpvsService) -> None:
        """Delete ``svc`` and its destinations; a missing service is success."""
        await self._call(
            f"delete service {svc.describe()}",
            self._ipvs.service("del", service=_service_nla(svc)),
            ok=(errno.ESRCH, errno.ENOENT),
        )

    # ---------------------------------------------------------------- destinations

    async def add_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        """Add ``dest`` to ``svc``; if it is there already, edit it to ``dest``."""
        if not await self._call(
            f"add dest [{dest.address}]:{dest.port} to {svc.describe()}",
            self._ipvs.dest("add", service=_service_nla(svc), dest=_dest_nla(dest)),
            ok=(errno.EEXIST,),
        ):
            await self.edit_dest(svc, dest)

    async def edit_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        await self._call(
            f"edit dest [{dest.address}]:{dest.port} of {svc.describe()}",
            self._ipvs.dest("set", service=_service_nla(svc), dest=_dest_nla(dest)),
        )

    async def delete_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        """Remove ``dest`` from ``svc``; already gone (or no service) is success."""
        await self._call(
            f"delete dest [{dest.address}]:{dest.port} from {svc.describe()}",
            self._ipvs.dest("del", service=_service_nla(svc), dest=_dest_nla(dest)),
            ok=(errno.ENOENT, errno.ESRCH),
        )

    # ---------------------------------------------------------------- whole table

    async def flush(self) -> None:
        """Delete every service (``lvs_flush`` / ``lvs_flush_on_stop``)."""
        for svc in await self.services():
            await self.delete_service(svc)

    async def services(self) -> list[IpvsService]:
        try:
            msgs = await self._ipvs.service("dump")
        except NetlinkError as exc:
            raise AdapterError("IPVS: dump services", exc.code, str(exc)) from exc
        return [_service_from(_attrs(m, "IPVS_CMD_ATTR_SERVICE")) for m in msgs]

    async def dests(self, svc: IpvsService) -> list[IpvsDest]:
        try:
            msgs = await self._ipvs.dest("dump", service=_service_nla(svc))
        except NetlinkError as exc:
            raise AdapterError(f"IPVS: dump dests of {svc.describe()}", exc.code) from exc
        return [_dest_from(_attrs(m, "IPVS_CMD_ATTR_DEST")) for m in msgs]

    async def read(self) -> dict[IpvsService, list[IpvsDest]]:
        """The whole table: every service with its destinations."""
        return {svc: await self.dests(svc) for svc in await self.services()}


def _modprobe_path() -> str:
    try:
        with open("/proc/sys/kernel/modprobe") as f:  # a procfs read: never blocks
            return f.read().strip() or "/sbin/modprobe"
    except OSError:
        return "/sbin/modprobe"


async def _modprobe(module: str) -> bool:
    """``modprobe <module>`` with the kernel's configured modprobe (keepalived does the same);
    True when it exited 0."""
    binary = _modprobe_path()
    try:
        proc = await asyncio.create_subprocess_exec(
            binary,
            "-q",
            module,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        log.debug("cannot run %s: %s", binary, exc)
        return False
    try:
        return await asyncio.wait_for(proc.wait(), _MODPROBE_TIMEOUT_S) == 0
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False
