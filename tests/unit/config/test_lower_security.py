"""Script security (spec §6.3) on real files with real permissions in tmp_path."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

import pytest

from pykad.config.diagnostics import Diagnostic, Severity, Status
from pykad.config.grammar import parse_text
from pykad.config.lower import lower
from pykad.config.model import Config, Notify, Script, VrrpInstance
from pykad.config.security import check_scripts, configured_scripts, refused_scripts, script_key

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown files")
VIP = "virtual_ipaddress {\n192.0.2.10\n}\n"


def config_for(body: str, *, glob: str = "enable_script_security\nscript_user root") -> Config:
    text = (
        f"global_defs {{\n{glob}\n}}\n"
        f"vrrp_instance VI_1 {{\ninterface eth0\nvirtual_router_id 1\n{VIP}{body}\n}}\n"
    )
    config, diags = lower(parse_text(text, "t.conf").blocks)
    assert config is not None, diags
    return config


def script_file(tmp_path: Path, mode: int = 0o755, name: str = "notify.sh") -> Path:
    d = tmp_path / "scripts"
    d.mkdir(mode=0o755, exist_ok=True)
    d.chmod(0o755)
    p = d / name
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(mode)
    return p


def errors(diags: list[Diagnostic]) -> list[str]:
    return [d.message for d in diags if d.is_error]


def warnings(diags: list[Diagnostic]) -> list[str]:
    return [d.message for d in diags if d.severity is Severity.WARNING]


@pytest.fixture
def secure_tmp(tmp_path: Path) -> Path:
    """tmp_path with every component root-owned and not group/world writable."""
    if os.geteuid() != 0:
        pytest.skip("root-run script checks need root-owned directories")
    for p in [tmp_path, *tmp_path.parents]:
        st = p.stat()
        if st.st_uid != 0 or (st.st_mode & 0o022 and not st.st_mode & 0o1000):
            pytest.skip(f"{p} is not a secure directory on this machine")
    return tmp_path


def test_configured_scripts_lists_every_script() -> None:
    config = config_for('notify_master "/x/m.sh a"\nnotify "/x/n.sh"')
    assert [(w, s.argv) for w, s in configured_scripts(config)] == [
        ("vrrp_instance VI_1 notify_master", ("/x/m.sh", "a")),
        ("vrrp_instance VI_1 notify", ("/x/n.sh",)),
    ]


def test_configured_scripts_finds_the_lvs_scripts() -> None:
    # the LVS model is walked generically (security._walk); these are all its script slots
    text = """\
virtual_server 192.0.2.1 80 {
    quorum_up "/x/qu.sh"
    quorum_down /x/qd.sh
    real_server 198.51.100.1 80 {
        notify_up /x/up.sh
        notify_down /x/down.sh
        TCP_CHECK {
            connect_timeout 3
        }
        MISC_CHECK {
            misc_path "/x/misc.sh arg"
        }
    }
    sorry_server 198.51.100.9 80
}
"""
    config, diags = lower(parse_text(text, "t.conf").blocks)
    assert config is not None, diags
    assert [(w, s.argv) for w, s in configured_scripts(config)] == [
        ("virtual_server", ("/x/qu.sh",)),
        ("virtual_server", ("/x/qd.sh",)),
        ("virtual_server", ("/x/up.sh",)),
        ("virtual_server", ("/x/down.sh",)),
        ("virtual_server", ("/x/misc.sh", "arg")),
    ]


def test_secure_root_script_passes(secure_tmp: Path) -> None:
    p = script_file(secure_tmp)
    assert check_scripts(config_for(f"notify_master {p}")) == []


def test_missing_script_is_disabled_with_a_warning(tmp_path: Path) -> None:
    # keepalived disables it and runs on; -t does not even show it
    p = tmp_path / "nope.sh"
    diags = check_scripts(config_for(f"notify_master {p}"))
    assert warnings(diags) == [
        f"script {p} (vrrp_instance VI_1 notify_master) does not exist - disabled"
    ]
    assert diags[0].loc is not None
    assert diags[0].loc.line == 11  # the notify_master line


def test_non_executable_script_is_disabled(tmp_path: Path) -> None:
    p = script_file(tmp_path, mode=0o644)
    (d,) = check_scripts(config_for(f"notify_backup {p}"))
    assert d.severity is Severity.WARNING
    assert d.message == (
        f"script {p} (vrrp_instance VI_1 notify_backup) is not executable by root (uid 0,"
        " mode 0644) - disabled"
    )


def test_directory_writable_by_a_non_root_group_disables_a_root_script(secure_tmp: Path) -> None:
    p = script_file(secure_tmp)
    staff = grp.getgrnam("staff")
    os.chown(p.parent, 0, staff.gr_gid)
    p.parent.chmod(0o775)
    (d,) = check_scripts(config_for(f"notify_fault {p}"))
    # enable_script_security: keepalived disables it and -t still exits 0 (a warning)
    assert d.severity is Severity.WARNING
    assert d.message == (
        f"script {p} (vrrp_instance VI_1 notify_fault) runs as root but directory {p.parent}"
        " is writable by group 'staff' (mode 0775) - script disabled"
    )
    (v,) = refused_scripts(config_for(f"notify_fault {p}")).values()
    assert v.message == f"{p}: directory {p.parent} is writable by group 'staff' (mode 0775)"


def test_group_write_for_the_root_group_is_safe(secure_tmp: Path) -> None:
    # keepalived: "Group is not root and group write permission" - gid 0 may write
    p = script_file(secure_tmp)
    p.parent.chmod(0o775)
    assert check_scripts(config_for(f"notify_fault {p}")) == []


def test_world_writable_script_is_insecure(secure_tmp: Path) -> None:
    p = script_file(secure_tmp, mode=0o757)
    (d,) = check_scripts(config_for(f"notify_fault {p}"))
    assert f"file {p} is writable by others (mode 0757)" in d.message
    assert script_key(Script(argv=(str(p),))) in refused_scripts(config_for(f"notify_fault {p}"))


def test_the_first_unsafe_component_from_the_root_is_reported(secure_tmp: Path) -> None:
    p = script_file(secure_tmp, mode=0o757)
    p.parent.chmod(0o777)
    (d,) = check_scripts(config_for(f"notify_fault {p}"))
    assert f"directory {p.parent} is writable by others (mode 0777)" in d.message


def test_sticky_world_writable_directory_is_allowed(secure_tmp: Path) -> None:
    p = script_file(secure_tmp)
    p.parent.chmod(0o1777)
    assert check_scripts(config_for(f"notify_fault {p}")) == []


@root_only
def test_script_owned_by_another_user_is_insecure(secure_tmp: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    p = script_file(secure_tmp)
    os.chown(p, nobody.pw_uid, nobody.pw_gid)
    (d,) = check_scripts(config_for(f"notify_fault {p}"))
    assert f"file {p} is owned by nobody (uid {nobody.pw_uid}), not root" in d.message


def test_insecure_script_without_script_security_runs_with_a_violation(
    secure_tmp: Path,
) -> None:
    p = script_file(secure_tmp)
    p.parent.chmod(0o777)
    config = config_for(f"notify_fault {p}", glob="script_user root")
    diags = check_scripts(config)
    assert [d.severity for d in diags] == [Severity.WARNING, Severity.ERROR]
    assert diags[0].message.endswith("- it runs anyway")
    assert diags[1].message == (
        "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
        " There are insecure scripts."
    )
    assert diags[1].status is Status.SECURITY  # keepalived -t exits 6
    assert diags[1].hint == "add 'enable_script_security' to global_defs"
    assert refused_scripts(config) == {}  # it runs


def test_safe_scripts_without_script_security_are_a_warning(secure_tmp: Path) -> None:
    # keepalived 2.2.7 -t exits 6 for a perfectly safe script too; pykad warns, so that a
    # usable config passes `pykad --check-config && systemctl reload` (README exit codes)
    p = script_file(secure_tmp)
    (d,) = check_scripts(config_for(f"notify_fault {p}", glob="script_user root"))
    assert d.message == (
        "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
    )
    assert d.severity is Severity.WARNING
    assert d.hint == "add 'enable_script_security' to global_defs"


def test_a_nul_in_a_script_or_its_user_disables_it_without_raising() -> None:
    for script in (Script(argv=("/bin/t\0rue",)), Script(argv=("/bin/true",), user="a\0b")):
        inst = VrrpInstance(name="VI", vrid=1, interface="eth0", notify=Notify(master=script))
        (d,) = check_scripts(Config(vrrp_instances=(inst,)))
        assert d.severity is Severity.WARNING
        assert "contains a NUL character - disabled" in d.message


def test_unknown_script_user_disables_the_script(tmp_path: Path) -> None:
    p = script_file(tmp_path)
    diags = check_scripts(config_for(f"notify_master {p} no_such_user_pykad"))
    assert warnings(diags) == [
        f"script {p} (vrrp_instance VI_1 notify_master) cannot run: user 'no_such_user_pykad'"
        " does not exist - disabled"
    ]


def test_script_security_without_a_default_user_is_an_error(tmp_path: Path) -> None:
    try:
        pwd.getpwnam("keepalived_script")
    except KeyError:
        pass
    else:
        pytest.skip("this machine has a keepalived_script user")
    p = script_file(tmp_path)
    diags = check_scripts(config_for(f"notify_master {p}", glob="enable_script_security"))
    assert len(errors(diags)) == 1
    assert "unable to set default user keepalived_script" in errors(diags)[0]


def test_command_found_by_path_search_warns(secure_tmp: Path) -> None:
    p = script_file(secure_tmp, name="mynotify")
    diags = check_scripts(
        config_for("notify_master mynotify"), env={"PATH": f"/nonexistent:{p.parent}"}
    )
    assert [d.message for d in diags] == [
        f"script `mynotify` resolved by path search to `{p}`. Please specify full path."
    ]


def test_command_not_in_path_is_disabled() -> None:
    diags = check_scripts(config_for("notify_master nosuchcmd"), env={"PATH": "/nonexistent"})
    assert warnings(diags) == [
        "script 'nosuchcmd' (vrrp_instance VI_1 notify_master) not found in PATH - disabled"
    ]


def test_vrrp_script_runs_as_its_own_user(tmp_path: Path) -> None:
    p = script_file(tmp_path, mode=0o700)  # only root can execute it
    text = (
        "global_defs {\nenable_script_security\nscript_user root\n}\n"
        f'vrrp_script chk {{\nscript "{p}"\nuser nobody\n}}\n'
        "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\n"
        f"{VIP}track_script {{\nchk\n}}\n}}\n"
    )
    config, _ = lower(parse_text(text, "t.conf").blocks)
    assert config is not None
    (d,) = check_scripts(config)
    assert f"script {p} (vrrp_script chk) is not executable by nobody" in d.message


def test_user_ids_accepts_names_and_numbers_and_the_runner_agrees() -> None:
    """What --check-config accepts is what the script runner uses (they share user_ids):
    a numeric user used to pass the check and fail at run time."""
    from pykad.adapters.scripts import RunAs, lookup
    from pykad.config.security import user_ids

    root = pwd.getpwuid(0).pw_name
    assert user_ids("0") == (0, 0, root)
    assert user_ids(root, ":0") == (0, 0, root)
    assert user_ids("0", grp.getgrgid(0).gr_name) == (0, 0, root)
    assert lookup("0") == RunAs(0, 0)
    assert lookup(root, ":0") == RunAs(0, 0)
    with pytest.raises(KeyError, match="user 'no-such-user-pykad' does not exist"):
        lookup("no-such-user-pykad")
    with pytest.raises(KeyError, match="group 'no-such-group-pykad' does not exist"):
        user_ids("0", "no-such-group-pykad")


def test_a_numeric_group_must_be_a_valid_id() -> None:
    """Any gid below (gid_t)-1 can be set, listed in /etc/group or not; a larger number
    passed the configuration check and failed only when the script was started."""
    from pykad.config.security import user_ids

    assert user_ids("0", "4242")[1] == 4242
    with pytest.raises(KeyError, match="group '99999999999' is not a valid group id"):
        user_ids("0", "99999999999")
    with pytest.raises(KeyError, match="is not a valid group id"):
        user_ids("0", str(0xFFFFFFFF))
