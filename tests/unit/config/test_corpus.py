"""Debian's keepalived sample configs: pykad never crashes on them, and where keepalived 2.2.7
``-t`` finds no error, pykad finds none either (issue 2, spec §1.10).

keepalived's verdict depends on which interfaces exist, so it runs inside a throwaway network
namespace holding dummy links with the names the samples use, and pykad is given the same
names. That part needs root (namespaces), hence the ``netns`` marker; the no-traceback part is
pure and runs everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykad.config.diagnostics import render
from pykad.config.load import exit_code_for, load

SAMPLES = Path("/usr/share/doc/keepalived/samples")
FILES = sorted(p for p in SAMPLES.glob("keepalived.conf*")) if SAMPLES.is_dir() else []
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
# Interface names used by the samples (plus lo, which always exists).
PAIRS = (("eth0", "eth1"), ("eth2", "eth3"), ("eth0.1", "h1peer"))
INTERFACES = frozenset({"lo", *(name for pair in PAIRS for name in pair)})

pytestmark = pytest.mark.skipif(
    not FILES, reason=f"{SAMPLES} is absent: install Debian's keepalived package"
)


def ids(p: Path) -> str:
    return p.name


@pytest.mark.parametrize("sample", FILES, ids=ids)
def test_pykad_never_crashes_on_samples(sample: Path) -> None:
    result = load(str(sample), interfaces=INTERFACES, config_id="corpus")
    render(result.diagnostics, result.lines)
    assert int(exit_code_for(result.diagnostics, strict=False)) in (0, 2, 4, 5, 6)


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace for keepalived -t")
    if not Path(KEEPALIVED).exists():
        pytest.skip("keepalived is not installed (apt-get install keepalived)")
    name = f"pykad-h1-corpus-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # veth pairs: this kernel has no dummy or vlan driver, and any link type will do
        for a, b in PAIRS:
            subprocess.run(
                ["ip", "-n", name, "link", "add", a, "type", "veth", "peer", "name", b],
                check=True,
            )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.netns
@pytest.mark.interop
@pytest.mark.parametrize("sample", FILES, ids=ids)
def test_no_error_where_keepalived_finds_none(netns: str, sample: Path) -> None:
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, KEEPALIVED, "-t", "-f", str(sample)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = load(str(sample), interfaces=INTERFACES, config_id="corpus")
    errors = [d for d in result.diagnostics if d.is_error]
    if proc.returncode == 0:
        assert not errors, render(errors, result.lines)
        assert exit_code_for(result.diagnostics, strict=False) == 0
    else:
        # keepalived found something; pykad must say something too (a warning at least)
        assert result.diagnostics, f"keepalived -t said:\n{proc.stderr}"
