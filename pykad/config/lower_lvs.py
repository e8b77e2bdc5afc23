"""Lowering of the LVS side (spec §9): ``virtual_server_group``, ``virtual_server``, ``SSL``.

Called by :func:`pykad.config.lower.lower` with the top-level blocks whose keyword is one of
those. Like the VRRP lowering it never raises: every problem becomes a located
:class:`~pykad.config.diagnostics.Diagnostic` and the walk goes on.

Two passes per virtual server, mirroring keepalived (``check_parser.c`` builds,
``validate_check_config`` fixes up):

1. *Parse* each keyword into a mutable draft, with keepalived's value ranges. An invalid value
   is an error and the keyword is ignored (keepalived's "... invalid - ignoring").
2. *Resolve*: keepalived's defaulting and fix-up messages become warnings that change the
   model the same way (no scheduler -> ``wlc``, no forwarding method -> NAT, no protocol ->
   UDP, duplicate real servers removed, quorum clamped to the total weight, hysteresis below
   quorum, ports reconciled), then the inheritance VS -> RS -> checker (spec §9.3-9.4) so each
   checker in the model holds effective values.

Where keepalived is order-dependent by accident (``sh-port`` before ``lvs_sched sh`` is
rejected) or wraps an unsigned value (hysteresis ``quorum - 1`` with a quorum of 0), pykad
checks after the whole block and clamps instead.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pykad.config import diagnostics as dg
from pykad.config.diagnostics import Diagnostic, SourceLoc
from pykad.config.model import GlobalDefs, Script
from pykad.config.model_lvs import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_DELAY_LOOP_S,
    DEFAULT_SCHEDULER,
    DNS_TYPES,
    IPVS_WEIGHT_LIMIT,
    PERSISTENCE_DEFAULT_S,
    PERSISTENCE_MAX_S,
    SCHEDULERS,
    BfdCheck,
    Checker,
    DnsCheck,
    FileCheck,
    Forwarding,
    ForwardingMethod,
    HttpCheck,
    HttpProtocol,
    HttpUrl,
    IPAddress,
    LvsConfig,
    MiscCheck,
    PingCheck,
    Protocol,
    RealServer,
    SmtpCheck,
    SorryServer,
    SslConfig,
    StatusRange,
    TcpCheck,
    TunnelChecksum,
    TunnelType,
    UdpCheck,
    VirtualServer,
    VirtualServerGroup,
    VsgAddressRange,
    VsgFwmark,
)
from pykad.config.scriptwords import ScriptQuoteError, split
from pykad.config.tree import Block
from pykad.config.values import (
    ip_address,
    missing_parameter,
    parse_bool,
    parse_decimal,
    parse_int,
)

__all__ = ["TOP_LEVEL_KEYWORDS", "lower_lvs"]

TOP_LEVEL_KEYWORDS = ("virtual_server_group", "virtual_server", "SSL")

UINT_MAX = 4_294_967_295
TIMER_MAX_S = UINT_MAX / 1_000_000  # keepalived keeps timers in µs in 32 bits
UNLIMITED_S = float("inf")
HTTP_STATUS_MIN, HTTP_STATUS_MAX = 100, 599
REGEX_OPTIONS = (
    "allow_empty_class",
    "alt_bsux",
    "auto_callout",
    "caseless",
    "dollar_endonly",
    "dotall",
    "dupnames",
    "extended",
    "firstline",
    "match_unset_backref",
    "multiline",
    "never_ucp",
    "never_utf",
    "no_auto_capture",
    "no_auto_possess",
    "no_dotstar_anchor",
    "no_start_optimize",
    "ucp",
    "ungreedy",
    "utf",
    "never_backslash_c",
    "alt_circumflex",
    "alt_verbnames",
    "use_offset_limit",
)
SCHED_FLAGS = ("hashed", "ops", "flag-1", "flag-2", "flag-3")
SH_FLAGS = ("sh-port", "sh-fallback")
MH_FLAGS = ("mh-port", "mh-fallback")


_T = TypeVar("_T")


class _Ctx:
    """The diagnostics sink plus the few located helpers every handler needs."""

    def __init__(self, diags: list[Diagnostic]) -> None:
        self.diags = diags

    def error(
        self, block: Block, message: str, i: int | None = None, hint: str | None = None
    ) -> None:
        loc = block.loc if i is None else block.arg_loc(i)
        self.diags.append(dg.error(loc, message, hint=hint, source_line=block.source_line or None))

    def warn(
        self, block: Block, message: str, i: int | None = None, hint: str | None = None
    ) -> None:
        loc = block.loc if i is None else block.arg_loc(i)
        self.diags.append(
            dg.warning(loc, message, hint=hint, source_line=block.source_line or None)
        )

    def warn_at(self, loc: SourceLoc, message: str) -> None:
        self.diags.append(dg.warning(loc, message))

    def unknown(self, block: Block, where: str, known: Collection[str]) -> None:
        self.warn(
            block,
            f"unknown keyword '{block.keyword}' in {where} - ignoring",
            hint=dg.did_you_mean(block.keyword, known),
        )

    # -- values -------------------------------------------------------------------------------

    def integer(self, block: Block, lo: int, hi: int, i: int = 0) -> int | None:
        return parse_int(block, i, lo, hi, self.diags, what=block.keyword)

    def timer(self, block: Block, lo: float, hi: float = TIMER_MAX_S) -> float | None:
        return parse_decimal(block, 0, lo, hi, self.diags, what=block.keyword)

    def boolean(self, block: Block) -> bool | None:
        return parse_bool(block, 0, self.diags)

    def word(self, block: Block, i: int = 0) -> str | None:
        if i < len(block.args):
            return block.args[i]
        missing_parameter(block, self.diags, i + 2)
        return None

    def ip(self, block: Block, i: int = 0) -> IPAddress | None:
        text = self.word(block, i)
        if text is None:
            return None
        try:
            return ip_address(text)
        except ValueError:
            self.error(block, f"invalid IP address '{text}'", i)
            return None

    def port(self, block: Block, i: int) -> int | None:
        """An optional port word (absent = 0, keepalived's "no port")."""
        if i >= len(block.args):
            return 0
        return parse_int(block, i, 0, 65535, self.diags, what="port")

    def script(self, block: Block) -> Script | None:
        """A notify-type script line (spec §1.3): field 1 re-split into argv, then user, group."""
        try:
            words = split(block.raw)[1:] if block.raw else list(block.args)
            if not words:
                missing_parameter(block, self.diags, 2)
                return None
            argv = split(words[0])
        except ScriptQuoteError as exc:
            self.error(block, str(exc))
            return None
        if not argv:
            self.error(block, f"{block.keyword}: empty script")
            return None
        if len(words) > 3:
            self.warn(block, f"{block.keyword}: extra words after the group ignored", 3)
        return Script(
            argv=tuple(argv),
            user=words[1] if len(words) > 1 else None,
            group=words[2] if len(words) > 2 else None,
            loc=block.loc,
        )

    def children(self, block: Block) -> tuple[Block, ...]:
        if block.children is None:
            self.error(block, f"missing '{{' after '{block.keyword}'")
            return ()
        return block.children

    def no_block(self, block: Block) -> None:
        if block.children is not None:
            self.error(block, f"'{block.keyword}' does not take a block - ignoring its contents")


# --------------------------------------------------------------------------------------------
# Forwarding method: NAT | DR | TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]


def _forwarding(ctx: _Ctx, block: Block, what: str) -> Forwarding | None:
    method_word = ctx.word(block)
    if method_word is None:
        return None
    try:
        method = ForwardingMethod(method_word)
    except ValueError:
        ctx.error(
            block,
            f"unknown [{method_word}] routing method for {what} server",
            0,
            hint=dg.did_you_mean(method_word, [m.value for m in ForwardingMethod]),
        )
        return None
    tun_type, port, csum = TunnelType.IPIP, 0, TunnelChecksum.NOCSUM
    args, i = block.args, 1
    while i < len(args):
        word = args[i]
        if word in ("type", "port") and i + 1 >= len(args):
            ctx.error(block, f"missing tunnel {word} for {what} server", i)
            return None
        if word == "type":
            try:
                tun_type = TunnelType(args[i + 1])
            except ValueError:
                ctx.error(block, f"unknown tunnel type {args[i + 1]} for {what} server", i + 1)
                return None
            i += 2
        elif word == "port":
            value = parse_int(block, i + 1, 1, 65535, ctx.diags, what="gue tunnel port")
            if value is None:
                return None
            port, i = value, i + 2
        elif word in TunnelChecksum.__members__.values():
            csum, i = TunnelChecksum(word), i + 1
        else:
            ctx.error(block, f"invalid tunnel option {word} for {what} server", i)
            return None
    if method is not ForwardingMethod.TUN and len(args) > 1:
        ctx.error(block, f"tunnel options are only valid with TUN for {what} server", 1)
        return None
    if (tun_type is TunnelType.GUE) != (port != 0):
        ctx.error(block, "gue tunnels require port, otherwise cannot have port")
        return None
    if tun_type is TunnelType.IPIP and csum is not TunnelChecksum.NOCSUM:
        ctx.error(block, "ipip tunnels do not support checksum option")
        return None
    if tun_type is TunnelType.GRE and csum is TunnelChecksum.REMCSUM:
        ctx.error(block, "gre tunnels do not support remote checksum option")
        return None
    return Forwarding(method=method, tunnel_type=tun_type, tunnel_port=port, tunnel_checksum=csum)


# --------------------------------------------------------------------------------------------
# virtual_server_group


_V4_LAST = re.compile(r"[0-9]{1,3}")
_V6_LAST = re.compile(r"[0-9A-Fa-f]{1,4}")


def _vsg_range(ctx: _Ctx, line: Block) -> VsgAddressRange | None:
    text = line.keyword
    port = ctx.port(line, 0)
    if port is None:
        return None
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            first = ip_address(text.split("/", 1)[0])
            return VsgAddressRange(first=first, last=net.broadcast_address, port=port, loc=line.loc)
        if "-" in text:
            left, right = text.split("-", 1)
            first = ip_address(left)
            if _V4_LAST.fullmatch(right) and first.version == 4:
                last: IPAddress = ipaddress.IPv4Address((int(first) & ~0xFF) | int(right))
                if int(right) > 255:
                    raise ValueError(right)
            elif _V6_LAST.fullmatch(right) and first.version == 6:
                last = ipaddress.IPv6Address((int(first) & ~0xFFFF) | int(right, 16))
            else:
                last = ip_address(right)
            if last.version != first.version or int(last) < int(first):
                ctx.error(line, f"invalid address range '{text}': end before start or mixed family")
                return None
            return VsgAddressRange(first=first, last=last, port=port, loc=line.loc)
        addr = ip_address(text)
    except ValueError:
        ctx.error(line, f"invalid virtual_server_group entry '{text}'")
        return None
    return VsgAddressRange(first=addr, last=addr, port=port, loc=line.loc)


def _vsg(ctx: _Ctx, block: Block) -> VirtualServerGroup | None:
    name = ctx.word(block)
    if name is None:
        return None
    ranges: list[VsgAddressRange] = []
    marks: list[VsgFwmark] = []
    for line in ctx.children(block):
        ctx.no_block(line)
        if line.keyword == "fwmark":
            mark = ctx.integer(line, 0, UINT_MAX)
            if mark is None:
                continue
            family: int | None = None
            if len(line.args) > 1:
                family = {"inet": 4, "inet6": 6}.get(line.args[1])
                if family is None:
                    ctx.error(line, f"unknown address family '{line.args[1]}'", 1)
                    continue
            marks.append(VsgFwmark(fwmark=mark, family=family, loc=line.loc))
        elif (entry := _vsg_range(ctx, line)) is not None:
            ranges.append(entry)
    families = {r.family for r in ranges}
    if not ranges and not marks:
        ctx.warn(block, f"virtual server group {name} has no entries - removing")
        return None
    if len(families) > 1 and any(m.family is None for m in marks):
        ctx.warn(
            block,
            f"virtual server group {name} cannot have IPv4, IPv6 and fwmark without family"
            " - removing",
        )
        return None
    return VirtualServerGroup(name=name, ranges=tuple(ranges), fwmarks=tuple(marks), loc=block.loc)


# --------------------------------------------------------------------------------------------
# Checkers


@dataclass(slots=True)
class _CheckerDraft:
    """One checker block as written; None = not set here (inherit)."""

    kind: str
    block: Block
    retry: int | None = None
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    delay_loop_s: float | None = None
    alpha: bool | None = None
    log_all_failures: bool = False
    connect_ip: IPAddress | None = None
    connect_port: int | None = None
    bindto: IPAddress | None = None
    bind_port: int = 0
    bind_if: str | None = None
    fwmark: int = 0
    connect_timeout_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the checker type's own fields
    urls: list[HttpUrl] = field(default_factory=list)
    hosts: list[_CheckerDraft] = field(default_factory=list)  # SMTP_CHECK host { } blocks


_Handler = Callable[[_Ctx, Block, _CheckerDraft], None]


def _set(name: str, value: object, d: _CheckerDraft) -> None:
    if value is not None:
        d.extra[name] = value


def _h_common(ctx: _Ctx, b: Block, d: _CheckerDraft) -> None:
    kw = b.keyword
    if kw == "retry":
        d.retry = _keep(ctx.integer(b, 0, UINT_MAX), d.retry)
    elif kw == "delay_before_retry":
        d.delay_before_retry_s = _keep(ctx.timer(b, 0.0, UNLIMITED_S), d.delay_before_retry_s)
    elif kw == "warmup":
        d.warmup_s = _keep(ctx.timer(b, 0.0, UNLIMITED_S), d.warmup_s)
    elif kw == "delay_loop":
        d.delay_loop_s = _keep(ctx.timer(b, 0.000001, UNLIMITED_S), d.delay_loop_s)
    elif kw == "alpha":
        d.alpha = _keep(ctx.boolean(b), d.alpha)
    elif kw == "log_all_failures":
        d.log_all_failures = bool(ctx.boolean(b))
    elif kw == "connect_ip":
        d.connect_ip = ctx.ip(b)
    elif kw == "connect_port":
        d.connect_port = ctx.integer(b, 1, 65535)
    elif kw == "bindto":
        d.bindto = ctx.ip(b)
    elif kw == "bind_port":
        d.bind_port = ctx.integer(b, 1, 65535) or 0
    elif kw == "bind_if":
        d.bind_if = ctx.word(b)
    elif kw == "fwmark":
        d.fwmark = ctx.integer(b, 0, UINT_MAX) or 0
    elif kw == "connect_timeout":
        d.connect_timeout_s = _keep(ctx.timer(b, 0.000001), d.connect_timeout_s)


def _keep(new: _T | None, old: _T | None) -> _T | None:
    """keepalived ignores an invalid value: the previous setting (if any) stays."""
    return new if new is not None else old


_RUN_KEYWORDS = ("retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures")
_CONN_KEYWORDS = (
    "connect_ip",
    "connect_port",
    "bindto",
    "bind_port",
    "bind_if",
    "fwmark",
    "connect_timeout",
)


# HTTP_GET / SSL_GET ---------------------------------------------------------------------------


def _url(ctx: _Ctx, block: Block, d: _CheckerDraft) -> None:
    path: str | None = None
    fields: dict[str, Any] = {}
    codes: list[StatusRange] = []
    regex_extras: list[Block] = []
    for b in ctx.children(block):
        ctx.no_block(b)
        kw = b.keyword
        if kw == "path":
            path = ctx.word(b)
        elif kw == "digest":
            text = ctx.word(b)
            if text is None:
                continue
            if "digest" in fields:
                ctx.error(b, f"digest '{text}' is a duplicate", 0)
            elif len(text) != 32:
                ctx.error(
                    b, f"digest '{text}' character length should be 32 rather than {len(text)}", 0
                )
            elif not re.fullmatch(r"[0-9A-Fa-f]{32}", text):
                ctx.error(b, f"digest '{text}' is not hexadecimal", 0)
            else:
                fields["digest"] = text.lower()
        elif kw == "status_code":
            if not b.args:
                missing_parameter(b, ctx.diags, 2)
            for i, word in enumerate(b.args):
                m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", word)
                low = int(m.group(1)) if m else 0
                high = int(m.group(2)) if m and m.group(2) else low
                if not (HTTP_STATUS_MIN <= low <= high <= HTTP_STATUS_MAX):
                    ctx.error(b, f"invalid HTTP_GET status code '{word}'", i)
                    continue
                codes.append(StatusRange(low=low, high=high))
        elif kw == "virtualhost":
            if (vhost := ctx.word(b)) is not None:
                fields["virtualhost"] = vhost
        elif kw == "regex":
            try:
                words = split(b.raw)[1:] if b.raw else list(b.args)
            except ScriptQuoteError as exc:
                ctx.error(b, str(exc))
                continue
            if len(words) != 1:
                ctx.error(b, "regex missing or too many fields")
                continue
            try:
                re.compile(words[0])
            except re.error as exc:
                # PCRE2 and Python's re differ at the edges; a pattern re rejects is only a hint
                ctx.warn(b, f"regex '{words[0]}' may be invalid: {exc}")
            fields["regex"] = words[0]
        elif kw in ("regex_no_match", "regex_options", "regex_min_offset", "regex_max_offset"):
            regex_extras.append(b)
            if kw == "regex_no_match":
                fields["regex_no_match"] = True
            elif kw == "regex_options":
                opts = []
                for i, word in enumerate(b.args):
                    if word in REGEX_OPTIONS:
                        opts.append(word)
                    else:
                        ctx.error(
                            b,
                            f"unknown regex option '{word}'",
                            i,
                            hint=dg.did_you_mean(word, REGEX_OPTIONS),
                        )
                fields["regex_options"] = tuple(opts)
            else:
                value = ctx.integer(b, 0, UINT_MAX)
                if value is not None:
                    key = "regex_min_offset" if kw == "regex_min_offset" else "regex_max_offset"
                    fields[key] = value
        elif kw == "regex_stack":
            regex_extras.append(b)
            start = ctx.integer(b, 0, UINT_MAX, 0)
            stop = ctx.integer(b, 0, UINT_MAX, 1)
            if start is not None and stop is not None:
                if start > stop:
                    ctx.error(b, "regex stack start cannot exceed max value")
                else:
                    fields["regex_stack"] = (start, stop)
        else:
            ctx.unknown(b, "url", _URL_KEYWORDS)
    if path is None:
        ctx.warn(block, "HTTP/SSL_GET checker url has no path - ignoring")
        return
    if "regex" not in fields and regex_extras:
        ctx.warn(regex_extras[0], "regex parameters specified without regex - ignoring them")
        for key in ("regex_no_match", "regex_options", "regex_min_offset", "regex_max_offset"):
            fields.pop(key, None)
        fields.pop("regex_stack", None)
    lo, hi = fields.get("regex_min_offset", 0), fields.get("regex_max_offset")
    if hi is not None and lo > hi:
        ctx.warn(block, f"regex min offset {lo} > regex_max_offset {hi} - ignoring")
        fields.pop("regex_min_offset")
        fields.pop("regex_max_offset")
    if codes:
        fields["status_codes"] = tuple(codes)
    d.urls.append(HttpUrl(path=path, loc=block.loc, **fields))


_URL_KEYWORDS = (
    "path",
    "digest",
    "status_code",
    "virtualhost",
    "regex",
    "regex_no_match",
    "regex_options",
    "regex_min_offset",
    "regex_max_offset",
    "regex_stack",
)


def _h_http(ctx: _Ctx, b: Block, d: _CheckerDraft) -> None:
    kw = b.keyword
    if kw == "url":
        _url(ctx, b, d)
        return
    ctx.no_block(b)
    if kw == "nb_get_retry":
        ctx.warn(b, "nb_get_retry is deprecated - please use 'retry'")
        d.retry = ctx.integer(b, 0, UINT_MAX)
    elif kw == "virtualhost":
        _set("virtualhost", ctx.word(b), d)
    elif kw == "http_protocol":
        text = ctx.word(b)
        if text is not None:
            proto = {"1.0": "1.0", "1.1": "1.1", "1.0C": "1.0C", "1.0c": "1.0C"}.get(text)
            if proto is None:
                ctx.error(b, f"invalid http_protocol version {text}", 0)
            else:
                d.extra["http_protocol"] = HttpProtocol(proto)
    elif kw in ("fast_recovery", "enable_sni", "tls_compliant"):
        _set(kw, ctx.boolean(b), d)
    elif kw == "sni_name":
        _set("sni_name", ctx.word(b), d)


# MISC_CHECK, SMTP_CHECK, DNS_CHECK, UDP_CHECK --------------------------------------------------


def _h_misc(ctx: _Ctx, b: Block, d: _CheckerDraft) -> None:
    ctx.no_block(b)
    kw = b.keyword
    if kw == "misc_path":
        try:
            words = split(b.raw)[1:] if b.raw else list(b.args)
        except ScriptQuoteError as exc:
            ctx.error(b, str(exc))
            return
        if not words:
            missing_parameter(b, ctx.diags, 2)
            return
        # A quoted first field holds the command line (samples: misc_path "/x.sh arg1 arg2");
        # unquoted words are the argv themselves.
        argv = split(words[0]) if len(words) == 1 else words
        if not argv:
            ctx.error(b, "misc_path: empty script")
            return
        d.extra["script"] = Script(argv=tuple(argv), loc=b.loc)
    elif kw == "misc_timeout":
        _set("misc_timeout", ctx.integer(b, 0, int(TIMER_MAX_S)), d)
    elif kw == "misc_dynamic":
        _set("dynamic", ctx.boolean(b), d)
    elif kw == "user" and ctx.word(b) is not None:
        d.extra["user"] = b.args[0]
        if len(b.args) > 1:
            d.extra["group"] = b.args[1]


def _h_smtp(ctx: _Ctx, b: Block, d: _CheckerDraft) -> None:
    if b.keyword == "host":
        # The older multi-host form: each host { } is one more SMTP check of this real
        # server with its own connection options (keepalived still accepts it silently).
        host = _CheckerDraft(kind="host", block=b)
        for opt in ctx.children(b):
            ctx.no_block(opt)
            if opt.keyword in _CONN_KEYWORDS:
                _h_common(ctx, opt, host)
            else:
                ctx.unknown(opt, "SMTP_CHECK host", _CONN_KEYWORDS)
        d.hosts.append(host)
        return
    ctx.no_block(b)
    if b.keyword == "helo_name":
        _set("helo_name", ctx.word(b), d)


def _h_dns(ctx: _Ctx, b: Block, d: _CheckerDraft) -> None:
    ctx.no_block(b)
    text = ctx.word(b)
    if text is None:
        return
    if b.keyword == "type":
        if text.upper() not in DNS_TYPES:
            ctx.error(
                b,
                f"unknown DNS check type '{text}'",
                0,
                hint=dg.did_you_mean(text.upper(), DNS_TYPES),
            )
        else:
            d.extra["type"] = text.upper()
    else:
        d.extra["name"] = text


def _hex_words(ctx: _Ctx, b: Block, wildcard: bool) -> str | None:
    """keepalived's free-format HEX_STR: words of hex digits, odd-length words zero-padded."""
    nibbles: list[str] = []
    allowed = "0123456789abcdefABCDEF" + ("xX" if wildcard else "")
    for i, word in enumerate(b.args):
        if not word or any(c not in allowed for c in word):
            ctx.error(b, f"invalid hex string '{word}'", i)
            return None
        nibbles.append(word.lower().rjust(len(word) + len(word) % 2, "0"))
    return "".join(nibbles)


def _h_udp(ctx: _Ctx, b: Block, d: _CheckerDraft) -> None:
    ctx.no_block(b)
    kw = b.keyword
    if kw == "payload":
        if not b.args:
            missing_parameter(b, ctx.diags, 2)
            return
        text = _hex_words(ctx, b, wildcard=False)
        if text is not None:
            d.extra["payload"] = bytes.fromhex(text)
    elif kw == "require_reply":
        d.extra["require_reply"] = True
        if b.args:
            _set("reply_pattern", _hex_words(ctx, b, wildcard=True), d)
    elif kw in ("min_reply_length", "max_reply_length"):
        _set(kw, ctx.integer(b, 0, 65535), d)


_CheckerSpec = tuple[type, bool, int, float | None, Mapping[str, _Handler]]


def _spec_table() -> dict[str, _CheckerSpec]:
    """type -> (class, has connection options, default retry, default delay_before_retry
    (None = delay_loop), handlers of its own keywords). Spec §9.2/§9.5 defaults."""

    def own(handler: _Handler, *kws: str) -> dict[str, _Handler]:
        return dict.fromkeys(kws, handler)

    http = own(
        _h_http,
        "url",
        "nb_get_retry",
        "virtualhost",
        "http_protocol",
        "fast_recovery",
        "enable_sni",
        "sni_name",
        "tls_compliant",
    )
    return {
        "TCP_CHECK": (TcpCheck, True, 1, 1.0, {}),
        "HTTP_GET": (HttpCheck, True, 1, 3.0, http),
        "SSL_GET": (HttpCheck, True, 1, 3.0, http),
        "SMTP_CHECK": (SmtpCheck, True, 1, 1.0, own(_h_smtp, "helo_name", "host")),
        "DNS_CHECK": (DnsCheck, True, 3, None, own(_h_dns, "type", "name")),
        "UDP_CHECK": (
            UdpCheck,
            True,
            1,
            1.0,
            own(_h_udp, "payload", "require_reply", "min_reply_length", "max_reply_length"),
        ),
        "PING_CHECK": (PingCheck, True, 1, 1.0, {}),
        "MISC_CHECK": (
            MiscCheck,
            False,
            0,
            1.0,
            own(_h_misc, "misc_path", "misc_timeout", "misc_dynamic", "user"),
        ),
    }


_CHECKERS = _spec_table()
CHECKER_KEYWORDS = (*_CHECKERS, "FILE_CHECK", "BFD_CHECK")


def _parse_checker(ctx: _Ctx, block: Block) -> list[_CheckerDraft | FileCheck | BfdCheck]:
    """One checker block -> its draft(s); empty when it must be ignored."""
    kind = block.keyword
    if kind in ("FILE_CHECK", "BFD_CHECK"):
        simple = _file_check(ctx, block) if kind == "FILE_CHECK" else _bfd_check(ctx, block)
        return [simple] if simple is not None else []
    _cls, conn, _retry, _dbr, own = _CHECKERS[kind]
    known = (*_RUN_KEYWORDS, *(_CONN_KEYWORDS if conn else ()), *own)
    d = _CheckerDraft(kind=kind, block=block)
    for b in ctx.children(block):
        if b.keyword in own:
            own[b.keyword](ctx, b, d)
        elif b.keyword in known:
            ctx.no_block(b)
            _h_common(ctx, b, d)
        else:
            ctx.unknown(b, kind, known)
    if kind in ("HTTP_GET", "SSL_GET") and not d.urls:
        ctx.warn(block, "HTTP/SSL_GET checker has no urls specified - ignoring")
        return []
    if kind == "MISC_CHECK" and "script" not in d.extra:
        ctx.error(block, "MISC_CHECK has no misc_path - ignoring")
        return []
    lo, hi = d.extra.get("min_reply_length", 0), d.extra.get("max_reply_length", 255)
    if kind == "UDP_CHECK" and lo > hi:
        ctx.error(block, f"UDP_CHECK min_reply_length {lo} > max_reply_length {hi}")
        return []
    if d.hosts:
        return [_with_host(d, host) for host in d.hosts]
    return [d]


def _with_host(d: _CheckerDraft, host: _CheckerDraft) -> _CheckerDraft:
    """The checker with a ``host { }`` block's connection options laid over its own."""
    return replace(
        d,
        block=host.block,
        connect_ip=host.connect_ip or d.connect_ip,
        connect_port=_keep(host.connect_port, d.connect_port),
        bindto=host.bindto or d.bindto,
        bind_port=host.bind_port or d.bind_port,
        bind_if=host.bind_if or d.bind_if,
        fwmark=host.fwmark or d.fwmark,
        connect_timeout_s=_keep(host.connect_timeout_s, d.connect_timeout_s),
        hosts=[],
    )


def _file_check(ctx: _Ctx, block: Block) -> FileCheck | None:
    name: str | None = None
    fields: dict[str, Any] = {}
    known = ("track_file", "file", "weight", "dynamic")
    for b in ctx.children(block):
        ctx.no_block(b)
        if b.keyword in ("track_file", "file"):
            name = ctx.word(b)
        elif b.keyword == "weight":
            weight = ctx.integer(b, -2147483647, 2147483647)
            if weight is not None:
                fields["weight"] = weight
                if len(b.args) > 1:
                    if b.args[1] == "reverse":
                        fields["reverse"] = True
                    else:
                        ctx.error(b, f"unknown weight option '{b.args[1]}'", 1)
        elif b.keyword == "dynamic":
            fields["dynamic"] = bool(ctx.boolean(b))
        else:
            ctx.unknown(b, "FILE_CHECK", known)
    if name is None:
        ctx.error(block, "FILE_CHECK has no track_file - ignoring")
        return None
    return FileCheck(track_file=name, loc=block.loc, **fields)


def _bfd_check(ctx: _Ctx, block: Block) -> BfdCheck | None:
    name: str | None = None
    for b in ctx.children(block):
        ctx.no_block(b)
        if b.keyword == "name":
            name = ctx.word(b)
        else:
            ctx.unknown(b, "BFD_CHECK", ("name",))
    if name is None:
        ctx.error(block, "BFD_CHECK has no name - ignoring")
        return None
    return BfdCheck(name=name, loc=block.loc)


# --------------------------------------------------------------------------------------------
# real_server and virtual_server drafts


@dataclass(slots=True)
class _RsDraft:
    block: Block
    address: IPAddress
    port: int
    weight: int | None = None
    forwarding: Forwarding | None = None
    uthreshold: int | None = None
    lthreshold: int | None = None
    inhibit: bool | None = None
    notify_up: Script | None = None
    notify_down: Script | None = None
    alpha: bool | None = None
    retry: int | None = None
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    connect_timeout_s: float | None = None
    delay_loop_s: float | None = None
    smtp_alert: bool | None = None
    virtualhost: str | None = None
    snmp_name: str | None = None
    checkers: list[_CheckerDraft | FileCheck | BfdCheck] = field(default_factory=list)


_RS_KEYWORDS = (
    "weight",
    "lvs_method",
    "uthreshold",
    "lthreshold",
    "inhibit_on_failure",
    "notify_up",
    "notify_down",
    "alpha",
    "retry",
    "delay_before_retry",
    "warmup",
    "connect_timeout",
    "delay_loop",
    "smtp_alert",
    "virtualhost",
    "snmp_name",
    *CHECKER_KEYWORDS,
)


def _real_server(ctx: _Ctx, block: Block) -> _RsDraft | None:
    address = ctx.ip(block)
    port = ctx.port(block, 1)
    if address is None or port is None:
        return None
    rs = _RsDraft(block=block, address=address, port=port)
    for b in ctx.children(block):
        kw = b.keyword
        if kw in _CHECKERS or kw in ("FILE_CHECK", "BFD_CHECK"):
            rs.checkers.extend(_parse_checker(ctx, b))
            continue
        if kw not in _RS_KEYWORDS:
            ctx.unknown(b, "real_server", _RS_KEYWORDS)
            continue
        ctx.no_block(b)
        if kw == "weight":
            rs.weight = _keep(ctx.integer(b, 0, IPVS_WEIGHT_LIMIT), rs.weight)
        elif kw == "lvs_method":
            rs.forwarding = _forwarding(ctx, b, "real") or rs.forwarding
        elif kw in ("uthreshold", "lthreshold"):
            value = ctx.integer(b, 0, UINT_MAX)
            if kw == "uthreshold":
                rs.uthreshold = value
            else:
                rs.lthreshold = value
        elif kw == "inhibit_on_failure":
            rs.inhibit = ctx.boolean(b)
        elif kw in ("notify_up", "notify_down"):
            if getattr(rs, kw) is not None:
                ctx.warn(b, f"{kw} script already specified - ignoring")
            else:
                setattr(rs, kw, ctx.script(b))
        elif kw == "alpha":
            rs.alpha = ctx.boolean(b)
        elif kw == "retry":
            rs.retry = ctx.integer(b, 1, UINT_MAX)
        elif kw == "delay_before_retry":
            rs.delay_before_retry_s = ctx.timer(b, 0.0, UNLIMITED_S)
        elif kw == "warmup":
            rs.warmup_s = ctx.timer(b, 0.0, UNLIMITED_S)
        elif kw == "connect_timeout":
            rs.connect_timeout_s = ctx.timer(b, 0.000001)
        elif kw == "delay_loop":
            rs.delay_loop_s = ctx.timer(b, 0.000001, UNLIMITED_S)
        elif kw == "smtp_alert":
            rs.smtp_alert = ctx.boolean(b)
        elif kw == "virtualhost":
            rs.virtualhost = ctx.word(b)
        elif kw == "snmp_name":
            rs.snmp_name = ctx.word(b)
    return rs


@dataclass(slots=True)
class _VsDraft:
    block: Block
    address: IPAddress | None = None
    port: int = 0
    fwmark: int | None = None
    group: VirtualServerGroup | None = None
    family: int | None = None
    sched: str | None = None
    flags: list[tuple[str, Block]] = field(default_factory=list)
    forwarding: Forwarding | None = None
    protocol: Protocol | None = None
    persistence_timeout_s: int = 0
    persistence_granularity: str | None = None
    persistence_engine: str | None = None
    ha_suspend: bool = False
    delay_loop_s: float = DEFAULT_DELAY_LOOP_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    retry: int | None = None
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    inhibit: bool = False
    alpha: bool = False
    omega: bool = False
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: Script | None = None
    quorum_down: Script | None = None
    sorry: SorryServer | None = None
    sorry_forwarding: Forwarding | None = None
    sorry_inhibit: bool = False
    weight: int = 1
    virtualhost: str | None = None
    smtp_alert: bool | None = None
    snmp_name: str | None = None
    real_servers: list[_RsDraft] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.group is not None:
            return f"group {self.group.name}"
        if self.fwmark is not None:
            return f"fwmark {self.fwmark}"
        host = f"[{self.address}]" if self.family == 6 else str(self.address)
        return f"{host}:{self.port}"


_VS_KEYWORDS = (
    "ip_family",
    "retry",
    "delay_before_retry",
    "warmup",
    "connect_timeout",
    "delay_loop",
    "inhibit_on_failure",
    "lb_algo",
    "lvs_sched",
    *SCHED_FLAGS,
    *SH_FLAGS,
    *MH_FLAGS,
    "lb_kind",
    "lvs_method",
    "persistence_engine",
    "persistence_timeout",
    "persistence_granularity",
    "protocol",
    "ha_suspend",
    "smtp_alert",
    "virtualhost",
    "snmp_name",
    "alpha",
    "omega",
    "quorum_up",
    "quorum_down",
    "quorum",
    "hysteresis",
    "weight",
    "sorry_server",
    "sorry_server_inhibit",
    "sorry_server_lvs_method",
    "real_server",
)


def _vs_header(
    ctx: _Ctx, block: Block, groups: Mapping[str, VirtualServerGroup], dropped: Collection[str]
) -> _VsDraft | None:
    vs = _VsDraft(block=block)
    first = ctx.word(block)
    if first is None:
        return None
    if first == "fwmark":
        vs.fwmark = ctx.integer(block, 1, UINT_MAX, 1)
        return vs if vs.fwmark is not None else None
    if first == "group":
        name = ctx.word(block, 1)
        if name is None:
            return None
        if name in dropped:
            ctx.warn(
                block,
                f"virtual_server_group '{name}' has no usable entries - ignoring virtual server",
                1,
            )
            return None
        if name not in groups:
            ctx.error(
                block,
                f"virtual_server_group '{name}' is not defined - ignoring virtual server",
                1,
                hint=dg.did_you_mean(name, groups),
            )
            return None
        vs.group = groups[name]
        families = {r.family for r in vs.group.ranges}
        vs.family = families.pop() if len(families) == 1 else None
        return vs
    vs.address = ctx.ip(block)
    port = ctx.port(block, 1)
    if vs.address is None or port is None:
        return None
    vs.port, vs.family = port, vs.address.version
    return vs


def _vs_keyword(ctx: _Ctx, b: Block, vs: _VsDraft) -> None:
    kw = b.keyword
    if kw == "real_server":
        rs = _real_server(ctx, b)
        if rs is not None:
            vs.real_servers.append(rs)
        return
    ctx.no_block(b)
    if kw == "ip_family":
        text = ctx.word(b)
        family = {"inet": 4, "inet6": 6}.get(text or "")
        if text is not None and family is None:
            ctx.error(b, f"unknown address family {text}", 0)
        elif family is not None and vs.family is not None and family != vs.family:
            ctx.error(b, f"virtual server specified family {text} conflicts with server family", 0)
        elif family is not None:
            vs.family = family
    elif kw == "retry":
        vs.retry = _keep(ctx.integer(b, 1, UINT_MAX), vs.retry)
    elif kw == "delay_before_retry":
        vs.delay_before_retry_s = ctx.timer(b, 0.0, UNLIMITED_S)
    elif kw == "warmup":
        vs.warmup_s = ctx.timer(b, 0.0, UNLIMITED_S)
    elif kw == "connect_timeout":
        vs.connect_timeout_s = ctx.timer(b, 0.000001) or vs.connect_timeout_s
    elif kw == "delay_loop":
        vs.delay_loop_s = ctx.timer(b, 0.000001, UNLIMITED_S) or vs.delay_loop_s
    elif kw in ("inhibit_on_failure", "alpha", "omega", "ha_suspend"):
        value = ctx.boolean(b)
        if value is not None:
            setattr(vs, "inhibit" if kw == "inhibit_on_failure" else kw, value)
    elif kw in ("lb_algo", "lvs_sched"):
        text = ctx.word(b)
        if text is not None and text not in SCHEDULERS:
            ctx.error(
                b,
                f"invalid lvs_scheduler '{text}' - ignoring",
                0,
                hint=dg.did_you_mean(text, SCHEDULERS),
            )
        elif text is not None:
            vs.sched = text
    elif kw in SCHED_FLAGS or kw in SH_FLAGS or kw in MH_FLAGS:
        vs.flags.append((kw, b))
    elif kw in ("lb_kind", "lvs_method"):
        vs.forwarding = _forwarding(ctx, b, "virtual") or vs.forwarding
    elif kw == "persistence_engine":
        vs.persistence_engine = ctx.word(b)
    elif kw == "persistence_timeout":
        if not b.args:
            vs.persistence_timeout_s = PERSISTENCE_DEFAULT_S
        elif (value_i := ctx.integer(b, 1, PERSISTENCE_MAX_S)) is not None:
            vs.persistence_timeout_s = value_i
    elif kw == "persistence_granularity":
        _granularity(ctx, b, vs)
    elif kw == "protocol":
        text = ctx.word(b)
        if text is not None and text.upper() not in Protocol.__members__:
            ctx.error(b, f"unknown protocol {text} - ignoring", 0)
        elif text is not None:
            vs.protocol = Protocol(text.upper())
    elif kw == "smtp_alert":
        vs.smtp_alert = ctx.boolean(b)
    elif kw in ("virtualhost", "snmp_name", "persistence_engine"):
        setattr(vs, kw, ctx.word(b))
    elif kw in ("quorum_up", "quorum_down"):
        if getattr(vs, kw) is not None:
            ctx.warn(b, f"{kw} script already specified - ignoring")
        else:
            setattr(vs, kw, ctx.script(b))
    elif kw == "quorum":
        if (q := ctx.integer(b, 1, UINT_MAX)) is not None:
            vs.quorum = q
    elif kw == "hysteresis":
        if (h := ctx.integer(b, 0, UINT_MAX)) is not None:
            vs.hysteresis = h
    elif kw == "weight":
        if (w := ctx.integer(b, 1, IPVS_WEIGHT_LIMIT)) is not None:
            vs.weight = w
    elif kw == "sorry_server":
        address, port = ctx.ip(b), ctx.port(b, 1)
        if address is not None and port is not None:
            vs.sorry = SorryServer(address=address, port=port, loc=b.loc)
    elif kw == "sorry_server_inhibit":
        if vs.sorry is None:
            ctx.warn(b, "ignoring sorry_server_inhibit used before or without sorry_server")
        else:
            vs.sorry_inhibit = bool(ctx.boolean(b))
    elif kw == "sorry_server_lvs_method":
        if vs.sorry is None:
            ctx.warn(b, "sorry_server_lvs_method used before or without sorry_server - ignoring")
        else:
            vs.sorry_forwarding = _forwarding(ctx, b, "sorry") or vs.sorry_forwarding


def _granularity(ctx: _Ctx, b: Block, vs: _VsDraft) -> None:
    text = ctx.word(b)
    if text is None:
        return
    family = vs.family or (4 if "." in text else 6)
    if family == 6:
        if ctx.integer(b, 1, 128) is None:
            return
    else:
        try:
            ipaddress.IPv4Network(f"0.0.0.0/{text}")
        except ValueError:
            ctx.error(b, f"invalid IPv4 persistence_granularity specified - {text}", 0)
            return
    vs.persistence_granularity = text
    vs.family = family
    if not vs.persistence_timeout_s:
        vs.persistence_timeout_s = PERSISTENCE_DEFAULT_S


# --------------------------------------------------------------------------------------------
# Resolution: keepalived's validate_check_config, with every fix-up as a warning


def _resolve_vs(ctx: _Ctx, vs: _VsDraft, globals_: GlobalDefs) -> VirtualServer | None:
    block = vs.block
    is_tun = ForwardingMethod.TUN

    # Address families: non-tunnelled real/sorry servers must match the service (spec §9.2
    # note; keepalived rs_end_handler / vs_end_handler).
    kept: list[_RsDraft] = []
    for rs in vs.real_servers:
        method = (rs.forwarding or vs.forwarding or Forwarding()).method
        if method is not is_tun and vs.family is None:
            vs.family = rs.address.version
        if method is not is_tun and rs.address.version != vs.family:
            ctx.warn(
                rs.block,
                f"address family of virtual server and real server {rs.address} don't match"
                " - skipping real server",
            )
            continue
        kept.append(rs)
    vs.real_servers = kept
    if vs.sorry is not None:
        method = (vs.sorry_forwarding or vs.forwarding or Forwarding()).method
        if method is not is_tun and vs.family is None:
            vs.family = vs.sorry.address.version
        elif method is not is_tun and vs.sorry.address.version != vs.family:
            ctx.warn_at(
                vs.sorry.loc,
                f"address family of virtual server and sorry server {vs.sorry.address} don't"
                " match - skipping sorry server",
            )
            vs.sorry = None
    if vs.family is None:
        # fwmark service, every server tunnelled: their family if they agree, else IPv4
        families = {rs.address.version for rs in vs.real_servers}
        if vs.sorry is not None:
            families.add(vs.sorry.address.version)
        vs.family = families.pop() if len(families) == 1 else 4

    if not vs.real_servers:
        ctx.warn(block, f"virtual server {vs.label} has no real servers - ignoring")
        return None

    group = vs.group
    by_fwmark = vs.fwmark is not None or (group is not None and bool(group.fwmarks))
    by_address = (group is not None and bool(group.ranges)) or (group is None and vs.fwmark is None)
    if vs.ha_suspend and by_fwmark:
        ctx.warn(
            block,
            f"virtual server {vs.label}: cannot use ha_suspend with fwmarks - clearing ha_suspend",
        )
        vs.ha_suspend = False

    flags = _resolve_flags(ctx, vs)
    if by_address:
        if vs.protocol is None:
            # IPVS would default a protocol of 0 to UDP; keepalived makes that explicit
            ctx.warn(block, f"virtual server {vs.label}: no protocol set - defaulting to UDP")
            vs.protocol = Protocol.UDP
        if "ops" in flags and vs.protocol is not Protocol.UDP:
            ctx.warn(
                block, f"virtual server {vs.label}: one packet scheduling requires UDP - resetting"
            )
            flags.remove("ops")
        zero_port = (group is None and vs.port == 0) or (
            group is not None and any(r.port == 0 for r in group.ranges)
        )
        if not vs.persistence_timeout_s and zero_port:
            ctx.warn(
                block,
                f"virtual server {vs.label}: zero port only valid for persistent services - setting"
                f" persistence_timeout {PERSISTENCE_DEFAULT_S}",
            )
            vs.persistence_timeout_s = PERSISTENCE_DEFAULT_S
    elif vs.protocol is not None:
        ctx.warn(
            block,
            f"virtual server {vs.label}: protocol specified for fwmark - protocol will be ignored",
        )
        vs.protocol = None

    if vs.sched is None:
        ctx.warn(
            block,
            f"virtual server {vs.label}: no scheduler set, setting default '{DEFAULT_SCHEDULER}'",
        )
        vs.sched = DEFAULT_SCHEDULER

    smtp_default = _first_set(globals_.smtp_alert_checker, globals_.smtp_alert)
    vs_smtp = _pick(vs.smtp_alert, smtp_default, default=False)

    # Real servers: duplicates, forwarding method, inherited values (spec §9.3)
    unique: list[_RsDraft] = []
    for rs in vs.real_servers:
        if any(rs.address == o.address and rs.port == o.port for o in unique):
            ctx.warn(
                rs.block,
                f"VS {vs.label}: real server {_hostport(rs.address, rs.port)} is duplicated"
                " - removing second rs",
            )
            continue
        unique.append(rs)
    needs_default = any(rs.forwarding is None for rs in unique) or (
        vs.sorry is not None and vs.sorry_forwarding is None
    )
    if vs.forwarding is None and needs_default:
        ctx.warn(block, f"virtual server {vs.label}: no forwarding method set, setting default NAT")
    vs_fwd = vs.forwarding or Forwarding()

    sorry = vs.sorry
    if sorry is not None:
        sorry = SorryServer(
            address=sorry.address,
            port=sorry.port,
            inhibit=vs.sorry_inhibit,
            forwarding=vs.sorry_forwarding or vs_fwd,
            loc=sorry.loc,
        )

    servers: list[RealServer] = []
    for rs in unique:
        fwd = rs.forwarding or vs_fwd
        what = f"real server {_hostport(rs.address, rs.port)}"
        port = _reconcile_port(ctx, vs, rs.block, what, port=rs.port, fwd=fwd)
        inhibit = _pick(rs.inhibit, default=vs.inhibit)
        if (
            sorry is not None
            and sorry.address == rs.address
            and sorry.port == port
            and sorry.inhibit != inhibit
        ):
            ctx.warn(
                rs.block,
                f"virtual server {vs.label}: real server {_hostport(rs.address, port)} matches"
                " sorry server, but inhibit setting differs,"
                f" {'sett' if inhibit else 'clear'}ing on sorry server",
            )
            sorry = SorryServer(
                address=sorry.address,
                port=sorry.port,
                inhibit=inhibit,
                forwarding=sorry.forwarding,
                loc=sorry.loc,
            )
        servers.append(
            _resolve_rs(vs, rs, port=port, fwd=fwd, inhibit=inhibit, smtp_default=smtp_default)
        )
    if sorry is not None:
        sport = _reconcile_port(
            ctx, vs, block, "sorry server", port=sorry.port, fwd=sorry.forwarding
        )
        sorry = SorryServer(
            address=sorry.address,
            port=sport,
            inhibit=sorry.inhibit,
            forwarding=sorry.forwarding,
            loc=sorry.loc,
        )

    # Quorum (spec §9.2): never above the total weight; hysteresis strictly below quorum.
    total = sum(rs.weight for rs in servers)
    quorum, hysteresis = vs.quorum, vs.hysteresis
    if quorum > total:
        ctx.warn(
            block,
            f"quorum {quorum} for virtual server {vs.label} exceeds total weight of real servers"
            f" {total}, reducing quorum to {total}",
        )
        quorum = total
    if hysteresis and hysteresis >= quorum:
        new = max(quorum - 1, 0)  # keepalived's unsigned quorum-1 wraps at quorum 0
        ctx.warn(
            block,
            f"virtual server {vs.label}: hysteresis {hysteresis} >= quorum {quorum};"
            f" setting hysteresis to {new}",
        )
        hysteresis = new

    return VirtualServer(
        address=vs.address,
        port=vs.port,
        fwmark=vs.fwmark,
        group=group.name if group is not None else None,
        ip_family=vs.family,
        lvs_sched=vs.sched,
        sched_flags=tuple(flags),
        forwarding=vs_fwd,
        protocol=vs.protocol,
        persistence_timeout_s=vs.persistence_timeout_s,
        persistence_granularity=vs.persistence_granularity,
        persistence_engine=vs.persistence_engine,
        ha_suspend=vs.ha_suspend,
        delay_loop_s=vs.delay_loop_s,
        connect_timeout_s=vs.connect_timeout_s,
        retry=vs.retry,
        delay_before_retry_s=vs.delay_before_retry_s,
        warmup_s=vs.warmup_s,
        inhibit_on_failure=vs.inhibit,
        alpha=vs.alpha,
        omega=vs.omega,
        quorum=quorum,
        hysteresis=hysteresis,
        quorum_up=vs.quorum_up,
        quorum_down=vs.quorum_down,
        sorry_server=sorry,
        weight=vs.weight,
        virtualhost=vs.virtualhost,
        smtp_alert=vs_smtp,
        snmp_name=vs.snmp_name,
        real_servers=tuple(
            _with_checkers(ctx, vs, rs, server) for rs, server in zip(unique, servers, strict=True)
        ),
        loc=block.loc,
    )


def _resolve_flags(ctx: _Ctx, vs: _VsDraft) -> list[str]:
    """Scheduler flags, checked against the final scheduler (not the one seen so far)."""
    flags: list[str] = []
    for name, b in vs.flags:
        sched = "sh" if name in SH_FLAGS else "mh" if name in MH_FLAGS else None
        if sched is not None and vs.sched != sched:
            ctx.warn(b, f"{name} only applies to {sched} scheduler - ignoring")
        elif name not in flags:
            flags.append(name)
    return flags


def _reconcile_port(
    ctx: _Ctx, vs: _VsDraft, block: Block, what: str, *, port: int, fwd: Forwarding
) -> int:
    """keepalived's port fix-ups: only NAT may translate ports (spec §9.2)."""
    nat = fwd.method is ForwardingMethod.NAT
    if vs.group is not None:
        if vs.group.fwmarks and not nat and port:
            ctx.warn(
                block,
                f"fwmark virtual server {vs.label}, {what} has port specified"
                " - port will be ignored",
            )
        for r in vs.group.ranges:
            if not nat and port and r.port != port:
                ctx.warn(
                    block,
                    f"virtual server {vs.label} entry port {r.port} and {what} ports don't match",
                )
        return port
    if vs.fwmark is not None:
        if not nat and port:
            ctx.warn(
                block, f"fwmark virtual server {vs.label}, {what} has port specified - clearing"
            )
            return 0
        return port
    if port == 0:
        return vs.port
    if not nat and port != vs.port:
        ctx.warn(block, f"virtual server {vs.label} and {what} ports don't match - resetting")
        return vs.port
    return port


def _pick(*values: _T | None, default: _T) -> _T:
    """The first value that is set (own, then inherited), else ``default``."""
    for v in values:
        if v is not None:
            return v
    return default


def _first_set(*values: _T | None) -> _T | None:
    """The first value that is set: the config's own, then the inherited ones, then defaults."""
    for v in values:
        if v is not None:
            return v
    return None


def _hostport(address: IPAddress, port: int) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{host}:{port}"


def _resolve_rs(
    vs: _VsDraft,
    rs: _RsDraft,
    *,
    port: int,
    fwd: Forwarding,
    inhibit: bool,
    smtp_default: bool | None,
) -> RealServer:
    """A real server with the VS defaults applied (keepalived: 'take default values from VS')."""
    return RealServer(
        address=rs.address,
        port=port,
        weight=rs.weight if rs.weight is not None else vs.weight,
        forwarding=fwd,
        uthreshold=rs.uthreshold,
        lthreshold=rs.lthreshold,
        inhibit_on_failure=inhibit,
        notify_up=rs.notify_up,
        notify_down=rs.notify_down,
        alpha=_pick(rs.alpha, default=vs.alpha),
        retry=_first_set(rs.retry, vs.retry),
        delay_before_retry_s=_first_set(rs.delay_before_retry_s, vs.delay_before_retry_s),
        warmup_s=_first_set(rs.warmup_s, vs.warmup_s),
        connect_timeout_s=_pick(rs.connect_timeout_s, default=vs.connect_timeout_s),
        delay_loop_s=_pick(rs.delay_loop_s, default=vs.delay_loop_s),
        # spec §9.3: on for real servers unless a global setting says otherwise
        smtp_alert=_pick(rs.smtp_alert, smtp_default, default=True),
        virtualhost=rs.virtualhost,
        snmp_name=rs.snmp_name,
        loc=rs.block.loc,
    )


def _with_checkers(ctx: _Ctx, vs: _VsDraft, rs: _RsDraft, server: RealServer) -> RealServer:
    checkers: list[Checker] = []
    for d in rs.checkers:
        if isinstance(d, FileCheck | BfdCheck):
            checkers.append(d)
        else:
            checkers.append(_resolve_checker(d, vs, rs, server))
    return replace(server, checkers=tuple(checkers))


def _resolve_checker(d: _CheckerDraft, vs: _VsDraft, rs: _RsDraft, server: RealServer) -> Checker:
    """Spec §9.4: checker value, else real server (which already holds the VS value), else the
    checker type's default; warmup defaults to the checker's delay_loop, and a checker without
    a delay_before_retry default (DNS_CHECK) uses its delay_loop."""
    cls, conn, default_retry, default_dbr, _own = _CHECKERS[d.kind]
    delay_loop = d.delay_loop_s if d.delay_loop_s is not None else server.delay_loop_s
    dbr = _first_set(d.delay_before_retry_s, server.delay_before_retry_s, default_dbr)
    kwargs: dict[str, Any] = {
        "retry": _pick(d.retry, server.retry, default=default_retry),
        "delay_before_retry_s": dbr if dbr is not None else delay_loop,
        "warmup_s": _pick(d.warmup_s, server.warmup_s, default=delay_loop),
        "delay_loop_s": delay_loop,
        "alpha": _pick(d.alpha, default=server.alpha),
        "log_all_failures": d.log_all_failures,
        "loc": d.block.loc,
        **d.extra,
    }
    if conn:
        kwargs.update(
            connect_ip=d.connect_ip or server.address,
            connect_port=d.connect_port if d.connect_port is not None else server.port,
            bindto=d.bindto,
            bind_port=d.bind_port,
            bind_if=d.bind_if,
            fwmark=d.fwmark,
            connect_timeout_s=_pick(d.connect_timeout_s, default=server.connect_timeout_s),
        )
    if cls is HttpCheck:
        vhost = _first_set(kwargs.pop("virtualhost", None), rs.virtualhost, vs.virtualhost)
        kwargs["virtualhost"] = vhost
        kwargs["ssl"] = d.kind == "SSL_GET"
        kwargs["urls"] = tuple(
            u if u.virtualhost is not None else replace(u, virtualhost=vhost) for u in d.urls
        )
    if cls is MiscCheck:
        timeout = kwargs.pop("misc_timeout", 0)
        kwargs["timeout_s"] = float(timeout) if timeout else delay_loop
    checker: Checker = cls(**kwargs)
    return checker


# --------------------------------------------------------------------------------------------
# SSL and the entry point


def _ssl(ctx: _Ctx, block: Block) -> SslConfig:
    fields: dict[str, str] = {}
    names = {"password": "password", "ca": "ca", "certificate": "certificate", "key": "key"}
    for b in ctx.children(block):
        ctx.no_block(b)
        name = names.get(b.keyword)
        if name is None:
            ctx.unknown(b, "SSL", names)
            continue
        value = ctx.word(b)
        if value is None:
            continue
        if name in fields:
            ctx.warn(b, f"SSL {b.keyword} already specified - replacing")
        fields[name] = value
    return SslConfig(loc=block.loc, **fields)


def lower_lvs(
    blocks: Sequence[Block],
    diags: list[Diagnostic],
    *,
    global_defs: GlobalDefs | None = None,
    track_files: Collection[str] | None = None,
) -> LvsConfig:
    """Lower the top-level LVS blocks (``virtual_server_group``, ``virtual_server``, ``SSL``).

    Diagnostics are appended to ``diags``; nothing is raised. ``global_defs`` supplies the
    global ``smtp_alert``/``smtp_alert_checker`` defaults; ``track_files`` (names of the
    configured track_files), when given, lets FILE_CHECK references be checked.
    """
    ctx = _Ctx(diags)
    globals_ = global_defs or GlobalDefs()
    groups: dict[str, VirtualServerGroup] = {}
    dropped: set[str] = set()
    vs_blocks: list[Block] = []
    ssl: SslConfig | None = None
    for block in blocks:
        kw = block.keyword
        if kw == "virtual_server_group":
            group = _vsg(ctx, block)
            if group is None:
                if block.args:
                    dropped.add(block.args[0])
            elif group.name in groups:
                ctx.warn(
                    block, f"virtual_server_group {group.name} already defined - ignoring this one"
                )
            else:
                groups[group.name] = group
        elif kw == "virtual_server":
            vs_blocks.append(block)
        elif kw == "SSL":
            if ssl is not None:
                ctx.warn(block, "SSL context already specified - replacing")
            ssl = _ssl(ctx, block)
        else:
            ctx.unknown(block, "the LVS configuration", TOP_LEVEL_KEYWORDS)
    servers: list[VirtualServer] = []
    for block in vs_blocks:
        draft = _vs_header(ctx, block, groups, dropped)
        if draft is None:
            continue
        for b in ctx.children(block):
            if b.keyword in _VS_KEYWORDS:
                _vs_keyword(ctx, b, draft)
            else:
                ctx.unknown(b, "virtual_server", _VS_KEYWORDS)
        resolved = _resolve_vs(ctx, draft, globals_)
        if resolved is not None:
            servers.append(resolved)
    if track_files is not None:
        for vs in servers:
            for rs in vs.real_servers:
                for c in rs.checkers:
                    if isinstance(c, FileCheck) and c.track_file not in track_files:
                        diags.append(
                            dg.error(
                                c.loc,
                                f"FILE_CHECK track_file '{c.track_file}' is not defined",
                                hint=dg.did_you_mean(c.track_file, track_files),
                            )
                        )
    return LvsConfig(
        virtual_server_groups=tuple(groups.values()), virtual_servers=tuple(servers), ssl=ssl
    )
