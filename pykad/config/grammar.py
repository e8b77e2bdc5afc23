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
    "tokenize",
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
    return tok.streamline()


_TOKEN = _token_grammar()
_WORD_RE = re.compile(r"[^ \t\v\f\r\n]+")


@dataclass(slots=True)
class _Token:
    text: str
    col: int  # 1-based physical column
    kind: str  # "word" | "quoted" | "{" | "}"
    start: int  # offset in the logical line text (quote included for quoted)
    end: int


@dataclass(slots=True)
class TokenizedLine:
    line: LogicalLine
    tokens: list[_Token] = field(default_factory=list)


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


def tokenize(
    lines: Sequence[LogicalLine],
) -> tuple[list[TokenizedLine], list[Diagnostic]]:
    """Tokenise every logical line (§1.2).

    Identical line texts (``}``, ``weight 1``, ...) are lexed once: the distinct texts go
    through one pyparsing scan, and each line maps the offsets to its own columns.
    """
    diags: list[Diagnostic] = []
    out = [TokenizedLine(ln) for ln in lines]
    distinct: dict[str, int] = {}
    for ln in lines:
        distinct.setdefault(ln.text, len(distinct))
    lexed = _lex(list(distinct))
    for tl in out:
        ln = tl.line
        lexemes, unmatched = lexed[distinct[ln.text]]
        tl.tokens = [_Token(t, ln.col(a), kind, a, b) for t, kind, a, b in lexemes]
        if unmatched is not None:
            diags.append(
                error(
                    ln.loc(unmatched),
                    f"Unmatched quote: '{ln.text}'",
                    hint="add the closing '\"'",
                )
            )
    return out, diags


@dataclass(slots=True)
class _Frame:
    opener: _Item | None  # None for an orphan '{' (no keyword before it)
    brace_loc: SourceLoc
    children: list[_Item | Block] = field(default_factory=list)


@dataclass(slots=True)
class _Item:
    """A line segment between braces, not yet turned into a Block."""

    tokens: list[_Token]
    line: LogicalLine
    raw: str


def _block(item: _Item, children: tuple[Block, ...] | None, src: str) -> Block:
    toks = item.tokens
    return Block(
        keyword=toks[0].text,
        args=tuple(t.text for t in toks[1:]),
        loc=SourceLoc(item.line.file, item.line.line, toks[0].col),
        arg_locs=tuple(SourceLoc(item.line.file, item.line.line, t.col) for t in toks[1:]),
        raw=item.raw,
        children=children,
        source_line=src,
    )


def parse_lines(
    lines: Sequence[LogicalLine], physical: Mapping[str, Sequence[str]]
) -> tuple[tuple[Block, ...], list[Diagnostic]]:
    """Build the Block tree from logical lines; ``physical`` supplies caret source lines."""
    tokenized, diags = tokenize(lines)

    def src_of(ln: LogicalLine) -> str:
        pl = physical.get(ln.file)
        if pl is not None and 0 < ln.line <= len(pl):
            return pl[ln.line - 1]
        return ln.text

    root = _Frame(None, SourceLoc("<root>", 0))
    stack: list[_Frame] = [root]
    prev_was_line = False

    def finish(item: _Item | Block) -> Block:
        if isinstance(item, Block):
            return item
        return _block(item, None, src_of(item.line))

    def close(frame: _Frame) -> None:
        children = tuple(finish(c) for c in frame.children)
        parent = stack[-1]
        if frame.opener is None:
            parent.children.extend(children)  # orphan '{': keep its contents at this level
        else:
            parent.children.append(_block(frame.opener, children, src_of(frame.opener.line)))

    for tl in tokenized:
        ln = tl.line
        seg: list[_Token] = []
        toks = tl.tokens
        for i, tok in enumerate([*toks, None]):
            if tok is None or tok.kind in "{}":
                if seg:
                    raw = ln.text[seg[0].start : seg[-1].end]
                    stack[-1].children.append(_Item(seg, ln, raw))
                    prev_was_line = True
                    seg = []
                if tok is None:
                    break
                loc = ln.loc(tok.start)
                if tok.kind == "{":
                    top = stack[-1]
                    last = top.children[-1] if top.children else None
                    if prev_was_line and isinstance(last, _Item):
                        top.children.pop()
                        stack.append(_Frame(last, loc))
                    else:
                        diags.append(
                            error(
                                loc,
                                "Unexpected '{' with no keyword before it",
                                source_line=src_of(ln),
                            )
                        )
                        stack.append(_Frame(None, loc))
                elif len(stack) == 1:
                    diags.append(
                        error(
                            loc,
                            "Extra '}' found",
                            hint="no block is open here; delete this '}'",
                            source_line=src_of(ln),
                        )
                    )
                else:
                    close(stack.pop())
                prev_was_line = False
                continue
            seg.append(toks[i])
    if len(stack) > 1:
        missing = len(stack) - 1
        first = next((f for f in stack[1:] if f.opener is not None), stack[1])
        what = (
            f"block '{first.opener.tokens[0].text}' opened here"
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
            close(stack.pop())
    blocks = tuple(finish(c) for c in root.children)
    return blocks, diags


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
