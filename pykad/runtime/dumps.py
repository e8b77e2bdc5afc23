"""The SIGUSR1 / SIGUSR2 / SIGRTMIN+2 dump files, in keepalived's layouts (spec §7.2).

* ``keepalived.data`` (SIGUSR1): free-form and explicitly unstable in keepalived; pykad keeps
  its section headers and the ``key = value`` lines operators grep for.
* ``keepalived.stats`` (SIGUSR2): byte-exact, see :func:`pykad.runtime.stats.render_stats`.
* ``keepalived.json`` (SIGRTMIN+2): keepalived 2.2.7's json_version 1 array, one object per
  instance with ``data`` and ``stats``. One deliberate difference: keepalived truncates
  sub-second intervals to whole seconds (``adver_int`` 0 for 0.1 s); pykad writes a float.

Files are written atomically (temporary file in the same directory, then rename) with mode
0600 (keepalived runs with umask 0177). The default names follow ``$TMPDIR`` when it is an
absolute path, as keepalived does.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pykad.config.model import Config, GlobalDefs, VirtualAddress, VrrpInstance
from pykad.runtime.driver import InstanceDriver

_STATE_NUMBER = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}
_DEFAULT_DIR = "/tmp"  # the directory of GlobalDefs' default dump names


def dump_path(configured: str) -> str:
    """``configured`` (a GlobalDefs *_dump_file), moved to $TMPDIR if it is the default."""
    tmpdir = os.environ.get("TMPDIR", "")
    if os.path.dirname(configured) == _DEFAULT_DIR and tmpdir.startswith("/"):
        defaults = {
            GlobalDefs().state_dump_file,
            GlobalDefs().stats_dump_file,
            GlobalDefs().json_dump_file,
        }
        if configured in defaults:
            return os.path.join(tmpdir, os.path.basename(configured))
    return configured


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".pykad-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _vip_text(vip: VirtualAddress, dev: str | None, installed: bool) -> str:
    parts = [str(vip.address), "dev", vip.dev or dev or "?"]
    if vip.broadcast is not None:
        parts += ["brd", str(vip.broadcast)]
    parts += ["scope", vip.scope]
    if vip.label:
        parts += ["label", vip.label]
    if installed:
        parts.append("set")
    return " ".join(parts)


def _interval_text(cfg: VrrpInstance, cs: int) -> str:
    return f"{cs // 100} sec" if cfg.version == 2 else f"{cs * 10} milli-sec"


def _when(wall: float | None) -> str:
    if wall is None:
        return "0.000000 (never)"
    usec = round((wall % 1) * 1_000_000) % 1_000_000
    stamp = time.strftime("%a %b %e %H:%M:%S", time.localtime(wall))
    return f"{wall:.6f} ({stamp}.{usec:06d} {time.localtime(wall).tm_year})"


@dataclass(frozen=True, slots=True)
class DumpContext:
    """What the data dump shows beyond the drivers: the config and the open sockets."""

    config: Config
    drivers: Sequence[InstanceDriver]
    sockets: Sequence[str]
    sources: dict[str, str]  # instance name -> advert source address in use


def render_data(ctx: DumpContext) -> str:
    g = ctx.config.global_defs
    out = [
        "------< Global definitions >------",
        f" Router ID = {g.router_id or os.uname().nodename}",
        f" Dynamic interfaces = {str(g.dynamic_interfaces).lower()}",
        f" Default interface = {g.default_interface}",
    ]
    if g.notify_fifo is not None:
        out.append(f" Global notify fifo = {g.notify_fifo.path}")
    if g.vrrp_notify_fifo is not None:
        out.append(f" VRRP notify fifo = {g.vrrp_notify_fifo.path}")
    out += [
        f" FIFO write vrrp states on reload = {str(g.fifo_write_vrrp_states_on_reload).lower()}",
        f" VRRP notify priority changes = {str(g.vrrp_notify_priority_changes).lower()}",
        f" VRRP IPv4 mcast group = {g.vrrp_mcast_group4}",
        f" VRRP IPv6 mcast group = {g.vrrp_mcast_group6}",
        f" Gratuitous ARP delay = {g.vrrp_garp_master_delay_s:g}",
        f" Gratuitous ARP repeat = {g.vrrp_garp_master_repeat}",
        f" Gratuitous ARP refresh timer = {g.vrrp_garp_master_refresh_s:g}",
        f" Gratuitous ARP refresh repeat = {g.vrrp_garp_master_refresh_repeat}",
        f" Num adverts before down = {g.vrrp_down_timer_adverts}",
        f" VRRP default protocol version = {g.vrrp_version}",
        f" VRRP check unicast_src = {str(g.vrrp_check_unicast_src).lower()}",
        f" VRRP skip check advert addresses = {str(g.vrrp_skip_check_adv_addr).lower()}",
        f" VRRP strict mode = {str(g.vrrp_strict).lower()}",
        f" Script security {'enabled' if g.enable_script_security else 'disabled'}",
        "------< VRRP Topology >------",
    ]
    for d in ctx.drivers:
        out += _instance_lines(d, ctx.sources.get(d.name, "(none)"), g)
    out.append("------< VRRP Sockpool >------")
    out += [f" {label}" for label in ctx.sockets]
    if ctx.config.sync_groups:
        out.append("------< VRRP Sync groups >------")
        for group in ctx.config.sync_groups:
            out.append(f" VRRP Sync Group = {group.name}")
            out += [f"   {m}" for m in group.members]
    return "".join(line + "\n" for line in out)


def _instance_lines(d: InstanceDriver, source: str, g: GlobalDefs) -> list[str]:
    cfg, m = d.cfg, d.machine
    state = str(m.state)
    out = [
        f" VRRP Instance = {cfg.name}",
        f"   VRRP Version = {cfg.version}",
        f"   State = {state}",
    ]
    if state == "BACKUP" and m.master_ip is not None:
        out += [f"   Master router = {m.master_ip}", f"   Master priority = {m.master_priority}"]
    out += [
        f"   Wantstate = {m.wantstate}",
        f"   Last transition = {_when(d.last_transition_wall)}",
        f"   Interface = {cfg.interface or '(none)'}",
        f"   Using src_ip = {source}",
    ]
    if cfg.is_unicast:
        out.append("   Unicast Peer:")
        out += [
            f"     {p.address} min_ttl {p.min_ttl} max_ttl {p.max_ttl}" for p in cfg.unicast_peers
        ]
    else:
        group = cfg.mcast_group or (g.vrrp_mcast_group4 if cfg.family == 4 else g.vrrp_mcast_group6)
        out.append(f"   Multicast address {group}")
    out += [
        f"   Gratuitous ARP delay = {cfg.garp_master_delay_s:g}",
        f"   Gratuitous ARP repeat = {cfg.garp_master_repeat}",
        f"   Gratuitous ARP refresh = {cfg.garp_master_refresh_s:g}",
        f"   Gratuitous ARP refresh repeat = {cfg.garp_master_refresh_repeat}",
        f"   Down timer adverts = {cfg.down_timer_adverts}",
        f"   Virtual Router ID = {cfg.vrid}",
        f"   Priority = {m.base_priority}",
        f"   Effective priority = {m.effective_priority}",
        f"   Advert interval = {_interval_text(cfg, cfg.advert_int_cs)}",
        f"   Master advert interval = {_interval_text(cfg, m.master_adver_int_cs)}",
        f"   Accept = {'enabled' if cfg.accept else 'disabled'}",
        f"   Preempt = {'disabled' if cfg.nopreempt else 'enabled'}",
    ]
    if cfg.preempt_delay_s:
        out.append(f"   Preempt delay = {cfg.preempt_delay_s:g} secs")
    out.append(f"   Authentication type = {cfg.auth.type.value.lower()}")
    installed = state == "MASTER"
    for title, addrs in (
        ("Virtual IP", cfg.virtual_addresses),
        ("Virtual IP Excluded", cfg.excluded_addresses),
    ):
        if addrs:
            out.append(f"   {title} ({len(addrs)}):")
            out += [f"     {_vip_text(v, cfg.interface, installed)}" for v in addrs]
    if m.fault_reasons:
        out.append(f"   Fault reasons = {', '.join(m.fault_reasons)}")
    return out


def _number(x: float) -> int | float:
    """keepalived prints integers; pykad keeps fractions instead of truncating them."""
    return int(x) if x == int(x) else x


def _json_instance(d: InstanceDriver) -> dict[str, object]:
    cfg, m = d.cfg, d.machine
    state = str(m.state)
    installed = state == "MASTER"

    def seconds(cs: int) -> int | float:
        return _number(cs / 100)

    data: dict[str, object] = {
        "iname": cfg.name,
        "dont_track_primary": int(cfg.dont_track_primary),
        "skip_check_adv_addr": int(cfg.skip_check_adv_addr),
        "strict_mode": int(cfg.strict),
        "vmac_ifname": "",
        "ifp_ifname": cfg.interface or "",
        "master_priority": m.master_priority or 0,
        "last_transition": round(d.last_transition_wall or 0.0, 6),
        "garp_delay": int(cfg.garp_master_delay_s),
        "garp_refresh": int(cfg.garp_master_refresh_s),
        "garp_rep": cfg.garp_master_repeat,
        "garp_refresh_rep": cfg.garp_master_refresh_repeat,
        "garp_lower_prio_delay": int(cfg.garp_lower_prio_delay_s),
        "garp_lower_prio_rep": cfg.garp_lower_prio_repeat,
        "lower_prio_no_advert": int(cfg.lower_prio_no_advert),
        "higher_prio_send_advert": int(cfg.higher_prio_send_advert),
        "vrid": cfg.vrid,
        "base_priority": m.base_priority,
        "effective_priority": m.effective_priority,
        "vipset": installed,
        "promote_secondaries": False,
        "adver_int": seconds(cfg.advert_int_cs),
        "master_adver_int": seconds(m.master_adver_int_cs),
        "accept": int(cfg.accept),
        "nopreempt": cfg.nopreempt,
        "preempt_delay": _number(cfg.preempt_delay_s),
        "state": _STATE_NUMBER.get(state, 0),
        "wantstate": _STATE_NUMBER.get(str(m.wantstate), 0),
        "version": cfg.version,
        "smtp_alert": cfg.notify.smtp_alert,
        "notify_deleted": cfg.notify.deleted_enabled,
    }
    n = cfg.notify
    for key, script in (
        ("script_backup", n.backup),
        ("script_master", n.master),
        ("script_fault", n.fault),
        ("script_stop", n.stop),
        ("script_deleted", n.deleted),
        ("script", n.generic),
        ("script_master_rx_lower_pri", n.master_rx_lower_pri),
    ):
        if script is not None:
            data[key] = " ".join(script.argv)
    if cfg.virtual_addresses:
        data["vips"] = [_vip_text(v, cfg.interface, installed) for v in cfg.virtual_addresses]
    if cfg.excluded_addresses:
        data["evips"] = [_vip_text(v, cfg.interface, installed) for v in cfg.excluded_addresses]
    if cfg.track_interfaces:
        data["track_ifp"] = [t.name for t in cfg.track_interfaces]
    if cfg.track_scripts:
        data["track_script"] = [t.name for t in cfg.track_scripts]
    data["auth_type"] = {"NONE": 0, "PASS": 1, "AH": 2}[cfg.auth.type.value]
    if cfg.auth.password:
        data["auth_data"] = cfg.auth.password.rstrip(b"\0").decode(errors="replace")
    return {"data": data, "stats": d.stats.as_dict()}


def render_json(drivers: Sequence[InstanceDriver]) -> str:
    return json.dumps([_json_instance(d) for d in drivers], separators=(",", ":")) + "\n"
