"""Mutated configurations never crash the front end and broken ones are reported (issue 2).

Hypothesis takes valid configurations and breaks them: deleted or doubled braces, truncated
lines, random bytes, non-UTF-8, huge numbers, include loops, a directory as include target.
The real ``load()`` and ``exit_code_for`` run on the result (and a few through the CLI).
Always: no exception escapes, rendering works. For mutations that are certainly invalid: at
least one located error and a non-zero exit status.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pykad.cli import cli
from pykad.config.diagnostics import render
from pykad.config.load import LoadResult, exit_code_for, load

INTERFACES = frozenset({"eth0", "eth1"})

BASES = [
    """\
global_defs {
    router_id lb1
    enable_script_security
    script_user root
}
vrrp_script chk_nginx {
    script "/usr/bin/pgrep -x nginx"
    interval 1
    weight -30
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret1
    }
    virtual_ipaddress {
        192.0.2.10/24 dev eth0 label eth0:1
    }
    track_script {
        chk_nginx
    }
}
""",
    """\
vrrp_instance VI_6 {
    interface eth1
    virtual_router_id 7
    priority 100
    unicast_peer {
        2001:db8::2
    }
    virtual_ipaddress {
        2001:db8::10/64
    }
}
virtual_server 198.51.100.10 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 203.0.113.1 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
            retry 3
            delay_before_retry 3
        }
    }
}
""",
]


def check(result: LoadResult) -> int:
    """Invariants for every input; returns the exit status."""
    text = render(result.diagnostics, result.lines)
    text.encode("utf-8", "backslashreplace")  # what stderr does with undecodable bytes
    for d in result.diagnostics:
        if d.loc is not None:
            assert d.loc.line >= 0
            assert d.loc.col >= 0
    return int(exit_code_for(result.diagnostics, strict=False))


def load_text_file(data: bytes, name: str = "keepalived.conf") -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="pykad-mut-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return load(str(path), interfaces=INTERFACES, config_id="node")


def assert_located_failure(result: LoadResult) -> None:
    code = check(result)
    assert code != 0, render(result.diagnostics, result.lines)
    assert any(d.is_error and d.loc is not None for d in result.diagnostics)


def test_bases_are_valid() -> None:
    for base in BASES:
        result = load_text_file(base.encode())
        assert check(result) == 0, render(result.diagnostics, result.lines)
        assert not [d for d in result.diagnostics if d.is_error]


bases = st.sampled_from(BASES)


@given(base=bases, data=st.data())
def test_deleted_brace(base: str, data: st.DataObject) -> None:
    positions = [i for i, c in enumerate(base) if c in "{}"]
    i = data.draw(st.sampled_from(positions))
    assert_located_failure(load_text_file((base[:i] + base[i + 1 :]).encode()))


@given(base=bases, data=st.data())
def test_doubled_brace(base: str, data: st.DataObject) -> None:
    positions = [i for i, c in enumerate(base) if c in "{}"]
    i = data.draw(st.sampled_from(positions))
    assert_located_failure(load_text_file((base[: i + 1] + base[i:]).encode()))


@given(base=bases, data=st.data())
def test_huge_number(base: str, data: st.DataObject) -> None:
    numbers = [m.span() for m in re.finditer(r"(?<=virtual_router_id )\d+|(?<=priority )\d+", base)]
    start, end = data.draw(st.sampled_from(numbers))
    huge = str(data.draw(st.integers(min_value=2**31, max_value=10**40)))
    assert_located_failure(load_text_file((base[:start] + huge + base[end:]).encode()))


@given(base=bases, data=st.data())
def test_truncated_line(base: str, data: st.DataObject) -> None:
    lines = base.splitlines(keepends=True)
    n = data.draw(st.integers(0, len(lines) - 1))
    cut = data.draw(st.integers(0, len(lines[n])))
    lines[n] = lines[n][:cut] + "\n"
    check(load_text_file("".join(lines).encode()))


@given(base=bases, junk=st.binary(min_size=1, max_size=40), data=st.data())
def test_random_bytes(base: str, junk: bytes, data: st.DataObject) -> None:
    raw = base.encode()
    i = data.draw(st.integers(0, len(raw)))
    check(load_text_file(raw[:i] + junk + raw[i:]))


@given(base=bases, data=st.data())
def test_non_utf8_is_located(base: str, data: st.DataObject) -> None:
    raw = base.encode()
    i = data.draw(st.integers(0, len(raw)))
    bad = data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xe9t\xe9", b"\x80\x80"]))
    result = load_text_file(raw[:i] + bad + raw[i:])
    check(result)
    assert any(d.loc is not None and "UTF-8" in d.message for d in result.diagnostics)


@given(base=bases, data=st.data(), depth=st.integers(0, 3))
def test_include_loop(base: str, data: st.DataObject, depth: int) -> None:
    lines = base.splitlines(keepends=True)
    at = data.draw(st.integers(0, len(lines)))
    with tempfile.TemporaryDirectory(prefix="pykad-mut-") as tmp:
        d = Path(tmp)
        # main -> p0 -> ... -> p{depth-1} -> main
        chain = [f"part{k}.conf" for k in range(depth)]
        first = chain[0] if chain else "keepalived.conf"
        lines.insert(at, f"include {first}\n")
        (d / "keepalived.conf").write_text("".join(lines))
        for k, name in enumerate(chain):
            nxt = chain[k + 1] if k + 1 < len(chain) else "keepalived.conf"
            (d / name).write_text(f"include {nxt}\n")
        result = load(str(d / "keepalived.conf"), interfaces=INTERFACES)
        assert_located_failure(result)
        assert any("include loop" in x.message for x in result.diagnostics)


@given(base=bases, data=st.data())
def test_directory_as_include_target(base: str, data: st.DataObject) -> None:
    lines = base.splitlines(keepends=True)
    at = data.draw(st.integers(0, len(lines)))
    lines.insert(at, "include conf.d\n")
    with tempfile.TemporaryDirectory(prefix="pykad-mut-") as tmp:
        d = Path(tmp)
        (d / "conf.d").mkdir()
        (d / "keepalived.conf").write_text("".join(lines))
        assert_located_failure(load(str(d / "keepalived.conf"), interfaces=INTERFACES))


@settings(max_examples=15)
@given(base=bases, data=st.data())
def test_cli_never_tracebacks(base: str, data: st.DataObject) -> None:
    raw = base.encode()
    i = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.binary(max_size=8) | st.sampled_from([b"{", b"}", b"\n}", b'"']))
    with tempfile.TemporaryDirectory(prefix="pykad-mut-") as tmp:
        path = Path(tmp) / "k.conf"
        path.write_bytes(raw[:i] + junk + raw[i:])
        res = CliRunner().invoke(cli, ["--check-config", "-f", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code in (0, 2, 4, 5, 6)
    assert "Traceback" not in res.stderr
