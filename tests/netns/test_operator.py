"""The operator interface against running daemons in a namespace pair (issue 7).

``pykad status`` / ``--json`` (validated against pykad/schema/status.schema.json) name the
right master before and after a crash failover and after preemption back; a daemon started
over the socket file of a killed one replaces it; ``pykad stop`` returns once the master has
resigned; ``pykad reload`` reports refusals with the located diagnostics; the metrics
endpoint is scraped from inside the namespace and parsed with prometheus_client's parser,
and its counters move while adverts flow; a non-root client is refused twice over (file
mode, then SO_PEERCRED)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pykad.runtime.control import ControlClient
from pykad.runtime.status import schema
from pykad.testing.keepalived import (
    PykadFixture,
    StartDaemon,
    elect,
    entering,
    pair_configs,
    pykad_argv0,
)
from pykad.testing.netns import Lab, Node

pytestmark = pytest.mark.netns

VIP = "192.0.2.254"
SCRAPE = (
    "import sys, urllib.request\n"
    "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n"
)


def cli(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``pykad`` command line (as root, or as ``user`` through setpriv)."""
    argv = [*pykad_argv0(), *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def status(daemon: PykadFixture) -> dict[str, Any]:
    proc = cli("status", "--json", "--control-socket", str(daemon.control_socket))
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    jsonschema.validate(doc, schema())
    return doc


def vi1(doc: dict[str, Any]) -> dict[str, Any]:
    (inst,) = doc["instances"]
    assert inst["name"] == "VI_1"
    return inst


def scrape(node: Node, port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics from inside the node's namespace; {(sample name, labels): value}."""
    text = node.run([sys.executable, "-c", SCRAPE, f"http://127.0.0.1:{port}/metrics"])
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def metric(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    labels = (("iname", "VI_1"), ("intf", "eth0"), ("vrid", "51"))
    return found[(name, labels)]


def test_status_follows_failover_and_preemption(lab: Lab, start: StartDaemon) -> None:
    r1, r2 = lab.routers
    c1, c2 = pair_configs(r1, r2)
    m, b = elect(start, (PykadFixture, r1, c1), (PykadFixture, r2, c2))
    assert isinstance(m, PykadFixture)
    assert isinstance(b, PykadFixture)
    r1.wait_address(VIP, timeout=10)

    one, two = status(m), status(b)
    # the backup knows the master only once it has heard an advert (bounded wait)
    deadline = time.monotonic() + 10
    while vi1(two)["master"] is None and time.monotonic() < deadline:
        threading.Event().wait(0.05)
        two = status(b)
    assert one["daemon"]["pid"] == m.pid
    assert vi1(one)["state"] == "MASTER"
    assert vi1(one)["master"] == {"address": str(r1.ip4), "self": True, "priority": 150}
    assert vi1(one)["vips_installed"] is True
    assert vi1(two)["state"] == "BACKUP"
    assert vi1(two)["master"] == {"address": str(r1.ip4), "self": False, "priority": 150}
    table = cli("status", "--control-socket", str(b.control_socket))
    assert table.returncode == 0, table.stderr
    row = next(line.split() for line in table.stdout.splitlines() if line.startswith("VI_1 "))
    assert row[:7] == ["VI_1", "BACKUP", "100", "100", "eth0", "51", str(r1.ip4)]

    # crash: r1 disappears from the segment, its control socket file stays behind
    lab.cut(r1)
    m.kill()
    b.wait_for_log(entering("MASTER"), timeout=30)
    two = status(b)
    assert vi1(two)["state"] == "MASTER"
    assert vi1(two)["master"] == {"address": str(r2.ip4), "self": True, "priority": 100}
    assert (vi1(two)["last_transition"]["from"], vi1(two)["last_transition"]["to"]) == (
        "BACKUP",
        "MASTER",
    )
    assert m.control_socket.exists()
    gone = cli("status", "--control-socket", str(m.control_socket))
    assert gone.returncode == 3
    assert f"no pykad daemon is running (control socket {m.control_socket}" in gone.stderr

    # r1 comes back and preempts (priority 150 > 100)
    lab.restore(r1)
    again = start(PykadFixture, r1, c1)
    assert isinstance(again, PykadFixture)
    again.wait_for_log(entering("MASTER"), timeout=30)
    b.wait_for_log(entering("BACKUP"), timeout=30)
    assert vi1(status(again))["state"] == "MASTER"
    two = status(b)
    assert vi1(two)["state"] == "BACKUP"
    assert vi1(two)["master"]["address"] == str(r1.ip4)

    # pykad stop: returns once the master resigned and exited; the socket is gone
    mark = b.mark()
    stopped = cli("stop", "--control-socket", str(again.control_socket))
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"pykad (pid {again.pid}) stopped\n"
    assert not again.control_socket.exists()
    assert not r1.has_address(VIP)
    b.wait_for_log(entering("MASTER"), timeout=30, since=mark)


def test_stale_socket_file_of_a_killed_daemon_is_replaced(
    lab: Lab, start: StartDaemon, tmp_path: Path
) -> None:
    r1, r2 = lab.routers
    c1, _ = pair_configs(r1, r2)
    path = tmp_path / "ctl.sock"
    first = PykadFixture(r1, c1, workdir=tmp_path / "a", control_path=path).start()
    try:
        first.wait_for_log("Control socket", timeout=30)
        first.kill()
    finally:
        first.close()
    assert path.exists()  # SIGKILL: nobody removed it
    second = PykadFixture(r1, c1, workdir=tmp_path / "b", control_path=path).start()
    try:
        second.wait_for_log("Removing stale control socket", timeout=30)
        second.wait_for_log("Startup complete", timeout=30)
        assert status(second)["daemon"]["pid"] == second.pid
        # a third daemon on the same path leaves the live one alone and runs without
        third = PykadFixture(r2, c1, workdir=tmp_path / "c", control_path=path).start()
        try:
            third.wait_for_log("in use by a running daemon - running without a control socket")
            third.wait_for_log("Startup complete", timeout=30)
        finally:
            third.close()
        assert status(second)["daemon"]["pid"] == second.pid
    finally:
        second.close()
    assert not path.exists()


def test_reload_reports_applied_or_refused(lab: Lab, start: StartDaemon) -> None:
    r1, r2 = lab.routers
    c1, _ = pair_configs(r1, r2)
    d = start(PykadFixture, r1, c1)
    assert isinstance(d, PykadFixture)
    d.wait_for_log(entering("MASTER"), timeout=30)
    sock = str(d.control_socket)

    d.write_config(c1.with_instance(vips=(f"{VIP}/24", "192.0.2.253/24")))
    ok = cli("reload", "--control-socket", sock)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "reload applied: 1 kept, 0 removed, 0 started\n"
    r1.wait_address("192.0.2.253", timeout=10)

    d.write_config(c1.render().replace("priority 150", "priority 300"))
    refused = cli("reload", "--control-socket", sock)
    assert refused.returncode == 1
    assert f"{d.conf_path}:" in refused.stderr  # the located diagnostic, file:line:col
    assert "priority" in refused.stderr
    assert "reload refused: the configuration has errors - the running one is kept" in (
        refused.stderr
    )
    doc = status(d)
    assert doc["daemon"]["last_reload"]["applied"] is False
    assert vi1(doc)["state"] == "MASTER"  # still running the previous configuration
    assert [v["address"] for v in vi1(doc)["vips"]] == [f"{VIP}/24", "192.0.2.253/24"]


def test_metrics_endpoint_counters_move(lab: Lab, tmp_path: Path) -> None:
    r1, r2 = lab.routers
    c1, c2 = pair_configs(r1, r2)
    port = 9650  # each namespace has its own loopback: no clash with anything outside
    args = ("--metrics", str(port))
    m = PykadFixture(r1, c1, workdir=tmp_path / "m", extra_args=args)
    b = PykadFixture(r2, c2, workdir=tmp_path / "b", extra_args=args)
    try:
        m.start().wait_for_log(entering("MASTER"), timeout=30)
        b.start().wait_for_log(entering("BACKUP"), timeout=30)
        b.wait_for_log(f"Prometheus metrics on http://127.0.0.1:{port}/metrics", timeout=30)
        first_m, first_b = scrape(r1, port), scrape(r2, port)
        assert first_m[("keepalived_up", ())] == 1
        state = (
            "keepalived_vrrp_state",
            (("iname", "VI_1"), ("intf", "eth0"), ("ip_address", VIP), ("vrid", "51")),
        )
        assert (first_m[state], first_b[state]) == (2, 1)
        assert metric(first_m, "keepalived_vrrp_priority") == 150
        assert metric(first_m, "keepalived_become_master_total") == 1
        assert first_m[("keepalived_gratuitous_arp_sent_total", (("intf", "eth0"),))] >= 1
        assert first_m[("process_open_fds", ())] > 0
        assert first_m[("process_resident_memory_bytes", ())] > 0
        discards = {dict(labels)["reason"] for (name, labels) in first_b if "discards" in name}
        assert {"auth_failure", "ip_ttl_err", "checksum_err", "dst_mismatch"} <= discards
        # adverts keep flowing: the master's sent and the backup's received counters move
        # (a bounded wait for the next adverts, never a duration assertion)
        deadline = time.monotonic() + 30
        while True:
            later_m, later_b = scrape(r1, port), scrape(r2, port)
            sent = metric(later_m, "keepalived_advertisements_sent_total")
            rcvd = metric(later_b, "keepalived_advertisements_received_total")
            if sent > metric(first_m, "keepalived_advertisements_sent_total") and rcvd > metric(
                first_b, "keepalived_advertisements_received_total"
            ):
                break
            assert time.monotonic() < deadline, "advert counters did not move"
            threading.Event().wait(0.2)
        # the control socket serves the same exposition
        with ControlClient(str(b.control_socket)) as client:
            text = client.call("metrics")["text"]
        names = {fam.name for fam in text_string_to_metric_families(text)}
        assert {"keepalived_advertisements_received", "keepalived_vrrp_state"} <= names
    finally:
        b.close()
        m.close()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory anyone may traverse (pytest's tmp_path is root-only), for the socket."""
    path = Path(tempfile.mkdtemp(prefix="pykad-ctl-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


NOBODY = 65534


def test_a_non_root_client_is_refused(lab: Lab, start: StartDaemon, open_dir: Path) -> None:
    probe = cli("--help", user=NOBODY)
    if probe.returncode != 0:
        pytest.skip(f"uid {NOBODY} cannot run this interpreter: {probe.stderr.strip()}")
    r1, r2 = lab.routers
    c1, _ = pair_configs(r1, r2)
    d = PykadFixture(r1, c1, workdir=open_dir / "w", control_path=open_dir / "ctl.sock")
    try:
        d.start().wait_for_log("Startup complete", timeout=30)
        sock = str(d.control_socket)
        # 1. the file mode (0600) keeps other users out
        denied = cli("status", "--control-socket", sock, user=NOBODY)
        assert denied.returncode == 1
        assert "Permission denied (the control socket is for root only)" in denied.stderr
        # 2. even when the mode is opened up, the daemon checks SO_PEERCRED
        os.chmod(sock, 0o666)
        refused = cli("stop", "--control-socket", sock, user=NOBODY)
        assert refused.returncode == 1
        assert f"permission denied: uid {NOBODY} is not root" in refused.stderr
        d.wait_for_log(f"Control socket: refused uid {NOBODY}", timeout=10)
        assert d.running  # the refused stop did nothing
        assert status(d)["daemon"]["pid"] == d.pid
    finally:
        d.close()
