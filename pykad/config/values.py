"""Value parsers shared by the lowerings (spec §1.9): integers, BOOLs, decimal timers.

Every parser reads ``block.args[i]`` and returns the value, or ``None`` after appending one
located :class:`~pykad.config.diagnostics.Diagnostic` to ``diags``; none of them raises.
The messages are keepalived's own words (``invalid number 'x'``, ``number 'x' outside range
[a, b]``, ...), located at the offending word so the caret points at it.

A missing mandatory parameter is an error with ``Status.MISSING_PARAMETER`` (keepalived exits
2 for it, §1.8). Optional values are the caller's business: check ``len(block.args)`` first,
or use :func:`parse_bool`, whose value is optional by keepalived's rules.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from pykad.config.diagnostics import Diagnostic, Status, error, warning
from pykad.config.tree import Block

__all__ = [
    "BOOL_WORDS",
    "ip_address",
    "missing_parameter",
    "parse_bool",
    "parse_decimal",
    "parse_int",
    "parse_word",
]

# §1.9: exactly these words, case-sensitive.
BOOL_WORDS: dict[str, bool] = {
    "on": True,
    "true": True,
    "yes": True,
    "off": False,
    "false": False,
    "no": False,
}

# strtol base 10 on the whole token: optional sign, digits only (Python's int() would also
# take "1_000" and surrounding blanks, which keepalived rejects).
_INT_RE = re.compile(r"[+-]?[0-9]+")
_DEC_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")


def ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``ipaddress.ip_address(text)``, without first failing as IPv4 on IPv6 text.

    IPv4 text never has a ':' and IPv6 text always has one, so the result (or the ValueError)
    is the same; ``ip_address`` raising and catching an IPv4 error for every IPv6 address was
    a seventh of lowering a config with thousands of IPv6 VIPs (bench/config_check.py).
    """
    return ipaddress.IPv6Address(text) if ":" in text else ipaddress.IPv4Address(text)


def missing_parameter(block: Block, diags: list[Diagnostic], position: int | None = None) -> None:
    """Report ``block`` lacking its value at word ``position`` (1-based; keyword = 1)."""
    pos = position if position is not None else len(block.args) + 2
    diags.append(
        error(
            block.loc,
            f"configuration line starting '{block.keyword}' is missing a parameter after "
            f"keyword '{block.keyword}' at word position {pos}",
            status=Status.MISSING_PARAMETER,
            source_line=block.source_line or None,
        )
    )


def _arg(block: Block, i: int, diags: list[Diagnostic]) -> str | None:
    if i < len(block.args):
        return block.args[i]
    missing_parameter(block, diags, i + 2)
    return None


def _bad(block: Block, i: int, diags: list[Diagnostic], message: str) -> None:
    diags.append(error(block.arg_loc(i), message, source_line=block.source_line or None))


def parse_word(block: Block, i: int, diags: list[Diagnostic]) -> str | None:
    """``block.args[i]`` as is, or None + a missing-parameter error."""
    return _arg(block, i, diags)


def parse_int(
    block: Block, i: int, lo: int, hi: int, diags: list[Diagnostic], *, what: str | None = None
) -> int | None:
    """An integer in ``lo..hi`` (inclusive). ``what`` prefixes the message (``"weight"``)."""
    text = _arg(block, i, diags)
    if text is None:
        return None
    prefix = f"{what}: " if what else ""
    if not _INT_RE.fullmatch(text):
        _bad(block, i, diags, f"{prefix}invalid number '{text}'")
        return None
    value = int(text)
    if value < 0 <= lo:
        _bad(block, i, diags, f"{prefix}negative number '{text}'")
        return None
    if not lo <= value <= hi:
        _bad(block, i, diags, f"{prefix}number '{text}' outside range [{lo}, {hi}]")
        return None
    return value


def parse_bool(
    block: Block, i: int, diags: list[Diagnostic], *, default: bool = True
) -> bool | None:
    """An optional BOOL (§1.9): absent -> ``default`` (true); otherwise one of BOOL_WORDS."""
    if i >= len(block.args):
        return default
    text = block.args[i]
    value = BOOL_WORDS.get(text)
    if value is None:
        _bad(
            block,
            i,
            diags,
            f"invalid {block.keyword} parameter '{text}' (expected on|off|true|false|yes|no)",
        )
    return value


def parse_decimal(
    block: Block,
    i: int,
    lo: float,
    hi: float,
    diags: list[Diagnostic],
    *,
    places: int = 6,
    what: str | None = None,
) -> float | None:
    """A non-negative decimal (keepalived ``read_decimal``), default µs resolution.

    More than ``places`` decimal places is a warning and the value is rounded, as keepalived
    does. ``lo``/``hi`` are inclusive, in the same unit as the text (seconds for timers).
    """
    text = _arg(block, i, diags)
    if text is None:
        return None
    prefix = f"{what}: " if what else ""
    if not _DEC_RE.fullmatch(text):
        _bad(block, i, diags, f"{prefix}invalid number '{text}'")
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        _bad(block, i, diags, f"{prefix}invalid number '{text}'")
        return None
    if value < 0:
        _bad(block, i, diags, f"{prefix}negative number '{text}'")
        return None
    quantum = Decimal(1).scaleb(-places)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        diags.append(
            warning(
                block.arg_loc(i),
                f"{prefix}number '{text}' has too many decimal places",
                source_line=block.source_line or None,
            )
        )
        value = value.quantize(quantum, rounding=ROUND_HALF_EVEN)
    if not Decimal(repr(lo)) <= value <= Decimal(repr(hi)):
        _bad(
            block,
            i,
            diags,
            f"{prefix}number '{text}' outside range [{lo:.{places}f}, {hi:.{places}f}]",
        )
        return None
    return float(value)
