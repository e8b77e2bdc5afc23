"""Golden diagnostics: each ``tests/golden/diagnostics/*.conf`` -> the exact ``.stderr`` text.

The text is what ``pykad --check-config -f NAME`` writes, produced through the same
``load`` + ``render`` path the CLI uses, run from the golden directory with a fixed interface
list (so the result does not depend on the host). Regenerate after a deliberate change with
``PYKAD_REGEN_GOLDEN=1 .venv/bin/pytest tests/golden/test_golden_diagnostics.py`` and review
the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pykad.config.diagnostics import render
from pykad.config.load import exit_code_for, load

HERE = Path(__file__).parent / "diagnostics"
CASES = sorted(p.name for p in HERE.glob("*.conf"))
INTERFACES = frozenset({"lo", "eth0", "eth1"})


@pytest.mark.parametrize("name", CASES)
def test_golden_stderr(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    result = load(name, interfaces=INTERFACES, config_id="golden")
    got = render(result.diagnostics, result.lines)
    golden = HERE / name.replace(".conf", ".stderr")
    if os.environ.get("PYKAD_REGEN_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text()
    # every golden case is a broken configuration: it must fail the check
    assert exit_code_for(result.diagnostics, strict=True) != 0


def test_every_case_has_a_golden_file() -> None:
    assert CASES
    for name in CASES:
        assert (HERE / name.replace(".conf", ".stderr")).exists(), name
