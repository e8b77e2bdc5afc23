"""Front end: load/load_text, exit codes (spec §1.10, README table), --dump-conf data."""

from __future__ import annotations

import enum
import gc
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pykad.config.diagnostics import SourceLoc, Status, error, warning
from pykad.config.dump import to_jsonable
from pykad.config.load import exit_code_for, host_interfaces, load, load_text
from pykad.errors import ExitCode

VALID = """\
global_defs {
    router_id lb1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.10/24
    }
}
"""


def test_valid_config_loads_without_diagnostics() -> None:
    r = load_text(VALID, "v.conf", interfaces={"eth0"})
    assert r.diagnostics == ()
    assert r.ok
    assert r.config is not None
    assert r.config.files == ("v.conf",)
    inst = r.config.instance("VI_1")
    assert (inst.vrid, inst.priority, inst.interface) == (51, 100, "eth0")
    assert exit_code_for(r.diagnostics, strict=True) is ExitCode.OK


def test_load_reads_a_file_and_checks_interfaces(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(VALID.replace("eth0", "pykadnone0"))
    r = load(str(conf), interfaces={"eth0"})
    bad_if = [d for d in r.diagnostics if d.status is Status.BAD_IF]
    assert bad_if
    assert bad_if[0].loc is not None
    assert bad_if[0].loc.file == str(conf)
    assert exit_code_for(r.diagnostics, strict=False) is ExitCode.CONFIG_FILE


def test_load_without_host_checks_is_pure(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(VALID.replace("eth0", "pykadnone0"))
    assert load(str(conf), check_host=False).diagnostics == ()


def test_host_interfaces_has_loopback() -> None:
    assert "lo" in host_interfaces()


def test_missing_file_is_an_error_with_exit_4(tmp_path: Path) -> None:
    r = load(str(tmp_path / "none.conf"))
    assert [d.status for d in r.diagnostics if d.is_error] == [Status.FILE_NOT_FOUND]
    assert exit_code_for(r.diagnostics, strict=False) is ExitCode.CONFIG_FILE


def test_diagnostics_are_sorted_by_position_across_stages() -> None:
    text = VALID.replace("priority 100", "priority 100 {").replace("router_id lb1", "routr x")
    r = load_text(text, "s.conf", interfaces={"eth0"})
    locs = [d.loc for d in r.diagnostics if d.loc is not None]
    assert locs == sorted(locs, key=lambda loc: (loc.line, loc.col))
    assert len(locs) >= 2


L = SourceLoc("f", 1, 1)


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([], ExitCode.OK),
        ([Status.GENERAL], ExitCode.CONFIG_TEST),
        ([Status.FILE_NOT_FOUND], ExitCode.CONFIG_FILE),
        ([Status.BAD_IF, Status.GENERAL], ExitCode.CONFIG_FILE),
        ([Status.GENERAL, Status.SECURITY], ExitCode.SECURITY),
        ([Status.INCLUDE_CHECK, Status.FILE_NOT_FOUND], ExitCode.SECURITY),
        ([Status.SECURITY, Status.MISSING_PARAMETER], ExitCode.MISSING_PARAMETER),
    ],
)
def test_exit_code_most_severe_class_wins(statuses: list[Status], code: ExitCode) -> None:
    diags = [error(L, "x", status=s) for s in statuses]
    assert exit_code_for(diags, strict=False) is code
    assert int(code) in (0, 2, 4, 5, 6)


def test_warnings_exit_0_unless_strict() -> None:
    diags = [warning(L, "w")]
    assert exit_code_for(diags, strict=False) is ExitCode.OK
    assert exit_code_for(diags, strict=True) is ExitCode.CONFIG_TEST
    assert int(ExitCode.CONFIG_TEST) == 5


class Colour(enum.StrEnum):
    RED = "red"


class Num(enum.IntEnum):
    ONE = 1


@dataclass(frozen=True)
class Inner:
    addr: ipaddress.IPv4Interface
    loc: SourceLoc


@dataclass(frozen=True)
class Outer:
    name: str
    colour: Colour
    num: Num
    inner: tuple[Inner, ...]
    tags: frozenset[str]
    extra: dict[str, float]
    blob: bytes
    path: Path
    nothing: None = None


def test_to_jsonable_shapes() -> None:
    obj = Outer(
        name="x",
        colour=Colour.RED,
        num=Num.ONE,
        inner=(Inner(ipaddress.IPv4Interface("192.0.2.1/24"), L),),
        tags=frozenset({"b", "a"}),
        extra={"k": 1.5},
        blob=b"\x01\xff",
        path=Path("/etc/keepalived"),
    )
    assert to_jsonable(obj) == {
        "name": "x",
        "colour": "red",
        "num": 1,
        "inner": [{"addr": "192.0.2.1/24"}],
        "tags": ["a", "b"],
        "extra": {"k": 1.5},
        "blob": "01ff",
        "path": "/etc/keepalived",
        "nothing": None,
    }


def test_dump_of_real_model_is_json_with_defaults() -> None:
    r = load_text(VALID, interfaces={"eth0"})
    data = to_jsonable(r.config)
    text = json.dumps(data)
    assert "SourceLoc" not in text
    assert isinstance(data, dict)
    (inst,) = data["vrrp_instances"]
    assert inst["name"] == "VI_1"
    assert inst["vrid"] == 51
    assert "loc" not in inst
    assert data["global_defs"]["vrrp_mcast_group4"] == "224.0.0.18"


def test_load_pauses_the_cyclic_gc_only_while_it_runs() -> None:
    # Thousands of lines allocate far more than gen 0's threshold: without the pause the
    # collector would run during the load.
    text = "".join(f"vrrp_script chk_{i} {{\n    script /bin/true\n}}\n" for i in range(2000))
    runs: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            runs.append(info["generation"])

    gc.collect()  # start from empty generations: the few allocations before the pause are free
    gc.callbacks.append(count)
    try:
        load_text(text)
    finally:
        gc.callbacks.remove(count)
    # at most one: the first allocation after the pause pays for the load's allocations
    assert len(runs) <= 1
    assert gc.isenabled()
    gc.disable()
    try:
        load_text("vrrp_instance VI_1 {\n")
        assert not gc.isenabled()  # a caller's choice is left alone
    finally:
        gc.enable()
