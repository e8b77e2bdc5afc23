"""Prometheus metrics: the text exposition format (0.0.4) on an optional HTTP listener.

Off by default. ``pykad --metrics [ADDR:]PORT`` (or ``PYKAD_METRICS``) turns it on; without
an address it listens on 127.0.0.1 only, because the numbers say which node is master and
there is no authentication (bind a routable address on purpose, or scrape through the
control socket's ``metrics`` command). A command-line option rather than a ``global_defs``
keyword: keepalived -t would reject the keyword, and the listener is a property of the
process, not of the VRRP configuration (it is not re-bound on reload).

The server is a few lines of asyncio (no new dependency): ``GET /metrics`` (and HEAD)
answers ``200`` with ``text/plain; version=0.0.4``; ``/`` a pointer; anything else 404/405.
One request per connection (``Connection: close``), header size and time limited.

Names. The VRRP series use the names of the most used keepalived exporter (the
``keepalived-exporter`` of cafebazaar/mehdy, labels ``iname``, ``intf``, ``vrid``), so its
dashboards keep working; pykad's additions use the same ``keepalived_`` prefix; process
series use the standard ``process_*`` names of the Prometheus client libraries. Differences
from that exporter (README.md "Status and metrics" lists every series):

* counters carry no ``state`` label: a label that changes with the state would start a new
  series at every transition and break ``rate()``; the state is ``keepalived_vrrp_state``;
* an instance without virtual addresses still has a ``keepalived_vrrp_state`` series, with
  ``ip_address=""`` (the exporter emits one series per VIP and none without);
* ``keepalived_gratuitous_arp_delay_total`` (a configuration value typed as a counter) is not
  exported; GARPs and unsolicited NAs actually sent are, per interface;
* counters are the daemon's own: they restart from 0 when pykad restarts, when an instance is
  re-created by a reload, and on keepalived's STATS_CLEAR signal, which Prometheus treats as
  a counter reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import resource
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from pykad.runtime.driver import InstanceDriver
from pykad.runtime.stats import discards_by_reason

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
METRICS_ENV: Final = "PYKAD_METRICS"
DEFAULT_METRICS_HOST: Final = "127.0.0.1"
STATE_NUMBER: Final = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}  # keepalived's numbers
MAX_HEADER: Final = 8 * 1024
REQUEST_TIMEOUT_S: Final = 5.0

# keepalived's per-instance counter (InstanceStats field) -> the exporter's metric name
KEEPALIVED_COUNTER_METRICS: Final = (
    ("advert_rcvd", "keepalived_advertisements_received_total", "Advertisements received."),
    ("advert_sent", "keepalived_advertisements_sent_total", "Advertisements sent."),
    ("become_master", "keepalived_become_master_total", "Transitions to MASTER."),
    ("release_master", "keepalived_release_master_total", "Transitions from MASTER."),
    ("packet_len_err", "keepalived_packet_length_errors_total", "Packet length errors."),
    (
        "advert_interval_err",
        "keepalived_advertisements_interval_errors_total",
        "Advertisement interval errors.",
    ),
    ("ip_ttl_err", "keepalived_ip_ttl_errors_total", "TTL errors."),
    ("invalid_type_rcvd", "keepalived_invalid_type_received_total", "Invalid type errors."),
    ("addr_list_err", "keepalived_address_list_errors_total", "Address list errors."),
    ("invalid_authtype", "keepalived_authentication_invalid_total", "Invalid auth type."),
    ("authtype_mismatch", "keepalived_authentication_mismatch_total", "Auth type mismatch."),
    ("auth_failure", "keepalived_authentication_failure_total", "Authentication failures."),
    ("pri_zero_rcvd", "keepalived_priority_zero_received_total", "Priority 0 adverts received."),
    ("pri_zero_sent", "keepalived_priority_zero_sent_total", "Priority 0 adverts sent."),
)


def parse_listen(text: str) -> tuple[str, int]:
    """``PORT``, ``ADDR:PORT`` or ``[V6ADDR]:PORT`` -> (host, port); loopback by default."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = DEFAULT_METRICS_HOST
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, [ADDR]:PORT")
    elif not host:
        raise ValueError(f"{text!r}: give an address before ':' or only a port")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{text!r}: the port is not a number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is out of range 1..65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    return host, port


# ---------------------------------------------------------------------------------------------
# The exposition text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass
class _Family:
    name: str
    kind: str  # counter | gauge
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.append(
                f"{self.name}{{{text}}} {_value(value)}" if text else f"{self.name} {_value(value)}"
            )
        return out


class _Families:
    def __init__(self) -> None:
        self._by_name: dict[str, _Family] = {}

    def __call__(self, name: str, kind: str, help_text: str) -> _Family:
        fam = self._by_name.get(name)
        if fam is None:
            fam = self._by_name[name] = _Family(name, kind, help_text)
        return fam

    def render(self) -> str:
        return "".join(line + "\n" for fam in self._by_name.values() for line in fam.lines())


@dataclass(frozen=True, slots=True)
class ScriptSample:
    """One vrrp_script as its runner sees it (pykad.runtime.tracking.ScriptRunner)."""

    name: str
    up: bool | None  # last rise/fall verdict; None before the first result
    runs: int = 0
    skipped: int = 0  # ticks skipped because the previous run was still going
    last_duration_s: float | None = None
    duration_total_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """The standard ``process_*`` metrics of the Prometheus client libraries."""

    cpu_seconds: float
    resident_bytes: int
    virtual_bytes: int
    open_fds: int
    max_fds: int
    start_time: float


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def process_info() -> ProcessInfo:
    """This process, from /proc, as prometheus_client's ProcessCollector reads it."""
    times = os.times()
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGESIZE")
    # fields[0] is field 3 (state) of proc(5): vsize is field 23, rss 24, starttime 22
    return ProcessInfo(
        cpu_seconds=times.user + times.system,
        resident_bytes=int(fields[21]) * page,
        virtual_bytes=int(fields[20]),
        open_fds=len(os.listdir("/proc/self/fd")),
        max_fds=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        start_time=_boot_time() + int(fields[19]) / ticks,
    )


def render_metrics(
    drivers: Sequence[InstanceDriver],
    *,
    version: str,
    announced: Mapping[tuple[str, str], int] | None = None,
    process: ProcessInfo | None = None,
    scripts: Iterable[ScriptSample] = (),
) -> str:
    """The whole exposition. ``announced``: frames sent per (interface, "arp"|"na");
    ``scripts``: every running vrrp_script."""
    fam = _Families()
    fam("keepalived_up", "gauge", "1 while pykad is running.").add(1)
    fam("pykad_build_info", "gauge", "pykad's version.").add(1, version=version)
    for d in sorted(drivers, key=lambda d: d.name):
        _instance(fam, d)
    garp = fam(
        "keepalived_gratuitous_arp_sent_total", "counter", "Gratuitous ARPs sent, per interface."
    )
    na = fam(
        "keepalived_unsolicited_na_sent_total",
        "counter",
        "Unsolicited neighbour advertisements sent, per interface.",
    )
    for (intf, kind), n in sorted((announced or {}).items()):
        (garp if kind == "arp" else na).add(n, intf=intf)
    _scripts(fam, scripts)
    if process is not None:
        _process(fam, process)
    return fam.render()


def _scripts(fam: _Families, scripts: Iterable[ScriptSample]) -> None:
    status = fam("keepalived_script_status", "gauge", "Last vrrp_script result: 1 good, 0 bad.")
    runs = fam("pykad_script_runs_total", "counter", "Completed vrrp_script runs.")
    skipped = fam(
        "pykad_script_skipped_runs_total",
        "counter",
        "vrrp_script runs skipped because the previous run was still going.",
    )
    total = fam(
        "pykad_script_duration_seconds_total",
        "counter",
        "Wall time of all completed vrrp_script runs (divide by runs for the mean).",
    )
    last = fam(
        "pykad_script_last_duration_seconds", "gauge", "Wall time of the last vrrp_script run."
    )
    for s in sorted(scripts, key=lambda s: s.name):
        if s.up is not None:
            status.add(int(s.up), name=s.name)
        runs.add(s.runs, name=s.name)
        skipped.add(s.skipped, name=s.name)
        total.add(s.duration_total_s, name=s.name)
        if s.last_duration_s is not None:
            last.add(s.last_duration_s, name=s.name)


def _instance(fam: _Families, d: InstanceDriver) -> None:
    cfg, m = d.cfg, d.machine
    base = {"iname": cfg.name, "intf": cfg.interface or "", "vrid": str(cfg.vrid)}
    state = STATE_NUMBER.get(str(m.state), 0)
    vrrp_state = fam(
        "keepalived_vrrp_state", "gauge", "VRRP state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT."
    )
    for v in cfg.virtual_addresses or (None,):
        intf = cfg.interface or "" if v is None else v.dev or cfg.interface or ""
        ip = "" if v is None else str(v.ip)
        vrrp_state.add(state, iname=cfg.name, intf=intf, vrid=base["vrid"], ip_address=ip)
    fam("keepalived_vrrp_priority", "gauge", "Effective priority.").add(
        m.effective_priority, **base
    )
    fam("keepalived_vrrp_base_priority", "gauge", "Configured priority.").add(
        m.base_priority, **base
    )
    fam("keepalived_vrrp_transitions_total", "counter", "State changes.").add(d.transitions, **base)
    if d.last_transition_wall is not None:
        fam(
            "keepalived_vrrp_last_transition_timestamp_seconds",
            "gauge",
            "Unix time of the last state change.",
        ).add(d.last_transition_wall, **base)
    counts = d.stats.as_dict()
    for key, name, help_text in KEEPALIVED_COUNTER_METRICS:
        fam(name, "counter", help_text).add(counts[key], **base)
    discards = fam(
        "keepalived_vrrp_discards_total",
        "counter",
        "Received packets discarded, per reason (the reasons partition the discards).",
    )
    for reason, n in discards_by_reason(d.stats).items():
        discards.add(n, **base, reason=reason)
    fam(
        "keepalived_vrrp_adapter_errors_total",
        "counter",
        "Failed operating-system operations (address changes, sends).",
    ).add(counts.get("adapter_errors", 0), **base)
    up = fam(
        "keepalived_vrrp_tracked_up",
        "gauge",
        "Tracked interface/script/process/bfd: 1 up, 0 down (absent while unknown).",
    )
    contrib = fam(
        "keepalived_vrrp_tracked_priority_contribution",
        "gauge",
        "What a tracked object currently adds to the priority.",
    )
    files = fam("keepalived_vrrp_track_file_value", "gauge", "Value read from a track_file.")
    for t in m.tracked:
        labels = {**base, "kind": t.kind, "name": t.name}
        if t.value is not None:
            files.add(t.value, **base, name=t.name)
        elif t.up is not None:
            up.add(int(t.up), **labels)
        contrib.add(t.contribution, **labels)


def _process(fam: _Families, p: ProcessInfo) -> None:
    fam("process_cpu_seconds_total", "counter", "User and system CPU time.").add(p.cpu_seconds)
    fam("process_resident_memory_bytes", "gauge", "Resident memory.").add(p.resident_bytes)
    fam("process_virtual_memory_bytes", "gauge", "Virtual memory.").add(p.virtual_bytes)
    fam("process_open_fds", "gauge", "Open file descriptors.").add(p.open_fds)
    fam("process_max_fds", "gauge", "Limit of open file descriptors.").add(p.max_fds)
    fam("process_start_time_seconds", "gauge", "Unix time the process started.").add(p.start_time)


# ---------------------------------------------------------------------------------------------
# The HTTP listener


class MetricsServer:
    """``GET /metrics`` on (host, port), answered by ``render()``."""

    def __init__(self, host: str, port: int, render: Callable[[], str]) -> None:
        self.host, self.port, self.render = host, port, render
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Raise OSError if the address cannot be bound."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_HEADER
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]  # port 0: the kernel's choice
        log.info("Prometheus metrics on http://%s/metrics", _hostport(self.host, self.port))

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                reply = _response(431, "Request Header Fields Too Large", "headers too large\n")
            except (TimeoutError, asyncio.IncompleteReadError):
                reply = _response(400, "Bad Request", "incomplete request\n")
            else:
                reply = self._respond(head)
            writer.write(reply)
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the scraper went away
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _respond(self, head: bytes) -> bytes:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _response(400, "Bad Request", "bad request\n")
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _response(405, "Method Not Allowed", "GET only\n", allow="GET, HEAD")
        if target == "/metrics":
            return _response(200, "OK", self.render(), head_only=method == "HEAD")
        if target == "/":
            return _response(200, "OK", "pykad: metrics at /metrics\n", head_only=method == "HEAD")
        return _response(404, "Not Found", "not found: try /metrics\n")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _response(
    code: int, reason: str, body: str, *, head_only: bool = False, allow: str | None = None
) -> bytes:
    payload = body.encode()
    headers = [
        f"HTTP/1.1 {code} {reason}",
        f"Content-Type: {CONTENT_TYPE}",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}",
    ]
    if allow is not None:
        headers.append(f"Allow: {allow}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + (b"" if head_only else payload)
