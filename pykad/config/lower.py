"""Lowering: the generic :class:`Block` tree -> the typed :mod:`pykad.config.model`.

Theory of operation (spec §1.8-1.10, §2-4; style guide D):

* One small handler per keyword, found through a dispatch table per block level
  (``_TOP``, ``_GLOBAL``, ``_INSTANCE``, ...). A handler parses its words with the shared
  value parsers of :mod:`pykad.config.values` and writes into a mutable *draft*; nothing
  raises, every problem becomes a located :class:`Diagnostic` and the walk goes on
  (exabgp's collection mode).
* Unknown keyword -> warning with a ``did you mean`` hint, and the keyword's whole block (if
  it opened one) is skipped. keepalived instead parses an unknown block's contents one level
  up and lets its ``}`` close the parent (§1.8); pykad deliberately does not copy that.
* A keyword keepalived knows but pykad does not act on -> warning saying so (nothing is
  silently ignored).
* After the walk the drafts are *finalised*: defaults resolved from ``global_defs``, then
  keepalived's config-time fix-ups (nopreempt vs priority 255, interval rounding, strict mode
  §3.7, sync-group weight neutralisation §4.1, ...), each with keepalived's message as a
  warning, then cross-checks (duplicate VRID per interface and family).
* ``lower`` returns ``None`` for the config only when an error makes the VRRP side unusable
  the way keepalived's ``vrrp_complete_init`` failing stops its VRRP process: a keyword
  missing its mandatory parameter (keepalived exits 2), an instance that has to be rejected
  (no VRID, no usable interface, no VIP where one is required), or a duplicate VRID. Other
  errors (a value out of range, ...) leave keepalived running with the default; pykad
  likewise returns the model with the default and reports the error.

Purity: no file system and no interface lookups here. Interface existence is
:func:`check_interfaces` (the caller passes the host's interface names); script security is
:func:`pykad.config.security.check_scripts`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from pykad.config import values
from pykad.config.diagnostics import (
    Diagnostic,
    SourceLoc,
    Status,
    did_you_mean,
    error,
    warning,
)
from pykad.config.model import (
    Auth,
    AuthType,
    Config,
    GlobalDefs,
    InitialState,
    IPAddress,
    IPInterface,
    Notify,
    NotifyFifo,
    Script,
    StaticConfig,
    TrackFile,
    TrackInterface,
    TrackProcess,
    TrackRef,
    UnicastPeer,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
)
from pykad.config.model_lvs import LvsConfig
from pykad.config.scriptwords import ScriptQuoteError, split
from pykad.config.tree import Block

__all__ = ["check_interfaces", "lower"]

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63
_I32_MAX: Final = 2_147_483_647
_US: Final = 1_000_000  # keepalived keeps timers in µs (TIMER_HZ)


def _words(text: str) -> frozenset[str]:
    """A keyword set written as one blank-separated string (keeps long lists compact)."""
    return frozenset(text.split())


def _not_acted(keyword: str) -> str:
    return f"'{keyword}' is accepted but not acted on by pykad"


# --------------------------------------------------------------------------------------------
# Drafts: mutable bags of model fields, built during the walk and frozen after the fix-ups.


@dataclass(slots=True)
class _TrackEntry:
    """One line of a ``track_*`` value block before the reference is resolved."""

    name: str
    weight: int | None  # None: not given, take the tracked object's weight
    reverse: bool | None  # None: not given
    loc: SourceLoc


@dataclass(slots=True)
class _Tracks:
    interfaces: list[_TrackEntry] = field(default_factory=list)
    scripts: list[_TrackEntry] = field(default_factory=list)
    files: list[_TrackEntry] = field(default_factory=list)
    processes: list[_TrackEntry] = field(default_factory=list)
    bfds: list[_TrackEntry] = field(default_factory=list)


@dataclass(slots=True)
class _Draft:
    """A block being lowered. ``fields`` become keyword arguments of the model class."""

    name: str
    block: Block
    fields: dict[str, Any] = field(default_factory=dict)
    # the Block that set each keyword, to locate fix-up messages at the line concerned
    seen: dict[str, Block] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)
    tracks: _Tracks = field(default_factory=_Tracks)
    vips: list[VirtualAddress] = field(default_factory=list)
    excluded: list[VirtualAddress] = field(default_factory=list)
    routes: list[VirtualRoute] = field(default_factory=list)
    rules: list[VirtualRule] = field(default_factory=list)
    peers: list[UnicastPeer] = field(default_factory=list)
    members: list[tuple[str, SourceLoc]] = field(default_factory=list)
    family: int | None = None  # set by the first address keyword, as keepalived does
    rejected: bool = False

    @property
    def loc(self) -> SourceLoc:
        return self.block.loc


Handler = Callable[["_Lowering", Block, _Draft], None]


@dataclass(frozen=True, slots=True)
class _Kw:
    """A dispatch-table entry: the handler and whether the keyword opens a ``{ }`` block."""

    handler: Handler
    block: bool = False


# --------------------------------------------------------------------------------------------
# The walk


class _Lowering:
    def __init__(self) -> None:
        self.diags: list[Diagnostic] = []
        self.fatal = False
        self.globals = _Draft("global_defs", Block("global_defs", (), SourceLoc("<none>", 0)))
        self.instances: list[_Draft] = []
        self.scripts: dict[str, VrrpScript] = {}
        self.track_files: dict[str, TrackFile] = {}
        self.track_processes: dict[str, TrackProcess] = {}
        self.groups: list[_Draft] = []
        self.static = _Draft("static", Block("static", (), SourceLoc("<none>", 0)))
        self.lvs_blocks: list[Block] = []

    # ---- diagnostics -------------------------------------------------------------------

    def error(
        self,
        b: Block,
        message: str,
        *,
        at: SourceLoc | None = None,
        hint: str | None = None,
        status: Status = Status.GENERAL,
        fatal: bool = False,
    ) -> None:
        self.diags.append(
            error(at or b.loc, message, hint=hint, status=status, source_line=b.source_line or None)
        )
        if fatal:
            self.fatal = True

    def warn(
        self, b: Block, message: str, *, at: SourceLoc | None = None, hint: str | None = None
    ) -> None:
        self.diags.append(
            warning(at or b.loc, message, hint=hint, source_line=b.source_line or None)
        )

    # ---- values -----------------------------------------------------------------------

    def need(self, b: Block, n: int = 1) -> bool:
        """True when ``b`` has at least ``n`` words after the keyword; else MISSING_PARAMETER."""
        if len(b.args) >= n:
            return True
        values.missing_parameter(b, self.diags, len(b.args) + 2)
        self.fatal = True  # keepalived exits 2 at once (§1.8)
        return False

    def int_(self, b: Block, i: int, lo: int, hi: int, *, what: str | None = None) -> int | None:
        """An integer in ``lo..hi``; out of range -> ``<kw> <n> is out of range lo..hi``."""
        if not self.need(b, i + 1):
            return None
        value = values.parse_int(b, i, _INT_MIN, _INT_MAX, self.diags, what=what or b.keyword)
        if value is None:
            return None
        if not lo <= value <= hi:
            self.error(
                b, f"{what or b.keyword} {value} is out of range {lo}..{hi}", at=b.arg_loc(i)
            )
            return None
        return value

    def decimal(self, b: Block, i: int, lo: float, hi: float, *, places: int = 6) -> float | None:
        """A non-negative decimal (µs resolution by default) in ``lo..hi`` seconds."""
        if not self.need(b, i + 1):
            return None
        value = values.parse_decimal(b, i, 0, 1e12, self.diags, places=places, what=b.keyword)
        if value is None:
            return None
        if not lo <= value <= hi:
            self.error(
                b, f"{b.keyword} {b.args[i]} is out of range {lo:g}..{hi:g}", at=b.arg_loc(i)
            )
            return None
        return value

    def bool_(self, b: Block, i: int = 0) -> bool | None:
        """An optional BOOL (§1.9): absent -> true."""
        return values.parse_bool(b, i, self.diags)

    def flag(self, b: Block) -> bool:
        """A keyword that takes no parameter; extra words are reported, not silently eaten."""
        if b.args:
            self.warn(
                b,
                f"'{b.keyword}' takes no parameter - ignoring '{' '.join(b.args)}'",
                at=b.arg_loc(0),
            )
        return True

    def ip(self, b: Block, i: int) -> IPAddress | None:
        if not self.need(b, i + 1):
            return None
        try:
            return values.ip_address(b.args[i])
        except ValueError:
            self.error(b, f"{b.keyword}: invalid IP address '{b.args[i]}'", at=b.arg_loc(i))
            return None

    def script(self, b: Block, *, what: str | None = None) -> Script | None:
        """A script keyword (§1.3): token 1 re-split into argv; token 2 user, token 3 group."""
        if not self.need(b):
            return None
        try:
            words = split(b.raw) if b.raw else [b.keyword, *b.args]
            argv = split(words[1]) if len(words) > 1 else []
        except ScriptQuoteError as exc:
            self.error(b, f"{what or b.keyword}: {exc}", at=b.arg_loc(0))
            return None
        if not argv:
            self.error(b, f"{what or b.keyword}: empty command", at=b.arg_loc(0))
            return None
        if len(words) > 4:
            self.warn(
                b,
                f"{b.keyword}: extra words after the group ignored: {' '.join(words[4:])}"
                " (quote the command to pass arguments)",
                at=b.arg_loc(min(3, len(b.args) - 1)),
            )
        return Script(
            argv=tuple(argv),
            user=words[2] if len(words) > 2 else None,
            group=words[3] if len(words) > 3 else None,
            loc=b.loc,
        )

    # ---- dispatch ---------------------------------------------------------------------

    def dispatch(
        self,
        children: Iterable[Block],
        table: Mapping[str, _Kw],
        draft: _Draft,
        *,
        not_acted: Collection[str] = frozenset(),
    ) -> None:
        for b in children:
            kw = table.get(b.keyword)
            if kw is None:
                if b.keyword in not_acted:
                    self.warn(b, _not_acted(b.keyword))
                else:
                    self.warn(
                        b,
                        f"unknown keyword '{b.keyword}'"
                        + (" - skipping its block" if b.is_block else ""),
                        hint=did_you_mean(b.keyword, [*table, *not_acted]),
                    )
                continue
            if kw.block and b.children is None:
                self.error(b, f"'{b.keyword}' must be followed by a '{{ ... }}' block")
                continue
            if not kw.block and b.children is not None:
                self.error(b, f"unexpected '{{' after '{b.keyword}' - ignoring the block")
            kw.handler(self, b, draft)

    def value_lines(self, b: Block) -> list[Block]:
        """The lines of a value block (``virtual_ipaddress { ... }`` and the like)."""
        if b.args:
            self.warn(
                b, f"Block {b.keyword} has extra parameters {' '.join(b.args)}", at=b.arg_loc(0)
            )
        lines: list[Block] = []
        for line in b.children or ():
            if line.children is not None:
                self.error(line, f"unexpected '{{' inside '{b.keyword}' - ignoring that block")
                continue
            lines.append(line)
        return lines


# --------------------------------------------------------------------------------------------
# Table-building helpers: most keywords set one field from one typed value.


# A value parser reads a keyword's value from its Block; None means there is none to set
# (the parser has already reported why).
Parse = Callable[["_Lowering", Block], object]


def _set(name: str, parse: Parse) -> Handler:
    """The handler of a keyword that sets field ``name`` to the value ``parse`` reads."""

    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        v = parse(lw, b)
        if v is not None:
            d.fields[name] = v
            d.seen[b.keyword] = b

    return handler


def _int(lo: int, hi: int) -> Parse:
    return lambda lw, b: lw.int_(b, 0, lo, hi)


def _seconds(lo: int, hi: int) -> Parse:
    """Whole seconds (keepalived reads these as integers) for a float ``*_s`` field."""

    def parse(lw: _Lowering, b: Block) -> float | None:
        v = lw.int_(b, 0, lo, hi)
        return None if v is None else float(v)

    return parse


def _decimal(lo: float, hi: float) -> Parse:
    return lambda lw, b: lw.decimal(b, 0, lo, hi)


def _bool(lw: _Lowering, b: Block) -> bool | None:
    return lw.bool_(b)


def _flag(value: bool = True) -> Parse:
    """A keyword without parameter that sets ``value`` (extra words are reported)."""

    def parse(lw: _Lowering, b: Block) -> bool:
        lw.flag(b)
        return value

    return parse


def _word(lw: _Lowering, b: Block) -> str | None:
    return b.args[0] if lw.need(b) else None


def _ip(version: int | None = None, *, multicast: bool = False) -> Parse:
    def parse(lw: _Lowering, b: Block) -> IPAddress | None:
        v = lw.ip(b, 0)
        if v is None:
            return None
        if version is not None and v.version != version:
            lw.error(b, f"{b.keyword} must be an IPv{version} address", at=b.arg_loc(0))
            return None
        if multicast and not v.is_multicast:
            lw.error(b, f"{b.keyword} {v} is not a multicast address", at=b.arg_loc(0))
            return None
        return v

    return parse


def _not_acted_kw(also: Handler | None = None) -> Handler:
    """A keyword pykad parses (``also``) but does not act on yet: warn, never silently."""

    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        lw.warn(b, _not_acted(b.keyword))
        if also is not None:
            also(lw, b, d)

    return handler


def _notify(slot: str) -> Handler:
    """``notify_master "CMD ARGS" [USER [GROUP]]`` and friends (§3.6)."""

    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        if slot in d.notify:
            lw.warn(b, f"({d.name}) {b.keyword} script already specified - ignoring")
            return
        s = lw.script(b)
        if s is not None:
            d.notify[slot] = s

    return handler


def _notify_deleted(lw: _Lowering, b: Block, d: _Draft) -> None:
    d.notify["deleted_enabled"] = True
    if b.args:
        _notify("deleted")(lw, b, d)


def _track_block(kind: str, limit: int, *, clamp254: bool = False) -> Handler:
    """``track_X { NAME [weight W [reverse|noreverse]] ... }`` (§3.5)."""

    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        entries: list[_TrackEntry] = getattr(d.tracks, kind)
        for line in lw.value_lines(b):
            entry = _track_line(lw, line, limit, clamp254=clamp254, owner=d.name)
            if entry is None:
                continue
            if any(e.name == entry.name for e in entries):
                lw.warn(line, f"({d.name}) duplicate {b.keyword} {entry.name} - ignoring")
                continue
            entries.append(entry)

    return handler


def _track_line(
    lw: _Lowering, line: Block, limit: int, *, clamp254: bool, owner: str
) -> _TrackEntry | None:
    """``NAME [weight W [reverse|noreverse]]``; W in -limit..limit (+/-254 clamped if asked)."""
    words = line.args
    weight: int | None = None
    reverse: bool | None = None
    if words:
        if words[0] != "weight":
            lw.warn(
                line,
                f"({owner}) unknown track option '{words[0]}' for {line.keyword} - ignoring",
                at=line.arg_loc(0),
            )
        elif len(words) < 2:
            lw.error(
                line,
                f"({owner}) weight for {line.keyword} is missing its value",
                at=line.arg_loc(0),
            )
            return None
        else:
            bound = 254 if clamp254 else limit
            w = lw.int_(line, 1, -bound, bound, what="weight")
            if w is None:
                return None
            if clamp254 and abs(w) == 254:
                # keepalived accepts +/-254 here and clamps it (§3.5)
                lw.warn(
                    line,
                    f"({owner}) weight for {line.keyword} cannot be +/-254. Setting to +/-253",
                    at=line.arg_loc(1),
                )
                w = 253 if w > 0 else -253
            weight = w
            for j, extra in enumerate(words[2:], start=2):
                if extra in ("reverse", "noreverse"):
                    reverse = extra == "reverse"
                else:
                    lw.warn(
                        line,
                        f"({owner}) unknown track option '{extra}' - ignoring",
                        at=line.arg_loc(j),
                    )
    return _TrackEntry(line.keyword, weight, reverse, line.loc)


# --------------------------------------------------------------------------------------------
# Addresses, routes, rules (§3.2)

_SCOPES: Final = frozenset({"global", "site", "link", "host", "nowhere", "universe"})
_VIP_FLAGS: Final = {
    "home": "home",
    "-nodad": "nodad",
    "nodad": "nodad",
    "mngtmpaddr": "mngtmpaddr",
    "noprefixroute": "noprefixroute",
    "autojoin": "autojoin",
    "no_track": "no_track",
}


def _address_line(lw: _Lowering, line: Block, *, owner: str) -> VirtualAddress | None:
    """``IP[/PREFIX] [dev IF] [brd IP|+|-] [scope S] [label L] [peer IP] [flags...]``."""
    text = line.keyword
    addr_text, _, plen_text = text.partition("/")
    try:
        ip = values.ip_address(addr_text)
    except ValueError:
        lw.error(line, f"({owner}) invalid IP address '{text}' - ignoring")
        return None
    maxlen = ip.max_prefixlen
    plen: int = maxlen
    if plen_text:
        if plen_text.isdigit() and int(plen_text) <= maxlen:
            plen = int(plen_text)
        else:
            lw.warn(
                line,
                f"Invalid address prefix len {plen_text} for address {addr_text} - using {maxlen}",
            )
    # from (int, prefix): ip_interface(f"{ip}/{plen}") would format and re-parse the address,
    # which was 40% of lowering 5100 VIPs (bench/config_check.py)
    iface: IPInterface = (
        ipaddress.IPv4Interface((int(ip), plen))
        if ip.version == 4
        else ipaddress.IPv6Interface((int(ip), plen))
    )
    kw: dict[str, Any] = {}
    brd: str | None = None
    args = line.args
    i = 0
    while i < len(args):
        word = args[i]
        if word in _VIP_FLAGS:
            kw[_VIP_FLAGS[word]] = True
            i += 1
            continue
        if word == "use_vmac":
            lw.warn(line, _not_acted("use_vmac"), at=line.arg_loc(i))
            i += 1
            continue
        if word in (
            "dev",
            "brd",
            "broadcast",
            "scope",
            "label",
            "peer",
            "preferred_lft",
            "track_group",
        ):
            if i + 1 >= len(args):
                lw.error(
                    line,
                    f"No {word} parameter specified for {text} - ignoring address",
                    at=line.arg_loc(i),
                )
                return None
            value = args[i + 1]
            if word == "dev":
                kw["dev"] = value
            elif word in ("brd", "broadcast"):
                brd = value
            elif word == "scope":
                if ip.version == 6:
                    lw.warn(line, f"scope is ignored for IPv6 address {ip}", at=line.arg_loc(i))
                elif value in _SCOPES or value.isdigit():
                    kw["scope"] = "global" if value == "universe" else value
                else:
                    lw.error(
                        line,
                        f"Invalid scope '{value}' for {text} - ignoring",
                        at=line.arg_loc(i + 1),
                    )
            elif word == "label":
                if ip.version == 6:
                    lw.warn(line, f"label is ignored for IPv6 address {ip}", at=line.arg_loc(i))
                elif len(value) >= 16:
                    lw.error(
                        line,
                        f"label '{value}' is longer than 15 characters - ignoring",
                        at=line.arg_loc(i + 1),
                    )
                else:
                    kw["label"] = value
            elif word == "peer":
                try:
                    kw["peer"] = values.ip_address(value.partition("/")[0])
                except ValueError:
                    lw.error(line, f"invalid peer address '{value}'", at=line.arg_loc(i + 1))
            elif word == "preferred_lft":
                if value == "forever":
                    kw["preferred_lft"] = -1
                elif value.isdigit():
                    kw["preferred_lft"] = int(value)
                else:
                    lw.error(line, f"invalid preferred_lft '{value}'", at=line.arg_loc(i + 1))
            else:  # track_group: static addresses only
                lw.warn(line, _not_acted("track_group"), at=line.arg_loc(i))
            i += 2
            continue
        lw.warn(
            line,
            f"Unknown configuration entry '{word}' for ip address - ignoring",
            at=line.arg_loc(i),
        )
        i += 1
    if brd is not None:
        if isinstance(iface, ipaddress.IPv4Interface):
            if brd == "+":
                if plen <= 30:
                    kw["broadcast"] = iface.network.broadcast_address
            elif brd == "-":
                if plen <= 30:
                    kw["broadcast"] = iface.network.network_address
            else:
                try:
                    kw["broadcast"] = ipaddress.IPv4Address(brd)
                except ValueError:
                    lw.error(line, f"invalid broadcast address '{brd}'")
        else:
            lw.warn(line, f"broadcast is ignored for IPv6 address {ip}")
    return VirtualAddress(address=iface, loc=line.loc, **kw)


_ROUTE_TYPES: Final = _words(
    """
    unicast blackhole unreachable prohibit throw local broadcast anycast multicast nat
    """
)
_TABLES: Final = {"default": 253, "main": 254, "local": 255}


def _table(lw: _Lowering, line: Block, i: int) -> int | None:
    word = line.args[i]
    if word in _TABLES:
        return _TABLES[word]
    return lw.int_(line, i, 0, 2**32 - 1, what="table")


def _network(
    lw: _Lowering, line: Block, text: str, at: SourceLoc
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        lw.error(line, f"invalid prefix '{text}'", at=at)
        return None


def _route_line(lw: _Lowering, line: Block) -> VirtualRoute | None:
    """An ``ip route``-like line: ``[type] [src IP] [to] DEST via IP dev IF ...``."""
    words = (line.keyword, *line.args)
    locs = (line.loc, *line.arg_locs)

    def at(j: int) -> SourceLoc:
        return locs[j] if j < len(locs) else line.loc

    kw: dict[str, Any] = {}
    extra: list[str] = []
    dst_set = False
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if word in _ROUTE_TYPES and not dst_set:
            kw["type"] = word
        elif word in ("onlink", "no_track"):
            kw[word] = True
        elif word in ("inet", "inet6"):
            pass  # the family follows from the addresses
        elif word in (
            "src",
            "via",
            "gw",
            "dev",
            "oif",
            "scope",
            "table",
            "metric",
            "priority",
            "preference",
            "protocol",
            "proto",
            "to",
        ):
            if nxt is None:
                lw.error(line, f"route: '{word}' is missing its value", at=at(i))
                return None
            if word in ("src", "via", "gw"):
                try:
                    kw["src" if word == "src" else "via"] = values.ip_address(nxt)
                except ValueError:
                    lw.error(line, f"route: invalid {word} address '{nxt}'", at=at(i + 1))
                    return None
            elif word in ("dev", "oif"):
                kw["dev"] = nxt
            elif word == "scope":
                kw["scope"] = nxt
            elif word == "table":
                kw["table"] = _table(lw, line, i)
            elif word in ("metric", "priority", "preference"):
                kw["metric"] = lw.int_(line, i, 0, 2**32 - 1, what="metric")
            elif word in ("protocol", "proto"):
                kw["protocol"] = nxt
            else:  # to
                net = None if nxt == "default" else _network(lw, line, nxt, at(i + 1))
                kw["dst"] = net
                dst_set = True
            i += 2
            continue
        elif not dst_set and (word == "default" or word[:1].isdigit() or ":" in word):
            kw["dst"] = None if word == "default" else _network(lw, line, word, at(i))
            dst_set = True
        else:
            extra.append(word)
        i += 1
    if not dst_set:
        lw.error(line, "route: no destination given")
        return None
    if extra:
        lw.warn(line, f"route options '{' '.join(extra)}' are accepted but not acted on by pykad")
    return VirtualRoute(loc=line.loc, extra=tuple(extra), **kw)


def _rule_line(lw: _Lowering, line: Block) -> VirtualRule | None:
    """An ``ip rule``-like line: ``from P to P table T preference N fwmark M iif I oif O``."""
    words = (line.keyword, *line.args)
    locs = (line.loc, *line.arg_locs)
    kw: dict[str, Any] = {}
    extra: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if word in ("no_track",):
            kw["no_track"] = True
        elif word in ("inet", "inet6"):
            kw["family"] = 4 if word == "inet" else 6
        elif word in (
            "from",
            "to",
            "table",
            "lookup",
            "preference",
            "priority",
            "order",
            "fwmark",
            "iif",
            "oif",
        ):
            if nxt is None:
                lw.error(line, f"rule: '{word}' is missing its value", at=locs[i])
                return None
            if word in ("from", "to"):
                if nxt != "all":
                    net = _network(lw, line, nxt, locs[i + 1])
                    if net is None:
                        return None
                    kw["src" if word == "from" else "dst"] = net
            elif word in ("table", "lookup"):
                kw["table"] = _TABLES.get(nxt) or lw.int_(line, i, 0, 2**32 - 1, what="table")
            elif word in ("preference", "priority", "order"):
                kw["priority"] = lw.int_(line, i, 0, 2**32 - 1, what=word)
            elif word == "fwmark":
                mark = nxt.partition("/")[0]
                try:
                    kw["fwmark"] = int(mark, 0)
                except ValueError:
                    lw.error(line, f"rule: invalid fwmark '{nxt}'", at=locs[i + 1])
            else:
                kw[word] = nxt
            i += 2
            continue
        else:
            extra.append(word)
        i += 1
    fams = {n.version for n in (kw.get("src"), kw.get("dst")) if n is not None}
    if len(fams) > 1:
        lw.error(line, "rule: from and to are of different address families")
        return None
    if fams and "family" not in kw:
        kw["family"] = fams.pop()
    if extra:
        lw.warn(line, f"rule options '{' '.join(extra)}' are accepted but not acted on by pykad")
    return VirtualRule(loc=line.loc, extra=tuple(extra), **kw)


# --------------------------------------------------------------------------------------------
# vrrp_instance keywords (§3)


def _inst_state(lw: _Lowering, b: Block, d: _Draft) -> None:
    if not lw.need(b):
        return
    word = b.args[0]
    if word == "MASTER":
        d.fields["initial_state"] = InitialState.MASTER
    elif word == "BACKUP":
        if d.fields.get("initial_state") is InitialState.MASTER:
            lw.warn(b, f"({d.name}) state previously set as MASTER - ignoring BACKUP")
            return
        d.fields["initial_state"] = InitialState.BACKUP
    else:
        lw.error(
            b,
            f"({d.name}) unknown state '{word}', defaulting to BACKUP",
            at=b.arg_loc(0),
            hint=did_you_mean(word.upper(), ("MASTER", "BACKUP")),
        )
        d.fields["initial_state"] = InitialState.BACKUP
    d.seen["state"] = b


def _inst_priority(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.int_(b, 0, 1, 255)
    if v is None:
        # keepalived: "Priority not valid! must be between 1 & 255. Using default 100"
        d.fields["priority"] = 100
    else:
        d.fields["priority"] = v
    d.seen["priority"] = b


def _inst_interface(lw: _Lowering, b: Block, d: _Draft) -> None:
    if not lw.need(b):
        return
    name = b.args[0]
    if len(name) >= 16:  # IFNAMSIZ
        lw.error(
            b, f"({d.name}) interface name '{name}' is longer than 15 characters", at=b.arg_loc(0)
        )
        return
    if name == "lo":
        lw.error(
            b,
            f"({d.name}) cannot use a loopback interface (lo) for vrrp - ignoring",
            at=b.arg_loc(0),
        )
        return
    d.fields["interface"] = name
    d.seen["interface"] = b


def _inst_advert_int(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.decimal(b, 0, 0.01, 255)
    if v is None:
        return  # keepalived: "Advert interval (x) not valid! ... - ignoring": default stays
    d.fields["_advert_us"] = round(v * _US)
    d.seen["advert_int"] = b


def _inst_version(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.int_(b, 0, 2, 3)
    if v is not None:
        d.fields["version"] = v
        d.seen["version"] = b


def _inst_native_ipv6(lw: _Lowering, b: Block, d: _Draft) -> None:
    lw.flag(b)
    lw.warn(b, f"({d.name}) native_ipv6 is deprecated; an IPv6 address implies it")
    if d.family == 4:
        lw.error(b, f"({d.name}) Cannot specify native_ipv6 with IPv4 addresses")
        return
    d.family = 6
    d.fields["version"] = 3


def _set_family(d: _Draft, version: int) -> bool:
    """First address keyword fixes the family; later mismatches are refused (§3.2)."""
    if d.family is None:
        d.family = version
    return d.family == version


def _inst_src_ip(name: str) -> Handler:
    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        v = lw.ip(b, 0)
        if v is None:
            return
        if not _set_family(d, v.version):
            lw.error(
                b,
                f"Configuration error: VRRP instance[{d.name}] and src address[{v}]"
                " MUST be of the same family - skipping",
                at=b.arg_loc(0),
            )
            return
        d.fields[name] = v
        d.seen[b.keyword] = b

    return handler


def _inst_unicast_peer(lw: _Lowering, b: Block, d: _Draft) -> None:
    for line in lw.value_lines(b):
        try:
            ip = values.ip_address(line.keyword)
        except ValueError:
            lw.error(line, f"({d.name}) invalid unicast peer address '{line.keyword}'")
            continue
        kw: dict[str, int] = {}
        args = line.args
        i = 0
        while i < len(args):
            if args[i] in ("min_ttl", "max_ttl"):
                v = lw.int_(line, i + 1, 0, 255, what=args[i])
                if v is not None:
                    kw[args[i]] = v
                    # min/max_ttl turn on source checking (§3.1)
                    d.fields["check_unicast_src"] = True
                i += 2
            else:
                lw.warn(
                    line,
                    f"({d.name}) unknown unicast peer option '{args[i]}' - ignoring",
                    at=line.arg_loc(i),
                )
                i += 1
        if kw.get("min_ttl", 0) > kw.get("max_ttl", 255):
            lw.warn(
                line,
                f"({d.name}) unicast peer {ip} min_ttl > max_ttl - all packets will be discarded",
            )
        if any(p.address == ip for p in d.peers):
            lw.warn(line, f"({d.name}) duplicate unicast peer {ip} - ignoring")
            continue
        d.peers.append(UnicastPeer(address=ip, loc=line.loc, **kw))
    d.seen["unicast_peer"] = b


def _inst_addresses(target: str) -> Handler:
    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        out: list[VirtualAddress] = getattr(d, target)
        for line in lw.value_lines(b):
            va = _address_line(lw, line, owner=d.name)
            if va is None:
                continue
            # VIPs must all be of the instance's family; excluded ones may mix (§3.2)
            if target == "vips" and not _set_family(d, va.family):
                lw.warn(
                    line,
                    f"({d.name}): address family must match VRRP instance [{va.ip}] - ignoring",
                )
                continue
            out.append(va)
        d.seen[b.keyword] = b

    return handler


def _inst_routes(lw: _Lowering, b: Block, d: _Draft) -> None:
    for line in lw.value_lines(b):
        r = _route_line(lw, line)
        if r is None:
            continue
        if r.dev is None and not r.no_track and r.type in ("unicast", "local"):
            # a route is tracked through its interface (§3.2); without one there is nothing
            dst = "default" if r.dst is None else str(r.dst)
            lw.warn(
                line,
                f"Warning - cannot track route {dst} with no interface specified, not tracking",
            )
            r = replace(r, no_track=True)
        d.routes.append(r)


def _inst_rules(lw: _Lowering, b: Block, d: _Draft) -> None:
    for line in lw.value_lines(b):
        r = _rule_line(lw, line)
        if r is not None:
            d.rules.append(r)


def _auth_type(lw: _Lowering, b: Block, d: _Draft) -> None:
    if not lw.need(b):
        return
    word = b.args[0]
    if word in ("PASS", "AH"):
        d.fields["type"] = AuthType(word)
        d.seen["auth_type"] = b
    else:
        lw.error(
            b,
            f"({d.name}) unknown authentication type '{word}'",
            at=b.arg_loc(0),
            hint=did_you_mean(word.upper(), ("PASS", "AH")),
        )


def _auth_pass(lw: _Lowering, b: Block, d: _Draft) -> None:
    if not lw.need(b):
        return
    pw = b.args[0].encode("utf-8", "surrogateescape")
    if len(pw) > 8:
        # RFC 3768 5.3.6.1 / keepalived: the field is 8 octets
        lw.warn(b, "Truncating auth_pass to 8 characters", at=b.arg_loc(0))
        pw = pw[:8]
    d.fields["password"] = pw.ljust(8, b"\0")
    d.seen["auth_pass"] = b


_AUTH: Final[Mapping[str, _Kw]] = {
    "auth_type": _Kw(_auth_type),
    "auth_pass": _Kw(_auth_pass),
}


def _inst_authentication(lw: _Lowering, b: Block, d: _Draft) -> None:
    sub = _Draft(d.name, b)
    lw.dispatch(b.children or (), _AUTH, sub)
    atype = sub.fields.get("type")
    if atype is None:
        if "password" in sub.fields:
            lw.warn(b, f"({d.name}) authentication without auth_type - ignoring")
        return
    if "password" not in sub.fields:
        lw.warn(b, f"({d.name}) authentication {atype} without auth_pass - ignoring")
        return
    d.fields["auth"] = Auth(type=atype, password=sub.fields["password"], loc=b.loc)
    d.seen["authentication"] = b


def _inst_strict_mode(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.bool_(b)
    if v is not None:
        d.fields["strict"] = v
        d.seen["strict_mode"] = b


def _inst_use_vmac(lw: _Lowering, b: Block, d: _Draft) -> None:
    lw.warn(b, _not_acted(b.keyword))
    d.fields["use_vmac"] = True
    if b.args:
        d.fields["vmac_name"] = b.args[0]


def _inst_garp_repeat(name: str) -> Handler:
    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        v = lw.int_(b, 0, 0, _I32_MAX)
        if v is None:
            return
        if v == 0 and name != "garp_lower_prio_repeat":
            v = 1  # keepalived: a repeat of 0 means 1 (§3.4)
        d.fields[name] = v
        d.seen[b.keyword] = b

    return handler


_INSTANCE: Final[Mapping[str, _Kw]] = {
    "state": _Kw(_inst_state),
    "priority": _Kw(_inst_priority),
    "virtual_router_id": _Kw(_set("vrid", _int(1, 255))),
    "interface": _Kw(_inst_interface),
    "advert_int": _Kw(_inst_advert_int),
    "version": _Kw(_inst_version),
    "native_ipv6": _Kw(_inst_native_ipv6),
    "mcast_src_ip": _Kw(_inst_src_ip("mcast_src_ip")),
    "unicast_src_ip": _Kw(_inst_src_ip("unicast_src_ip")),
    "mcast_dst_ip": _Kw(_set("mcast_group", _ip(multicast=True))),
    "track_src_ip": _Kw(_set("track_src_ip", _flag())),
    "unicast_peer": _Kw(_inst_unicast_peer, block=True),
    "unicast_ttl": _Kw(_set("unicast_ttl", _int(0, 255))),
    "unicast_fault_no_peer": _Kw(_set("unicast_fault_no_peer", _flag())),
    "check_unicast_src": _Kw(_set("check_unicast_src", _flag())),
    "v3_checksum_as_v2": _Kw(_set("v3_checksum_as_v2", _bool)),
    "dont_track_primary": _Kw(_set("dont_track_primary", _flag())),
    "use_vmac": _Kw(_inst_use_vmac),
    "virtual_ipaddress": _Kw(_inst_addresses("vips"), block=True),
    "virtual_ipaddress_excluded": _Kw(_inst_addresses("excluded"), block=True),
    "virtual_routes": _Kw(_inst_routes, block=True),
    "virtual_rules": _Kw(_inst_rules, block=True),
    "authentication": _Kw(_inst_authentication, block=True),
    "nopreempt": _Kw(_set("nopreempt", _flag())),
    "preempt": _Kw(_set("nopreempt", _flag(False))),
    "preempt_delay": _Kw(_set("preempt_delay_s", _decimal(0, 1000))),
    "garp_master_delay": _Kw(_set("garp_master_delay_s", _seconds(0, _I32_MAX))),
    "garp_master_repeat": _Kw(_inst_garp_repeat("garp_master_repeat")),
    "garp_master_refresh": _Kw(_set("garp_master_refresh_s", _seconds(0, _I32_MAX))),
    "garp_master_refresh_repeat": _Kw(_inst_garp_repeat("garp_master_refresh_repeat")),
    "garp_lower_prio_delay": _Kw(_set("garp_lower_prio_delay_s", _seconds(0, _I32_MAX))),
    "garp_lower_prio_repeat": _Kw(_inst_garp_repeat("garp_lower_prio_repeat")),
    "down_timer_adverts": _Kw(_set("down_timer_adverts", _int(1, 100))),
    "lower_prio_no_advert": _Kw(_set("lower_prio_no_advert", _bool)),
    "higher_prio_send_advert": _Kw(_set("higher_prio_send_advert", _bool)),
    "skip_check_adv_addr": _Kw(_set("skip_check_adv_addr", _bool)),
    "strict_mode": _Kw(_inst_strict_mode),
    "accept": _Kw(_set("accept", _flag())),
    "no_accept": _Kw(_set("accept", _flag(False))),
    "track_interface": _Kw(_track_block("interfaces", 253, clamp254=True), block=True),
    "track_script": _Kw(_track_block("scripts", 253, clamp254=True), block=True),
    "track_file": _Kw(_track_block("files", 254), block=True),
    "track_process": _Kw(_track_block("processes", 254), block=True),
    "track_bfd": _Kw(_not_acted_kw(_track_block("bfds", 253)), block=True),
    "notify_master": _Kw(_notify("master")),
    "notify_backup": _Kw(_notify("backup")),
    "notify_fault": _Kw(_notify("fault")),
    "notify_stop": _Kw(_notify("stop")),
    "notify_deleted": _Kw(_notify_deleted),
    "notify": _Kw(_notify("generic")),
    "notify_master_rx_lower_pri": _Kw(_notify("master_rx_lower_pri")),
    "notify_priority_changes": _Kw(_set("_notify_priority_changes", _bool)),
    "smtp_alert": _Kw(_set("_smtp_alert", _bool)),
}

# keepalived 2.2.7 instance keywords pykad parses no further than this warning.
_INSTANCE_NOT_ACTED: Final = _words(
    """
    vrf use_vmac_addr vmac_xmit_base use_ipvlan promote_secondaries linkbeat_use_polling
    kernel_rx_buf_size old_unicast_checksum debug garp_extra_if vmac_garp_intvl
    timer_expired_backup owner_ignore_adverts no_virtual_ipaddress lvs_sync_daemon_interface
    """
)


def _top_instance(lw: _Lowering, b: Block, _: _Draft) -> None:
    if len(b.args) != 1:
        lw.error(
            b,
            "vrrp_instance must have a name"
            if not b.args
            else f"vrrp_instance must have exactly one name, got {' '.join(b.args)}",
        )
        return
    name = b.args[0]
    if any(d.name == name for d in lw.instances):
        lw.error(b, f"vrrp instance {name} already defined - skipping", at=b.arg_loc(0))
        return
    d = _Draft(name, b)
    lw.dispatch(b.children or (), _INSTANCE, d, not_acted=_INSTANCE_NOT_ACTED)
    lw.instances.append(d)


# --------------------------------------------------------------------------------------------
# vrrp_script (§4.2). pykad accepts decimal interval/timeout (µs resolution) like keepalived
# HEAD; 2.2.7 takes whole seconds only. 0 becomes 1 with keepalived's message.


def _script_script(lw: _Lowering, b: Block, d: _Draft) -> None:
    s = lw.script(b)
    if s is not None:
        d.fields["script"] = s


def _script_time(name: str) -> Handler:
    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        v = lw.decimal(b, 0, 0, 4294)
        if v is None:
            return
        if v == 0:
            lw.warn(
                b,
                f"({d.name}): vrrp script {b.keyword} must be greater than 0, setting to 1",
                at=b.arg_loc(0),
            )
            v = 1.0
        d.fields[name] = v

    return handler


def _script_weight(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.int_(b, 0, -253, 253, what=f"vrrp_script {d.name} weight")
    if v is None:
        return
    d.fields["weight"] = v
    for j, word in enumerate(b.args[1:], start=1):
        if word in ("reverse", "noreverse"):
            d.fields["reverse"] = word == "reverse"
        else:
            lw.warn(b, f"({d.name}) unknown weight option '{word}' - ignoring", at=b.arg_loc(j))


def _script_count(name: str) -> Handler:
    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        v = lw.int_(b, 0, 1, _I32_MAX, what=f"vrrp script {b.keyword}")
        d.fields[name] = 1 if v is None else v  # keepalived: "invalid, defaulting to 1"

    return handler


def _script_user(lw: _Lowering, b: Block, d: _Draft) -> None:
    if lw.need(b):
        d.fields["_user"] = b.args[0]
        d.fields["_group"] = b.args[1] if len(b.args) > 1 else None


_SCRIPT: Final[Mapping[str, _Kw]] = {
    "script": _Kw(_script_script),
    "interval": _Kw(_script_time("interval_s")),
    "timeout": _Kw(_script_time("timeout_s")),
    "weight": _Kw(_script_weight),
    "rise": _Kw(_script_count("rise")),
    "fall": _Kw(_script_count("fall")),
    "user": _Kw(_script_user),
    "init_fail": _Kw(_set("init_fail", _flag())),
}


def _top_script(lw: _Lowering, b: Block, _: _Draft) -> None:
    if len(b.args) != 1:
        lw.error(b, "vrrp_script must have exactly one name")
        return
    name = b.args[0]
    if name in lw.scripts:
        lw.error(b, f"vrrp_script {name} already defined - skipping", at=b.arg_loc(0))
        return
    d = _Draft(name, b)
    lw.dispatch(b.children or (), _SCRIPT, d)
    script = d.fields.pop("script", None)
    if script is None:
        lw.warn(b, f"No script set for vrrp_script {name} - removing")
        return
    user, group = d.fields.pop("_user", None), d.fields.pop("_group", None)
    if user is not None:
        script = Script(argv=script.argv, user=user, group=group, loc=script.loc)
    lw.scripts[name] = VrrpScript(name=name, script=script, loc=b.loc, **d.fields)


# --------------------------------------------------------------------------------------------
# track_file / vrrp_track_file (§4.3) and vrrp_track_process (§4.4)


def _tf_weight(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.int_(b, 0, -_I32_MAX, _I32_MAX, what="weight")
    if v is None:
        return
    d.fields["weight"] = v
    for j, word in enumerate(b.args[1:], start=1):
        if word in ("reverse", "noreverse"):
            d.fields["reverse"] = word == "reverse"
        else:
            lw.warn(b, f"({d.name}) unknown weight option '{word}' - ignoring", at=b.arg_loc(j))


def _tf_init_file(lw: _Lowering, b: Block, d: _Draft) -> None:
    value = 0
    for j, word in enumerate(b.args):
        if word == "overwrite":
            d.fields["init_file_overwrite"] = True
        else:
            v = values.parse_int(b, j, -_I32_MAX, _I32_MAX, lw.diags, what="init_file")
            if v is not None:
                value = v
    d.fields["init_file"] = value


_TRACK_FILE: Final[Mapping[str, _Kw]] = {
    "file": _Kw(_set("path", _word)),
    "weight": _Kw(_tf_weight),
    "init_file": _Kw(_tf_init_file),
}


def _top_track_file(lw: _Lowering, b: Block, _: _Draft) -> None:
    if len(b.args) != 1:
        lw.error(b, f"{b.keyword} must have exactly one name")
        return
    name = b.args[0]
    if name in lw.track_files:
        lw.error(b, f"track_file {name} already defined - skipping", at=b.arg_loc(0))
        return
    d = _Draft(name, b)
    lw.dispatch(b.children or (), _TRACK_FILE, d)
    if "path" not in d.fields:
        lw.warn(b, f"No file set for track_file {name} - removing")
        return
    lw.track_files[name] = TrackFile(name=name, loc=b.loc, **d.fields)


def _tp_process(lw: _Lowering, b: Block, d: _Draft) -> None:
    if lw.need(b):
        d.fields["process"] = b.args[0]
        d.fields["args"] = tuple(b.args[1:])
        if len(b.args) > 1:
            d.fields["full_command"] = True  # parameters imply matching the command line


def _tp_param_match(lw: _Lowering, b: Block, d: _Draft) -> None:
    if not b.args:
        d.fields["param_match"] = "exact"
    elif b.args[0] in ("initial", "partial"):
        d.fields["param_match"] = b.args[0]
    else:
        lw.error(b, f"({d.name}) unknown param_match '{b.args[0]}'", at=b.arg_loc(0))


def _tp_weight(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.int_(b, 0, -254, 254, what="weight")
    if v is None:
        return
    d.fields["weight"] = v
    if len(b.args) > 1:
        if b.args[1] == "reverse":
            d.fields["reverse"] = True
        else:
            lw.warn(
                b, f"({d.name}) unknown weight option '{b.args[1]}' - ignoring", at=b.arg_loc(1)
            )


def _tp_delay(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.decimal(b, 0, 0.000001, 3600)
    if v is None:
        return
    if b.keyword in ("fork_delay", "delay"):
        d.fields["fork_delay_s"] = v
    if b.keyword in ("terminate_delay", "delay"):
        d.fields["terminate_delay_s"] = v


_TRACK_PROCESS: Final[Mapping[str, _Kw]] = {
    "process": _Kw(_tp_process),
    "param_match": _Kw(_tp_param_match),
    "weight": _Kw(_tp_weight),
    "quorum": _Kw(_set("quorum", _int(1, 65535))),
    "quorum_max": _Kw(_set("quorum_max", _int(0, 65535))),
    "fork_delay": _Kw(_tp_delay),
    "terminate_delay": _Kw(_tp_delay),
    "delay": _Kw(_tp_delay),
    "full_command": _Kw(_set("full_command", _flag())),
}


def _top_track_process(lw: _Lowering, b: Block, _: _Draft) -> None:
    if len(b.args) != 1:
        lw.error(b, "vrrp_track_process must have exactly one name")
        return
    name = b.args[0]
    if name in lw.track_processes:
        lw.error(b, f"vrrp_track_process {name} already defined - skipping", at=b.arg_loc(0))
        return
    d = _Draft(name, b)
    lw.dispatch(b.children or (), _TRACK_PROCESS, d)
    if "process" not in d.fields:
        lw.warn(b, f"No process set for vrrp_track_process {name} - removing")
        return
    qmax = d.fields.get("quorum_max")
    if qmax is not None and qmax != 0 and qmax < d.fields.get("quorum", 1):
        lw.error(
            b,
            f"({name}) quorum_max {qmax} is less than quorum - ignoring quorum_max",
            at=d.seen["quorum_max"].loc,
        )
        del d.fields["quorum_max"]
    lw.track_processes[name] = TrackProcess(name=name, loc=b.loc, **d.fields)


# --------------------------------------------------------------------------------------------
# vrrp_sync_group (§4.1)


def _sg_group(lw: _Lowering, b: Block, d: _Draft) -> None:
    if d.members:
        lw.warn(b, f"Group list already specified for sync group {d.name} - ignoring")
        return
    for line in lw.value_lines(b):
        for j, name in enumerate((line.keyword, *line.args)):
            loc = line.loc if j == 0 else line.arg_loc(j - 1)
            d.members.append((name, loc))


def _sg_global_tracking(lw: _Lowering, b: Block, d: _Draft) -> None:
    lw.warn(
        b,
        f"({d.name}) global_tracking is deprecated. Use track_interface/script/file"
        " on the sync group",
        hint="use 'sync_group_tracking_weight'",
    )
    d.fields["sync_group_tracking_weight"] = True


_SYNC_GROUP: Final[Mapping[str, _Kw]] = {
    "group": _Kw(_sg_group, block=True),
    "track_interface": _INSTANCE["track_interface"],
    "track_script": _INSTANCE["track_script"],
    "track_file": _INSTANCE["track_file"],
    "track_process": _INSTANCE["track_process"],
    "track_bfd": _INSTANCE["track_bfd"],
    "notify_master": _INSTANCE["notify_master"],
    "notify_backup": _INSTANCE["notify_backup"],
    "notify_fault": _INSTANCE["notify_fault"],
    "notify_stop": _INSTANCE["notify_stop"],
    "notify": _INSTANCE["notify"],
    "smtp_alert": _INSTANCE["smtp_alert"],
    "notify_priority_changes": _INSTANCE["notify_priority_changes"],
    "sync_group_tracking_weight": _Kw(_set("sync_group_tracking_weight", _flag())),
    "global_tracking": _Kw(_sg_global_tracking),
}


def _top_sync_group(lw: _Lowering, b: Block, _: _Draft) -> None:
    if len(b.args) != 1:
        lw.error(b, "vrrp_sync_group must have a name - skipping")
        return
    name = b.args[0]
    if any(g.name == name for g in lw.groups):
        lw.error(b, f"vrrp sync group {name} already defined - skipping", at=b.arg_loc(0))
        return
    d = _Draft(name, b)
    lw.dispatch(b.children or (), _SYNC_GROUP, d)
    lw.groups.append(d)


# --------------------------------------------------------------------------------------------
# global_defs (§2)


def _g_notification_email(lw: _Lowering, b: Block, d: _Draft) -> None:
    emails = [w for line in lw.value_lines(b) for w in (line.keyword, *line.args)]
    d.fields["notification_email"] = tuple(emails)


def _g_smtp_server(lw: _Lowering, b: Block, d: _Draft) -> None:
    if not lw.need(b):
        return
    d.fields["smtp_server"] = b.args[0]
    if len(b.args) > 1:
        port = lw.int_(b, 1, 1, 65535, what="smtp_server port")
        if port is not None:
            d.fields["smtp_port"] = port


def _g_smtp_connect_timeout(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.int_(b, 0, 0, _I32_MAX)
    if v is not None:
        d.fields["smtp_connect_timeout_s"] = float(v or 1)  # keepalived: 0 means 1


def _g_vrrp_version(lw: _Lowering, b: Block, d: _Draft) -> None:
    v = lw.int_(b, 0, 2, 3)
    if v is not None:
        d.fields["vrrp_version"] = v


def _g_script_user(lw: _Lowering, b: Block, d: _Draft) -> None:
    if lw.need(b):
        d.fields["script_user"] = b.args[0]
        if len(b.args) > 1:
            d.fields["script_group"] = b.args[1]


def _g_fifo(name: str) -> Handler:
    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        if not lw.need(b):
            return
        old: NotifyFifo | None = d.fields.get(name)
        d.fields[name] = NotifyFifo(
            path=b.args[0],
            script=old.script if old else None,
            user=b.args[1] if len(b.args) > 1 else None,
            group=b.args[2] if len(b.args) > 2 else None,
        )

    return handler


def _g_fifo_script(name: str) -> Handler:
    def handler(lw: _Lowering, b: Block, d: _Draft) -> None:
        s = lw.script(b)
        if s is None:
            return
        old: NotifyFifo | None = d.fields.get(name)
        # the FIFO's path may come later in the block; "" until then, checked at the end
        d.fields[name] = NotifyFifo(
            path=old.path if old else "",
            script=s,
            user=old.user if old else None,
            group=old.group if old else None,
        )
        d.seen[name + "_script"] = b

    return handler


def _g_dynamic_interfaces(lw: _Lowering, b: Block, d: _Draft) -> None:
    if b.args and b.args[0] != "allow_if_changes":
        lw.warn(b, f"unknown dynamic_interfaces option '{b.args[0]}' - ignoring", at=b.arg_loc(0))
    d.fields["dynamic_interfaces"] = True


_GLOBAL: Final[Mapping[str, _Kw]] = {
    "router_id": _Kw(_set("router_id", _word)),
    "notification_email": _Kw(_g_notification_email, block=True),
    "notification_email_from": _Kw(_set("notification_email_from", _word)),
    "smtp_server": _Kw(_g_smtp_server),
    "smtp_helo_name": _Kw(_set("smtp_helo_name", _word)),
    "smtp_connect_timeout": _Kw(_g_smtp_connect_timeout),
    "smtp_alert": _Kw(_set("smtp_alert", _bool)),
    "smtp_alert_vrrp": _Kw(_set("smtp_alert_vrrp", _bool)),
    "smtp_alert_checker": _Kw(_set("smtp_alert_checker", _bool)),
    "no_email_faults": _Kw(_set("no_email_faults", _flag())),
    "vrrp_mcast_group4": _Kw(_set("vrrp_mcast_group4", _ip(4, multicast=True))),
    "vrrp_mcast_group6": _Kw(_set("vrrp_mcast_group6", _ip(6, multicast=True))),
    "default_interface": _Kw(_set("default_interface", _word)),
    "vrrp_garp_master_delay": _Kw(_set("vrrp_garp_master_delay_s", _seconds(0, _I32_MAX))),
    "vrrp_garp_master_repeat": _Kw(_inst_garp_repeat("vrrp_garp_master_repeat")),
    "vrrp_garp_master_refresh": _Kw(_set("vrrp_garp_master_refresh_s", _seconds(0, _I32_MAX))),
    "vrrp_garp_master_refresh_repeat": _Kw(_inst_garp_repeat("vrrp_garp_master_refresh_repeat")),
    "vrrp_garp_lower_prio_delay": _Kw(_set("vrrp_garp_lower_prio_delay_s", _seconds(0, _I32_MAX))),
    "vrrp_garp_lower_prio_repeat": _Kw(_set("vrrp_garp_lower_prio_repeat", _int(0, _I32_MAX))),
    "vrrp_garp_interval": _Kw(_set("vrrp_garp_interval_s", _decimal(0, 1000))),
    "vrrp_gna_interval": _Kw(_set("vrrp_gna_interval_s", _decimal(0, 1000))),
    "vrrp_min_garp": _Kw(_set("vrrp_min_garp", _bool)),
    "vrrp_down_timer_adverts": _Kw(_set("vrrp_down_timer_adverts", _int(1, 100))),
    "vrrp_lower_prio_no_advert": _Kw(_set("vrrp_lower_prio_no_advert", _bool)),
    "vrrp_higher_prio_send_advert": _Kw(_set("vrrp_higher_prio_send_advert", _bool)),
    "vrrp_version": _Kw(_g_vrrp_version),
    "vrrp_check_unicast_src": _Kw(_set("vrrp_check_unicast_src", _flag())),
    "vrrp_skip_check_adv_addr": _Kw(_set("vrrp_skip_check_adv_addr", _flag())),
    "vrrp_strict": _Kw(_set("vrrp_strict", _flag())),
    "v3_checksum_as_v2": _Kw(_set("v3_checksum_as_v2", _bool)),
    "script_user": _Kw(_g_script_user),
    "enable_script_security": _Kw(_set("enable_script_security", _flag())),
    "notify_fifo": _Kw(_g_fifo("notify_fifo")),
    "notify_fifo_script": _Kw(_g_fifo_script("notify_fifo")),
    "vrrp_notify_fifo": _Kw(_g_fifo("vrrp_notify_fifo")),
    "vrrp_notify_fifo_script": _Kw(_g_fifo_script("vrrp_notify_fifo")),
    "lvs_notify_fifo": _Kw(_g_fifo("lvs_notify_fifo")),
    "lvs_notify_fifo_script": _Kw(_g_fifo_script("lvs_notify_fifo")),
    "vrrp_notify_priority_changes": _Kw(_set("vrrp_notify_priority_changes", _bool)),
    "fifo_write_vrrp_states_on_reload": _Kw(_set("fifo_write_vrrp_states_on_reload", _flag())),
    "dynamic_interfaces": _Kw(_g_dynamic_interfaces),
    "vrrp_startup_delay": _Kw(_set("vrrp_startup_delay_s", _decimal(0, 3600))),
    "log_unknown_vrids": _Kw(_set("log_unknown_vrids", _flag())),
    "lvs_flush": _Kw(_set("lvs_flush", _flag())),
    "lvs_flush_on_stop": _Kw(_set("lvs_flush_on_stop", _flag())),
    "state_dump_file": _Kw(_set("state_dump_file", _word)),
    "stats_dump_file": _Kw(_set("stats_dump_file", _word)),
    "json_dump_file": _Kw(_set("json_dump_file", _word)),
}

# global_defs keywords of keepalived 2.2.7 (and a few of HEAD) that pykad does not act on.
_GLOBAL_NOT_ACTED: Final = _words(
    """
    vrrp_iptables vrrp_ipsets nftables nftables_priority nftables_counters nftables_ifindex
    vrrp_priority vrrp_rt_priority vrrp_no_swap vrrp_cpu_affinity vrrp_rlimit_rttime
    checker_priority checker_rt_priority checker_no_swap checker_cpu_affinity
    checker_rlimit_rttime bfd_priority bfd_rt_priority bfd_no_swap bfd_cpu_affinity
    bfd_rlimit_rttime max_auto_priority min_auto_priority_delay vrrp_garp_extra_if
    vrrp_vmac_garp_intvl vmac_prefix vmac_addr_prefix vrrp_rx_bufs_policy
    vrrp_rx_bufs_multiplier vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force
    vrrp_netlink_monitor_rcv_bufs vrrp_netlink_monitor_rcv_bufs_force
    lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
    lvs_netlink_monitor_rcv_bufs_force disable_local_igmp lvs_sync_daemon lvs_timeouts
    lvs_id random_seed umask child_wait_time startup_script startup_script_timeout
    shutdown_script shutdown_script_timeout instance use_pid_dir net_namespace
    net_namespace_ipvs namespace_with_ipsets process_names process_name vrrp_process_name
    checker_process_name bfd_process_name reload_check_config reload_time_file reload_repeat
    reload_file config_save_dir tmp_config_directory data_use_instance enable_snmp_vrrp
    enable_snmp_keepalived enable_snmp_checker enable_snmp_rfc enable_snmp_rfcv2
    enable_snmp_rfcv3 enable_traps snmp_socket enable_dbus dbus_service_name
    linkbeat_use_polling vrrp_delay_after_boot vrrp_owner_ignore_adverts json_version
    checker_log_all_failures no_checker_emails vrrp_dont_track_primary
    vrrp_skip_check_adv_addr_all vrrp_track_process_delay vrrp_dbus_delay log_file
    smtp_alert_bfd vrrp_no_unicast_checksum_compat lvs_process_name
    """
)
# Handled by the front end (pykad.config.source) before the tree is built.
_GLOBAL_FRONT_END: Final = frozenset({"include_check"})


def _top_global_defs(lw: _Lowering, b: Block, _: _Draft) -> None:
    if b.args:
        lw.warn(b, f"Block global_defs has extra parameters {' '.join(b.args)}", at=b.arg_loc(0))
    children = [c for c in b.children or () if c.keyword not in _GLOBAL_FRONT_END]
    lw.dispatch(children, _GLOBAL, lw.globals, not_acted=_GLOBAL_NOT_ACTED)


# --------------------------------------------------------------------------------------------
# Top level


def _top_static_addresses(lw: _Lowering, b: Block, d: _Draft) -> None:
    for line in lw.value_lines(b):
        va = _address_line(lw, line, owner="static_ipaddress")
        if va is not None:
            d.vips.append(va)


def _top_static_routes(lw: _Lowering, b: Block, d: _Draft) -> None:
    for line in lw.value_lines(b):
        r = _route_line(lw, line)
        if r is not None:
            d.routes.append(r)


def _top_static_rules(lw: _Lowering, b: Block, d: _Draft) -> None:
    for line in lw.value_lines(b):
        r = _rule_line(lw, line)
        if r is not None:
            d.rules.append(r)


def _top_not_acted(lw: _Lowering, b: Block, _: _Draft) -> None:
    lw.warn(b, _not_acted(b.keyword))


def _top_lvs(lw: _Lowering, b: Block, _: _Draft) -> None:
    lw.lvs_blocks.append(b)


def _static_top(kw: str) -> Callable[[_Lowering, Block, _Draft], None]:
    """Top-level handlers that take the lowering's shared drafts rather than their own."""
    target: Callable[[_Lowering, Block, _Draft], None] = {
        "static_ipaddress": _top_static_addresses,
        "static_routes": _top_static_routes,
        "static_rules": _top_static_rules,
    }[kw]

    def handler(lw: _Lowering, b: Block, _: _Draft) -> None:
        target(lw, b, lw.static)

    return handler


_TOP: Final[Mapping[str, _Kw]] = {
    "global_defs": _Kw(_top_global_defs, block=True),
    "vrrp_instance": _Kw(_top_instance, block=True),
    "vrrp_script": _Kw(_top_script, block=True),
    "vrrp_sync_group": _Kw(_top_sync_group, block=True),
    "track_file": _Kw(_top_track_file, block=True),
    "vrrp_track_file": _Kw(_top_track_file, block=True),
    "vrrp_track_process": _Kw(_top_track_process, block=True),
    "static_ipaddress": _Kw(_static_top("static_ipaddress"), block=True),
    "static_routes": _Kw(_static_top("static_routes"), block=True),
    "static_rules": _Kw(_static_top("static_rules"), block=True),
    "garp_group": _Kw(_top_not_acted, block=True),
    "linkbeat_interfaces": _Kw(_top_not_acted, block=True),
    "interface_up_down_delays": _Kw(_top_not_acted, block=True),
    "track_group": _Kw(_top_not_acted, block=True),
    "bfd_instance": _Kw(_top_not_acted, block=True),
    "virtual_server": _Kw(_top_lvs, block=True),
    "virtual_server_group": _Kw(_top_lvs, block=True),
    "SSL": _Kw(_top_lvs, block=True),
}


# --------------------------------------------------------------------------------------------
# Finalising: defaults from global_defs, keepalived's fix-ups, cross-checks.


def _globals(lw: _Lowering) -> GlobalDefs:
    f = lw.globals.fields
    if f.get("vrrp_min_garp"):
        # §2: vrrp_min_garp sets what is not otherwise set: one GARP, no second burst, no
        # refresh (refresh_repeat stays 1: with refresh 0 it is never used)
        f.setdefault("vrrp_garp_master_repeat", 1)
        f.setdefault("vrrp_garp_master_delay_s", 0.0)
        f.setdefault("vrrp_garp_master_refresh_s", 0.0)
    for name in ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"):
        fifo: NotifyFifo | None = f.get(name)
        if fifo is not None and not fifo.path:
            lw.error(lw.globals.seen[name + "_script"], f"{name}_script given without {name}")
            del f[name]
    return GlobalDefs(**f)


def _inst_loc(d: _Draft, keyword: str) -> Block:
    """The line that set ``keyword``, else the instance header, for locating a fix-up."""
    return d.seen.get(keyword, d.block)


def _finalise_instance(lw: _Lowering, d: _Draft, g: GlobalDefs) -> None:
    """Apply keepalived's defaults and fix-ups (vrrp_complete_instance) to ``d.fields``."""
    f = d.fields
    name = d.name
    if "vrid" not in f:
        lw.error(
            d.block,
            f"({name}) the virtual router id must be set",
            fatal=True,
            hint="add 'virtual_router_id N' (1..255) to the instance",
        )
        d.rejected = True
    if "interface" not in f and not ("unicast_src_ip" in f and d.peers):
        lw.error(
            d.block,
            f"({name}) Unknown interface! - an instance needs 'interface'"
            " (or unicast_src_ip with unicast_peer)",
            fatal=True,
        )
        d.rejected = True
    f.setdefault("interface", None)

    family = d.family or 4
    f["family"] = family
    strict = f.get("strict", g.vrrp_strict)
    f["strict"] = strict

    # Version: instance, else global; IPv6 is VRRPv3 only (RFC 5798 §1; §3.1)
    version = f.get("version", g.vrrp_version)
    if family == 6 and version == 2:
        if "version" in d.seen:
            lw.error(
                d.seen["version"],
                f"({name}) IPv6 requires VRRP version 3; 'version 2' conflicts - using version 3",
            )
        version = 3
    f["version"] = version

    # Priority and state derive from each other (§3.1)
    state_set = "initial_state" in f
    if "priority" not in f:
        f["priority"] = 255 if f.get("initial_state") is InitialState.MASTER else 100
    if not state_set:
        f["initial_state"] = InitialState.MASTER if f["priority"] == 255 else InitialState.BACKUP
    if strict and f["initial_state"] is InitialState.MASTER and f["priority"] != 255:
        lw.warn(_inst_loc(d, "state"), f"({name}) State MASTER must match being address owner")
        f["initial_state"] = InitialState.BACKUP

    _finalise_advert_int(lw, d, version)
    _finalise_auth(lw, d, version, strict, family)
    _finalise_preempt(lw, d, strict)
    _finalise_timers(lw, d, g, strict)
    _finalise_accept(lw, d, version, strict)
    _finalise_addresses(lw, d, version=version, strict=strict, family=family)
    _finalise_unicast(lw, d, family)
    vips: tuple[VirtualAddress, ...] = f["virtual_addresses"]
    if family == 6 and vips and not f["unicast_peers"] and not vips[0].ip.is_link_local:
        # RFC 5798 7.1: an IPv6 advert lists the link-local address first; keepalived only
        # logs this, and refuses it in strict mode
        message = f"({name}) the first IPv6 VIP {vips[0].ip} should be link-local (fe80::/10)"
        if strict:
            lw.error(_inst_loc(d, "virtual_ipaddress"), message, fatal=True)
            d.rejected = True
        else:
            lw.warn(_inst_loc(d, "virtual_ipaddress"), message)
    f.setdefault("mcast_group", None)
    if f["mcast_group"] is not None and f["mcast_group"].version != family:
        lw.error(_inst_loc(d, "mcast_dst_ip"), f"({name}) mcast_dst_ip must be IPv{family}")
        f["mcast_group"] = None
    f["notify"] = Notify(
        **d.notify,
        priority_changes=f.pop("_notify_priority_changes", g.vrrp_notify_priority_changes),
        smtp_alert=f.pop(
            "_smtp_alert",
            g.smtp_alert_vrrp if g.smtp_alert_vrrp is not None else bool(g.smtp_alert),
        ),
    )


def _finalise_advert_int(lw: _Lowering, d: _Draft, version: int) -> None:
    """v2 whole seconds; v3 10 ms steps below 40.96 s (§3.1, RFC 5798 5.2.7)."""
    us: int = d.fields.pop("_advert_us", _US)
    at = _inst_loc(d, "advert_int")
    if version == 2:
        if us % _US:
            lw.warn(
                at,
                f"({d.name}) VRRPv2 advertisement interval {us / _US:.6f}s must be an"
                " integer. rounding",
            )
            us = max(_US, (us + _US // 2) // _US * _US)
        cs = us // 10_000
    else:
        if us % 10_000:
            lw.warn(
                at,
                f"({d.name}) VRRPv3 advertisement interval {us / _US:.6f}s must be in"
                " units of 10ms - rounding",
            )
            us = max(10_000, (us + 5_000) // 10_000 * 10_000)
        cs = us // 10_000
        if cs >= 4096:  # 12-bit field
            lw.warn(
                at,
                f"({d.name}) VRRPv3 advertisement interval {us / _US:.2f}s is out of"
                " range. Must be less than 40.96s. Setting to 40.95s",
            )
            cs = 4095
    d.fields["advert_int_cs"] = cs


def _finalise_auth(lw: _Lowering, d: _Draft, version: int, strict: bool, family: int) -> None:
    auth: Auth | None = d.fields.get("auth")
    if auth is None:
        return
    at = _inst_loc(d, "authentication")
    reason = None
    if strict:
        reason = "Strict mode does not support authentication. Ignoring."
    elif version == 3:
        reason = "VRRP version 3 does not support authentication. Ignoring."
    elif auth.type is AuthType.AH and family == 6:
        reason = "AH authentication is not supported with IPv6. Ignoring."
    if reason is not None:
        lw.warn(at, f"({d.name}) {reason}")
        d.fields["auth"] = Auth()
        return
    if (
        auth.type is AuthType.AH
        and d.fields["initial_state"] is InitialState.MASTER
        and d.fields["priority"] != 255
    ):
        lw.warn(
            at,
            f"({d.name}) AH authentication with state MASTER and priority < 255"
            " - starting as BACKUP",
        )
        d.fields["initial_state"] = InitialState.BACKUP


def _finalise_preempt(lw: _Lowering, d: _Draft, strict: bool) -> None:
    f = d.fields
    if f.get("nopreempt"):
        if f["priority"] == 255:
            lw.warn(
                _inst_loc(d, "nopreempt"),
                f"({d.name}) nopreempt is incompatible with priority 255. resetting nopreempt",
            )
            f["nopreempt"] = False
        elif f["initial_state"] is InitialState.MASTER:
            lw.warn(
                _inst_loc(d, "nopreempt"),
                f"({d.name}) Warning - nopreempt will not work"
                " with initial state MASTER - clearing",
            )
            f["nopreempt"] = False
    if f.get("preempt_delay_s"):
        at = _inst_loc(d, "preempt_delay")
        reason = None
        if f.get("nopreempt"):
            reason = "nopreempt mode"
        elif strict:
            reason = "strict mode"
        elif f["initial_state"] is InitialState.MASTER:
            reason = "initial state MASTER"
        if reason is not None:
            lw.warn(at, f"({d.name}) preempt_delay is incompatible with {reason} - resetting")
            f["preempt_delay_s"] = 0.0


def _finalise_timers(lw: _Lowering, d: _Draft, g: GlobalDefs, strict: bool) -> None:
    """GARP schedule and advert options inherit global_defs; strict mode overrides (§3.7)."""
    f = d.fields
    f.setdefault("garp_master_delay_s", g.vrrp_garp_master_delay_s)
    f.setdefault("garp_master_repeat", g.vrrp_garp_master_repeat)
    f.setdefault("garp_master_refresh_s", g.vrrp_garp_master_refresh_s)
    f.setdefault("garp_master_refresh_repeat", g.vrrp_garp_master_refresh_repeat)
    lp_delay = f.get("garp_lower_prio_delay_s", g.vrrp_garp_lower_prio_delay_s)
    lp_repeat = f.get("garp_lower_prio_repeat", g.vrrp_garp_lower_prio_repeat)
    f["garp_interval_s"] = g.vrrp_garp_interval_s
    f["gna_interval_s"] = g.vrrp_gna_interval_s
    f.setdefault("down_timer_adverts", g.vrrp_down_timer_adverts)
    f.setdefault("lower_prio_no_advert", g.vrrp_lower_prio_no_advert)
    f.setdefault("higher_prio_send_advert", g.vrrp_higher_prio_send_advert)
    f.setdefault("skip_check_adv_addr", g.vrrp_skip_check_adv_addr)
    f.setdefault("check_unicast_src", g.vrrp_check_unicast_src)
    f.setdefault("v3_checksum_as_v2", g.v3_checksum_as_v2)
    if strict:
        if lp_repeat or lp_delay:
            lw.warn(
                _inst_loc(d, "garp_lower_prio_repeat"),
                f"({d.name}) Strict mode requires no repeat garps. resetting",
            )
        lp_repeat, lp_delay = 0, 0.0
        if f["down_timer_adverts"] != 3:
            lw.warn(
                _inst_loc(d, "down_timer_adverts"),
                f"({d.name}) Strict mode requires down_timer_adverts 3. resetting",
            )
            f["down_timer_adverts"] = 3
        if not f["lower_prio_no_advert"] and "lower_prio_no_advert" in d.seen:
            lw.warn(
                d.seen["lower_prio_no_advert"],
                f"({d.name}) Strict mode requires lower_prio_no_advert. resetting",
            )
        f["lower_prio_no_advert"] = True
        if f["higher_prio_send_advert"]:
            lw.warn(
                _inst_loc(d, "higher_prio_send_advert"),
                f"({d.name}) Strict mode does not allow higher_prio_send_advert. resetting",
            )
            f["higher_prio_send_advert"] = False
    f["garp_lower_prio_delay_s"] = float(f["garp_master_delay_s"] if lp_delay is None else lp_delay)
    f["garp_lower_prio_repeat"] = f["garp_master_repeat"] if lp_repeat is None else lp_repeat


def _finalise_accept(lw: _Lowering, d: _Draft, version: int, strict: bool) -> None:
    f = d.fields
    if "accept" not in f:
        f["accept"] = f["priority"] == 255 or not strict
    elif strict and version == 2 and f["accept"] and f["priority"] != 255:
        lw.warn(
            _inst_loc(d, "accept"),
            f"({d.name}) Strict mode VRRPv2 does not allow accept"
            " mode for a non address owner - resetting to no_accept",
        )
        f["accept"] = False


def _max_vips(version: int, family: int, auth: Auth) -> int:
    """Addresses that fit one advert in a 1500-byte frame (§3.2)."""
    if family == 6:
        return min(255, (1500 - 14 - 40 - 8) // 16)
    room = 1500 - 14 - 20 - 8
    if version == 2:
        room -= 8
    if auth.type is AuthType.AH:
        room -= 24
    return min(255, room // 4)


def _finalise_addresses(
    lw: _Lowering, d: _Draft, *, version: int, strict: bool, family: int
) -> None:
    vips = d.vips
    auth: Auth = d.fields.get("auth", Auth())
    limit = _max_vips(version, family, auth)
    if len(vips) > limit:
        lw.warn(
            _inst_loc(d, "virtual_ipaddress"),
            f"({d.name}) {len(vips)} VIPs do not fit in an advert; the last"
            f" {len(vips) - limit} are moved to virtual_ipaddress_excluded",
        )
        d.excluded[:0] = vips[limit:]
        del vips[limit:]
    if not vips:
        if version == 3 or family == 6 or strict:
            lw.error(d.block, f"({d.name}) No VIP specified; at least one is required", fatal=True)
            d.rejected = True
        else:
            lw.warn(d.block, f"({d.name}) No VIP specified; at least one is sensible")
    d.fields["virtual_addresses"] = tuple(vips)
    d.fields["excluded_addresses"] = tuple(d.excluded)
    d.fields["virtual_routes"] = tuple(d.routes)
    d.fields["virtual_rules"] = tuple(d.rules)


def _finalise_unicast(lw: _Lowering, d: _Draft, family: int) -> None:
    f = d.fields
    peers: list[UnicastPeer] = []
    for p in d.peers:
        if p.address.version != family:
            lw.diags.append(
                error(
                    p.loc,
                    f"Configuration error: VRRP instance[{d.name}] and unicast peer address"
                    f"[{p.address}] MUST be of the same family - skipping",
                )
            )
            continue
        peers.append(p)
    f["unicast_peers"] = tuple(peers)
    if "unicast_ttl" in f and not peers:
        lw.warn(
            _inst_loc(d, "unicast_ttl"),
            f"({d.name}) Cannot use unicast_ttl without unicast peers - resetting",
        )
        del f["unicast_ttl"]


# ---- tracking ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Resolved:
    """Track references of one instance, resolved against the defined objects."""

    interfaces: list[tuple[TrackInterface, bool]]  # (entry, weight given explicitly)
    scripts: list[tuple[TrackRef, bool]]
    files: list[tuple[TrackRef, bool]]
    processes: list[tuple[TrackRef, bool]]
    bfds: list[tuple[TrackRef, bool]]


def _resolve_tracks(lw: _Lowering, owner: str, t: _Tracks, own_if: str | None) -> _Resolved:
    def ref(
        entries: list[_TrackEntry], defined: Mapping[str, Any] | None, what: str
    ) -> list[tuple[TrackRef, bool]]:
        out: list[tuple[TrackRef, bool]] = []
        for e in entries:
            obj = defined.get(e.name) if defined is not None else None
            if defined is not None and obj is None:
                lw.diags.append(
                    warning(
                        e.loc,
                        f"({owner}) track {what} {e.name} not found, ignoring...",
                        hint=did_you_mean(e.name, defined),
                    )
                )
                continue
            weight = e.weight if e.weight is not None else getattr(obj, "weight", 0)
            reverse = e.reverse if e.reverse is not None else getattr(obj, "reverse", False)
            out.append(
                (
                    TrackRef(name=e.name, weight=weight, reverse=bool(reverse), loc=e.loc),
                    e.weight is not None,
                )
            )
        return out

    interfaces: list[tuple[TrackInterface, bool]] = []
    for e in t.interfaces:
        if own_if is not None and e.name == own_if and not e.weight:
            lw.diags.append(
                warning(
                    e.loc,
                    f"({owner}) track_interface {e.name} is the"
                    " instance's own interface - ignoring",
                )
            )
            continue
        interfaces.append(
            (
                TrackInterface(
                    name=e.name, weight=e.weight or 0, reverse=bool(e.reverse), loc=e.loc
                ),
                e.weight is not None,
            )
        )
    return _Resolved(
        interfaces=interfaces,
        scripts=ref(t.scripts, lw.scripts, "script"),
        files=ref(t.files, lw.track_files, "file"),
        processes=ref(t.processes, lw.track_processes, "process"),
        bfds=ref(t.bfds, None, "bfd"),
    )


def _drop_weighted(
    lw: _Lowering, owner: str, r: _Resolved, why: str, *, files_default_to_zero: bool
) -> None:
    """Neutralise weighted trackers (priority 255 owner, or sync group members) (§4.1, §4.3)."""
    kept_if: list[tuple[TrackInterface, bool]] = []
    for ti, explicit in r.interfaces:
        if ti.weight:
            if why == "SYNC group":
                lw.diags.append(
                    warning(
                        ti.loc,
                        f"({owner}) ignoring {ti.name} tracked interface weight due to {why}",
                    )
                )
                kept_if.append(
                    (TrackInterface(name=ti.name, reverse=ti.reverse, loc=ti.loc), explicit)
                )
            else:
                lw.diags.append(
                    warning(ti.loc, f"({owner}) ignoring {ti.name} tracked interface due to {why}")
                )
            continue
        kept_if.append((ti, explicit))
    r.interfaces = kept_if
    for attr, what in (("scripts", "script"), ("processes", "process"), ("bfds", "bfd")):
        kept: list[tuple[TrackRef, bool]] = []
        for tr, explicit in getattr(r, attr):
            if tr.weight:
                lw.diags.append(
                    warning(
                        tr.loc,
                        f"({owner}) ignoring tracked {what} {tr.name} with weights due to {why}",
                    )
                )
                continue
            kept.append((tr, explicit))
        setattr(r, attr, kept)
    kept_files: list[tuple[TrackRef, bool]] = []
    for tr, explicit in r.files:
        if tr.weight:
            if files_default_to_zero and not explicit and tr.weight == 1:
                lw.diags.append(
                    warning(
                        tr.loc,
                        f"({owner}) ignoring weight from tracked file"
                        f" {tr.name} due to {why}. specify weight 0",
                    )
                )
                kept_files.append(
                    (TrackRef(name=tr.name, reverse=tr.reverse, loc=tr.loc), explicit)
                )
            else:
                lw.diags.append(
                    warning(
                        tr.loc,
                        f"({owner}) ignoring tracked file {tr.name} with weights due to {why}",
                    )
                )
            continue
        kept_files.append((tr, explicit))
    r.files = kept_files


def _apply_tracks(f: dict[str, Any], r: _Resolved) -> None:
    f["track_interfaces"] = tuple(t for t, _ in r.interfaces)
    f["track_scripts"] = tuple(t for t, _ in r.scripts)
    f["track_files"] = tuple(t for t, _ in r.files)
    f["track_processes"] = tuple(t for t, _ in r.processes)
    f["track_bfds"] = tuple(t for t, _ in r.bfds)


# ---- sync groups ---------------------------------------------------------------------------


def _finalise_groups(
    lw: _Lowering, instances: Mapping[str, _Draft], resolved: Mapping[str, _Resolved]
) -> list[VrrpSyncGroup]:
    owner_of: dict[str, str] = {}
    out: list[VrrpSyncGroup] = []
    for gd in lw.groups:
        members: list[str] = []
        for name, loc in gd.members:
            if name not in instances:
                lw.diags.append(
                    warning(
                        loc,
                        f"Virtual router {name} specified in sync group"
                        f" {gd.name} doesn't exist - ignoring",
                        hint=did_you_mean(name, instances),
                    )
                )
                continue
            if name in owner_of:
                lw.diags.append(
                    warning(
                        loc,
                        f"Virtual router {name} cannot exist in more than"
                        f" one sync group ({owner_of[name]}); ignoring it in"
                        f" {gd.name}",
                    )
                )
                continue
            if name in members:
                lw.diags.append(
                    warning(
                        loc,
                        f"Virtual router {name} listed twice in sync group {gd.name} - ignoring",
                    )
                )
                continue
            members.append(name)
        if not members:
            lw.warn(gd.block, f"Sync group {gd.name} has no virtual router(s) - removing")
            continue
        if len(members) == 1:
            lw.warn(
                gd.block,
                f"Sync group {gd.name} has only 1 virtual router(s) - this"
                " probably isn't what you want",
            )
        for name in members:
            owner_of[name] = gd.name
        tracking_weight = bool(gd.fields.get("sync_group_tracking_weight", False))
        gr = _resolve_tracks(lw, gd.name, gd.tracks, None)
        if any(instances[m].fields["priority"] == 255 for m in members):
            # §4.1: a member is address owner -> weighted group trackers act as weight 0
            _zero_weights(gr)
        for name in members:
            inst = instances[name]
            inst.fields["sync_group"] = gd.name
            if not tracking_weight:
                _drop_weighted(lw, name, resolved[name], "SYNC group", files_default_to_zero=True)
            _attach_group_tracks(resolved[name], gr)
        g_fields: dict[str, Any] = {}
        _apply_tracks(g_fields, gr)
        out.append(
            VrrpSyncGroup(
                name=gd.name,
                members=tuple(members),
                notify=Notify(
                    **gd.notify,
                    priority_changes=gd.fields.get("_notify_priority_changes", False),
                    smtp_alert=gd.fields.get("_smtp_alert", False),
                ),
                sync_group_tracking_weight=tracking_weight,
                loc=gd.loc,
                **g_fields,
            )
        )
    return out


def _attach_group_tracks(member: _Resolved, group: _Resolved) -> None:
    """§4.1: the group's tracking objects are attached to every member instance.

    The machine only reads its own instance's ``track_*`` fields, so this is where group
    tracking takes effect. A member's own entry for the same object wins (keepalived keeps
    the first and ignores the duplicate).
    """
    for attr in ("interfaces", "scripts", "files", "processes", "bfds"):
        mine = getattr(member, attr)
        names = {t.name for t, _ in mine}
        mine.extend(entry for entry in getattr(group, attr) if entry[0].name not in names)


def _zero_weights(r: _Resolved) -> None:
    r.interfaces = [
        (TrackInterface(name=t.name, reverse=t.reverse, loc=t.loc), e) for t, e in r.interfaces
    ]
    for attr in ("scripts", "files", "processes", "bfds"):
        setattr(
            r,
            attr,
            [(TrackRef(name=t.name, reverse=t.reverse, loc=t.loc), e) for t, e in getattr(r, attr)],
        )


def _duplicate_vrids(lw: _Lowering, instances: Sequence[VrrpInstance]) -> None:
    """RFC 5798 5.2.3: a VRID identifies one router per LAN (interface) and family."""
    seen: dict[tuple[str | None, int, int], VrrpInstance] = {}
    for inst in instances:
        key = (inst.interface, inst.family, inst.vrid)
        first = seen.get(key)
        if first is None:
            seen[key] = inst
            continue
        where = f" on interface {inst.interface}" if inst.interface else ""
        lw.diags.append(
            error(
                inst.loc,
                f"{first.name} and {inst.name} both use VRID {inst.vrid} with IPv{inst.family}"
                f"{where}",
                hint=f"{first.name} is defined at {first.loc}",
            )
        )
        lw.fatal = True


# --------------------------------------------------------------------------------------------
# Entry points


def lower(blocks: Sequence[Block]) -> tuple[Config | None, list[Diagnostic]]:
    """Lower the top-level blocks; never raises. See the module docstring for ``None``."""
    lw = _Lowering()
    # global_defs first: instance defaults depend on it wherever it appears in the file
    ordered = [b for b in blocks if b.keyword == "global_defs"]
    ordered += [b for b in blocks if b.keyword != "global_defs"]
    lw.dispatch(ordered, _TOP, lw.static)
    g = _globals(lw)

    drafts: dict[str, _Draft] = {}
    resolved: dict[str, _Resolved] = {}
    for d in lw.instances:
        _finalise_instance(lw, d, g)
        r = _resolve_tracks(lw, d.name, d.tracks, d.fields["interface"])
        if d.fields["priority"] == 255:
            _drop_weighted(lw, d.name, r, "address owner", files_default_to_zero=False)
        if not d.rejected:
            drafts[d.name] = d
            resolved[d.name] = r
    groups = _finalise_groups(lw, drafts, resolved)

    instances: list[VrrpInstance] = []
    for name, d in drafts.items():
        _apply_tracks(d.fields, resolved[name])
        instances.append(VrrpInstance(name=name, loc=d.loc, **d.fields))
    _duplicate_vrids(lw, instances)
    _unused_objects(lw, instances, groups)

    lvs = _lower_lvs(lw)
    static = StaticConfig(
        addresses=tuple(
            va if va.dev is not None else _with_dev(va, g.default_interface)
            for va in lw.static.vips
        ),
        routes=tuple(lw.static.routes),
        rules=tuple(lw.static.rules),
    )
    if lw.fatal:
        return None, lw.diags
    return (
        Config(
            global_defs=g,
            vrrp_instances=tuple(instances),
            vrrp_scripts=tuple(lw.scripts.values()),
            sync_groups=tuple(groups),
            track_files=tuple(lw.track_files.values()),
            track_processes=tuple(lw.track_processes.values()),
            static=static,
            lvs=lvs,
        ),
        lw.diags,
    )


def _with_dev(va: VirtualAddress, dev: str) -> VirtualAddress:
    return replace(va, dev=dev)


def _unused_objects(
    lw: _Lowering, instances: Sequence[VrrpInstance], groups: Sequence[VrrpSyncGroup]
) -> None:
    """keepalived: "Warning - script NAME is not used" (removed, never run) (§4.2)."""
    used = {t.name for i in instances for t in i.track_scripts}
    used |= {t.name for g in groups for t in g.track_scripts}
    for name, s in list(lw.scripts.items()):
        if name not in used:
            lw.diags.append(warning(s.loc, f"Warning - script {name} is not used"))
            del lw.scripts[name]


def _lower_lvs(lw: _Lowering) -> LvsConfig:
    if not lw.lvs_blocks:
        return LvsConfig()
    from pykad.config import lower_lvs  # only configs with LVS blocks pay for its import

    return lower_lvs.lower_lvs(lw.lvs_blocks, lw.diags)


def check_interfaces(config: Config, existing: Collection[str]) -> list[Diagnostic]:
    """``Status.BAD_IF`` errors for interfaces ``config`` names that ``existing`` lacks.

    keepalived refuses to run the VRRP process on a missing instance interface unless
    ``dynamic_interfaces`` is set (§1.10 "Non-existent interface specified in
    configuration"); a tracked or VIP interface that is missing is reported too.
    """
    if config.global_defs.dynamic_interfaces:
        return []
    out: list[Diagnostic] = []

    def missing(name: str, loc: SourceLoc, what: str) -> None:
        out.append(
            error(
                loc,
                f"interface {name} {what} doesn't exist",
                hint=did_you_mean(name, existing),
                status=Status.BAD_IF,
            )
        )

    for inst in config.vrrp_instances:
        if inst.interface is not None and inst.interface not in existing:
            missing(inst.interface, inst.loc, f"for vrrp_instance {inst.name}")
        for va in (*inst.virtual_addresses, *inst.excluded_addresses):
            if va.dev is not None and va.dev not in existing:
                missing(va.dev, va.loc, f"for address {va.ip} of {inst.name}")
        for ti in inst.track_interfaces:
            if ti.name not in existing:
                missing(ti.name, ti.loc, f"tracked by {inst.name}")
        for r in inst.virtual_routes:
            if r.dev is not None and r.dev not in existing:
                missing(r.dev, r.loc, f"for a virtual route of {inst.name}")
    for group in config.sync_groups:
        for ti in group.track_interfaces:
            if ti.name not in existing:
                missing(ti.name, ti.loc, f"tracked by sync group {group.name}")
    for va in config.static.addresses:
        if va.dev is not None and va.dev not in existing:
            missing(va.dev, va.loc, f"for static address {va.ip}")
    return out
