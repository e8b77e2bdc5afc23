"""The status document (schema, human table) and the Prometheus exposition, from real drivers.

Drivers run on the virtual-time loop of conftest.py: a master that won its election, a backup
that hears it (adverts fed through the real receive path), an instance in FAULT."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pykad.adapters.ports import ReceivedPacket
from pykad.config.model import TrackInterface, TrackRef, VrrpInstance
from pykad.fsm.machine import VrrpMachine
from pykad.proto.advert import Advert, encode
from pykad.proto.errors import Discard
from pykad.runtime.driver import InstanceDriver, Ports
from pykad.runtime.metrics import (
    MetricsServer,
    ProcessInfo,
    ScriptSample,
    parse_listen,
    process_info,
    render_metrics,
)
from pykad.runtime.stats import InstanceStats, discards_by_reason
from pykad.runtime.status import (
    DaemonInfo,
    ReloadOutcome,
    duration,
    render_status,
    schema,
    status_document,
)
from pykad.testing.builders import instance

OWN = ipaddress.IPv4Address("192.0.2.1")
PEER = ipaddress.IPv4Address("192.0.2.2")
GROUP = ipaddress.IPv4Address("224.0.0.18")


class NullPorts:
    def send(self, payload_for: object) -> None:
        pass

    def absorb_repeats(self, packet: object, on_repeat: object = None) -> None:
        pass  # every packet is delivered (allowed by PacketPort)

    async def install(self, *a: object, **kw: object) -> None:
        pass

    async def remove(self, *a: object, **kw: object) -> None:
        pass

    async def announce(self, *a: object, **kw: object) -> None:
        pass

    def notify(self, kind: str, name: str, event: str, priority: int) -> None:
        pass


def advert_from_peer(cfg: VrrpInstance, priority: int) -> ReceivedPacket:
    adv = Advert(
        version=cfg.version,
        vrid=cfg.vrid,
        priority=priority,
        adver_int_cs=cfg.advert_int_cs,
        addresses=tuple(v.ip for v in cfg.virtual_addresses),
    )
    payload = encode(adv, src=PEER, dst=GROUP)
    return ReceivedPacket(src=PEER, dst=GROUP, ttl=255, payload=payload, ifindex=2)


def run_drivers(
    vloop: asyncio.AbstractEventLoop, *cfgs: VrrpInstance, seconds: float = 5.0, **kw: object
) -> list[InstanceDriver]:
    """Run one driver per config for ``seconds`` of virtual time. A config named ``*_b``
    hears a priority-200 peer every second (it stays BACKUP)."""

    async def scenario() -> list[InstanceDriver]:
        p = NullPorts()
        ports = Ports(packets=p, addresses=p, announcer=p, notifier=p)
        drivers = [
            InstanceDriver(VrrpMachine(cfg, own_ip=OWN, **kw), ports, source=OWN)  # type: ignore[arg-type]
            for cfg in cfgs
        ]
        tasks = [asyncio.create_task(d.run()) for d in drivers]
        for _ in range(int(seconds)):
            await asyncio.sleep(1)
            for d in drivers:
                if d.name.endswith("_b"):
                    d.on_packet(advert_from_peer(d.cfg, 200))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return drivers

    return vloop.run_until_complete(scenario())


def info(**kw: object) -> DaemonInfo:
    args: dict[str, object] = {
        "pid": 4242,
        "version": "0.1.0",
        "config_file": "/etc/keepalived/keepalived.conf",
        "started_at": 1_700_000_000.0,
        "uptime_s": 125.0,
    }
    args.update(kw)
    return DaemonInfo(**args)  # type: ignore[arg-type]


TRACKING = {
    "track_interfaces": (TrackInterface(name="eth1", weight=-30),),
    "track_scripts": (TrackRef(name="chk_web", weight=10),),
}


def test_status_document_follows_the_schema_and_names_the_master(
    vloop: asyncio.AbstractEventLoop,
) -> None:
    master = instance("VI_a", vrid=1, priority=150, **TRACKING)
    backup = instance("VI_b", vrid=2, vips=("192.0.2.101/24", "192.0.2.102/24"))
    drivers = run_drivers(vloop, master, backup)
    drivers[1].stats.count(Discard.DST_MISMATCH.value)
    drivers[1].stats.count("addr_list_err")  # what the driver does for a dst_mismatch
    doc = status_document(
        info(last_reload=ReloadOutcome(False, 1_700_000_100.0, "errors", "x.conf:3:1: error")),
        drivers,
        {"VI_a": OWN, "VI_b": OWN},
        now=vloop.time(),
        started=0.0,
    )
    jsonschema.validate(doc, schema())
    a, b = doc["instances"]
    assert (a["state"], a["master"]) == (
        "MASTER",
        {"address": str(OWN), "self": True, "priority": 150},
    )
    assert (b["state"], b["master"]) == (
        "BACKUP",
        {"address": str(PEER), "self": False, "priority": 200},
    )
    assert a["last_transition"]["from"] == "BACKUP"
    assert a["last_transition"]["to"] == "MASTER"
    assert a["last_transition"]["reason"]
    assert a["vips_installed"]
    assert not b["vips_installed"]
    assert [v["address"] for v in b["vips"]] == ["192.0.2.101/24", "192.0.2.102/24"]
    assert a["tracked"] == [
        {
            "kind": "interface",
            "name": "eth0",
            "weight": 0,
            "reverse": False,
            "state": "up",
            "value": None,
            "contribution": 0,
        },
        {
            "kind": "interface",
            "name": "eth1",
            "weight": -30,
            "reverse": False,
            "state": "up",
            "value": None,
            "contribution": 0,
        },
        {
            "kind": "script",
            "name": "chk_web",
            "weight": 10,
            "reverse": False,
            "state": "unknown",
            "value": None,
            "contribution": 0,
        },
    ]
    assert b["stats"]["advert_rcvd"] >= 4
    assert b["stats"]["transitions"] == 1
    assert b["discards"]["dst_mismatch"] == 1
    assert b["discards"]["addr_list_err"] == 0
    assert 0 < a["time_in_state_s"] < b["time_in_state_s"]  # BACKUP since start, MASTER later
    assert doc["daemon"]["last_reload"]["applied"] is False


def test_schema_rejects_what_a_client_must_not_see(vloop: asyncio.AbstractEventLoop) -> None:
    (d,) = run_drivers(vloop, instance())
    doc = status_document(info(), [d], {}, now=vloop.time(), started=0.0)
    doc["instances"][0]["state"] = "STOP"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema())


def test_render_status_table(vloop: asyncio.AbstractEventLoop) -> None:
    master = instance("VI_a", vrid=1, priority=150, **TRACKING)
    backup = instance("VI_b", vrid=2)
    faulty = instance("VI_c", vrid=3, track_interfaces=(TrackInterface(name="eth9"),))
    drivers = run_drivers(vloop, master, backup)
    drivers += run_drivers(vloop, faulty, initial_trackers={("interface", "eth9"): False})
    doc = status_document(info(), drivers, {}, now=vloop.time(), started=0.0)
    text = render_status(doc)
    lines = text.splitlines()
    assert lines[0] == "pykad 0.1.0 (pid 4242), up 2m05s, config /etc/keepalived/keepalived.conf"
    header = lines[2].split()
    assert header == [
        "INSTANCE",
        "STATE",
        "PRIO",
        "BASE",
        "INTERFACE",
        "VRID",
        "MASTER",
        "SINCE",
        "VIPS",
    ]
    assert lines[3].split()[:8] == [
        "VI_a",
        "MASTER",
        "150",
        "150",
        "eth0",
        "1",
        "192.0.2.1",
        "(self)",
    ]
    assert lines[4].split()[:7] == ["VI_b", "BACKUP", "100", "100", "eth0", "2", "192.0.2.2"]
    assert lines[5].split()[:7] == ["VI_c", "FAULT", "100", "100", "eth0", "3", "-"]
    assert "VI_a: BACKUP -> MASTER: " in text
    assert "    interface eth1: up, weight -30 -> +0" in lines
    assert "    script chk_web: unknown, weight +10 -> +0" in lines
    assert "    interface eth0: up (fault when down)" in lines
    assert "    fault: interface eth9 down" in lines
    assert "VI_c: INIT -> FAULT: " in text


def test_render_status_without_instances_and_durations() -> None:
    doc = {
        "version": 1,
        "daemon": {
            "pid": 1,
            "version": "0.1.0",
            "config_file": None,
            "started_at": 0.0,
            "uptime_s": 3.0,
            "last_reload": ReloadOutcome(True, 0.0, "1 kept, 0 removed, 0 started").as_dict(),
        },
        "instances": [],
    }
    assert render_status(doc) == (
        "pykad 0.1.0 (pid 1), up 3s\nlast reload applied: 1 kept, 0 removed, 0 started\n\n"
        "no VRRP instances\n"
    )
    assert [duration(s) for s in (0, 59, 60, 187, 3600, 7500, 86400 + 3 * 3600)] == [
        "0s",
        "59s",
        "1m00s",
        "3m07s",
        "1h00m",
        "2h05m",
        "1d03h",
    ]


def samples(text: str) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(found: dict[str, list[Sample]], metric: str, /, **labels: str) -> float:
    """The one sample of ``metric`` whose labels include ``labels``."""
    matches = [s.value for s in found[metric] if labels.items() <= s.labels.items()]
    assert len(matches) == 1, (metric, labels, found.get(metric))
    return matches[0]


def test_metrics_parse_and_carry_the_exporter_names(vloop: asyncio.AbstractEventLoop) -> None:
    master = instance("VI_a", vrid=1, priority=150, **TRACKING)
    backup = instance("VI_b", vrid=2, vips=())
    drivers = run_drivers(vloop, master, backup)
    drivers[1].stats.count(Discard.AUTH_FAILURE.value)
    drivers[1].stats.count(Discard.CHECKSUM.value)
    text = render_metrics(
        drivers,
        version="0.1.0",
        announced={("eth0", "arp"): 10, ("eth0", "na"): 3},
        process=process_info(),
        scripts=[
            ScriptSample("chk_web", True, runs=4, last_duration_s=0.25, duration_total_s=1.5),
            ScriptSample(
                "chk_db", False, runs=1, skipped=2, last_duration_s=2.0, duration_total_s=2.0
            ),
            ScriptSample("chk_new", None),
        ],
    )
    found = samples(text)
    a, b = (
        {"iname": "VI_a", "intf": "eth0", "vrid": "1"},
        {"iname": "VI_b", "intf": "eth0", "vrid": "2"},
    )
    assert value(found, "keepalived_up") == 1
    assert value(found, "keepalived_vrrp_state", **a, ip_address="192.0.2.100") == 2
    assert value(found, "keepalived_vrrp_state", **b, ip_address="") == 1  # no VIPs
    assert value(found, "keepalived_vrrp_priority", **a) == 150
    assert value(found, "keepalived_vrrp_base_priority", **b) == 100
    assert value(found, "keepalived_advertisements_sent_total", **a) >= 1
    assert value(found, "keepalived_advertisements_received_total", **b) >= 4
    assert value(found, "keepalived_become_master_total", **a) == 1
    assert value(found, "keepalived_vrrp_transitions_total", **a) == 2  # INIT->BACKUP->MASTER
    assert value(found, "keepalived_authentication_failure_total", **b) == 1
    reasons = {
        s.labels["reason"]: s.value
        for s in found["keepalived_vrrp_discards_total"]
        if s.labels["iname"] == "VI_b"
    }
    assert reasons == {
        r.value: float(r in (Discard.AUTH_FAILURE, Discard.CHECKSUM)) for r in Discard
    }
    assert value(found, "keepalived_gratuitous_arp_sent_total", intf="eth0") == 10
    assert value(found, "keepalived_unsolicited_na_sent_total", intf="eth0") == 3
    scripts = {s.labels["name"]: s.value for s in found["keepalived_script_status"]}
    assert scripts == {"chk_web": 1, "chk_db": 0}  # no result yet: no series
    assert value(found, "pykad_script_runs_total", name="chk_web") == 4
    assert value(found, "pykad_script_runs_total", name="chk_new") == 0
    assert value(found, "pykad_script_skipped_runs_total", name="chk_db") == 2
    assert value(found, "pykad_script_duration_seconds_total", name="chk_web") == 1.5
    assert value(found, "pykad_script_last_duration_seconds", name="chk_db") == 2.0
    last = {s.labels["name"] for s in found["pykad_script_last_duration_seconds"]}
    assert last == {"chk_web", "chk_db"}  # never ran: no last duration
    assert value(found, "keepalived_vrrp_tracked_up", **a, kind="interface", name="eth1") == 1
    assert (
        value(
            found,
            "keepalived_vrrp_tracked_priority_contribution",
            **a,
            kind="script",
            name="chk_web",
        )
        == 0
    )
    # a script with no result yet has no up/down series (its contribution is 0)
    assert all(s.labels["name"] != "chk_web" for s in found["keepalived_vrrp_tracked_up"])
    assert value(found, "process_open_fds") > 0
    assert value(found, "process_resident_memory_bytes") > 0
    assert value(found, "process_start_time_seconds") > 1_000_000_000
    assert value(found, "pykad_build_info", version="0.1.0") == 1


def test_metrics_escape_label_values_and_show_track_files(vloop: asyncio.AbstractEventLoop) -> None:
    cfg = instance('VI "odd"\\name', track_files=(TrackRef(name="f", weight=2),))
    (d,) = run_drivers(vloop, cfg, seconds=1, initial_files={"f": 7})
    found = samples(render_metrics([d], version="x"))
    assert value(found, "keepalived_vrrp_track_file_value", iname='VI "odd"\\name', name="f") == 7
    assert (
        value(found, "keepalived_vrrp_tracked_priority_contribution", kind="file", name="f") == 14
    )
    assert "process_open_fds" not in found  # no process info given


def test_discards_partition_keepalived_counters() -> None:
    st = InstanceStats()
    for reason in (Discard.DST_MISMATCH, Discard.DST_MISMATCH, Discard.ADDR_LIST):
        st.count("addr_list_err")
        if reason is Discard.DST_MISMATCH:
            st.count(reason.value)
    parts = discards_by_reason(st)
    assert (parts["addr_list_err"], parts["dst_mismatch"]) == (1, 2)
    assert sum(parts.values()) == 3


@pytest.mark.parametrize(
    ("text", "listen"),
    [
        ("9650", ("127.0.0.1", 9650)),
        ("0.0.0.0:9650", ("0.0.0.0", 9650)),
        ("[::1]:9650", ("::1", 9650)),
        ("192.0.2.1:1", ("192.0.2.1", 1)),
    ],
)
def test_parse_listen(text: str, listen: tuple[str, int]) -> None:
    assert parse_listen(text) == listen


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (":9650", "give an address"),
        ("x:9650", "is not an IP address"),
        ("127.0.0.1:http", "not a number"),
        ("70000", "out of range"),
        ("::1:9650", "in brackets"),
    ],
)
def test_parse_listen_errors(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_listen(text)


def test_process_info_is_this_process() -> None:
    p = process_info()
    assert isinstance(p, ProcessInfo)
    assert p.open_fds <= p.max_fds
    assert p.cpu_seconds >= 0
    assert p.virtual_bytes >= p.resident_bytes > 0
    assert Path("/proc/self").exists()


async def http(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    writer.write_eof()
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status, headers, body


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_metrics_http_listener() -> None:
    server = MetricsServer("127.0.0.1", 0, lambda: "keepalived_up 1\n")
    await server.start()
    try:
        port = server.port
        assert port > 0
        status, headers, body = await http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == "HTTP/1.1 200 OK"
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert (body, headers["Content-Length"]) == (b"keepalived_up 1\n", "16")
        status, headers, body = await http(port, b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n")
        assert (status, body, headers["Content-Length"]) == ("HTTP/1.1 200 OK", b"", "16")
        assert (await http(port, b"GET / HTTP/1.1\r\n\r\n"))[0] == "HTTP/1.1 200 OK"
        assert (await http(port, b"GET /x HTTP/1.1\r\n\r\n"))[0] == "HTTP/1.1 404 Not Found"
        status, headers, _ = await http(port, b"POST /metrics HTTP/1.1\r\n\r\n")
        assert (status, headers["Allow"]) == ("HTTP/1.1 405 Method Not Allowed", "GET, HEAD")
        assert (await http(port, b"nonsense\r\n\r\n"))[0] == "HTTP/1.1 400 Bad Request"
        # the client half-closes after its bytes: a request without its blank line is cut
        assert (await http(port, b"GET /metrics HTTP/1.1\r\n"))[0] == "HTTP/1.1 400 Bad Request"
        big = b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * 9000 + b"\r\n\r\n"
        assert (await http(port, big))[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    finally:
        await server.close()
