"""Tokenizer and Block-tree tests (spec §1.1 step 5, §1.2, §10 item 1)."""

from __future__ import annotations

from pykad.config.diagnostics import SourceLoc, render
from pykad.config.grammar import parse_text
from pykad.config.tree import Block


def shape(blocks: tuple[Block, ...]) -> list[object]:
    """Blocks as nested (keyword, args[, children]) tuples for compact assertions."""
    out: list[object] = []
    for b in blocks:
        if b.children is None:
            out.append((b.keyword, *b.args))
        else:
            out.append(((b.keyword, *b.args), shape(b.children)))
    return out


def test_glued_braces_are_tokens_of_their_own() -> None:
    r = parse_text("global_defs {notification_email {root@localhost\n}\n}\n")
    assert r.diagnostics == ()
    assert shape(r.blocks) == [
        (("global_defs",), [(("notification_email",), [("root@localhost",)])])
    ]


def test_braces_split_lines_anywhere() -> None:
    r = parse_text("vrrp_instance VI_1{\n state MASTER}\nvirtual_ipaddress { 192.0.2.1 }\n")
    assert r.diagnostics == ()
    assert shape(r.blocks) == [
        (("vrrp_instance", "VI_1"), [("state", "MASTER")]),
        (("virtual_ipaddress",), [("192.0.2.1",)]),
    ]


def test_brace_on_next_line_opens_the_block() -> None:
    r = parse_text("vrrp_instance VI_1\n{\n  priority 100\n}\n")
    assert r.diagnostics == ()
    assert shape(r.blocks) == [(("vrrp_instance", "VI_1"), [("priority", "100")])]


def test_quoted_token_keeps_blanks_and_ends_unquoted_token() -> None:
    r = parse_text('router_id "my router"\nkw7"quoted"tail\nempty ""\n')
    assert shape(r.blocks) == [
        ("router_id", "my router"),
        ("kw7", "quoted", "tail"),
        ("empty", ""),
    ]


def test_quoted_braces_do_not_split() -> None:
    r = parse_text("script \"awk '{print $1}'\"\n")
    assert r.diagnostics == ()
    assert shape(r.blocks) == [("script", "awk '{print $1}'")]


def test_comments_anywhere_outside_quotes() -> None:
    r = parse_text('kw1 a # c\nkw2 a!b\nkw3 "a # b" ! c\nkw4 a\\#b \\!x\n# whole\n! whole\n')
    assert shape(r.blocks) == [("kw1", "a"), ("kw2", "a"), ("kw3", "a # b"), ("kw4", "a#b", "!x")]


def test_locations_raw_and_source_line() -> None:
    text = "vrrp_instance VI_1 {\n\tnotify_master \"/bin/s.sh 'a b'\" root  # c\n}\n"
    r = parse_text(text, "k.conf")
    inst = r.blocks[0]
    assert inst.loc == SourceLoc("k.conf", 1, 1)
    assert inst.arg_locs == (SourceLoc("k.conf", 1, 15),)
    assert inst.children is not None
    notify = inst.children[0]
    assert notify.loc == SourceLoc("k.conf", 2, 2)
    assert notify.arg_locs == (SourceLoc("k.conf", 2, 16), SourceLoc("k.conf", 2, 34))
    assert notify.raw == "notify_master \"/bin/s.sh 'a b'\" root"
    assert notify.source_line == "\tnotify_master \"/bin/s.sh 'a b'\" root  # c"
    assert r.lines["k.conf"][1] == notify.source_line


def test_tabs_inside_lines_keep_tokens_on_their_lines() -> None:
    # Regression: pyparsing expanded tabs before scanning, so each tab inside a line shifted
    # the offsets of the joined text and tokens drifted to later lines.
    text = "".join(f"\t\tk{i}\tv{i}\n" for i in range(12)) + 'quoted "a\tb"\n'
    r = parse_text(text, "t.conf")
    assert r.diagnostics == ()
    assert shape(r.blocks) == [*((f"k{i}", f"v{i}") for i in range(12)), ("quoted", "a\tb")]
    assert [(b.loc, b.arg_locs) for b in r.blocks[:12]] == [
        (SourceLoc("t.conf", i + 1, 3), (SourceLoc("t.conf", i + 1, 6 if i < 10 else 7),))
        for i in range(12)
    ]


def test_raw_is_the_segment_between_braces() -> None:
    r = parse_text('vrrp_script chk { script "/bin/true x" }\n')
    (blk,) = r.blocks
    assert blk.children is not None
    assert blk.children[0].raw == 'script "/bin/true x"'


def test_extra_closing_brace_is_located() -> None:
    r = parse_text("a {\n}\n}\n", "x.conf")
    assert [(d.loc, d.message) for d in r.diagnostics] == [
        (SourceLoc("x.conf", 3, 1), "Extra '}' found")
    ]
    assert shape(r.blocks) == [(("a",), [])]


def test_missing_closing_brace_is_located_and_tree_still_built() -> None:
    r = parse_text("a {\n  b {\n    c 1\n", "x.conf")
    assert len(r.diagnostics) == 1
    d = r.diagnostics[0]
    assert d.is_error
    assert d.loc == SourceLoc("x.conf", 1, 3)
    assert d.message == "2 missing '}': block 'a' opened here is never closed"
    assert shape(r.blocks) == [(("a",), [(("b",), [("c", "1")])])]


def test_brace_without_keyword_is_an_error() -> None:
    r = parse_text("a {\n}\n{\n  b 1\n}\n", "x.conf")
    assert [(d.loc, d.message) for d in r.diagnostics] == [
        (SourceLoc("x.conf", 3, 1), "Unexpected '{' with no keyword before it")
    ]
    assert shape(r.blocks) == [(("a",), []), ("b", "1")]


def test_unmatched_quote_is_located() -> None:
    r = parse_text('ok 1\nfoo "unterminated\n', "q.conf")
    assert render(r.diagnostics, r.lines) == (
        "q.conf:2:5: error: Unmatched quote: 'foo \"unterminated'\n"
        '    foo "unterminated\n'
        "        ^\n"
        "  hint: add the closing '\"'\n"
    )
    assert shape(r.blocks) == [("ok", "1"), ("foo", "unterminated")]


def test_empty_and_comment_only_inputs() -> None:
    assert parse_text("").blocks == ()
    assert parse_text("\n\n   # nothing\n").blocks == ()


def test_backslash_is_not_a_continuation_for_keyword_lines() -> None:
    r = parse_text("kw1 a \\\nkw2 b\n")
    assert shape(r.blocks) == [("kw1", "a", "\\"), ("kw2", "b")]


def test_only_c_blanks_separate_tokens() -> None:
    # keepalived splits at C isspace(); U+00A0 and U+2003 are part of the word, not dropped
    r = parse_text("router_id a\u00a0b \u2003x\n")
    assert shape(r.blocks) == [("router_id", "a\u00a0b", "\u2003x")]
