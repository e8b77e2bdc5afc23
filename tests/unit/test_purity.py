"""The sans-IO core (pykad.fsm, pykad.proto) must not import I/O or clock modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pykad

FORBIDDEN = {"asyncio", "socket", "time", "random", "subprocess", "pyroute2", "scapy", "select"}
ROOT = Path(pykad.__file__).parent
CORE_FILES = sorted([*(ROOT / "fsm").rglob("*.py"), *(ROOT / "proto").rglob("*.py")])


def imported_top_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_files_exist() -> None:
    assert len(CORE_FILES) >= 4


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_is_pure(path: Path) -> None:
    assert imported_top_modules(path) & FORBIDDEN == set()


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom asyncio import sleep\n")
    assert imported_top_modules(bad) == {"time", "asyncio"}
