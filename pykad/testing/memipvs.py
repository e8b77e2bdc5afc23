"""An in-memory IPVS table with :class:`~pykad.adapters.ipvs.IpvsTable`'s interface.

For tests of the load balancer on a kernel without IPVS (this build host): it keeps the
services and destinations like the kernel does, with the adapter's semantics (adding what
exists edits it, deleting what is missing is success, editing what is missing fails with
ENOENT), and records every write as one line in :attr:`MemoryIpvsTable.ops`, in order. The
real table is exercised in the vm layer (tests/vm).
"""

from __future__ import annotations

import errno

from pykad.adapters.ipvs import IpvsDest, IpvsService, IpvsUnavailable
from pykad.errors import AdapterError

_ServiceKey = tuple[object, ...]
_DestKey = tuple[object, ...]


class MemoryIpvsTable:
    """The IPVS table as two dictionaries; :attr:`ops` lists the writes."""

    def __init__(self, *, available: bool = True) -> None:
        self.available = available
        self.ops: list[str] = []
        self.opened = False
        self._services: dict[_ServiceKey, IpvsService] = {}
        self._dests: dict[_ServiceKey, dict[_DestKey, IpvsDest]] = {}

    async def open(self) -> None:
        if not self.available:
            raise IpvsUnavailable("IPVS: Can't initialize ipvs", None, "- ip_vs not available")
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def _log(self, op: str, svc: IpvsService, dest: IpvsDest | None = None) -> None:
        where = svc.describe()
        self.ops.append(
            f"{op} {where}"
            if dest is None
            else f"{op} {where} {dest.address}:{dest.port} w{dest.weight}"
        )

    async def add_service(self, svc: IpvsService) -> None:
        self._log("add_service", svc)
        self._services[svc.key] = svc
        self._dests.setdefault(svc.key, {})

    async def edit_service(self, svc: IpvsService) -> None:
        self._log("edit_service", svc)
        if svc.key not in self._services:
            raise AdapterError(f"IPVS: edit service {svc.describe()}", errno.ESRCH)
        self._services[svc.key] = svc

    async def delete_service(self, svc: IpvsService) -> None:
        self._log("delete_service", svc)
        self._services.pop(svc.key, None)
        self._dests.pop(svc.key, None)

    def _table(self, what: str, svc: IpvsService) -> dict[_DestKey, IpvsDest]:
        dests = self._dests.get(svc.key)
        if dests is None:
            raise AdapterError(f"IPVS: {what} of {svc.describe()}", errno.ESRCH)
        return dests

    async def add_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        self._log("add_dest", svc, dest)
        self._table("add dest", svc)[dest.key] = dest

    async def edit_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        self._log("edit_dest", svc, dest)
        dests = self._table("edit dest", svc)
        if dest.key not in dests:
            raise AdapterError(f"IPVS: edit dest [{dest.address}]:{dest.port}", errno.ENOENT)
        dests[dest.key] = dest

    async def delete_dest(self, svc: IpvsService, dest: IpvsDest) -> None:
        self._log("delete_dest", svc, dest)
        self._dests.get(svc.key, {}).pop(dest.key, None)

    async def flush(self) -> None:
        self.ops.append("flush")
        self._services.clear()
        self._dests.clear()

    async def services(self) -> list[IpvsService]:
        return list(self._services.values())

    async def dests(self, svc: IpvsService) -> list[IpvsDest]:
        return list(self._dests.get(svc.key, {}).values())

    async def read(self) -> dict[IpvsService, list[IpvsDest]]:
        return {svc: await self.dests(svc) for svc in await self.services()}

    def weights(self) -> dict[str, dict[str, int]]:
        """``{"TCP [192.0.2.10]:80": {"192.0.2.21:80": 1, ...}}``: the table at a glance."""
        return {
            svc.describe(): {f"{d.address}:{d.port}": d.weight for d in self._dests[key].values()}
            for key, svc in self._services.items()
        }
