"""Typed model of the LVS side: virtual_server_group, virtual_server, real_server, checkers.

Spec §9. Parsed and validated by the configuration layer; the load balancer that acts on it
is a later stage. Same conventions as :mod:`pykad.config.model`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class LvsConfig:
    """Everything the checker process would run. Filled in by the LVS lowering."""

    virtual_server_groups: tuple[object, ...] = ()
    virtual_servers: tuple[object, ...] = ()
