"""The pure parts of the tracking runners: rise/fall, track file values, process quorum and
matching (spec §4.2-4.4). No processes, no sleeping: results and times are arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykad.config.model import TrackFile, TrackProcess
from pykad.runtime.tracking import (
    ProcessQuorum,
    RiseFall,
    count_processes,
    init_track_file,
    process_matches,
    read_track_file,
    strtol,
    track_file_value,
)

# ------------------------------------------------------------------------ rise / fall (§4.2)


def states(counter: RiseFall, results: str) -> list[bool | None]:
    """Feed 'o'/'x' results; the list of transitions reported (None = no change)."""
    return [counter.record(r == "o") for r in results]


def test_first_result_decides_the_initial_state() -> None:
    assert RiseFall(3, 3).up is None
    assert states(RiseFall(3, 3), "o") == [True]
    assert states(RiseFall(3, 3), "x") == [False]


def test_fall_consecutive_failures_take_an_ok_script_down() -> None:
    c = RiseFall(2, 3)
    assert states(c, "oxxoxxx") == [True, None, None, None, None, None, False]
    assert c.up is False


def test_rise_consecutive_successes_bring_a_failed_script_up() -> None:
    c = RiseFall(2, 3)
    assert states(c, "xoxooo") == [False, None, None, None, True, None]
    assert c.up is True


def test_init_fail_starts_failed_and_needs_rise_successes() -> None:
    c = RiseFall(2, 1, init_fail=True)
    assert c.up is False
    # no transition is reported for a failure of a script already failed
    assert states(c, "xoo") == [None, None, True]


def test_carried_state_survives_a_reload() -> None:
    assert RiseFall(2, 2, carried=True).up is True
    c = RiseFall(2, 2, carried=True)
    assert states(c, "xx") == [None, False]
    c = RiseFall(2, 2, carried=False)
    assert states(c, "oo") == [None, True]


@given(
    rise=st.integers(1, 5),
    fall=st.integers(1, 5),
    init_fail=st.booleans(),
    results=st.lists(st.booleans(), max_size=40),
)
def test_rise_fall_is_consecutive_counting(
    rise: int, fall: int, init_fail: bool, results: list[bool]
) -> None:
    """OK after `rise` successes in a row, FAILED after `fall` failures in a row (§4.2)."""
    c = RiseFall(rise, fall, init_fail=init_fail)
    up = c.up
    run_ok = run_fail = 0
    for i, ok in enumerate(results):
        run_ok, run_fail = (run_ok + 1, 0) if ok else (0, run_fail + 1)
        changed = c.record(ok)
        expected: bool | None
        if up is None:  # the very first result (no init_fail) decides: it starts at rise-1
            expected = ok
        elif up and not ok and run_fail >= fall:
            expected = False
        elif not up and ok and run_ok >= rise:
            expected = True
        else:
            expected = None
        assert changed == expected, (i, results)
        if changed is not None:
            up = changed
            run_ok = run_fail = 0
        assert c.up == up


# ------------------------------------------------------------------------ track files (§4.3)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"5\n", 5),
        (b"  -3 trailing", -3),
        (b"+7", 7),
        (b"0x10", 16),
        (b"0X1g", 1),
        (b"010", 8),  # octal, as C
        (b"08", 0),  # '8' is not octal: strtol stops after the 0
        (b"12abc", 12),
        (b"junk", 0),
        (b"0x", 0),
        (b"", 0),
        (b"-", 0),
    ],
)
def test_strtol_base_0(text: bytes, value: int) -> None:
    assert strtol(text) == (value, False)


def test_strtol_overflow_and_int_range() -> None:
    assert strtol(b"99999999999999999999")[1] is True
    assert track_file_value(b"99999999999999999999") is None  # "Invalid number" - ignored
    assert track_file_value(b"2147483648") is None  # does not fit a C int
    assert track_file_value(b"-2147483648") == -(2**31)
    assert track_file_value(b"") == 0


def test_read_track_file(tmp_path: Path) -> None:
    path = tmp_path / "track"
    assert read_track_file(str(path)) == 0  # missing
    path.write_text("")
    assert read_track_file(str(path)) == 0  # empty
    path.write_text(" 42\n" + "x" * 500)
    assert read_track_file(str(path)) == 42
    path.write_text("0" * 127 + "5")  # the 5 is beyond the 127 bytes read
    assert read_track_file(str(path)) == 0


def test_init_file_creates_or_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    create = TrackFile(name="tf", path=str(path), init_file=7)
    init_track_file(create, reload=False)
    assert path.read_text() == "7\n"
    path.write_text("3\n")
    init_track_file(create, reload=False)  # exists: not touched without overwrite
    assert path.read_text() == "3\n"
    overwrite = TrackFile(name="tf", path=str(path), init_file=9, init_file_overwrite=True)
    init_track_file(overwrite, reload=True)  # never over an existing file on reload
    assert path.read_text() == "3\n"
    init_track_file(overwrite, reload=False)
    assert path.read_text() == "9\n"
    init_track_file(TrackFile(name="tf", path=str(path)), reload=False)  # no init_file
    assert path.read_text() == "9\n"


# ------------------------------------------------------------------------ processes (§4.4)


def tp(**kw: object) -> TrackProcess:
    fields: dict[str, object] = {"name": "p", "process": "nginx", **kw}
    return TrackProcess(**fields)  # type: ignore[arg-type]


def test_quorum_range_and_quorum_max_zero() -> None:
    q = ProcessQuorum(tp(quorum=2, quorum_max=3), 0)
    assert [q.in_range(n) for n in range(5)] == [False, False, True, True, False]
    unlimited = ProcessQuorum(tp(), 0)
    assert [unlimited.in_range(n) for n in (0, 1, 1000)] == [False, True, True]
    absent = ProcessQuorum(tp(quorum_max=0), 0)  # "must not run"
    assert absent.up is True
    assert [absent.in_range(n) for n in (0, 1)] == [True, False]


def test_quorum_without_delays_follows_the_count() -> None:
    q = ProcessQuorum(tp(), 1)
    assert q.up is True
    assert q.observe(0, 1.0) is False
    assert q.observe(0, 2.0) is None
    assert q.observe(3, 3.0) is True


def pending(q: ProcessQuorum) -> float | None:
    return q.deadline


def test_terminate_delay_debounces_a_loss() -> None:
    q = ProcessQuorum(tp(terminate_delay_s=2.0, fork_delay_s=1.0), 1)
    assert q.observe(0, 10.0) is None
    assert pending(q) == 12.0
    assert q.observe(1, 11.0) is None  # back before the delay: nothing happened
    assert pending(q) is None
    assert q.observe(0, 20.0) is None
    assert q.observe(0, 21.9) is None
    assert q.observe(0, 22.0) is False
    # a gain waits fork_delay
    assert q.observe(2, 30.0) is None
    assert q.observe(2, 31.0) is True


def test_process_matching_by_comm_and_command_line() -> None:
    assert process_matches(tp(), "nginx", b"")
    assert not process_matches(tp(), "nginx-debug", b"")
    full = tp(process="/usr/sbin/nginx", full_command=True)
    assert process_matches(full, "nginx", b"/usr/sbin/nginx\0-g\0daemon off;\0")
    assert not process_matches(full, "nginx", b"nginx\0")
    args = ("-g", "daemon")
    exact = tp(process="/usr/sbin/nginx", full_command=True, args=args)
    partial = tp(process="/usr/sbin/nginx", full_command=True, args=args, param_match="partial")
    initial = tp(process="/usr/sbin/nginx", full_command=True, args=args, param_match="initial")
    line = b"/usr/sbin/nginx\0-g\0daemon off;\0"
    assert process_matches(exact, "", b"/usr/sbin/nginx\0-g\0daemon\0")
    assert not process_matches(exact, "", line)
    assert not process_matches(partial, "", line)
    assert process_matches(partial, "", b"/usr/sbin/nginx\0-g\0daemon\0-x\0")
    assert process_matches(initial, "", line)
    assert not process_matches(initial, "", b"/usr/sbin/nginx\0-G\0daemon\0")


def test_count_processes_reads_a_proc_tree(tmp_path: Path) -> None:
    def proc(pid: int, comm: str, state: str, cmdline: bytes) -> None:
        d = tmp_path / str(pid)
        d.mkdir()
        (d / "stat").write_bytes(f"{pid} ({comm}) {state} 1 2 3".encode())
        (d / "cmdline").write_bytes(cmdline)

    proc(10, "nginx", "S", b"/usr/sbin/nginx\0")
    proc(11, "nginx", "R", b"/usr/sbin/nginx\0")
    proc(12, "nginx", "Z", b"")  # zombies do not count
    proc(13, "odd) name", "S", b"x\0")  # comm with ')' is parsed from the last ')'
    (tmp_path / "self").mkdir()
    (tmp_path / "14").mkdir()  # vanished between listdir and open
    counts = count_processes(
        [
            tp(),
            TrackProcess(name="odd", process="odd) name"),
            TrackProcess(name="full", process="/usr/sbin/nginx", full_command=True),
        ],
        str(tmp_path),
    )
    assert counts == {"p": 2, "odd": 1, "full": 2}
    assert count_processes([tp()], str(tmp_path / "missing")) == {"p": 0}
