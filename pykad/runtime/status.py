"""What ``pykad status`` shows: the status document and its human rendering.

:func:`status_document` turns the running drivers into the JSON object the control socket
returns for ``status`` (``pykad status --json`` prints it as is). Its shape is fixed by
``pykad/schema/status.schema.json`` (:func:`schema`), versioned by ``version``; fields are
only ever added within a version. :func:`render_status` turns that same object (as received
by the client, so it renders exactly what a machine would read) into the human table.

Times: ``*_at`` fields are wall-clock Unix times (seconds), durations (``uptime_s``,
``time_in_state_s``) come from the event loop's monotonic clock, so a clock step does not make
them negative.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from pykad.config.model import IPAddress, VirtualAddress
from pykad.fsm.tracking import TrackedObject
from pykad.runtime.driver import InstanceDriver
from pykad.runtime.stats import discards_by_reason

STATUS_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """The result of the last reload (SIGHUP or ``pykad reload``)."""

    applied: bool
    at: float  # wall clock
    message: str
    diagnostics: str = ""  # rendered like ``pykad -t`` (file:line:col: severity: ...)

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "at": round(self.at, 3),
            "message": self.message,
            "diagnostics": self.diagnostics,
        }


@dataclass(frozen=True, slots=True)
class DaemonInfo:
    """The daemon-wide part of the status."""

    pid: int
    version: str
    config_file: str | None
    started_at: float  # wall clock
    uptime_s: float
    last_reload: ReloadOutcome | None = None


def schema() -> dict[str, Any]:
    """The JSON Schema of the status document (shipped as package data)."""
    text = resources.files("pykad").joinpath("schema/status.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _tracked(t: TrackedObject) -> dict[str, Any]:
    state = None if t.kind == "file" else "unknown" if t.up is None else "up" if t.up else "down"
    return {
        "kind": t.kind,
        "name": t.name,
        "weight": t.weight,
        "reverse": t.reverse,
        "state": state,
        "value": t.value,
        "contribution": t.contribution,
    }


def _vip(v: VirtualAddress, default_dev: str | None) -> dict[str, Any]:
    return {"address": str(v.address), "interface": v.dev or default_dev}


def instance_status(
    d: InstanceDriver, source: IPAddress | None, now: float, started: float
) -> dict[str, Any]:
    """One instance; ``now`` and ``started`` (the daemon's start) on the driver's clock."""
    cfg, m = d.cfg, d.machine
    state = str(m.state)
    master: dict[str, Any] | None = None
    if state == "MASTER":
        own = m.master_ip or m.own_ip or source
        master = {
            "address": None if own is None else str(own),
            "self": True,
            "priority": m.effective_priority,
        }
    elif state == "BACKUP" and m.master_ip is not None:
        master = {"address": str(m.master_ip), "self": False, "priority": m.master_priority}
    last = m.last_transition
    since = started if last is None else last[0]
    transition: dict[str, Any] | None = None
    if d.last_transition is not None:
        transition = {
            "from": d.last_transition.old,
            "to": d.last_transition.new,
            "reason": d.last_transition.reason,
            "at": None if d.last_transition_wall is None else round(d.last_transition_wall, 3),
        }
    return {
        "name": cfg.name,
        "state": state,
        "wantstate": str(m.wantstate),
        "interface": cfg.interface,
        "vrid": cfg.vrid,
        "version": cfg.version,
        "family": cfg.family,
        "unicast": cfg.is_unicast,
        "sync_group": cfg.sync_group,
        "priority": m.effective_priority,
        "base_priority": m.base_priority,
        "advert_int_s": cfg.advert_int_cs / 100,
        "master_advert_int_s": m.master_adver_int_cs / 100,
        "source": None if source is None else str(source),
        "master": master,
        "vips": [_vip(v, cfg.interface) for v in cfg.virtual_addresses],
        "excluded_vips": [_vip(v, cfg.interface) for v in cfg.excluded_addresses],
        "vips_installed": state == "MASTER",
        "time_in_state_s": round(max(0.0, now - since), 3),
        "last_transition": transition,
        "fault_reasons": list(m.fault_reasons),
        "tracked": [_tracked(t) for t in m.tracked],
        "stats": {**d.stats.as_dict(), "transitions": d.transitions},
        "discards": discards_by_reason(d.stats),
    }


def status_document(
    info: DaemonInfo,
    drivers: Sequence[InstanceDriver],
    sources: Mapping[str, IPAddress | None],
    *,
    now: float,
    started: float,
) -> dict[str, Any]:
    """The whole ``status`` result; ``now``/``started`` on the drivers' (monotonic) clock."""
    return {
        "version": STATUS_VERSION,
        "daemon": {
            "pid": info.pid,
            "version": info.version,
            "config_file": info.config_file,
            "started_at": round(info.started_at, 3),
            "uptime_s": round(info.uptime_s, 3),
            "last_reload": None if info.last_reload is None else info.last_reload.as_dict(),
        },
        "instances": [
            instance_status(d, sources.get(d.name), now, started)
            for d in sorted(drivers, key=lambda d: d.name)
        ],
    }


# ---------------------------------------------------------------------------------------------
# The human table


def duration(seconds: float) -> str:
    """``45s``, ``3m07s``, ``2h05m``, ``3d04h`` (systemctl's style, two units at most)."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _master_text(inst: Mapping[str, Any]) -> str:
    master = inst.get("master")
    if not master:
        return "-"
    address = master.get("address") or "?"
    return f"{address} (self)" if master.get("self") else str(address)


def _tracked_line(t: Mapping[str, Any]) -> str:
    state = f"value {t['value']}" if t["kind"] == "file" else str(t["state"])
    text = f"    {t['kind']} {t['name']}: {state}"
    weight = int(t["weight"])
    if weight:
        text += f", weight {weight:+d}{' reverse' if t['reverse'] else ''}"
        text += f" -> {int(t['contribution']):+d}"
    elif t["kind"] == "file":
        text += f" (fault when {'zero' if t['reverse'] else 'not zero'})"
    else:
        text += f" (fault when {'up' if t['reverse'] else 'down'})"
    return text


def render_status(doc: Mapping[str, Any]) -> str:
    """The status document as ``pykad status`` prints it."""
    daemon = doc["daemon"]
    head = f"pykad {daemon['version']} (pid {daemon['pid']}), up {duration(daemon['uptime_s'])}"
    if daemon.get("config_file"):
        head += f", config {daemon['config_file']}"
    out = [head]
    reload = daemon.get("last_reload")
    if reload:
        word = "applied" if reload["applied"] else "REFUSED"
        out.append(f"last reload {word}: {reload['message']}")
    instances = doc["instances"]
    if not instances:
        return "\n".join([*out, "", "no VRRP instances"]) + "\n"
    rows = [["INSTANCE", "STATE", "PRIO", "BASE", "INTERFACE", "VRID", "MASTER", "SINCE", "VIPS"]]
    for inst in instances:
        vips = ", ".join(v["address"] for v in inst["vips"]) or "-"
        rows.append(
            [
                inst["name"],
                inst["state"],
                str(inst["priority"]),
                str(inst["base_priority"]),
                inst["interface"] or "-",
                str(inst["vrid"]),
                _master_text(inst),
                duration(inst["time_in_state_s"]),
                vips,
            ]
        )
    out += ["", *_table(rows)]
    for inst in instances:
        out.append("")
        last = inst.get("last_transition")
        if last:
            out.append(f"{inst['name']}: {last['from']} -> {last['to']}: {last['reason']}")
        else:
            out.append(f"{inst['name']}: no transition yet")
        for reason in inst["fault_reasons"]:
            out.append(f"    fault: {reason}")
        out += [_tracked_line(t) for t in inst["tracked"]]
        st = inst["stats"]
        out.append(
            f"    adverts sent {st['advert_sent']}, received {st['advert_rcvd']};"
            f" became master {st['become_master']}; discarded {sum(inst['discards'].values())}"
        )
    return "\n".join(out) + "\n"
