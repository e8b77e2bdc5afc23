"""Reading keepalived.conf sources into logical lines that keep their provenance (spec §1.1).

Theory of operation: every physical line is decommented (``#``/``!`` outside double quotes,
``\\#``/``\\!`` escapes), then run through the preprocessor, in keepalived's order:

1. multi-line ``$NAME= \\`` definitions collect following lines (§1.5);
2. ``@id`` / ``@^id`` conditionals keep or drop the line (§1.4);
3. ``$NAME=value`` defines (stored unexpanded: substitution is lazy, §1.5);
4. ``~SEQ(...)`` / ``~SEQx(...)`` / ``~LST(...)`` repeat the rest of the line (§1.6);
5. ``$NAME`` / ``${NAME}`` / built-ins are substituted, recursively; the result goes back to
   step 2 (so ``$IF_MAIN=@main`` then ``$IF_MAIN priority 240`` works);
6. ``include*`` and ``include_check`` lines are executed here (§1.7) and never reach the
   grammar.

What comes out is a list of :class:`LogicalLine`: the text the tokenizer in
:mod:`pykad.config.grammar` sees, with the file, line and a column for every character, so a
diagnostic can point at the physical source (substituted text points at its ``$`` reference).

Where pykad deliberately differs from keepalived 2.2.7 (each is a bug or a silent failure
there): a missing top-level file, a missing non-glob include, an unreadable file, an include
loop and a directory named as an include target are located errors (keepalived exits 0 on
some of these); ``${_HASH}``/``${_BANG}`` always give a literal ``#``/``!`` (2.2.7 decomments
the substituted line again so they can start a comment); ``include`` produced by substitution
or a conditional is honoured once (2.2.7 reads it twice in its child processes).

This module is pure except for reading files: randomness (``${_RANDOM}``) comes from the
``rng`` argument and the config id is an argument. It never imports pyparsing.
"""

from __future__ import annotations

import glob
import os
import random
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pykad.config.diagnostics import Diagnostic, SourceLoc, Status, error, warning

#: keepalived reads lines into a 1024-byte buffer (MAXBUF), terminator included; expanded
#: lines are limited to the same size (§1.5).
MAXBUF = 1024
_BLANKS = " \t"
#: Expansion depth guard: nested multi-line definitions and ``~SEQ`` nesting beyond this are
#: surely a definition that refers to itself.
_MAX_DEPTH = 64
#: ``~SEQ``/``~LST`` output guard, so a typo in ``end`` cannot make pykad eat all memory.
MAX_SEQ_LINES = 100_000

INCLUDE_KEYWORDS: dict[str, frozenset[str]] = {
    # man keepalived.conf(5): each variant adds checks to the current include_check level;
    # match, wildcard_match and brace_match include the readable check.
    "include": frozenset(),
    "includer": frozenset({"readable"}),
    "includem": frozenset({"readable", "match"}),
    "includew": frozenset({"readable", "wildcard_match"}),
    "includeb": frozenset({"readable", "brace_match"}),
    "includea": frozenset({"readable", "match", "wildcard_match", "brace_match"}),
}
INCLUDE_CHECKS = INCLUDE_KEYWORDS["includea"]

_DEF_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)=[ \t]*(.*)\Z", re.DOTALL)
# ``$NAME`` followed by a blank, ',', ')' or end of line; ``${...}`` anywhere (§1.5).
_REF_RE = re.compile(r"\$(?:\{([^{}]*)\}|([A-Za-z_][A-Za-z0-9_]*)(?=[ \t,)]|\Z))")
_SEQ_RE = re.compile(r"~(SEQx|SEQ|LST)\(([^)]*)\)[ \t]*(.*)\Z", re.DOTALL)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_STRTOL_RE = re.compile(r"[ \t]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)[ \t]*\Z")
# Private-use stand-ins for ${_HASH}/${_BANG} so nothing downstream can take them for a
# comment; they are turned back into '#'/'!' when the line is emitted.
_HASH, _BANG = "\ue000", "\ue001"
# A physical line none of whose characters needs the preprocessor (see _read_lines).
_ORDINARY = re.compile(r'[^#!"\\$\x00' + _HASH + _BANG + r"]*\Z")


def default_config_id() -> str:
    """keepalived's default config id: the node name up to the first '.' (§1.4)."""
    return os.uname().nodename.split(".", 1)[0]


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
    if "#" not in line and "!" not in line and '"' not in line and "\\" not in line:
        text = line[start:].rstrip(_BLANKS)
        return Decommented(text, start + 1, None, False)
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
    # A trailing backslash continues the line unless it is itself escaped (``\\``).
    trailing = len(text) - len(text.rstrip("\\"))
    colmap = tuple(cols) if escaped else None
    return Decommented(text, cols[0] if cols else start + 1, colmap, trailing % 2 == 1)


@dataclass(frozen=True, slots=True)
class SourceResult:
    lines: tuple[LogicalLine, ...]
    diagnostics: tuple[Diagnostic, ...]
    physical: dict[str, Sequence[str]]


@dataclass(slots=True)
class _Definition:
    lines: list[str]
    multi: bool


@dataclass(slots=True)
class _FileCtx:
    """Per-file state; ``checks`` is saved/restored around each include (man page)."""

    name: str  # display name: as given on the command line or as globbed
    dir: str  # directory for relative includes, in display form ('' = cwd)
    pwd: str  # absolute directory, for ${_PWD}
    checks: set[str]


def split_physical(text: str) -> list[str]:
    """Physical lines as keepalived counts them: split at '\\n' only, trailing '\\r' dropped."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def _brace_expand(pattern: str) -> list[str]:
    """csh-style ``{a,b}`` expansion (glob's GLOB_BRACE), nested groups, left to right."""
    depth = 0
    start = -1
    for i, c in enumerate(pattern):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                inner = pattern[start + 1 : i]
                alts: list[str] = []
                d = 0
                cur: list[str] = []
                for ch in inner:
                    if ch == "," and d == 0:
                        alts.append("".join(cur))
                        cur = []
                        continue
                    if ch == "{":
                        d += 1
                    elif ch == "}":
                        d -= 1
                    cur.append(ch)
                alts.append("".join(cur))
                head, tail = pattern[:start], pattern[i + 1 :]
                out: list[str] = []
                for alt in alts:
                    out.extend(_brace_expand(head + alt + tail))
                return out
    return [pattern]


class _Span(NamedTuple):
    """Line text being preprocessed, with its columns (``cm`` None = contiguous from col0)."""

    text: str
    col0: int
    cm: list[int] | None

    def tail(self, i: int) -> _Span:
        """``text[i:]`` with its column information."""
        if self.cm is None:
            return _Span(self.text[i:], self.col0 + i, None)
        sub = self.cm[i:]
        return _Span(self.text[i:], sub[0] if sub else (self.cm[-1] if self.cm else self.col0), sub)

    def col(self, i: int) -> int:
        return self.tail(i).col0 if i < len(self.text) else self.col0

    def strip(self) -> _Span:
        stripped = self.text.lstrip(_BLANKS)
        span = self.tail(len(self.text) - len(stripped))
        text = span.text.rstrip(_BLANKS)
        cm = span.cm[: len(text)] if span.cm is not None else None
        return _Span(text, span.col0, cm)


def _strtol(text: str) -> int | None:
    """C ``strtol(text, base 0)`` of a whole token (``0x90``, ``010`` octal), else None."""
    m = _STRTOL_RE.match(text)
    if m is None:
        return None
    digits = m.group(2)
    if digits[:2] in ("0x", "0X"):
        val = int(digits, 16)
    elif len(digits) > 1 and digits[0] == "0":
        val = int(digits, 8)
    else:
        val = int(digits)
    return -val if m.group(1) == "-" else val


class Reader:
    """Reads one configuration (a file or a string) with all its includes."""

    def __init__(
        self,
        *,
        config_id: str | None = None,
        all_config: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.config_id = default_config_id() if config_id is None else config_id
        self.all_config = all_config
        self._rng = rng
        self.defs: dict[str, _Definition] = {}
        self.out: list[LogicalLine] = []
        self.diags: list[Diagnostic] = []
        self.physical: dict[str, Sequence[str]] = {}
        self._active: list[str] = []  # real paths of the files being read (loop detection)
        self._active_names: list[str] = []

    # -- entry points ----------------------------------------------------------------------

    def read_file(self, name: str) -> None:
        """Read the top-level file ``name`` (diagnostics name it exactly as given)."""
        reason = self._unusable(name)
        if reason is not None:
            self.diags.append(
                error(
                    None,
                    f"{name}: cannot read configuration file: {reason}",
                    status=Status.FILE_NOT_FOUND,
                )
            )
            return
        self._include_file(name, set(INCLUDE_CHECKS) if self.all_config else set(), None)

    def read_text(self, text: str, name: str = "<string>", base_dir: str | None = None) -> None:
        """Read configuration ``text``; relative includes resolve against ``base_dir``/cwd."""
        pwd = os.path.abspath(base_dir or os.getcwd())
        checks = set(INCLUDE_CHECKS) if self.all_config else set()
        ctx = _FileCtx(name, base_dir or "", pwd, checks)
        self._read_lines(ctx, text)

    def result(self) -> SourceResult:
        return SourceResult(tuple(self.out), tuple(self.diags), self.physical)

    # -- files -----------------------------------------------------------------------------

    @staticmethod
    def _unusable(name: str) -> str | None:
        """Why ``name`` cannot be read as a config file, or None (never opens a FIFO)."""
        try:
            st = os.stat(name)
        except OSError as exc:
            return exc.strerror or str(exc)
        if stat.S_ISDIR(st.st_mode):
            return "is a directory"
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file"
        if not os.access(name, os.R_OK):
            return "permission denied"
        return None

    def _include_file(self, name: str, checks: set[str], at: SourceLoc | None) -> None:
        real = os.path.realpath(name)
        if real in self._active:
            chain = " -> ".join([*self._active_names[self._active.index(real) :], name])
            self.diags.append(
                error(
                    at,
                    f"include loop: '{name}' is already being read ({chain})",
                    status=Status.FILE_NOT_FOUND,
                )
            )
            return
        try:
            with open(name, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            status = Status.INCLUDE_CHECK if "readable" in checks else Status.FILE_NOT_FOUND
            self.diags.append(
                error(at, f"cannot read '{name}': {exc.strerror or exc}", status=status)
            )
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # keepalived reads bytes; keep them (surrogateescape) and say where they are.
            text = data.decode("utf-8", errors="surrogateescape")
            self._warn_non_utf8(name, text)
        ctx = _FileCtx(
            name, os.path.dirname(name), os.path.dirname(os.path.abspath(name)), set(checks)
        )
        self._active.append(real)
        self._active_names.append(name)
        try:
            self._read_lines(ctx, text)
        finally:
            self._active.pop()
            self._active_names.pop()

    def _warn_non_utf8(self, name: str, text: str) -> None:
        for lineno, line in enumerate(split_physical(text), 1):
            for col, ch in enumerate(line, 1):
                if "\udc80" <= ch <= "\udcff":
                    self.diags.append(
                        warning(
                            SourceLoc(name, lineno, col),
                            "bytes that are not valid UTF-8; they are kept as they are",
                        )
                    )
                    return

    # -- lines -----------------------------------------------------------------------------

    def _read_lines(self, ctx: _FileCtx, text: str) -> None:
        physical = split_physical(text)
        self.physical[ctx.name] = physical
        collecting: _Definition | None = None
        for lineno, raw in enumerate(physical, 1):
            if len(raw) >= MAXBUF // 4 and len(raw.encode("utf-8", "surrogateescape")) >= MAXBUF:
                self.diags.append(
                    warning(
                        SourceLoc(ctx.name, lineno, MAXBUF),
                        f"line is longer than {MAXBUF - 1} bytes; keepalived splits it here",
                    )
                )
            if collecting is None and _ORDINARY.match(raw) is not None:
                # Fast path, exactly what decomment + _logical + _emit do for a line with no
                # comment, quote, escape, $, NUL or stand-in character: most of a real config.
                line = raw.rstrip("\r\n")
                text = line.lstrip(_BLANKS)
                col0 = len(line) - len(text) + 1
                text = text.rstrip(_BLANKS)
                if not text:
                    continue
                if text[0] not in "@~i":  # conditionals, ~SEQ and includes take the long way
                    self.out.append(LogicalLine(text, ctx.name, lineno, col0))
                    continue
            if "\0" in raw:
                # keepalived's C strings end at a NUL byte, dropping the rest of the line;
                # nothing after it may reach paths, names or scripts.
                nul = raw.index("\0")
                self.diags.append(
                    error(
                        SourceLoc(ctx.name, lineno, nul + 1),
                        "NUL byte in line; the rest of the line is ignored",
                    )
                )
                d = decomment(raw[:nul])
            else:
                d = decomment(raw)
            if collecting is not None:
                # §1.5: lines ending in '\' continue a multi-line definition; the first line
                # that does not (or an empty line) ends it.
                if not d.text:
                    collecting = None
                    continue
                if d.continued:
                    body = d.text[:-1].rstrip(_BLANKS)
                    if body:
                        collecting.lines.append(body)
                else:
                    collecting.lines.append(d.text)
                    collecting = None
                continue
            if not d.text:
                continue
            colmap = list(d.colmap) if d.colmap is not None else None
            collecting = self._logical(ctx, lineno, _Span(d.text, d.col0, colmap), 0)

    def _emit(self, ctx: _FileCtx, lineno: int, span: _Span) -> None:
        text, col0, cm = span
        if _HASH in text or _BANG in text:
            text = text.replace(_HASH, "#").replace(_BANG, "!")
        self.out.append(
            LogicalLine(text, ctx.name, lineno, col0, tuple(cm) if cm is not None else None)
        )

    def _logical(self, ctx: _FileCtx, lineno: int, span: _Span, depth: int) -> _Definition | None:
        """Run one logical line through the preprocessor; returns a definition to collect."""
        text, col0, _ = span
        if depth > _MAX_DEPTH:
            self.diags.append(
                error(
                    SourceLoc(ctx.name, lineno, col0),
                    "definitions expand recursively without end",
                    hint="a $definition probably refers to itself",
                )
            )
            return None
        first = text[0]
        # Fast path: an ordinary keyword line.
        if first not in "@$~i" and "$" not in text:
            self._emit(ctx, lineno, span)
            return None

        if first == "@":  # §1.4 conditional
            j = 1
            while j < len(text) and text[j] not in _BLANKS:
                j += 1
            word = text[1:j]
            invert = word.startswith("^")
            if invert:
                word = word[1:]
            k = j
            while k < len(text) and text[k] in _BLANKS:
                k += 1
            if k >= len(text) or (word == self.config_id) == invert:
                return None  # a bare '@word' line is always dropped
            span = span.tail(k)
            text, col0 = span.text, span.col0
            first = text[0]

        if first == "$":
            m = _DEF_RE.match(text)
            if m is not None:
                name, value = m.group(1), m.group(2)
                trailing = len(value) - len(value.rstrip("\\"))
                if trailing % 2 == 1:  # '$NAME= \': a multi-line definition starts
                    body = value[:-1].rstrip(_BLANKS)
                    d = _Definition([body] if body else [], True)
                    self.defs[name] = d
                    return d
                self.defs[name] = _Definition([value], False)
                return None

        if first == "~":
            m = _SEQ_RE.match(text)
            if m is not None or text.startswith(("~SEQ", "~LST")):
                self._sequence(ctx, lineno, span, depth, m)
                return None

        if "$" in text:
            expanded = self._substitute(ctx, lineno, span)
            if expanded is not None:
                for piece in expanded:
                    trimmed = piece.strip()
                    if trimmed.text:
                        self._logical(ctx, lineno, trimmed, depth + 1)
                return None

        if first == "i":
            word = text.split(None, 1)[0]
            if word in INCLUDE_KEYWORDS or word == "include_check":
                rest_at = len(word)
                while rest_at < len(text) and text[rest_at] in _BLANKS:
                    rest_at += 1
                loc = SourceLoc(
                    ctx.name,
                    lineno,
                    span.col(rest_at),
                )
                if word == "include_check":
                    self._include_check(ctx, text[rest_at:], loc)
                else:
                    self._include(ctx, word, text[rest_at:], loc, SourceLoc(ctx.name, lineno, col0))
                return None
        self._emit(ctx, lineno, span)
        return None

    # -- substitution (§1.5) ---------------------------------------------------------------

    def _builtin(self, ctx: _FileCtx, body: str) -> str | None:
        parts = body.split()
        if not parts:
            return None
        name, args = parts[0], parts[1:]
        if name == "_PWD" and not args:
            return ctx.pwd
        if name == "_INSTANCE" and not args:
            return self.config_id
        if name == "_HASH" and not args:
            return _HASH
        if name == "_BANG" and not args:
            return _BANG
        if name == "_RANDOM" and len(args) <= 2:
            bounds = [_strtol(a) for a in args]
            if any(b is None or b < 0 for b in bounds):
                return None
            lo = bounds[0] if bounds else 0
            hi = bounds[1] if len(bounds) > 1 else 32767
            if lo is None or hi is None or lo > hi:
                return None
            if self._rng is None:
                self._rng = random.Random()  # noqa: S311 -- config templating, not security
            return str(self._rng.randint(lo, hi))
        return None

    def _substitute(self, ctx: _FileCtx, lineno: int, span: _Span) -> list[_Span] | None:
        """Expand references; None when nothing changed, else the resulting line(s)."""
        text, col0, cm = span
        cols = list(cm) if cm is not None else list(range(col0, col0 + len(text)))
        changed = False
        pos = 0
        rounds = 0
        while True:
            m = _REF_RE.search(text, pos)
            if m is None:
                break
            body = m.group(1) if m.group(1) is not None else m.group(2)
            name = body.strip()
            d = self.defs.get(name) if _NAME_RE.match(name) else None
            ref_col = cols[m.start()] if cols else col0
            if d is None:
                value = self._builtin(ctx, body)
                if value is None:
                    pos = m.end()  # undefined: left as is (§1.5)
                    continue
            elif d.multi:
                # §1.5: each stored line becomes its own logical line; text before the
                # reference prefixes the first one.
                prefix, suffix = text[: m.start()], text[m.end() :]
                lines = list(d.lines) or [""]
                if suffix.strip(_BLANKS):
                    self.diags.append(
                        warning(
                            SourceLoc(ctx.name, lineno, ref_col),
                            f"multi-line definition '${name}' should be the last thing on "
                            "the line; the text after it is appended to its last line",
                        )
                    )
                    lines[-1] = lines[-1] + suffix
                first_cols = cols[: m.start()] + [ref_col] * len(lines[0])
                out = [
                    _Span(prefix + lines[0], first_cols[0] if first_cols else ref_col, first_cols)
                ]
                out.extend(_Span(ln, ref_col, [ref_col] * len(ln)) for ln in lines[1:])
                return out
            else:
                value = d.lines[0]
            text = text[: m.start()] + value + text[m.end() :]
            cols[m.start() : m.end()] = [ref_col] * len(value)
            changed = True
            pos = m.start()  # rescan: replacement is recursive
            rounds += 1
            if len(text) >= MAXBUF or rounds > MAXBUF:
                self.diags.append(
                    error(
                        SourceLoc(ctx.name, lineno, ref_col),
                        f"Parameter substitution on line would exceed maximum line length "
                        f"({MAXBUF - 1})",
                        hint="a $definition probably refers to itself",
                    )
                )
                return [_Span("", col0, None)]
        if not changed:
            return None
        return [_Span(text, cols[0] if cols else col0, cols)]

    # -- ~SEQ / ~LST (§1.6) ----------------------------------------------------------------

    def _sequence(
        self,
        ctx: _FileCtx,
        lineno: int,
        span: _Span,
        depth: int,
        m: re.Match[str] | None,
    ) -> None:
        text = span.text
        loc = SourceLoc(ctx.name, lineno, span.col0)
        kind = "LST" if text.startswith("~LST") else "SEQ"
        if m is None:
            self.diags.append(error(loc, f"Invalid ~{kind} specification '{text}'"))
            return
        op, spec = m.group(1), m.group(2)
        rest = span.tail(m.start(3))
        # Arguments may use definitions (§1.6); expand them first.
        exp = self._substitute(ctx, lineno, _Span(spec, span.col0, None))
        if exp is not None:
            spec = exp[0].text
        if op == "LST":
            iterations = self._lst(spec)
            if iterations is None:
                self.diags.append(error(loc, f"Invalid ~LST specification '{text}'"))
                return
        else:
            seq = self._seq(spec, hex_=op == "SEQx")
            if isinstance(seq, str):
                self.diags.append(error(loc, f"{seq} '{text}'"))
                return
            iterations = seq
        if len(iterations) > MAX_SEQ_LINES:
            self.diags.append(
                error(loc, f"~{op} would produce {len(iterations)} lines (limit {MAX_SEQ_LINES})")
            )
            return
        for assignment in iterations:
            for name, value in assignment:
                self.defs[name] = _Definition([value], False)
            if rest.text:
                self._logical(ctx, lineno, rest, depth + 1)

    @staticmethod
    def _split_args(spec: str) -> list[str]:
        args: list[str] = []
        depth = 0
        cur: list[str] = []
        for ch in spec:
            if ch == "," and depth == 0:
                args.append("".join(cur).strip())
                cur = []
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            cur.append(ch)
        args.append("".join(cur).strip())
        return args

    def _seq(self, spec: str, *, hex_: bool) -> list[list[tuple[str, str]]] | str:
        args = self._split_args(spec)
        if not 2 <= len(args) <= 4 or not _NAME_RE.match(args[0]):
            return "Invalid ~SEQ specification"
        nums = [_strtol(a) for a in args[1:]]
        if any(n is None for n in nums):
            return "Invalid ~SEQ specification"
        vals = [n for n in nums if n is not None]
        if len(vals) == 1:
            end = vals[0]
            start = 1 if end >= 0 else -1
            step = 1 if end >= start else -1
        elif len(vals) == 2:
            start, end = vals
            step = 1 if end >= start else -1
        else:
            start, step, end = vals
        if step == 0 or (step > 0 and end < start) or (step < 0 and end > start):
            return "Invalid ~SEQ values"
        if hex_ and (start < 0 or end < 0):
            return "Invalid ~SEQx values (negative)"
        count = (end - start) // step + 1
        if count > MAX_SEQ_LINES:
            return f"~SEQ would produce more than {MAX_SEQ_LINES} lines"
        fmt: Callable[[int], str] = (lambda v: format(v, "x")) if hex_ else str
        return [[(args[0], fmt(start + i * step))] for i in range(count)]

    def _lst(self, spec: str) -> list[list[tuple[str, str]]] | None:
        args = self._split_args(spec)
        if len(args) < 2:
            return None

        def group(a: str) -> list[str]:
            if a.startswith("{") and a.endswith("}"):
                return [x.strip() for x in a[1:-1].split(",")]
            return [a]

        names = group(args[0])
        if not all(_NAME_RE.match(n) for n in names):
            return None
        out: list[list[tuple[str, str]]] = []
        for a in args[1:]:
            values = group(a)
            if len(values) != len(names):
                return None
            out.append(list(zip(names, values, strict=True)))
        return out

    # -- include (§1.7) --------------------------------------------------------------------

    def _include_check(self, ctx: _FileCtx, spec: str, loc: SourceLoc) -> None:
        words = spec.split()
        if not words:
            ctx.checks = set(INCLUDE_CHECKS)
            return
        mode = "="
        new = set() if not words[0].startswith(("+", "-")) else set(ctx.checks)
        for word in words:
            w = word
            if w[0] in "+-":
                mode, w = w[0], w[1:]
                if not w:
                    continue
            if w not in INCLUDE_CHECKS:
                self.diags.append(
                    error(
                        loc,
                        f"unknown include_check option '{w}'",
                        hint="one of " + ", ".join(sorted(INCLUDE_CHECKS)),
                    )
                )
                continue
            if mode == "-":
                new.discard(w)
            else:
                new.add(w)
                if w != "readable":
                    new.add("readable")  # match checks imply readable (man page)
        ctx.checks = new

    def _include(
        self, ctx: _FileCtx, word: str, spec: str, loc: SourceLoc, kw_loc: SourceLoc
    ) -> None:
        pattern = spec.strip()
        if len(pattern) >= 2 and pattern[0] == '"' and pattern[-1] == '"':
            pattern = pattern[1:-1]
        if not pattern:
            self.diags.append(
                error(
                    kw_loc,
                    f"'{word}' is missing the file name",
                    status=Status.MISSING_PARAMETER,
                )
            )
            return
        checks = ctx.checks | INCLUDE_KEYWORDS[word]
        alternatives = _brace_expand(pattern)
        braced = len(alternatives) > 1 or alternatives[0] != pattern
        for alt in alternatives:
            path = alt if os.path.isabs(alt) or not ctx.dir else os.path.join(ctx.dir, alt)
            magic = glob.has_magic(alt)
            if magic:
                matches = sorted(glob.glob(path))
            else:
                matches = [path] if os.path.lexists(path) else []
            if not matches:
                self._no_match(alt, path, magic=magic, braced=braced, checks=checks, loc=loc)
                continue
            for name in matches:
                self._include_match(name, magic=magic, checks=checks, loc=loc)

    def _no_match(
        self, alt: str, path: str, *, magic: bool, braced: bool, checks: set[str], loc: SourceLoc
    ) -> None:
        if magic:
            if "wildcard_match" in checks:
                self.diags.append(
                    error(loc, f"no file matches '{path}'", status=Status.INCLUDE_CHECK)
                )
            else:
                self.diags.append(warning(loc, f"no file matches '{path}'"))
        elif braced:
            if "brace_match" in checks:
                self.diags.append(
                    error(
                        loc,
                        f"brace expansion '{alt}' matches no file ('{path}')",
                        status=Status.INCLUDE_CHECK,
                    )
                )
            else:
                self.diags.append(warning(loc, f"brace expansion '{alt}' matches no file"))
        else:
            status = Status.INCLUDE_CHECK if "match" in checks else Status.FILE_NOT_FOUND
            self.diags.append(error(loc, f"included file '{path}' does not exist", status=status))

    def _include_match(self, name: str, *, magic: bool, checks: set[str], loc: SourceLoc) -> None:
        try:
            st = os.stat(name)
        except OSError as exc:  # dangling symlink, permission on a parent directory
            status = Status.INCLUDE_CHECK if "readable" in checks else Status.FILE_NOT_FOUND
            self.diags.append(
                error(loc, f"cannot read '{name}': {exc.strerror or exc}", status=status)
            )
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir or not stat.S_ISREG(st.st_mode) or st.st_mode & 0o111:
            what = "a directory" if is_dir else "not a regular non-executable file"
            if magic:  # keepalived skips these glob matches ("... - skipping")
                self.diags.append(warning(loc, f"'{name}' is {what} - skipping"))
            else:  # named explicitly: the configuration the user wrote cannot be read
                self.diags.append(
                    error(
                        loc,
                        f"include target '{name}' is {what}",
                        status=Status.FILE_NOT_FOUND,
                    )
                )
            return
        self._include_file(name, set(checks), loc)


def read_file(
    name: str,
    *,
    config_id: str | None = None,
    all_config: bool = False,
    rng: random.Random | None = None,
) -> SourceResult:
    """Read ``name`` and everything it includes into logical lines."""
    reader = Reader(config_id=config_id, all_config=all_config, rng=rng)
    reader.read_file(name)
    return reader.result()


def read_text(
    text: str,
    name: str = "<string>",
    *,
    base_dir: str | None = None,
    config_id: str | None = None,
    all_config: bool = False,
    rng: random.Random | None = None,
) -> SourceResult:
    """Read configuration ``text`` (named ``name`` in diagnostics) into logical lines."""
    reader = Reader(config_id=config_id, all_config=all_config, rng=rng)
    reader.read_text(text, name, base_dir)
    return reader.result()
