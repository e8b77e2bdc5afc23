"""Source layer: decomment, conditionals, definitions, ~SEQ/~LST, includes (spec §1.1, §1.4-1.7)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from pykad.config.diagnostics import Severity, SourceLoc, Status
from pykad.config.grammar import parse_file, parse_text
from pykad.config.source import decomment, read_text
from pykad.config.tree import Block


def flat(blocks: tuple[Block, ...]) -> list[str]:
    """Every line of the tree as 'keyword arg ...', depth-first, '{'/'}' marking blocks."""
    out: list[str] = []
    for b in blocks:
        out.append(" ".join((b.keyword, *b.args)))
        if b.children is not None:
            out.append("{")
            out.extend(flat(b.children))
            out.append("}")
    return out


def lines_of(text: str, **kw: object) -> list[str]:
    return [ln.text for ln in read_text(text, **kw).lines]  # type: ignore[arg-type]


# -- decomment (§1.1) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("physical", "text"),
    [
        ("  kw a  ", "kw a"),
        ("kw4 a#b", "kw4 a"),
        ("kw a!b", "kw a"),
        ('kw "a # b" # c', 'kw "a # b"'),
        ("kw a\\#b \\!c", "kw a#b !c"),
        ('kw "x\\#y"', 'kw "x\\#y"'),  # inside quotes the backslash stays
        ("kw 'a # b'", "kw 'a"),  # single quotes are not special here
        ("# only a comment", ""),
        ("kw a\r\n", "kw a"),
    ],
)
def test_decomment(physical: str, text: str) -> None:
    assert decomment(physical).text == text


def test_decomment_columns_and_flags() -> None:
    d = decomment("\t kw a\\#b \\")
    assert d.text == "kw a#b \\"
    assert d.col0 == 3
    assert d.colmap is not None
    assert d.colmap[d.text.index("#")] == 8  # the '#' itself, after the dropped backslash
    assert d.continued
    assert not decomment("kw a\\\\").continued


# -- conditionals (§1.4) --------------------------------------------------------------------


def test_conditionals_select_by_config_id() -> None:
    text = "@main router_id m\n@backup router_id b\n@^main peer x\n@^backup peer y\n@main\n"
    assert lines_of(text, config_id="main") == ["router_id m", "peer y"]
    assert lines_of(text, config_id="backup") == ["router_id b", "peer x"]
    assert lines_of(text, config_id="other") == ["peer x", "peer y"]


def test_conditional_keeps_columns() -> None:
    (ln,) = read_text("@main   priority 240\n", config_id="main").lines
    assert (ln.text, ln.col0) == ("priority 240", 9)


def test_default_config_id_is_nodename_before_first_dot() -> None:
    node = os.uname().nodename.split(".")[0]
    assert lines_of(f"@{node} kept\n@^{node} dropped\n") == ["kept"]


# -- definitions and substitution (§1.5) ----------------------------------------------------


def test_definitions_are_lazy_and_recursive() -> None:
    text = (
        "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n"
        "$ADDRESS_BASE_SUB=0\n"
        "${ADDRESS_BASE}.100/32\n"
        "$ADDRESS_BASE_SUB=10\n"
        "${ADDRESS_BASE}.100/32\n"
    )
    assert lines_of(text) == ["10.2.0.100/32", "10.2.10.100/32"]


def test_dollar_name_needs_a_terminator_and_undefined_stays() -> None:
    text = '$P=240\npriority $P\nx $P,1 ($P) $Pz ${P}z\nscript "kill -0 $PID $1"\n'
    assert lines_of(text) == [
        "priority 240",
        "x 240,1 (240) $Pz 240z",
        'script "kill -0 $PID $1"',
    ]


def test_substitution_then_conditional() -> None:
    text = "$IF_MAIN=@main\n$IF_MAIN priority 240\n"
    assert lines_of(text, config_id="main") == ["priority 240"]
    assert lines_of(text, config_id="backup") == []


def test_conditional_definition() -> None:
    text = "@main $PRIORITY=240\n@backup $PRIORITY=200\npriority $PRIORITY\n"
    assert lines_of(text, config_id="backup") == ["priority 200"]


def test_multiline_definition_expands_line_by_line() -> None:
    text = (
        "$INSTANCE= \\\n"
        "vrrp_instance VI_${NUM} { \\\n"
        "    @high priority 130 \\\n"
        "    @low priority 120 \\\n"
        "}\n"
        "$NUM=0\n"
        "$INSTANCE\n"
        "$NUM=1\n"
        "@low $INSTANCE\n"
    )
    r = parse_text(text, config_id="low")
    assert r.diagnostics == ()
    assert flat(r.blocks) == [
        "vrrp_instance VI_0", "{", "priority 120", "}",
        "vrrp_instance VI_1", "{", "priority 120", "}",
    ]  # fmt: skip
    # expanded lines point at the reference
    assert r.blocks[1].loc == SourceLoc("<string>", 9, 6)


def test_multiline_definition_ends_at_empty_line() -> None:
    assert lines_of("$B= \\\nfirst \\\n\nsecond\n$B\n") == ["second", "first"]


def test_builtins() -> None:
    text = "a ${_HASH} ${_BANG}x\nb ${_INSTANCE}\nc ${_RANDOM 3 5} ${_RANDOM}\nd ${_PWD}\n"
    out = lines_of(text, config_id="node1", rng=random.Random(7), base_dir="/etc/keepalived")
    assert out[0] == "a # !x"  # literal, never a comment (2.2.7 bug not copied)
    assert out[1] == "b node1"
    c = out[2].split()
    assert 3 <= int(c[1]) <= 5
    assert 0 <= int(c[2]) <= 32767
    assert out[3] == "d /etc/keepalived"


def test_random_is_reproducible_with_a_seeded_rng() -> None:
    text = "r ${_RANDOM 0 1000000}\n"
    assert lines_of(text, rng=random.Random(3)) == lines_of(text, rng=random.Random(3))


def test_user_definition_overrides_builtin() -> None:
    assert lines_of("$_INSTANCE=mine\nx ${_INSTANCE}\n", config_id="n") == ["x mine"]


def test_self_referencing_definition_is_an_error_not_a_hang() -> None:
    r = parse_text("$SELF=x $SELF\ny $SELF\n", "s.conf")
    (d,) = r.diagnostics
    assert d.is_error
    assert d.loc == SourceLoc("s.conf", 2, 3)
    r = parse_text("$M= \\\n$M\n$M\n", "m.conf")
    assert any("recursively" in d.message for d in r.diagnostics)


def test_substituted_text_points_at_reference() -> None:
    r = parse_text("$V=300\nvirtual_router_id $V\n", "v.conf")
    assert r.blocks[0].arg_locs == (SourceLoc("v.conf", 2, 19),)


# -- ~SEQ / ~LST (§1.6) ---------------------------------------------------------------------


def test_seq_forms() -> None:
    assert lines_of("~SEQ(S, 0, 3) ip 10.0.${S}.1\n") == [f"ip 10.0.{i}.1" for i in range(4)]
    assert lines_of("~SEQ(S, 3) n $S\n") == ["n 1", "n 2", "n 3"]
    assert lines_of("~SEQ(S, -2) n $S\n") == ["n -1", "n -2"]
    assert lines_of("~SEQ(S, 5, 3) n $S\n") == ["n 5", "n 4", "n 3"]
    assert lines_of("~SEQ(S, 1, 2, 6) n $S\n") == ["n 1", "n 3", "n 5"]
    assert lines_of("$E=6\n~SEQ(S, 010, $E) n $S\n") == ["n 8", "n 7", "n 6"]  # 010 is octal
    assert lines_of("~SEQx(S, 0x90, 0x10, 0xc0) fe80::${S}\n") == [
        "fe80::90", "fe80::a0", "fe80::b0", "fe80::c0",
    ]  # fmt: skip


def test_nested_seq_and_lst() -> None:
    assert lines_of("~SEQ(A, 1, 2) ~SEQ(B, 1, 2) v ${A}.$B\n") == [
        "v 1.1",
        "v 1.2",
        "v 2.1",
        "v 2.2",
    ]
    assert lines_of("~LST(X, a, b) v $X\n") == ["v a", "v b"]
    assert lines_of("~LST({a,b}, {1,2}, {3,4}) p $a $b\n") == ["p 1 2", "p 3 4"]


@pytest.mark.parametrize(
    "line",
    ["~SEQ(bad) x", "~SEQ(S, 1, 0, 5) x", "~SEQ(S, 1, -1, 5) x", "~SEQx(S, -3) x", "~LST(X) x",
     "~LST({a,b}, {1}) x", "~SEQ(S, 1, 1000000) x", "~SEQ(S, 1"],
)  # fmt: skip
def test_invalid_sequences_are_located_errors(line: str) -> None:
    r = parse_text(line + "\n", "q.conf")
    assert r.blocks == ()
    (d,) = r.diagnostics
    assert d.is_error
    assert d.loc == SourceLoc("q.conf", 1, 1)


# -- include (§1.7) -------------------------------------------------------------------------


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    main = write(tmp_path / "k" / "main.conf", "top 1\ninclude sub/*.conf\ntop 2\n")
    write(tmp_path / "k" / "sub" / "b.conf", "b 1\n")
    write(tmp_path / "k" / "sub" / "a.conf", "a 1\ninclude b.inc\n")
    write(tmp_path / "k" / "sub" / "b.inc", "binc 1\n")
    r = parse_file(main)
    assert r.diagnostics == ()
    assert flat(r.blocks) == ["top 1", "a 1", "binc 1", "b 1", "top 2"]
    # file names as globbed, valid from the cwd
    a = r.blocks[1]
    assert a.loc == SourceLoc(str(tmp_path / "k" / "sub" / "a.conf"), 1, 1)
    assert a.source_line == "a 1"


def test_include_braces_and_block_spanning_files(tmp_path: Path) -> None:
    main = write(tmp_path / "main.conf", "vrrp_instance X {\ninclude {one,two}.conf\n}\n")
    write(tmp_path / "one.conf", "priority 1\n")
    write(tmp_path / "two.conf", "state BACKUP\n")
    r = parse_file(main)
    assert r.diagnostics == ()
    assert flat(r.blocks) == ["vrrp_instance X", "{", "priority 1", "state BACKUP", "}"]


def test_relative_display_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "k" / "main.conf", "include sub/a.conf\n")
    write(tmp_path / "k" / "sub" / "a.conf", "oops {\n")
    monkeypatch.chdir(tmp_path)
    r = parse_file("k/main.conf")
    (d,) = r.diagnostics
    assert d.loc == SourceLoc("k/sub/a.conf", 1, 6)


def test_missing_plain_include_is_an_error_glob_is_a_warning(tmp_path: Path) -> None:
    main = write(tmp_path / "m.conf", "include missing.conf\ninclude none/*.conf\nok 1\n")
    r = parse_file(main)
    plain, globbed = r.diagnostics
    assert plain.is_error
    assert plain.status is Status.FILE_NOT_FOUND
    assert plain.loc == SourceLoc(str(main), 1, 9)
    assert globbed.severity is Severity.WARNING
    assert flat(r.blocks) == ["ok 1"]


@pytest.mark.parametrize("word", ["includew", "includea"])
def test_include_check_variants_make_empty_globs_errors(tmp_path: Path, word: str) -> None:
    main = write(tmp_path / "m.conf", f"{word} none/*.conf\n")
    (d,) = parse_file(main).diagnostics
    assert d.is_error
    assert d.status is Status.INCLUDE_CHECK


def test_include_check_keyword_and_restore(tmp_path: Path) -> None:
    main = write(
        tmp_path / "m.conf",
        "include sub.conf\ninclude x/*.conf\ninclude_check +wildcard_match\ninclude y/*.conf\n",
    )
    write(tmp_path / "sub.conf", "include_check\ninclude z/*.conf\n")
    diags = parse_file(main).diagnostics
    assert [(d.loc.line if d.loc else 0, d.severity, d.status) for d in diags] == [
        (2, Severity.WARNING, Status.OK),
        (4, Severity.ERROR, Status.INCLUDE_CHECK),
        (2, Severity.ERROR, Status.INCLUDE_CHECK),  # in sub.conf
    ]


def test_all_config_makes_missing_globs_errors(tmp_path: Path) -> None:
    main = write(tmp_path / "m.conf", "include none/*.conf\n")
    (d,) = parse_file(main, all_config=True).diagnostics
    assert d.status is Status.INCLUDE_CHECK


def test_include_loop_is_a_located_error(tmp_path: Path) -> None:
    main = write(tmp_path / "a.conf", "a 1\ninclude b.conf\n")
    write(tmp_path / "b.conf", "b 1\ninclude a.conf\n")
    r = parse_file(main)
    (d,) = r.diagnostics
    assert d.is_error
    assert d.status is Status.FILE_NOT_FOUND
    assert d.loc == SourceLoc(str(tmp_path / "b.conf"), 2, 9)
    assert "include loop" in d.message
    assert flat(r.blocks) == ["a 1", "b 1"]


def test_self_include_is_a_loop(tmp_path: Path) -> None:
    main = write(tmp_path / "a.conf", "include a.conf\n")
    (d,) = parse_file(main).diagnostics
    assert "include loop" in d.message


def test_same_file_twice_is_not_a_loop(tmp_path: Path) -> None:
    main = write(tmp_path / "a.conf", "include c.conf\ninclude c.conf\n")
    write(tmp_path / "c.conf", "c 1\n")
    r = parse_file(main)
    assert r.diagnostics == ()
    assert flat(r.blocks) == ["c 1", "c 1"]


def test_directory_as_include_target(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "g" / "sub").mkdir(parents=True)
    main = write(tmp_path / "m.conf", "include d\ninclude g/*\n")
    named, globbed = parse_file(main).diagnostics
    assert named.is_error
    assert named.status is Status.FILE_NOT_FOUND
    assert globbed.severity is Severity.WARNING
    assert "skipping" in globbed.message


def test_executable_glob_matches_are_skipped(tmp_path: Path) -> None:
    write(tmp_path / "s" / "a.conf", "a 1\n")
    write(tmp_path / "s" / "x.conf", "x 1\n", mode=0o755)
    main = write(tmp_path / "m.conf", "include s/*.conf\n")
    r = parse_file(main)
    assert flat(r.blocks) == ["a 1"]
    (d,) = r.diagnostics
    assert "not a regular non-executable file - skipping" in d.message


def test_missing_and_unusable_top_level_files(tmp_path: Path) -> None:
    for target in (tmp_path / "nope.conf", tmp_path):
        r = parse_file(target)
        (d,) = r.diagnostics
        assert d.is_error
        assert d.status is Status.FILE_NOT_FOUND
        assert str(target) in d.message
        assert r.blocks == ()


def test_unreadable_include(tmp_path: Path) -> None:
    # Reading /proc/self/mem from offset 0 fails with EIO even for root, which a mode-000
    # file would not (root reads it).
    main = write(tmp_path / "m.conf", "include /proc/self/mem\nincluder /proc/self/mem\n")
    plain, checked = parse_file(main).diagnostics
    assert plain.is_error
    assert plain.status is Status.FILE_NOT_FOUND
    assert "cannot read '/proc/self/mem'" in plain.message
    assert checked.status is Status.INCLUDE_CHECK


def test_dangling_symlink_include(tmp_path: Path) -> None:
    (tmp_path / "link.conf").symlink_to(tmp_path / "gone.conf")
    main = write(tmp_path / "m.conf", "include link.conf\n")
    (d,) = parse_file(main).diagnostics
    assert d.is_error
    assert d.status is Status.FILE_NOT_FOUND


def test_include_from_text_uses_base_dir(tmp_path: Path) -> None:
    write(tmp_path / "x.conf", "x 1\n")
    r = parse_text("include x.conf\n", base_dir=str(tmp_path))
    assert flat(r.blocks) == ["x 1"]


# -- bytes and sizes ------------------------------------------------------------------------


def test_non_utf8_is_kept_and_warned(tmp_path: Path) -> None:
    main = tmp_path / "m.conf"
    main.write_bytes(b"router_id caf\xe9\nnext 1\n")
    r = parse_file(main)
    (d,) = r.diagnostics
    assert d.severity is Severity.WARNING
    assert d.loc == SourceLoc(str(main), 1, 14)
    assert r.blocks[0].args == ("caf\udce9",)


def test_long_line_warns() -> None:
    r = parse_text("k " + "x" * 1100 + "\n", "l.conf")
    (d,) = r.diagnostics
    assert d.severity is Severity.WARNING
    assert "1023" in d.message


def test_crlf_and_no_final_newline() -> None:
    r = parse_text("a 1\r\nb 2")
    assert flat(r.blocks) == ["a 1", "b 2"]


def test_nul_byte_ends_the_line_with_an_error() -> None:
    r = parse_text("router_id a\0b c\nnext 1\n", "n.conf")
    (d,) = r.diagnostics
    assert d.is_error
    assert d.loc == SourceLoc("n.conf", 1, 12)
    assert flat(r.blocks) == ["router_id a", "next 1"]
