"""The SIGUSR2 stats dump layout, byte-exact against keepalived 2.2.7 (spec §7.2)."""

from __future__ import annotations

from pykad.runtime.stats import KEEPALIVED_COUNTERS, InstanceStats, render_stats

# Written by Debian's keepalived 2.2.7 (SIGUSR2) for a fresh master that sent 2 adverts.
KEEPALIVED_STATS = """\
VRRP Instance: VI_1
  Advertisements:
    Received: 0
    Sent: 2
  Became master: 1
  Released master: 0
  Packet Errors:
    Length: 0
    TTL: 0
    Invalid Type: 0
    Advertisement Interval: 0
    Address List: 0
  Authentication Errors:
    Invalid Type: 0
    Type Mismatch: 0
    Failure: 0
  Priority Zero:
    Received: 0
    Sent: 0
"""


def test_layout_is_keepalived_byte_for_byte() -> None:
    stats = InstanceStats(advert_sent=2, become_master=1)
    assert render_stats([("VI_1", stats)]) == KEEPALIVED_STATS


def test_every_counter_lands_on_its_own_line() -> None:
    # a distinct value per counter (JSON order 1..14) so that a swapped line cannot pass
    stats = InstanceStats()
    for n, name in enumerate(KEEPALIVED_COUNTERS, start=1):
        stats.count(name, n)
    expected = """\
VRRP Instance: A
  Advertisements:
    Received: 1
    Sent: 2
  Became master: 3
  Released master: 4
  Packet Errors:
    Length: 5
    TTL: 7
    Invalid Type: 8
    Advertisement Interval: 6
    Address List: 9
  Authentication Errors:
    Invalid Type: 10
    Type Mismatch: 11
    Failure: 12
  Priority Zero:
    Received: 13
    Sent: 14
"""
    assert render_stats(
        [("A", stats), ("B", InstanceStats())]
    ) == expected + KEEPALIVED_STATS.replace("VI_1", "B").replace("Sent: 2", "Sent: 0").replace(
        "Became master: 1", "Became master: 0"
    )


def test_unnamed_discards_are_kept_apart_and_clear_zeroes_all() -> None:
    stats = InstanceStats()
    stats.count("ip_ttl_err")
    stats.count("checksum_err", 3)
    assert stats.ip_ttl_err == 1
    assert stats.as_dict()["checksum_err"] == 3
    assert list(stats.as_dict())[: len(KEEPALIVED_COUNTERS)] == list(KEEPALIVED_COUNTERS)
    stats.clear()
    assert stats.as_dict() == dict.fromkeys(KEEPALIVED_COUNTERS, 0)
