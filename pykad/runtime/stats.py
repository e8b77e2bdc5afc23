"""Per-instance statistics, named after keepalived's ``vrrp_stats`` counters (spec §5.10, §7.2).

The receive path counts every discarded packet under its :class:`pykad.proto.errors.Discard`
value. The values keepalived has a counter for land in the named fields (and in the SIGUSR2
``.stats`` dump, whose layout is keepalived's byte for byte); the reasons keepalived only logs
(bad checksum, wrong version, ...) land in ``other`` and appear in the JSON dump only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from pykad.proto.errors import KEEPALIVED_COUNTER, Discard

# Counters that keepalived 2.2.7 keeps, in its JSON order (spec §7.2 keepalived.json "stats").
KEEPALIVED_COUNTERS = (
    "advert_rcvd",
    "advert_sent",
    "become_master",
    "release_master",
    "packet_len_err",
    "advert_interval_err",
    "ip_ttl_err",
    "invalid_type_rcvd",
    "addr_list_err",
    "invalid_authtype",
    "authtype_mismatch",
    "auth_failure",
    "pri_zero_rcvd",
    "pri_zero_sent",
)


@dataclass(slots=True)
class InstanceStats:
    advert_rcvd: int = 0
    advert_sent: int = 0
    become_master: int = 0
    release_master: int = 0
    packet_len_err: int = 0
    advert_interval_err: int = 0
    ip_ttl_err: int = 0
    invalid_type_rcvd: int = 0
    addr_list_err: int = 0
    invalid_authtype: int = 0
    authtype_mismatch: int = 0
    auth_failure: int = 0
    pri_zero_rcvd: int = 0
    pri_zero_sent: int = 0
    # pykad-only: discard reasons keepalived logs without counting, and adapter failures
    other: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` (a Discard value or a keepalived counter name)."""
        if name in KEEPALIVED_COUNTERS:
            setattr(self, name, getattr(self, name) + n)
        else:
            self.other[name] = self.other.get(name, 0) + n

    def clear(self) -> None:
        """Zero every counter (keepalived's STATS_CLEAR signal, SIGRTMAX-1)."""
        for f in fields(self):
            if f.name != "other":
                setattr(self, f.name, 0)
        self.other.clear()

    def as_dict(self) -> dict[str, int]:
        """keepalived's JSON ``stats`` object, then pykad's extra counters (sorted)."""
        out = {name: int(getattr(self, name)) for name in KEEPALIVED_COUNTERS}
        out.update(sorted(self.other.items()))
        return out


def discards_by_reason(stats: InstanceStats) -> dict[str, int]:
    """Discarded packets per :class:`Discard` reason, every reason listed (0 included).

    The reasons partition the discards: keepalived's ``addr_list_err`` also counts what pykad
    calls ``dst_mismatch`` (the driver increments both), so it is taken out here."""
    counts = stats.as_dict()
    out = {reason.value: counts.get(reason.value, 0) for reason in Discard}
    for reason, counter in KEEPALIVED_COUNTER.items():
        if counter is not None and counter != reason.value:
            out[counter] -= out[reason.value]
    return out


def render_stats(instances: Iterable[tuple[str, InstanceStats]]) -> str:
    """The SIGUSR2 ``keepalived.stats`` text, exactly as keepalived 2.2.7 writes it."""
    out: list[str] = []
    for name, s in instances:
        out += [
            f"VRRP Instance: {name}",
            "  Advertisements:",
            f"    Received: {s.advert_rcvd}",
            f"    Sent: {s.advert_sent}",
            f"  Became master: {s.become_master}",
            f"  Released master: {s.release_master}",
            "  Packet Errors:",
            f"    Length: {s.packet_len_err}",
            f"    TTL: {s.ip_ttl_err}",
            f"    Invalid Type: {s.invalid_type_rcvd}",
            f"    Advertisement Interval: {s.advert_interval_err}",
            f"    Address List: {s.addr_list_err}",
            "  Authentication Errors:",
            f"    Invalid Type: {s.invalid_authtype}",
            f"    Type Mismatch: {s.authtype_mismatch}",
            f"    Failure: {s.auth_failure}",
            "  Priority Zero:",
            f"    Received: {s.pri_zero_rcvd}",
            f"    Sent: {s.pri_zero_sent}",
        ]
    return "".join(line + "\n" for line in out)
