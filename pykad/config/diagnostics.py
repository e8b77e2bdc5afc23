"""Located configuration diagnostics, rendered GCC-style.

``file:line:col: error: message`` then the source line, a caret under the column, and an
optional ``hint:`` line. Diagnostics are values: :func:`pykad.config.lower.lower` returns them
instead of raising, so that every problem in a file is reported in one run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


@dataclass(frozen=True, slots=True, order=True)
class SourceLoc:
    """Where a token came from. ``line`` and ``col`` are 1-based; col 0 means "whole line"."""

    file: str
    line: int
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.col else f"{self.file}:{self.line}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class Status(IntEnum):
    """keepalived's config status classes (spec §1.10), used to pick the exit code.

    Only the classes that change the exit code are distinguished; everything else is GENERAL.
    """

    OK = 0
    FILE_NOT_FOUND = 1  # missing/unreadable file, missing include that must exist -> exit 4/6
    BAD_IF = 2  # interface that does not exist -> exit 4
    GENERAL = 3  # any other error -> exit 5
    MISSING_PARAMETER = 4  # keyword without its mandatory value -> exit 2
    SECURITY = 5  # script security -> exit 6
    INCLUDE_CHECK = 6  # include that failed an include_check -> exit 6


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    loc: SourceLoc | None
    message: str
    hint: str | None = None
    status: Status = Status.GENERAL
    # The source line as written, for the caret display; filled by whoever creates the
    # diagnostic when it is known (the lowering has the Block's raw text).
    source_line: str | None = field(default=None, compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def error(
    loc: SourceLoc | None,
    message: str,
    *,
    hint: str | None = None,
    status: Status = Status.GENERAL,
    source_line: str | None = None,
) -> Diagnostic:
    return Diagnostic(Severity.ERROR, loc, message, hint, status, source_line)


def warning(
    loc: SourceLoc | None,
    message: str,
    *,
    hint: str | None = None,
    source_line: str | None = None,
) -> Diagnostic:
    return Diagnostic(Severity.WARNING, loc, message, hint, Status.OK, source_line)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest known keyword, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f"did you mean '{close[0]}'?" if close else None


def render_one(diag: Diagnostic, lines: Mapping[str, Sequence[str]] | None = None) -> str:
    """One diagnostic as text (no trailing newline)."""
    where = f"{diag.loc}: " if diag.loc is not None else ""
    out = [f"{where}{diag.severity.value}: {diag.message}"]
    src = diag.source_line
    if src is None and diag.loc is not None and lines is not None:
        file_lines = lines.get(diag.loc.file)
        if file_lines is not None and 0 < diag.loc.line <= len(file_lines):
            src = file_lines[diag.loc.line - 1]
    if src is not None and diag.loc is not None:
        src = src.rstrip("\n").expandtabs(1)  # tabs count as one column, as col does
        out.append(f"    {src}")
        if diag.loc.col > 0:
            out.append("    " + " " * (diag.loc.col - 1) + "^")
    if diag.hint:
        out.append(f"  hint: {diag.hint}")
    return "\n".join(out)


def render(
    diagnostics: Iterable[Diagnostic], lines: Mapping[str, Sequence[str]] | None = None
) -> str:
    """All diagnostics in the order given, newline-terminated ('' when there are none)."""
    text = "\n".join(render_one(d, lines) for d in diagnostics)
    return text + "\n" if text else ""
