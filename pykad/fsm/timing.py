"""VRRP timer formulas: the only place they live (RFC 3768 §6.1, RFC 5798 §6.1, spec §5.1).

Intervals stay in centiseconds (the VRRPv3 wire unit; v2 intervals are whole seconds, i.e.
multiples of 100 cs) until these functions turn them into float seconds.

* Skew_Time: v2 ``(256 - p) / 256`` s, independent of the interval (RFC 3768 §6.1);
  v3 ``((256 - p) * Master_Adver_Interval) / 256`` (RFC 5798 §6.1).
* Master_Down_Interval: ``N * Master_Adver_Interval + Skew_Time`` where the RFCs fix N = 3
  and keepalived makes it configurable as ``down_timer_adverts`` (spec §3.4, §5.1).
* skew_min: the skew with ``(256 - p)`` replaced by 1 (keepalived's ``skew_min``, used when a
  sync-group member that wants MASTER starts in a BACKUP group, spec §5.2).

All results are exact binary fractions for whole-second v2 intervals (e.g. priority 100 gives
156/256 = 0.609375 s), which is what lets tests compare the fake clock with ``==``.
"""

from __future__ import annotations

import functools
from typing import Final

CS_PER_S: Final = 100


def _check(priority: int, master_adver_int_cs: int, version: int) -> None:
    # Our own misuse, never peer input: the decoder has already bounded these.
    if not 1 <= priority <= 255:
        raise ValueError(f"priority {priority} outside 1..255")
    if master_adver_int_cs <= 0:
        raise ValueError(f"advert interval {master_adver_int_cs} cs must be positive")
    if version not in (2, 3):
        raise ValueError(f"VRRP version {version} is not 2 or 3")


# Cached: pure functions of a few small integers, evaluated for every advert a backup
# accepts (its down timer restarts, RFC 5798 6.4.2 (395)); bench/scale.py at 255 instances.
@functools.lru_cache(maxsize=1024)
def skew_s(priority: int, master_adver_int_cs: int, version: int) -> float:
    """Skew_Time in seconds for our (effective) ``priority``."""
    _check(priority, master_adver_int_cs, version)
    if version == 2:
        return (256 - priority) / 256  # RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256
    # RFC 5798 §6.1: Skew_Time = ((256 - priority) * Master_Adver_Interval) / 256
    return (256 - priority) * master_adver_int_cs / (256 * CS_PER_S)


def skew_min_s(master_adver_int_cs: int, version: int) -> float:
    """keepalived's ``skew_min``: the skew for ``256 - p == 1`` (spec §5.1)."""
    return skew_s(255, master_adver_int_cs, version)


@functools.lru_cache(maxsize=1024)
def master_down_s(
    priority: int, master_adver_int_cs: int, version: int, down_timer_adverts: int = 3
) -> float:
    """Master_Down_Interval in seconds: ``N * M + skew`` (RFC 5798 §6.1, spec §5.1)."""
    if down_timer_adverts < 1:
        raise ValueError(f"down_timer_adverts {down_timer_adverts} must be >= 1")
    return down_timer_adverts * master_adver_int_cs / CS_PER_S + skew_s(
        priority, master_adver_int_cs, version
    )


def interval_s(adver_int_cs: int) -> float:
    """An advertisement interval in seconds."""
    return adver_int_cs / CS_PER_S
