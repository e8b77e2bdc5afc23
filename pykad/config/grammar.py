"""Logical lines -> generic :class:`~pykad.config.tree.Block` tree (spec §1.1 step 5, §1.2).

Theory of operation: this is the only module that imports pyparsing, and no pyparsing object
leaves it. The token grammar (§1.2) is:

* a token that starts with ``"`` runs to the next ``"`` and loses its quotes (inner blanks
  kept); a missing closing quote is an "Unmatched quote" error;
* every unquoted ``{`` and ``}`` is a token of its own even when glued to a word (§1.1 step 5:
  ``global_defs {notification_email {root@localhost`` is five items);
* any other token ends at a blank, a ``"`` or a brace (``kw7"quoted"tail`` is three tokens).

For speed, the grammar matches a *run* of plain words (``priority 100``) as one pyparsing
token and splits it at blanks afterwards, which is exact because a plain run contains no quote
and no brace; the whole input is scanned in one pass, so the per-match cost of pyparsing is
paid roughly once per logical line rather than once per word.

Block structure: a line followed by ``{`` opens a block whose children run to the matching
``}``. Unbalanced braces are located errors; the tree is still built (an orphan ``{``'s
contents stay at the current level, unclosed blocks are closed at end of input) so that the
lowering can report everything else in the same run.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pyparsing as pp

from pykad.config import source
from pykad.config.diagnostics import Diagnostic, SourceLoc, Status, error
from pykad.config.source import LogicalLine
from pykad.config.tree import Block, ParseResult

__all__ = [
    "Block",
    "ParseResult",
    "parse_file",
    "parse_lines",
    "parse_text",
    "sort_diagnostics",
]

# keepalived's WHITE_SPACE; "\n" separates the logical lines we concatenate for one scan.
_WS = " \t\v\f\r\n"
_BLANK_CLASS = r"[ \t\v\f\r]"


def _token_grammar() -> pp.ParserElement:
    # One pyparsing element whose alternatives are the token classes of §1.2, tried in
    # order: a quoted string (closing quote optional, so that an unmatched quote is still a
    # located token), a brace, a run of plain words. One Regex element rather than a
    # MatchFirst of four keeps pyparsing from raising and catching an exception for every
    # alternative that fails, which was most of the cost on large configs.
    quoted = r'"[^"\n]*"?'
    brace = r"[{}]"
    # keepalived splits at C isspace() only, so e.g. U+00A0 is part of a word.
    word = r'[^ \t\v\f\r\n"{}]+'
    plain_run = f"{word}(?:{_BLANK_CLASS}+{word})*"
    tok = pp.Regex(f"{quoted}|{brace}|{plain_run}")
    tok.set_whitespace_chars(_WS, copy_defaults=False)
    # pyparsing expands tabs before scanning unless told not to: a tab inside a line
    # (``priority<TAB>100``) then shifted every later offset of the joined text, giving tokens
    # to the wrong lines and columns, and a quoted tab came back as spaces.
    tok.parse_with_tabs()
    return tok.streamline()


_TOKEN = _token_grammar()
_WORD_RE = re.compile(r"[^ \t\v\f\r\n]+")


# (text, kind, start, end) of one token, offsets within the logical line's text.
_Lexeme = tuple[str, str, int, int]


def _lex(texts: Sequence[str]) -> list[tuple[list[_Lexeme], int | None]]:
    """Lexemes of every text, plus the offset of an unmatched quote, in one pyparsing scan."""
    out: list[tuple[list[_Lexeme], int | None]] = [([], None) for _ in texts]
    starts: list[int] = []
    pos = 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + 1
    idx = 0
    n = len(texts)
    for toks, s, _e in _TOKEN.scan_string("\n".join(texts)):
        while idx + 1 < n and s >= starts[idx + 1]:
            idx += 1
        lexemes = out[idx][0]
        off = s - starts[idx]
        matched: str = toks[0]
        first = matched[0]
        if first == '"':
            if len(matched) > 1 and matched[-1] == '"':
                lexemes.append((matched[1:-1], "quoted", off, off + len(matched)))
                continue
            # Unmatched quote (§1.2). keepalived drops the rest of the line; pykad keeps it as
            # the token the user evidently meant, so that the one error is not followed by a
            # cascade of "missing parameter" errors.
            lexemes.append((matched[1:], "quoted", off, off + len(matched)))
            out[idx] = (lexemes, off)
        elif first in "{}":
            lexemes.append((matched, matched, off, off + 1))
        else:
            # a run of plain words: split at blanks (exact: a run has no quote or brace)
            for m in _WORD_RE.finditer(matched):
                j, k = m.span()
                lexemes.append((m.group(), "word", off + j, off + k))
    return out


def _distinct(lines: Sequence[LogicalLine]) -> tuple[list[int], list[str]]:
    """For each line the index of its text among the distinct texts, and those texts.

    Identical line texts (``}``, ``weight 1``, ...) are lexed once: about a third of the
    lines of a large configuration repeat an earlier one.
    """
    index: dict[str, int] = {}
    which = [index.setdefault(ln.text, len(index)) for ln in lines]
    return which, list(index)


# A logical line's text cut at its braces: a brace is ("{" or "}", offset), a line segment is
# (keyword, args, offsets of keyword and args, raw text of the segment). Everything here
# depends on the text only, so it is computed once per distinct text; only the locations
# depend on the line.
_Segment = tuple[str, tuple[str, ...], tuple[int, ...], str]
_Piece = tuple[str, int] | _Segment


def _pieces(text: str, lexemes: list[_Lexeme]) -> list[_Piece]:
    pieces: list[_Piece] = []
    seg: list[_Lexeme] = []
    for lexeme in [*lexemes, None]:
        if lexeme is not None and lexeme[1] not in "{}":
            seg.append(lexeme)
            continue
        if seg:
            pieces.append(
                (
                    seg[0][0],
                    tuple(t[0] for t in seg[1:]),
                    tuple(t[2] for t in seg),
                    text[seg[0][2] : seg[-1][3]],
                )
            )
            seg = []
        if lexeme is not None:
            pieces.append((lexeme[1], lexeme[2]))
    return pieces


@dataclass(slots=True)
class _Frame:
    opener: _Pending | None  # None for an orphan '{' (no keyword before it)
    brace_loc: SourceLoc
    children: list[Block] = field(default_factory=list)


# A line segment not yet turned into a Block: it becomes a plain line, or the opener of a
# block when the next token is '{'. (segment, its line, its caret source line)
_Pending = tuple[_Segment, LogicalLine, str]


def _block(pending: _Pending, children: tuple[Block, ...] | None) -> Block:
    (keyword, args, offsets, raw), ln, src = pending
    file, line = ln.file, ln.line
    if ln.colmap is None:
        col0 = ln.col0
        locs = [SourceLoc(file, line, col0 + o) for o in offsets]
    else:
        locs = [SourceLoc(file, line, ln.col(o)) for o in offsets]
    # positional: a third cheaper than keywords, for one Block per configuration line
    return Block(keyword, args, locs[0], tuple(locs[1:]), raw, children, src)


def parse_lines(
    lines: Sequence[LogicalLine], physical: Mapping[str, Sequence[str]]
) -> tuple[tuple[Block, ...], list[Diagnostic]]:
    """Build the Block tree from logical lines; ``physical`` supplies caret source lines."""
    which, texts = _distinct(lines)
    plans = [
        (_pieces(t, lexemes), unmatched)
        for t, (lexemes, unmatched) in zip(texts, _lex(texts), strict=True)
    ]
    quote_diags: list[Diagnostic] = []
    diags: list[Diagnostic] = []

    def src_of(ln: LogicalLine) -> str:
        pl = physical.get(ln.file)
        if pl is not None and 0 < ln.line <= len(pl):
            return pl[ln.line - 1]
        return ln.text

    root = _Frame(None, SourceLoc("<root>", 0))
    stack: list[_Frame] = [root]
    top = root
    # The last line segment, while it may still open a block (nothing but line breaks since).
    pending: _Pending | None = None

    for ln, w in zip(lines, which, strict=True):
        pieces, unmatched = plans[w]
        if unmatched is not None:
            quote_diags.append(
                error(
                    ln.loc(unmatched), f"Unmatched quote: '{ln.text}'", hint="add the closing '\"'"
                )
            )
        for piece in pieces:
            if len(piece) == 4:
                if pending is not None:
                    top.children.append(_block(pending, None))
                pending = (piece, ln, src_of(ln))
                continue
            if piece[0] == "{":
                loc = ln.loc(piece[1])
                stack.append(_Frame(pending, loc))
                if pending is None:
                    diags.append(
                        error(
                            loc,
                            "Unexpected '{' with no keyword before it",
                            source_line=src_of(ln),
                        )
                    )
                pending = None
                top = stack[-1]
                continue
            if pending is not None:
                top.children.append(_block(pending, None))
                pending = None
            if len(stack) == 1:
                diags.append(
                    error(
                        ln.loc(piece[1]),
                        "Extra '}' found",
                        hint="no block is open here; delete this '}'",
                        source_line=src_of(ln),
                    )
                )
            else:
                _close(stack)
                top = stack[-1]
    if pending is not None:
        top.children.append(_block(pending, None))
    if len(stack) > 1:
        missing = len(stack) - 1
        first = next((f for f in stack[1:] if f.opener is not None), stack[1])
        what = (
            f"block '{first.opener[0][0]}' opened here"
            if first.opener is not None
            else "the '{' here"
        )
        diags.append(
            error(
                first.brace_loc,
                f"{missing} missing '}}': {what} is never closed",
                status=Status.GENERAL,
            )
        )
        while len(stack) > 1:
            _close(stack)
    return tuple(root.children), [*quote_diags, *diags]


def _close(stack: list[_Frame]) -> None:
    """Pop the innermost frame into its parent: a Block, or an orphan '{''s contents."""
    frame = stack.pop()
    parent = stack[-1].children
    if frame.opener is None:
        parent.extend(frame.children)  # orphan '{': keep its contents at this level
    else:
        parent.append(_block(frame.opener, tuple(frame.children)))


def sort_diagnostics(diags: Iterable[Diagnostic], files: Sequence[str]) -> tuple[Diagnostic, ...]:
    """By file (in reading order), line and column; unlocated ones last; stable."""
    order = {f: i for i, f in enumerate(files)}

    def key(d: Diagnostic) -> tuple[int, int, int, int]:
        if d.loc is None:
            return (1, 0, 0, 0)
        return (0, order.get(d.loc.file, len(order)), d.loc.line, d.loc.col)

    return tuple(sorted(diags, key=key))


def _result(src: source.SourceResult) -> ParseResult:
    blocks, diags = parse_lines(src.lines, src.physical)
    all_diags = sort_diagnostics([*src.diagnostics, *diags], list(src.physical))
    return ParseResult(blocks=blocks, diagnostics=all_diags, lines=src.physical)


def parse_text(
    text: str,
    file: str = "<string>",
    *,
    base_dir: str | None = None,
    config_id: str | None = None,
    all_config: bool = False,
    rng: random.Random | None = None,
) -> ParseResult:
    """Parse configuration text; ``include`` paths resolve against ``base_dir`` (or cwd)."""
    return _result(
        source.read_text(
            text, file, base_dir=base_dir, config_id=config_id, all_config=all_config, rng=rng
        )
    )


def parse_file(
    path: str | os.PathLike[str],
    *,
    config_id: str | None = None,
    all_config: bool = False,
    rng: random.Random | None = None,
) -> ParseResult:
    """Read and parse a configuration file with its includes (names as given)."""
    return _result(
        source.read_file(os.fspath(path), config_id=config_id, all_config=all_config, rng=rng)
    )
