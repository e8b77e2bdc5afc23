"""Tracking, vrrp_script, track_file/process, sync groups, global_defs, static, interfaces.

Spec §2, §3.5, §4.1-4.4; each keepalived fix-up is checked with its message.
"""

from __future__ import annotations

import ipaddress

import pytest

from pykad.config.diagnostics import Diagnostic, Severity, Status
from pykad.config.grammar import parse_text
from pykad.config.lower import check_interfaces, lower
from pykad.config.model import (
    Config,
    GlobalDefs,
    Script,
    TrackInterface,
    TrackRef,
    VrrpScript,
)

VIP = "virtual_ipaddress {\n192.0.2.10\n}\n"


def lower_text(text: str) -> tuple[Config | None, list[Diagnostic]]:
    parsed = parse_text(text, "t.conf")
    assert not [d for d in parsed.diagnostics if d.is_error], parsed.diagnostics
    return lower(parsed.blocks)


def ok(text: str) -> tuple[Config, list[Diagnostic]]:
    config, diags = lower_text(text)
    assert config is not None, [d.message for d in diags]
    return config, diags


def inst_text(body: str = "", *, name: str = "VI_1", vrid: int = 51) -> str:
    return f"vrrp_instance {name} {{\ninterface eth0\nvirtual_router_id {vrid}\n{VIP}{body}\n}}\n"


def script_text(name: str = "chk", body: str = "") -> str:
    return f'vrrp_script {name} {{\nscript "/bin/true"\n{body}\n}}\n'


def only(diags: list[Diagnostic], fragment: str) -> Diagnostic:
    found = [d for d in diags if fragment in d.message]
    assert len(found) == 1, [d.message for d in diags]
    return found[0]


# --------------------------------------------------------------------------------------------
# vrrp_script (§4.2)


def test_vrrp_script_defaults() -> None:
    config, diags = ok(script_text() + inst_text("track_script {\nchk\n}"))
    assert diags == []
    assert config.vrrp_scripts == (VrrpScript(name="chk", script=Script(argv=("/bin/true",))),)
    s = config.vrrp_scripts[0]
    assert (s.interval_s, s.effective_timeout_s, s.weight, s.rise, s.fall) == (1.0, 1.0, 0, 1, 1)
    assert s.init_fail is False


def test_vrrp_script_keywords() -> None:
    config, diags = ok(
        script_text(
            body="interval 2\ntimeout 3\nweight -30 reverse\nrise 2\nfall 3\n"
            "user nobody nogroup\ninit_fail"
        )
        + inst_text("track_script {\nchk\n}")
    )
    assert diags == []
    s = config.vrrp_scripts[0]
    assert (s.interval_s, s.timeout_s, s.weight, s.reverse, s.rise, s.fall, s.init_fail) == (
        2.0,
        3.0,
        -30,
        True,
        2,
        3,
        True,
    )
    assert (s.script.user, s.script.group) == ("nobody", "nogroup")


def test_vrrp_script_accepts_decimal_interval() -> None:
    # keepalived 2.2.7 takes whole seconds only; pykad accepts decimals like keepalived HEAD
    config, diags = ok(script_text(body="interval 0.5") + inst_text("track_script {\nchk\n}"))
    assert config.vrrp_scripts[0].interval_s == 0.5
    assert diags == []


def test_vrrp_script_interval_0_becomes_1() -> None:
    config, diags = ok(script_text(body="interval 0") + inst_text("track_script {\nchk\n}"))
    only(diags, "(chk): vrrp script interval must be greater than 0, setting to 1")
    assert config.vrrp_scripts[0].interval_s == 1.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("weight 254", "vrrp_script chk weight 254 is out of range -253..253"),
        ("weight -300", "vrrp_script chk weight -300 is out of range -253..253"),
        ("rise 0", "vrrp script rise 0 is out of range 1..2147483647"),
        ("fall 0", "vrrp script fall 0 is out of range 1..2147483647"),
        ("interval 5000", "interval 5000 is out of range 0..4294"),
    ],
)
def test_vrrp_script_ranges(line: str, message: str) -> None:
    config, diags = ok(script_text(body=line) + inst_text("track_script {\nchk\n}"))
    assert only(diags, message).is_error
    s = config.vrrp_scripts[0]
    assert (s.weight, s.rise, s.fall, s.interval_s) == (0, 1, 1, 1.0)  # defaults kept


def test_vrrp_script_without_script_is_removed() -> None:
    config, diags = ok("vrrp_script chk {\ninterval 2\n}\n" + inst_text("track_script {\nchk\n}"))
    only(diags, "No script set for vrrp_script chk - removing")
    only(diags, "(VI_1) track script chk not found, ignoring...")
    assert config.vrrp_scripts == ()
    assert config.vrrp_instances[0].track_scripts == ()


def test_unused_vrrp_script_is_dropped_with_a_warning() -> None:
    config, diags = ok(script_text() + inst_text())
    only(diags, "Warning - script chk is not used")
    assert config.vrrp_scripts == ()


# --------------------------------------------------------------------------------------------
# Track references (§3.5)


def test_track_script_takes_the_scripts_weight_unless_given() -> None:
    config, diags = ok(
        script_text("a", "weight 10 reverse")
        + script_text("b", "weight -5")
        + inst_text("track_script {\na\nb weight 20\n}")
    )
    assert diags == []
    assert config.vrrp_instances[0].track_scripts == (
        TrackRef(name="a", weight=10, reverse=True),
        TrackRef(name="b", weight=20),
    )


def test_undefined_track_references_are_dropped_with_warnings() -> None:
    config, diags = ok(
        script_text("chk_nginx")
        + inst_text(
            "track_script {\nchk_ngnix\nchk_nginx\n}\ntrack_file {\nnof\n}\ntrack_process {\nnop\n}"
        )
    )
    d = only(diags, "(VI_1) track script chk_ngnix not found, ignoring...")
    assert d.severity is Severity.WARNING
    assert d.hint == "did you mean 'chk_nginx'?"
    only(diags, "(VI_1) track file nof not found, ignoring...")
    only(diags, "(VI_1) track process nop not found, ignoring...")
    inst = config.vrrp_instances[0]
    assert [t.name for t in inst.track_scripts] == ["chk_nginx"]
    assert (inst.track_files, inst.track_processes) == ((), ())


def test_track_weight_254_is_clamped_to_253() -> None:
    config, diags = ok(inst_text("track_interface {\neth1 weight 254\neth2 weight -254\n}"))
    assert len([d for d in diags if "cannot be +/-254. Setting to +/-253" in d.message]) == 2
    assert [t.weight for t in config.vrrp_instances[0].track_interfaces] == [253, -253]


def test_track_weight_beyond_254_is_an_error() -> None:
    config, diags = ok(inst_text("track_interface {\neth1 weight 300\n}"))
    assert only(diags, "weight 300 is out of range -254..254").is_error
    assert config.vrrp_instances[0].track_interfaces == ()


def test_track_file_weight_range_is_254() -> None:
    config, diags = ok(
        "track_file f {\nfile /run/f\n}\n" + inst_text("track_file {\nf weight -254\n}")
    )
    assert diags == []
    assert config.vrrp_instances[0].track_files == (TrackRef(name="f", weight=-254),)


def test_track_option_must_be_weight() -> None:
    _, diags = ok(inst_text("track_interface {\neth1 wieght 5\n}"))
    only(diags, "unknown track option 'wieght'")


def test_duplicate_track_entry_is_ignored() -> None:
    config, diags = ok(inst_text("track_interface {\neth1\neth1 weight 5\n}"))
    only(diags, "(VI_1) duplicate track_interface eth1 - ignoring")
    assert config.vrrp_instances[0].track_interfaces == (TrackInterface(name="eth1"),)


def test_tracking_own_interface_is_ignored() -> None:
    config, diags = ok(inst_text("track_interface {\neth0\n}"))
    only(diags, "own interface - ignoring")
    assert config.vrrp_instances[0].track_interfaces == ()


def test_weighted_trackers_on_address_owner_are_removed() -> None:
    config, diags = ok(
        script_text("s", "weight 10")
        + inst_text("priority 255\ntrack_script {\ns\n}\ntrack_interface {\neth1 weight 5\neth2\n}")
    )
    only(diags, "(VI_1) ignoring eth1 tracked interface due to address owner")
    only(diags, "(VI_1) ignoring tracked script s with weights due to address owner")
    inst = config.vrrp_instances[0]
    assert inst.track_scripts == ()
    assert inst.track_interfaces == (TrackInterface(name="eth2"),)  # weight 0 = FAULT: kept


def test_track_bfd_is_parsed_but_not_acted_on() -> None:
    config, diags = ok(inst_text("track_bfd {\nbfd1 weight 10\n}"))
    only(diags, "'track_bfd' is accepted but not acted on by pykad")
    assert config.vrrp_instances[0].track_bfds == (TrackRef(name="bfd1", weight=10),)


# --------------------------------------------------------------------------------------------
# track_file and vrrp_track_process (§4.3, §4.4)


def test_track_file_block() -> None:
    config, diags = ok(
        "vrrp_track_file tf {\nfile /run/pykad/tf\nweight -2 reverse\ninit_file 5 overwrite\n}\n"
        + inst_text("track_file {\ntf\n}")
    )
    assert diags == []
    (tf,) = config.track_files
    assert (tf.path, tf.weight, tf.reverse, tf.init_file, tf.init_file_overwrite) == (
        "/run/pykad/tf",
        -2,
        True,
        5,
        True,
    )
    assert config.vrrp_instances[0].track_files == (TrackRef(name="tf", weight=-2, reverse=True),)


def test_track_file_without_file_is_removed() -> None:
    config, diags = ok("track_file tf {\nweight 1\n}\n" + inst_text())
    only(diags, "No file set for track_file tf - removing")
    assert config.track_files == ()


def test_track_process_block() -> None:
    config, diags = ok(
        'vrrp_track_process nginx {\nprocess "nginx: master process"\nweight 20\nquorum 1\n'
        "quorum_max 2\ndelay 0.5\n}\n"
        "vrrp_track_process sshd {\nprocess /usr/sbin/sshd -D\nparam_match initial\n"
        "fork_delay 1\n}\n" + inst_text("track_process {\nnginx\nsshd\n}")
    )
    assert diags == []
    nginx, sshd = config.track_processes
    assert (nginx.process, nginx.args, nginx.weight, nginx.quorum, nginx.quorum_max) == (
        "nginx: master process",
        (),
        20,
        1,
        2,
    )
    assert (nginx.fork_delay_s, nginx.terminate_delay_s) == (0.5, 0.5)
    assert (sshd.args, sshd.full_command, sshd.param_match, sshd.fork_delay_s) == (
        ("-D",),
        True,
        "initial",
        1.0,
    )


def test_track_process_quorum_ranges() -> None:
    _, diags = ok(
        "vrrp_track_process p {\nprocess x\nquorum 0\nweight 255\n}\n"
        + inst_text("track_process {\np\n}")
    )
    assert only(diags, "quorum 0 is out of range 1..65535").is_error
    assert only(diags, "weight 255 is out of range -254..254").is_error


# --------------------------------------------------------------------------------------------
# vrrp_sync_group (§4.1)


def two_instances(body_a: str = "", body_b: str = "") -> str:
    return inst_text(body_a, name="A", vrid=1) + inst_text(body_b, name="B", vrid=2)


def test_sync_group_members_and_notify() -> None:
    config, diags = ok(
        'vrrp_sync_group G {\ngroup {\nA B\n}\nnotify_master "/bin/echo G master"\n}\n'
        + two_instances()
    )
    assert diags == []
    (g,) = config.sync_groups
    assert g.members == ("A", "B")
    assert g.notify.master == Script(argv=("/bin/echo", "G", "master"))
    assert [i.sync_group for i in config.vrrp_instances] == ["G", "G"]


def test_sync_group_unknown_member_is_ignored() -> None:
    config, diags = ok("vrrp_sync_group G {\ngroup {\nA\nB\nC\n}\n}\n" + two_instances())
    only(diags, "Virtual router C specified in sync group G doesn't exist - ignoring")
    assert config.sync_groups[0].members == ("A", "B")


def test_instance_in_two_sync_groups_stays_in_the_first() -> None:
    config, diags = ok(
        "vrrp_sync_group G {\ngroup {\nA\nB\n}\n}\nvrrp_sync_group H {\ngroup {\nA\n}\n}\n"
        + two_instances()
    )
    only(diags, "Virtual router A cannot exist in more than one sync group")
    only(diags, "Sync group H has no virtual router(s) - removing")
    assert [g.name for g in config.sync_groups] == ["G"]


def test_sync_group_with_one_member_warns() -> None:
    config, diags = ok("vrrp_sync_group G {\ngroup {\nA\n}\n}\n" + two_instances())
    only(diags, "Sync group G has only 1 virtual router(s) - this probably isn't what you want")
    assert config.sync_groups[0].members == ("A",)


def test_sync_group_neutralises_member_weights() -> None:
    config, diags = ok(
        script_text("s", "weight 10")
        + script_text("s0")
        + "track_file f {\nfile /run/f\n}\ntrack_file f2 {\nfile /run/f2\nweight 3\n}\n"
        + "vrrp_sync_group G {\ngroup {\nA\nB\n}\n}\n"
        + two_instances(
            "track_interface {\neth1 weight 5\n}\ntrack_script {\ns\ns0\n}\ntrack_file {\nf\nf2\n}"
        )
    )
    only(diags, "(A) ignoring eth1 tracked interface weight due to SYNC group")
    only(diags, "(A) ignoring tracked script s with weights due to SYNC group")
    only(diags, "(A) ignoring weight from tracked file f due to SYNC group. specify weight 0")
    only(diags, "(A) ignoring tracked file f2 with weights due to SYNC group")
    a = config.instance("A")
    assert a.track_interfaces == (TrackInterface(name="eth1"),)  # weight 0: FAULT semantics
    assert a.track_scripts == (TrackRef(name="s0"),)
    assert a.track_files == (TrackRef(name="f"),)


def test_sync_group_tracking_weight_keeps_member_weights() -> None:
    config, diags = ok(
        "vrrp_sync_group G {\ngroup {\nA\nB\n}\nsync_group_tracking_weight\n}\n"
        + two_instances("track_interface {\neth1 weight 5\n}")
    )
    assert diags == []
    assert config.instance("A").track_interfaces == (TrackInterface(name="eth1", weight=5),)
    assert config.sync_groups[0].sync_group_tracking_weight is True


def test_global_tracking_is_deprecated_but_honoured() -> None:
    config, diags = ok(
        "vrrp_sync_group G {\ngroup {\nA\nB\n}\nglobal_tracking\n}\n" + two_instances()
    )
    only(diags, "(G) global_tracking is deprecated")
    assert config.sync_groups[0].sync_group_tracking_weight is True


def test_sync_group_trackers_are_zeroed_when_a_member_owns_the_address() -> None:
    config, _ = ok(
        "vrrp_sync_group G {\ngroup {\nA\nB\n}\ntrack_interface {\neth1 weight 5\n}\n}\n"
        + two_instances("priority 255")
    )
    assert config.sync_groups[0].track_interfaces == (TrackInterface(name="eth1"),)


# --------------------------------------------------------------------------------------------
# global_defs (§2)


def test_no_global_defs_gives_the_defaults() -> None:
    config, _ = ok(inst_text())
    assert config.global_defs == GlobalDefs()


def test_global_defs_keywords() -> None:
    config, diags = ok(
        "global_defs {\nrouter_id r1\nnotification_email {\nroot@localhost\nops@example.org\n}\n"
        "notification_email_from pykad@example.org\nsmtp_server 192.0.2.25 2525\n"
        "smtp_connect_timeout 0\nvrrp_mcast_group4 224.0.0.19\nvrrp_version 3\n"
        "vrrp_garp_master_delay 2\nvrrp_garp_master_repeat 3\nvrrp_garp_interval 0.001\n"
        "script_user nobody nogroup\nenable_script_security\ndynamic_interfaces\n"
        "vrrp_startup_delay 1.5\nnotify_fifo /run/k.fifo\n"
        'notify_fifo_script "/bin/cat -u"\n}\n' + inst_text()
    )
    assert diags == []
    g = config.global_defs
    assert g.router_id == "r1"
    assert g.notification_email == ("root@localhost", "ops@example.org")
    assert (g.smtp_server, g.smtp_port, g.smtp_connect_timeout_s) == ("192.0.2.25", 2525, 1.0)
    assert g.vrrp_mcast_group4 == ipaddress.IPv4Address("224.0.0.19")
    assert (g.script_user, g.script_group, g.enable_script_security) == ("nobody", "nogroup", True)
    assert (g.dynamic_interfaces, g.vrrp_startup_delay_s) == (True, 1.5)
    assert g.notify_fifo is not None
    assert g.notify_fifo.path == "/run/k.fifo"
    assert g.notify_fifo.script == Script(argv=("/bin/cat", "-u"))
    inst = config.vrrp_instances[0]
    assert (inst.version, inst.garp_master_delay_s, inst.garp_master_repeat) == (3, 2.0, 3)
    assert (inst.garp_lower_prio_delay_s, inst.garp_lower_prio_repeat) == (2.0, 3)
    assert inst.garp_interval_s == 0.001


def test_global_defs_after_the_instances_still_applies() -> None:
    config, _ = ok(inst_text() + "global_defs {\nvrrp_version 3\n}\n")
    assert config.vrrp_instances[0].version == 3


def test_vrrp_min_garp_sets_a_single_garp() -> None:
    config, _ = ok("global_defs {\nvrrp_min_garp\n}\n" + inst_text())
    inst = config.vrrp_instances[0]
    assert (inst.garp_master_repeat, inst.garp_master_delay_s, inst.garp_master_refresh_s) == (
        1,
        0.0,
        0.0,
    )


def test_global_mcast_group_must_be_multicast_of_its_family() -> None:
    _, diags = ok("global_defs {\nvrrp_mcast_group4 ff02::12\n}\n" + inst_text())
    assert only(diags, "vrrp_mcast_group4 must be an IPv4 address").is_error


@pytest.mark.parametrize("keyword", ["vrrp_iptables", "enable_snmp_vrrp", "vrrp_rt_priority 50"])
def test_global_keyword_not_acted_on_warns(keyword: str) -> None:
    _, diags = ok(f"global_defs {{\n{keyword}\n}}\n" + inst_text())
    name = keyword.split(maxsplit=1)[0]
    assert only(diags, f"'{name}' is accepted but not acted on by pykad").severity is (
        Severity.WARNING
    )


def test_unknown_global_keyword_has_a_hint() -> None:
    _, diags = ok("global_defs {\nvrrp_stritc\n}\n" + inst_text())
    d = only(diags, "unknown keyword 'vrrp_stritc'")
    assert d.hint == "did you mean 'vrrp_strict'?"
    assert d.loc is not None
    assert (d.loc.line, d.loc.col) == (2, 1)


# --------------------------------------------------------------------------------------------
# Top level


@pytest.mark.parametrize("keyword", ["garp_group", "linkbeat_interfaces", "bfd_instance b1"])
def test_top_level_block_not_acted_on_warns(keyword: str) -> None:
    _, diags = ok(f"{keyword} {{\nx\n}}\n" + inst_text())
    only(diags, "is accepted but not acted on by pykad")


def test_unknown_top_level_block_is_skipped_with_a_hint() -> None:
    config, diags = ok("vrrp_instanc VI_2 {\npriority 1\n}\n" + inst_text())
    d = only(diags, "unknown keyword 'vrrp_instanc' - skipping its block")
    assert d.hint == "did you mean 'vrrp_instance'?"
    assert [i.name for i in config.vrrp_instances] == ["VI_1"]


def test_static_addresses_routes_rules() -> None:
    config, diags = ok(
        "global_defs {\ndefault_interface eth9\n}\n"
        "static_ipaddress {\n192.0.2.50/24\n192.0.2.51/24 dev eth1\n}\n"
        "static_routes {\n198.51.100.0/24 via 192.0.2.254\n}\n"
        "static_rules {\nfrom 192.0.2.0/24 table 7\n}\n" + inst_text()
    )
    assert diags == []
    s = config.static
    assert [(str(a.address), a.dev) for a in s.addresses] == [
        ("192.0.2.50/24", "eth9"),
        ("192.0.2.51/24", "eth1"),
    ]
    assert s.routes[0].via == ipaddress.ip_address("192.0.2.254")
    assert s.rules[0].table == 7


def test_an_empty_configuration_is_valid() -> None:
    config, diags = ok("")
    assert config == Config()
    assert diags == []


# --------------------------------------------------------------------------------------------
# check_interfaces (Status.BAD_IF)


def test_check_interfaces_reports_missing_ones() -> None:
    config, _ = ok(
        inst_text("track_interface {\neth7\n}") + "static_ipaddress {\n192.0.2.50 dev eth8\n}\n"
    )
    diags = check_interfaces(config, {"lo", "eth0", "eth1"})
    assert [d.message for d in diags] == [
        "interface eth7 tracked by VI_1 doesn't exist",
        "interface eth8 for static address 192.0.2.50 doesn't exist",
    ]
    assert all(d.status is Status.BAD_IF and d.is_error for d in diags)
    assert check_interfaces(config, {"eth0", "eth7", "eth8"}) == []


def test_check_interfaces_instance_interface_with_hint() -> None:
    config, _ = ok(inst_text())
    (d,) = check_interfaces(config, {"eth1", "eth00"})
    assert d.message == "interface eth0 for vrrp_instance VI_1 doesn't exist"
    assert d.hint == "did you mean 'eth00'?"


def test_check_interfaces_honours_dynamic_interfaces() -> None:
    config, _ = ok("global_defs {\ndynamic_interfaces\n}\n" + inst_text())
    assert check_interfaces(config, set()) == []


def test_sync_group_trackers_are_attached_to_every_member() -> None:
    # §4.1: "Group tracking objects are attached to every member instance"; the machine reads
    # only the instance's own track_* fields, so a group tracker must appear there.
    config, _ = ok(
        script_text("chk", "weight -20\n") + "vrrp_sync_group G {\ngroup {\nA B\n}\n"
        "track_script {\nchk\n}\ntrack_interface {\neth1\n}\n}\n" + two_instances()
    )
    for inst in config.vrrp_instances:
        assert [(t.name, t.weight) for t in inst.track_scripts] == [("chk", -20)]
        assert [(t.name, t.weight) for t in inst.track_interfaces] == [("eth1", 0)]
