"""The generic syntax tree that :mod:`pykad.config.grammar` produces and ``lower`` consumes.

The grammar knows nothing of keywords: every logical line becomes a :class:`Block` whose
``children`` is ``None`` for a plain line and a tuple when the line opened a ``{ ... }`` block
(value blocks such as ``virtual_ipaddress`` are blocks whose children are one line each).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pykad.config.diagnostics import Diagnostic, SourceLoc


@dataclass(frozen=True, slots=True)
class Block:
    keyword: str
    args: tuple[str, ...]
    loc: SourceLoc  # location of the keyword token
    arg_locs: tuple[SourceLoc, ...] = ()  # one per arg (same length as args)
    # The logical line after decommenting and substitution, keyword included. Script-type
    # keywords re-tokenise it with keepalived's shell-like rules (spec §1.3).
    raw: str = ""
    children: tuple[Block, ...] | None = None
    # The physical source line, for caret display in diagnostics.
    source_line: str = field(default="", compare=False)

    @property
    def is_block(self) -> bool:
        return self.children is not None

    def arg_loc(self, i: int) -> SourceLoc:
        """Location of ``args[i]``, falling back to the keyword's."""
        return self.arg_locs[i] if 0 <= i < len(self.arg_locs) else self.loc


@dataclass(frozen=True, slots=True)
class ParseResult:
    blocks: tuple[Block, ...]
    diagnostics: tuple[Diagnostic, ...]
    # file name -> its physical lines, for rendering carets
    lines: Mapping[str, Sequence[str]]
