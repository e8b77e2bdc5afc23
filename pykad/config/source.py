"""Reading keepalived.conf sources into logical lines that keep their provenance (spec §1.1).

Theory of operation: every physical line is decommented (``#``/``!`` outside double quotes,
``\\#``/``\\!`` escapes), then handed to the preprocessor which applies ``@id``/``@^id``
conditionals (§1.4), ``$NAME=value`` definitions and substitution (§1.5), ``~SEQ``/``~LST``
(§1.6) and ``include`` (§1.7). What comes out is a list of :class:`LogicalLine`: the text the
tokenizer in :mod:`pykad.config.grammar` sees, plus the file, line and a column for every
character, so that a diagnostic can point at the physical source.

This module is pure except for reading files: randomness (``${_RANDOM}``) is passed in and
the config id is an argument. It never imports pyparsing (that is ``grammar``'s job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pykad.config.diagnostics import Diagnostic, SourceLoc, warning

#: keepalived reads lines into a 1024-byte buffer (MAXBUF), terminator included.
MAXBUF = 1024
_BLANKS = " \t"


@dataclass(frozen=True, slots=True)
class LogicalLine:
    """One logical line after decommenting and substitution.

    ``col0`` is the 1-based column of ``text[0]`` in the physical line; ``colmap``, when set,
    gives the column of every character (used when escapes were removed or text was
    substituted, so columns no longer run contiguously).
    """

    text: str
    file: str
    line: int
    col0: int = 1
    colmap: tuple[int, ...] | None = None

    def col(self, i: int) -> int:
        """1-based physical column of ``text[i]``."""
        if self.colmap is not None:
            if not self.colmap:
                return self.col0
            return self.colmap[min(max(i, 0), len(self.colmap) - 1)]
        return self.col0 + i

    def loc(self, i: int = 0) -> SourceLoc:
        return SourceLoc(self.file, self.line, self.col(i))


@dataclass(frozen=True, slots=True)
class Decommented:
    """The result of :func:`decomment` for one physical line."""

    text: str  # cleaned text, leading/trailing blanks removed
    col0: int  # 1-based column of text[0]
    colmap: tuple[int, ...] | None  # set when an escape was removed
    continued: bool  # the line ended with a lone backslash (kept at the end of ``text``)
    unterminated_quote: bool


def decomment(physical: str) -> Decommented:
    """Strip comments and blanks from one physical line the way keepalived does (§1.1 step 2).

    ``"`` toggles quoting (single quotes are not special here); outside quotes ``\\#`` and
    ``\\!`` become a literal ``#``/``!``; any other ``\\X`` is skipped over untouched; the
    first unquoted ``#`` or ``!`` starts a comment, even in the middle of a word.
    """
    line = physical.rstrip("\r\n")
    start = 0
    n = len(line)
    while start < n and line[start] in _BLANKS:
        start += 1
    # Fast path: no special character at all (most lines of a real config).
    if not any(c in line for c in '#!"\\'):
        text = line[start:].rstrip(_BLANKS)
        return Decommented(text, start + 1, None, False, False)
    out: list[str] = []
    cols: list[int] = []
    escaped = False
    quote = False
    i = start
    while i < n:
        c = line[i]
        if c == '"':
            quote = not quote
        elif c == "\\" and i + 1 < n:
            nxt = line[i + 1]
            if not quote and nxt in "#!":
                # keepalived deletes the backslash and keeps the comment char literally
                out.append(nxt)
                cols.append(i + 2)
                escaped = True
                i += 2
                continue
            out.append(c)
            out.append(nxt)
            cols.append(i + 1)
            cols.append(i + 2)
            i += 2
            continue
        elif not quote and c in "#!":
            break
        out.append(c)
        cols.append(i + 1)
        i += 1
    while out and out[-1] in _BLANKS:
        out.pop()
        cols.pop()
    text = "".join(out)
    continued = text.endswith("\\") and not text.endswith("\\\\")
    colmap = tuple(cols) if escaped else None
    return Decommented(text, cols[0] if cols else start + 1, colmap, continued, quote)


@dataclass(frozen=True, slots=True)
class SourceResult:
    lines: tuple[LogicalLine, ...]
    diagnostics: tuple[Diagnostic, ...]
    physical: dict[str, Sequence[str]]


def read_text_basic(text: str, file: str = "<string>") -> SourceResult:
    """Decomment ``text`` into logical lines (no includes, conditionals or definitions)."""
    physical = text.splitlines()
    out: list[LogicalLine] = []
    diags: list[Diagnostic] = []
    for lineno, raw in enumerate(physical, 1):
        if len(raw.encode("utf-8", "surrogateescape")) >= MAXBUF:
            diags.append(
                warning(
                    SourceLoc(file, lineno, 0),
                    f"line is longer than {MAXBUF - 1} bytes; keepalived would split it",
                )
            )
        d = decomment(raw)
        # An unterminated quote is reported once, by the tokenizer, with its column.
        if d.text:
            out.append(LogicalLine(d.text, file, lineno, d.col0, d.colmap))
    return SourceResult(tuple(out), tuple(diags), {file: physical})
