"""Builders of typed config objects with sane defaults, for tests (FakeLan and others).

``instance(name="VI_a", priority=200, primary="192.0.2.2")`` gives a complete
:class:`~pykad.config.model.VrrpInstance` as the lowering would produce it; every keyword of
the model can be overridden. Addresses default to the documentation range 192.0.2.0/24.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from typing import Any

from pykad.config.model import InitialState, VirtualAddress, VrrpInstance


def vip(address: str, **kw: Any) -> VirtualAddress:
    """One virtual address: ``vip("192.0.2.100/24", dev="eth1")``."""
    return VirtualAddress(address=ipaddress.ip_interface(address), **kw)


def instance(
    name: str = "VI_1",
    *,
    vrid: int = 51,
    priority: int = 100,
    primary: str | None = None,
    version: int = 2,
    advert_int: float = 1.0,
    preempt: bool = True,
    state: str = "BACKUP",
    interface: str | None = "eth0",
    vips: Iterable[str] = ("192.0.2.100/24",),
    **overrides: Any,
) -> VrrpInstance:
    """A VrrpInstance; ``primary`` becomes ``mcast_src_ip`` (the address used in ties).

    ``advert_int`` is in seconds (converted to centiseconds); ``preempt=False`` means
    ``nopreempt``; the family follows the first VIP. Any other model field can be passed as
    a keyword (``preempt_delay_s=5.0``, ``track_interfaces=(...)``, ...).
    """
    addresses = tuple(vip(a) for a in vips)
    family = addresses[0].family if addresses else 4
    src = ipaddress.ip_address(primary) if primary is not None else None
    cfg = VrrpInstance(
        name=name,
        vrid=vrid,
        interface=interface,
        initial_state=InitialState(state),
        priority=priority,
        advert_int_cs=round(advert_int * 100),
        version=3 if family == 6 else version,
        family=family,
        virtual_addresses=addresses,
        mcast_src_ip=src,
        nopreempt=not preempt,
    )
    return dataclasses.replace(cfg, **overrides) if overrides else cfg
