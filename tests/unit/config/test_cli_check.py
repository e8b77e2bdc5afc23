"""``pykad --check-config`` / ``-t`` / ``--dump-conf`` through click and as a real process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pykad.cli import cli
from pykad.config.load import host_interfaces

# An interface that exists in whatever namespace the test runs in.
IFACE = "lo" if "eth0" not in host_interfaces() else "eth0"
VALID = f"""\
vrrp_instance VI_1 {{
    state BACKUP
    interface {IFACE}
    virtual_router_id 51
    priority 100
    virtual_ipaddress {{
        192.0.2.10/24
    }}
}}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    if IFACE == "lo":
        pytest.skip("no eth0 here and keepalived refuses lo for vrrp; the valid case needs one")
    p = tmp_path / "keepalived.conf"
    p.write_text(VALID)
    return p


@pytest.mark.parametrize("flag", ["--check-config", "-t", "--config-test"])
def test_valid_config_exits_0_silently(valid: Path, flag: str) -> None:
    assert run(flag, "-f", str(valid)) == (0, "", "")


def test_errors_are_located_and_exit_5(tmp_path: Path) -> None:
    p = tmp_path / "k.conf"
    p.write_text(VALID.replace("virtual_router_id 51", "virtual_router_id 300"))
    code, out, err = run("-t", "-f", str(p))
    assert code == 5
    assert out == ""
    assert f"{p}:4:23: error: " in err
    assert "        virtual_router_id 300\n                          ^\n" in err


def test_unknown_keyword_warning_and_strict(tmp_path: Path) -> None:
    p = tmp_path / "k.conf"
    p.write_text(VALID.replace("priority 100", "priorty 100"))
    code, _, err = run("-t", "-f", str(p))
    assert "warning: unknown keyword 'priorty'" in err
    assert "hint: did you mean 'priority'?" in err
    if IFACE == "eth0":
        assert code == 0  # warnings alone: `pykad -t && systemctl reload` keeps working
    strict_code, _, _ = run("-t", "--strict", "-f", str(p))
    assert strict_code == 5


def test_missing_file_exits_4(tmp_path: Path) -> None:
    code, _, err = run("-t", "-f", str(tmp_path / "absent.conf"))
    assert code == 4
    assert f"{tmp_path / 'absent.conf'}: cannot read configuration file" in err


def test_missing_parameter_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "k.conf"
    p.write_text(VALID.replace("virtual_router_id 51", "virtual_router_id"))
    code, _, err = run("-t", "-f", str(p))
    assert code == 2
    assert "missing a parameter" in err


def test_includea_missing_exits_6(tmp_path: Path) -> None:
    p = tmp_path / "k.conf"
    p.write_text("includea conf.d/*.conf\n")
    assert run("-t", "-f", str(p))[0] == 6
    p.write_text("include conf.d/*.conf\n")
    assert run("-t", "-f", str(p))[0] == 0
    assert run("-t", "-e", "-f", str(p))[0] == 6


def test_config_id_option(tmp_path: Path) -> None:
    p = tmp_path / "k.conf"
    p.write_text("@main bogus_keyword\n@other vrrp_instance {\n")
    assert run("-t", "-i", "nobody", "-f", str(p)) == (0, "", "")
    code, _, err = run("-t", "--config-id", "main", "-f", str(p))
    assert (code, err.count("warning: unknown keyword 'bogus_keyword'")) == (0, 1)
    assert run("-t", "--strict", "-i", "main", "-f", str(p))[0] == 5
    code, _, err = run("-t", "-i", "other", "-f", str(p))
    assert code == 5
    assert "missing '}'" in err


def test_dump_conf_prints_json_model(valid: Path) -> None:
    code, out, err = run("--dump-conf", "-f", str(valid))
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["vrrp_instances"][0]["vrid"] == 51
    assert data["vrrp_instances"][0]["priority"] == 100
    assert data["files"] == [str(valid)]


def test_real_subprocess(tmp_path: Path) -> None:
    exe = shutil.which("pykad", path=str(Path(sys.executable).parent))
    assert exe is not None, "pykad console script is not installed in this venv"
    p = tmp_path / "k.conf"
    p.write_text("vrrp_instance VI_1 {\n    virtual_router_id 300\n}\n}\n")
    proc = subprocess.run(
        [exe, "--check-config", "-f", str(p)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 5
    assert proc.stdout == ""
    assert f"{p}:4:1: error: Extra '}}' found\n" in proc.stderr
    assert f"{p}:2:23: error: virtual_router_id 300 is out of range 1..255" in proc.stderr
    assert "Traceback" not in proc.stderr


# What `-t` must not load: the daemon's machinery (asyncio, netlink, raw sockets, the LVS and
# checker stack) and the packet library. Checking a config is parse + lower + host checks;
# importing the runtime made `pykad -t` several times slower (bench/config_check.py).
NOT_FOR_CHECK = ("asyncio", "pyroute2", "scapy", "pykad.runtime", "pykad.adapters", "pykad.check")
PROBE = """\
import atexit, sys
out, sys.argv = sys.argv[1], ["pykad", *sys.argv[2:]]
def report():
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
atexit.register(report)
from pykad.cli import main
main()
"""


@pytest.mark.parametrize("flag", ["--check-config", "--dump-conf"])
def test_check_config_does_not_import_the_runtime(tmp_path: Path, flag: str) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(VALID)
    out = tmp_path / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), flag, "-f", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    modules = out.read_text().split()
    assert "pykad.config.lower" in modules  # the probe saw the check itself run
    loaded = [m for m in modules for p in NOT_FOR_CHECK if m == p or m.startswith(p + ".")]
    assert loaded == []
