"""The daemon's process contract in a real namespace: sd_notify over a real datagram socket,
dumps on signals, reload (with and without errors), graceful stop (spec §7, §8).

One router that owns its address (state MASTER, priority 255) so that it is MASTER at once;
the protocol between routers is covered by the lab tests."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykad.testing.netns import Lab

pytestmark = pytest.mark.netns

CONF = """\
global_defs {{
  vrrp_garp_master_delay 0
}}
vrrp_instance VI_1 {{
  state MASTER
  interface eth0
  virtual_router_id 61
  priority 255
  advert_int 1
  notify "{notify}"
  virtual_ipaddress {{
{vips}
  }}
}}
"""


@pytest.fixture
def lab1() -> Iterator[Lab]:
    with Lab(routers=1, client=False) as lab:
        yield lab


def write_conf(path: Path, notify: Path, *vips: str) -> None:
    path.write_text(CONF.format(notify=notify, vips="\n".join(f"    {v}" for v in vips)))


def test_notify_socket_reload_dumps_and_stop(lab1: Lab, tmp_path: Path) -> None:
    r1 = lab1.routers[0]
    notify_log = tmp_path / "notify.log"
    notify = tmp_path / "notify.sh"
    notify.write_text(f'#!/bin/sh\necho "$*" >> {notify_log}\n')
    notify.chmod(0o755)
    conf = tmp_path / "r1.conf"
    write_conf(conf, notify, "192.0.2.200/24")
    sd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sd.bind(str(tmp_path / "notify.sock"))
    sd.settimeout(30)
    pidfiles = [tmp_path / "main.pid", tmp_path / "vrrp.pid"]
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "TMPDIR": str(tmp_path)}
    log = (tmp_path / "r1.log").open("wb")
    argv = [sys.executable, "-m", "pykad", "-n", "-l", "-D", "-f", str(conf)]
    argv += ["-p", str(pidfiles[0]), "-r", str(pidfiles[1])]
    proc = r1.spawn(argv, env=env, stdout=log, stderr=log)
    try:
        # READY=1 only once the sockets are bound and the config applied
        assert sd.recv(4096).decode().split("\n")[:2] == ["READY=1", f"MAINPID={proc.pid}"]
        assert all(p.read_text() == f"{proc.pid}\n" for p in pidfiles)
        r1.wait_address("192.0.2.200", timeout=10)

        proc.send_signal(signal.SIGUSR2)
        proc.send_signal(signal.SIGRTMIN + 2)  # JSON dump (keepalived signal 36)
        stats, js = tmp_path / "keepalived.stats", tmp_path / "keepalived.json"
        r1.run(["timeout", "10", "sh", "-c", f"until [ -s {stats} ] && [ -s {js} ]; do :; done"])
        assert "VRRP Instance: VI_1\n" in stats.read_text()
        assert "  Became master: 1\n" in stats.read_text()

        # reload adding an address: no flap, no second MASTER notification
        write_conf(conf, notify, "192.0.2.200/24", "192.0.2.201/24")
        proc.send_signal(signal.SIGHUP)
        assert sd.recv(4096).decode().startswith("RELOADING=1")
        assert sd.recv(4096).decode().startswith("READY=1")
        r1.wait_address("192.0.2.201", timeout=10)

        # reload with a broken file: the located error is logged, the old config runs on
        conf.write_text(conf.read_text() + "vrrp_instance VI_2 {\n virtual_router_id 300\n")
        proc.send_signal(signal.SIGHUP)
        assert sd.recv(4096).decode().startswith("RELOADING=1")
        assert sd.recv(4096).decode().startswith("READY=1")
        assert r1.has_address("192.0.2.200")
        assert r1.has_address("192.0.2.201")

        proc.send_signal(signal.SIGTERM)
        assert sd.recv(4096).decode().startswith("STOPPING=1")
        assert proc.wait(timeout=15) == 0
    finally:
        lab1.stop(proc)
        log.close()
        sd.close()
    text = (tmp_path / "r1.log").read_text()
    assert "Reload failed - keeping the running configuration" in text
    assert f"{conf}:" in text  # the error is located: file:line:col
    assert text.count("(VI_1) Entering MASTER STATE") == 1
    assert notify_log.read_text().splitlines() == [
        "INSTANCE VI_1 MASTER 255",
        "INSTANCE VI_1 STOP 255",
    ]
    assert not r1.has_address("192.0.2.200")
    assert not r1.has_address("192.0.2.201")
    assert not any(p.exists() for p in pidfiles)


SYNC_CONF = """\
vrrp_sync_group G1 {{
  group {{
    VI_A
    VI_B
  }}
  notify "{notify}"
}}
vrrp_instance VI_A {{
  state MASTER
  interface eth0
  virtual_router_id 71
  priority 255
  version 3
  advert_int 0.1
  virtual_ipaddress {{
    192.0.2.210/24
  }}
}}
vrrp_instance VI_B {{
  interface eth0
  virtual_router_id 72
  priority 100
  version 3
  advert_int 0.1
  virtual_ipaddress {{
    192.0.2.211/24
  }}
}}
"""


def test_sync_group_members_move_together(lab1: Lab, tmp_path: Path) -> None:
    """spec §4.1: the owner may not go MASTER alone; when VI_B does, VI_A is forced along
    (the daemon routes GroupSync to the other member's inbox) and the group notifies once."""
    r1 = lab1.routers[0]
    notify_log = tmp_path / "notify.log"
    notify = tmp_path / "notify.sh"
    notify.write_text(f'#!/bin/sh\necho "$*" >> {notify_log}\n')
    notify.chmod(0o755)
    conf = tmp_path / "r1.conf"
    conf.write_text(SYNC_CONF.format(notify=notify))
    log = (tmp_path / "r1.log").open("wb")
    argv = [sys.executable, "-m", "pykad", "-n", "-l", "-D", "-f", str(conf)]
    argv += ["-p", str(tmp_path / "main.pid"), "-r", str(tmp_path / "vrrp.pid")]
    proc = r1.spawn(argv, stdout=log, stderr=log)
    try:
        r1.wait_address("192.0.2.210", timeout=10)
        r1.wait_address("192.0.2.211", timeout=10)
        assert lab1.stop(proc) == 0
    finally:
        lab1.stop(proc)
        log.close()
    text = (tmp_path / "r1.log").read_text()
    assert "(VI_A) BACKUP -> MASTER (sync group)" in text
    assert notify_log.read_text().splitlines() == [
        "GROUP G1 BACKUP 0",
        "GROUP G1 MASTER 0",
        "GROUP G1 STOP 0",
    ]
