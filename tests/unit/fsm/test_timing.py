"""Skew and master-down formulas (RFC 3768 6.1, RFC 5798 6.1, spec §5.1)."""

from __future__ import annotations

import pytest

from pykad.fsm import timing


@pytest.mark.parametrize(
    ("priority", "adver_cs", "version", "skew"),
    [
        (100, 100, 2, 156 / 256),  # v2 ignores the interval
        (100, 500, 2, 156 / 256),
        (255, 100, 2, 1 / 256),
        (1, 100, 2, 255 / 256),
        (100, 100, 3, 156 / 256),  # v3 scales with M: 1 s
        (100, 50, 3, 156 * 0.5 / 256),
        (200, 400, 3, 56 * 4 / 256),
    ],
)
def test_skew(priority: int, adver_cs: int, version: int, skew: float) -> None:
    assert timing.skew_s(priority, adver_cs, version) == pytest.approx(skew, abs=1e-12)


def test_master_down_is_n_intervals_plus_skew() -> None:
    assert timing.master_down_s(100, 100, 2) == 3.609375  # spec §5.1 example
    assert timing.master_down_s(100, 200, 2, down_timer_adverts=5) == 10 + 156 / 256
    assert timing.master_down_s(200, 400, 3) == pytest.approx(12 + 56 * 4 / 256)


def test_skew_min() -> None:
    assert timing.skew_min_s(100, 2) == 1 / 256
    assert timing.skew_min_s(256, 3) == pytest.approx(0.01)


def test_interval() -> None:
    assert timing.interval_s(150) == 1.5


@pytest.mark.parametrize(
    ("priority", "adver_cs", "version"), [(0, 100, 2), (256, 100, 2), (100, 0, 3), (100, 100, 4)]
)
def test_misuse_raises(priority: int, adver_cs: int, version: int) -> None:
    with pytest.raises(ValueError):
        timing.skew_s(priority, adver_cs, version)


def test_down_timer_adverts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="down_timer_adverts"):
        timing.master_down_s(100, 100, 2, down_timer_adverts=0)
