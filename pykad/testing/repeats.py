"""The promise of :meth:`pykad.fsm.machine.VrrpMachine.absorbs_repeats`, as a test check.

A copy of the advert handled at a later time ``at`` returns no effect and changes nothing in
the machine but the master-down deadline, which becomes ``at`` + the down interval. Used by
tests/unit/fsm/test_repeats.py and tests/property/test_absorbed_repeats.py.
"""

from __future__ import annotations

import copy
from typing import Any

from pykad.fsm import timing
from pykad.fsm.events import AdvertReceived
from pykad.fsm.machine import VrrpMachine


def check_repeat(machine: VrrpMachine, adv: AdvertReceived, at: float) -> None:
    """Assert the promise for ``adv`` handled at ``at`` (on a copy: ``machine`` is kept)."""
    copied = copy.deepcopy(machine)
    before = _snapshot(copied)
    assert copied.handle(adv, at) == []
    assert _snapshot(copied) == before
    down = timing.master_down_s(
        copied.effective_priority,
        copied.master_adver_int_cs,
        copied.cfg.version,
        copied.cfg.down_timer_adverts,
    )
    assert copied.next_deadline() == at + down


def _snapshot(machine: VrrpMachine) -> dict[str, Any]:
    """Everything the machine holds, nested objects included, but the master-down deadline."""
    return {k: _plain(v) for k, v in vars(machine).items() if k != "_master_down_at"}


def _plain(value: Any) -> Any:
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: _plain(v) for k, v in vars(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
