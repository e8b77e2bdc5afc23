"""The shipped scenario configs (configs/) load cleanly in pykad and in keepalived 2.2.7.

The keepalived side runs ``keepalived -t`` inside a throwaway network namespace that has the
``eth0`` the configs name (keepalived checks interfaces against the namespace it runs in), and
the nginx check script is run against a real HTTP listener and against none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykad.config.diagnostics import render
from pykad.config.grammar import parse_file
from pykad.config.lower import check_interfaces, lower
from pykad.config.security import check_scripts

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = sorted((ROOT / "configs").glob("*/*.conf"))
NGINX_CHECK = ROOT / "configs" / "nginx-pair" / "check_nginx.sh"
SCRIPT_IN_CONF = "/etc/keepalived/check_nginx.sh"
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
IP = shutil.which("ip") or "/usr/sbin/ip"

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(IP).exists(), reason="needs root and iproute2 for a netns"
)


def test_the_scenarios_are_there() -> None:
    names = {str(p.relative_to(ROOT / "configs")) for p in CONFIGS}
    assert names == {
        "vrrp-pair/node1.conf",
        "vrrp-pair/node2.conf",
        "lvs-dr/director1.conf",
        "lvs-dr/director2.conf",
        "lvs-nat/director1.conf",
        "lvs-nat/director2.conf",
        "nginx-pair/node1.conf",
        "nginx-pair/node2.conf",
    }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_loads_without_error(path: Path) -> None:
    parsed = parse_file(str(path))
    config, diags = lower(parsed.blocks)
    all_diags = [*parsed.diagnostics, *diags]
    assert not [d for d in all_diags if d.is_error], render(all_diags, parsed.lines)
    assert config is not None
    assert check_interfaces(config, {"lo", "eth0"}) == []
    assert path.read_text().startswith("# pykad / keepalived: ")  # the comment header
    (inst,) = config.vrrp_instances
    assert str(inst.virtual_addresses[0].address) == "192.0.2.10/24"


def test_pairs_agree_on_vrid_and_vip_and_differ_in_priority() -> None:
    for a, b in [
        ("vrrp-pair/node1", "vrrp-pair/node2"),
        ("lvs-dr/director1", "lvs-dr/director2"),
        ("lvs-nat/director1", "lvs-nat/director2"),
        ("nginx-pair/node1", "nginx-pair/node2"),
    ]:
        ca, _ = lower(parse_file(str(ROOT / "configs" / f"{a}.conf")).blocks)
        cb, _ = lower(parse_file(str(ROOT / "configs" / f"{b}.conf")).blocks)
        assert ca is not None
        assert cb is not None
        ia, ib = ca.vrrp_instances[0], cb.vrrp_instances[0]
        assert (ia.vrid, ia.virtual_addresses) == (ib.vrid, ib.virtual_addresses)
        assert ia.priority > ib.priority


def test_nginx_pair_tracks_the_check_as_the_issue_asks() -> None:
    config, _ = lower(parse_file(str(ROOT / "configs/nginx-pair/node1.conf")).blocks)
    assert config is not None
    (s,) = config.vrrp_scripts
    assert (s.interval_s, s.weight, s.fall, s.rise, s.timeout_s) == (1.0, -30, 3, 2, 2.0)
    assert s.script.argv == (SCRIPT_IN_CONF,)
    # node1 with a failed check (150 - 30) must fall below node2 (130)
    config2, _ = lower(parse_file(str(ROOT / "configs/nginx-pair/node2.conf")).blocks)
    assert config2 is not None
    assert config.vrrp_instances[0].priority + s.weight < config2.vrrp_instances[0].priority


# --------------------------------------------------------------------------------------------
# Against the real world: a namespace, keepalived -t, an HTTP listener.


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pkh2-{os.getpid()}"
    subprocess.run([IP, "netns", "add", name], check=True)
    try:
        for cmd in (
            ["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"],
            ["link", "set", "eth0", "up"],
            ["link", "set", "lo", "up"],
            ["addr", "add", "192.0.2.1/24", "dev", "eth0"],
        ):
            subprocess.run([IP, "-n", name, *cmd], check=True)
        yield name
    finally:
        subprocess.run([IP, "netns", "delete", name], check=True)


def _secure_copy_of_check(tmp_path: Path) -> Path:
    """The check script where a root-run script may live: root-owned, not writable by others."""
    d = tmp_path / "keepalived"
    d.mkdir(mode=0o755)
    dst = d / "check_nginx.sh"
    shutil.copyfile(NGINX_CHECK, dst)
    dst.chmod(0o755)
    return dst


@pytest.mark.netns
@needs_netns
@pytest.mark.skipif(not Path(KEEPALIVED).exists(), reason="keepalived is not installed")
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_keepalived_accepts_the_config_too(path: Path, netns: str, tmp_path: Path) -> None:
    text = path.read_text().replace(SCRIPT_IN_CONF, str(_secure_copy_of_check(tmp_path)))
    conf = tmp_path / path.name
    conf.write_text(text)
    proc = subprocess.run(
        [
            IP,
            "netns",
            "exec",
            netns,
            KEEPALIVED,
            "-t",
            "-f",
            str(conf),
            "-p",
            str(tmp_path / "k.pid"),
            "-r",
            str(tmp_path / "v.pid"),
            "-c",
            str(tmp_path / "c.pid"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    # and pykad's script security agrees there is nothing to complain about
    config, _ = lower(parse_file(str(conf)).blocks)
    assert config is not None
    assert check_scripts(config) == []


@pytest.mark.netns
@needs_netns
def test_nginx_check_fails_when_nothing_serves_http(netns: str) -> None:
    proc = subprocess.run(
        [IP, "netns", "exec", netns, str(NGINX_CHECK)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode != 0


@pytest.mark.netns
@needs_netns
def test_nginx_check_succeeds_when_http_is_served(netns: str) -> None:
    serve = (
        "import http.server\n"
        "handler = http.server.SimpleHTTPRequestHandler\n"
        "srv = http.server.HTTPServer(('127.0.0.1', 80), handler)\n"
        "print('ready', flush=True)\n"
        "srv.handle_request()\n"
    )
    with subprocess.Popen(
        [IP, "netns", "exec", netns, sys.executable, "-c", serve],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd="/",
    ) as server:
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "ready"  # bound and listening
            proc = subprocess.run(
                [IP, "netns", "exec", netns, str(NGINX_CHECK)],
                capture_output=True,
                timeout=30,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
        finally:
            server.kill()
