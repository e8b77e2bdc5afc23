"""Fixtures of the vm layer's inner tests (they run in the QEMU guest of test_vm.py).

``@pytest.mark.vm_inner`` tests need a kernel with IPVS; on the host they are skipped with a
pointer to the outer test that runs them. Helpers: :mod:`pykad.testing.lvs`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pykad.testing.keepalived import PykadFixture
from pykad.testing.lvs import Web
from pykad.testing.netns import Lab

IN_VM = os.environ.get("PYKAD_IN_VM") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if IN_VM:
        return
    skip = pytest.mark.skip(reason="runs inside the QEMU guest booted by tests/vm/test_vm.py")
    for item in items:
        if item.get_closest_marker("vm_inner") is not None:
            item.add_marker(skip)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Four routers (two directors, two real servers) and a client on one bridge."""
    with Lab(routers=4) as built:
        yield built


@pytest.fixture
def webs() -> Iterator[list[Web]]:
    made: list[Web] = []
    yield made
    for w in made:
        w.close()


@pytest.fixture
def directors() -> Iterator[list[PykadFixture]]:
    running: list[PykadFixture] = []
    yield running
    for d in running:
        d.close()
