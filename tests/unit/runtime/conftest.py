"""A virtual-time event loop: the driver's real asyncio code runs, no wall-clock time passes.

``loop.time()`` returns a virtual clock. When the loop would block waiting for its next timer
and no file descriptor is ready, the selector jumps the clock to that timer instead of
sleeping (the idea of the ``looptime`` plugin, in 30 lines). Waiting forever with nothing
scheduled is a deadlock in a test, so it raises.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Iterator

import pytest


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._vloop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("virtual-time loop would block forever: nothing is scheduled")
        self._vloop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self.now


@pytest.fixture
def vloop() -> Iterator[VirtualTimeLoop]:
    loop = VirtualTimeLoop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
