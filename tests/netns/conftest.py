"""Fixtures for the netns layer: a lab of namespaces and daemons started in it.

Every daemon is closed at teardown (SIGTERM by PID, then the lab kills what is left and deletes
its namespaces); the daemons' logs are printed then, so a failing test shows them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykad.testing.keepalived import StartDaemon, daemon_starter
from pykad.testing.netns import Lab


@pytest.fixture(autouse=True)
def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to build network namespaces")


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(routers=2) as lab:
        yield lab


@pytest.fixture
def lab3() -> Iterator[Lab]:
    with Lab(routers=3) as lab:
        yield lab


@pytest.fixture
def start(tmp_path: Path) -> Iterator[StartDaemon]:
    with daemon_starter(tmp_path) as start:
        yield start
