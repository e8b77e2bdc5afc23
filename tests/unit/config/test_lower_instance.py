"""vrrp_instance lowering: defaults, ranges, and each keepalived fix-up with its message (§3)."""

from __future__ import annotations

import ipaddress

import pytest

from pykad.config.diagnostics import Diagnostic, Severity, Status
from pykad.config.grammar import parse_text
from pykad.config.lower import lower
from pykad.config.model import (
    Auth,
    AuthType,
    Config,
    InitialState,
    Notify,
    Script,
    VrrpInstance,
)

VIP = "virtual_ipaddress {\n192.0.2.10\n}\n"


def lower_text(text: str) -> tuple[Config | None, list[Diagnostic]]:
    parsed = parse_text(text, "t.conf")
    assert not [d for d in parsed.diagnostics if d.is_error], parsed.diagnostics
    return lower(parsed.blocks)


def inst_text(body: str = "", *, name: str = "VI_1", vrid: str = "51", vips: str = VIP) -> str:
    return f"vrrp_instance {name} {{\ninterface eth0\nvirtual_router_id {vrid}\n{vips}{body}\n}}\n"


def one_instance(body: str = "", **kw: str) -> tuple[VrrpInstance, list[Diagnostic]]:
    config, diags = lower_text(inst_text(body, **kw))
    assert config is not None, diags
    (inst,) = config.vrrp_instances
    return inst, diags


def messages(diags: list[Diagnostic], severity: Severity | None = None) -> list[str]:
    return [d.message for d in diags if severity is None or d.severity is severity]


def only(diags: list[Diagnostic], fragment: str) -> Diagnostic:
    """The one diagnostic whose message contains ``fragment``."""
    found = [d for d in diags if fragment in d.message]
    assert len(found) == 1, [d.message for d in diags]
    return found[0]


# --------------------------------------------------------------------------------------------
# Defaults


def test_minimal_instance_has_keepalived_defaults_and_no_diagnostics() -> None:
    inst, diags = one_instance()
    assert diags == []
    expected = VrrpInstance(
        name="VI_1",
        vrid=51,
        interface="eth0",
        virtual_addresses=inst.virtual_addresses,
    )
    assert inst == expected
    assert inst.priority == 100
    assert inst.initial_state is InitialState.BACKUP
    assert inst.advert_int_cs == 100
    assert (inst.version, inst.family) == (2, 4)
    assert inst.accept is True
    assert inst.auth == Auth()
    assert (inst.garp_master_delay_s, inst.garp_master_repeat) == (5.0, 5)
    assert (inst.garp_lower_prio_delay_s, inst.garp_lower_prio_repeat) == (5.0, 5)
    assert inst.down_timer_adverts == 3
    assert inst.notify == Notify()
    (vip,) = inst.virtual_addresses
    assert vip.address == ipaddress.ip_interface("192.0.2.10/32")
    assert vip.dev is None


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("priority 200", "priority", 200),
        ("advert_int 3", "advert_int_cs", 300),
        ("version 3", "version", 3),
        ("nopreempt", "nopreempt", True),
        ("preempt_delay 2.5", "preempt_delay_s", 2.5),
        ("down_timer_adverts 5", "down_timer_adverts", 5),
        ("garp_master_delay 1", "garp_master_delay_s", 1.0),
        ("garp_master_repeat 2", "garp_master_repeat", 2),
        ("garp_master_repeat 0", "garp_master_repeat", 1),
        ("garp_master_refresh 60", "garp_master_refresh_s", 60.0),
        ("garp_master_refresh_repeat 3", "garp_master_refresh_repeat", 3),
        ("garp_lower_prio_delay 7", "garp_lower_prio_delay_s", 7.0),
        ("garp_lower_prio_repeat 0", "garp_lower_prio_repeat", 0),
        ("lower_prio_no_advert", "lower_prio_no_advert", True),
        ("lower_prio_no_advert off", "lower_prio_no_advert", False),
        ("higher_prio_send_advert yes", "higher_prio_send_advert", True),
        ("skip_check_adv_addr", "skip_check_adv_addr", True),
        ("strict_mode off", "strict", False),
        ("no_accept", "accept", False),
        ("track_src_ip", "track_src_ip", True),
        ("dont_track_primary", "dont_track_primary", True),
        ("check_unicast_src", "check_unicast_src", True),
        ("unicast_fault_no_peer", "unicast_fault_no_peer", True),
        ("mcast_src_ip 192.0.2.1", "mcast_src_ip", ipaddress.ip_address("192.0.2.1")),
        ("mcast_dst_ip 224.0.0.19", "mcast_group", ipaddress.ip_address("224.0.0.19")),
        ("v3_checksum_as_v2", "v3_checksum_as_v2", True),
    ],
)
def test_keyword_sets_its_field(line: str, field: str, value: object) -> None:
    inst, diags = one_instance(line)
    assert getattr(inst, field) == value
    assert diags == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("priority 0", "priority 0 is out of range 1..255"),
        ("priority 256", "priority 256 is out of range 1..255"),
        ("priority high", "invalid number 'high'"),
        ("advert_int 0", "advert_int 0 is out of range 0.01..255"),
        ("advert_int 256", "advert_int 256 is out of range 0.01..255"),
        ("advert_int abc", "invalid number 'abc'"),
        ("version 4", "version 4 is out of range 2..3"),
        ("down_timer_adverts 0", "down_timer_adverts 0 is out of range 1..100"),
        ("down_timer_adverts 101", "down_timer_adverts 101 is out of range 1..100"),
        ("preempt_delay 1001", "preempt_delay 1001 is out of range 0..1000"),
        ("unicast_ttl 256", "unicast_ttl 256 is out of range 0..255"),
        ("mcast_dst_ip 192.0.2.1", "mcast_dst_ip 192.0.2.1 is not a multicast address"),
        ("smtp_alert maybe", "invalid smtp_alert parameter 'maybe'"),
        ("state SLAVE", "(VI_1) unknown state 'SLAVE', defaulting to BACKUP"),
    ],
)
def test_bad_value_is_a_located_error(line: str, message: str) -> None:
    config, diags = lower_text(inst_text(line))
    assert config is not None  # keepalived keeps running with the default
    d = only(diags, message)
    assert d.is_error
    assert d.loc is not None
    assert d.loc.line == 7  # after the 3-line virtual_ipaddress block
    assert d.loc.col > 1  # the caret points at the value, not the keyword
    assert d.source_line == line


@pytest.mark.parametrize(("vrid", "ok"), [("1", True), ("255", True), ("0", False), ("300", False)])
def test_vrid_range(vrid: str, ok: bool) -> None:
    config, diags = lower_text(inst_text(vrid=vrid))
    if ok:
        assert config is not None
        assert config.vrrp_instances[0].vrid == int(vrid)
        assert diags == []
    else:
        assert config is None  # the instance cannot run without a VRID
        assert f"virtual_router_id {vrid} is out of range 1..255" in messages(diags)
        assert "(VI_1) the virtual router id must be set" in messages(diags)


def test_out_of_range_priority_falls_back_to_100() -> None:
    inst, _ = one_instance("priority 256")
    assert inst.priority == 100


def test_too_many_decimal_places_is_a_warning_and_rounds() -> None:
    inst, diags = one_instance("preempt_delay 1.12345678")
    d = only(diags, "has too many decimal places")
    assert d.severity is Severity.WARNING
    assert inst.preempt_delay_s == pytest.approx(1.123457)


def test_missing_parameter_is_fatal_with_its_status() -> None:
    config, diags = lower_text(inst_text("priority"))
    assert config is None
    d = only(diags, "missing a parameter")
    assert d.status is Status.MISSING_PARAMETER
    assert d.is_error


def test_instance_without_vrid_is_rejected() -> None:
    config, diags = lower_text("vrrp_instance A {\ninterface eth0\n" + VIP + "}\n")
    assert config is None
    assert "(A) the virtual router id must be set" in messages(diags, Severity.ERROR)


def test_instance_without_interface_is_rejected() -> None:
    config, diags = lower_text("vrrp_instance A {\nvirtual_router_id 1\n" + VIP + "}\n")
    assert config is None
    assert any("Unknown interface" in m for m in messages(diags, Severity.ERROR))


def test_unicast_instance_needs_no_interface() -> None:
    config, diags = lower_text(
        "vrrp_instance A {\nvirtual_router_id 1\nunicast_src_ip 192.0.2.1\n"
        "unicast_peer {\n192.0.2.2\n}\n" + VIP + "}\n"
    )
    assert config is not None, diags
    assert config.vrrp_instances[0].interface is None
    assert config.vrrp_instances[0].is_unicast


def test_loopback_interface_is_refused() -> None:
    config, diags = lower_text("vrrp_instance A {\ninterface lo\nvirtual_router_id 1\n" + VIP + "}")
    assert config is None
    assert "(A) cannot use a loopback interface (lo) for vrrp - ignoring" in messages(diags)


def test_duplicate_instance_name_is_an_error_and_skipped() -> None:
    config, diags = lower_text(inst_text() + inst_text("priority 7", vrid="9"))
    assert config is not None
    assert [i.priority for i in config.vrrp_instances] == [100]
    assert "vrrp instance VI_1 already defined - skipping" in messages(diags, Severity.ERROR)


# --------------------------------------------------------------------------------------------
# State and priority (§3.1)


def test_state_master_without_priority_means_255() -> None:
    inst, diags = one_instance("state MASTER")
    assert (inst.initial_state, inst.priority) == (InitialState.MASTER, 255)
    assert diags == []


def test_priority_255_without_state_means_master() -> None:
    inst, _ = one_instance("priority 255")
    assert inst.initial_state is InitialState.MASTER


def test_backup_after_master_is_ignored() -> None:
    inst, diags = one_instance("state MASTER\npriority 100\nstate BACKUP")
    assert inst.initial_state is InitialState.MASTER
    assert "(VI_1) state previously set as MASTER - ignoring BACKUP" in messages(diags)


# --------------------------------------------------------------------------------------------
# keepalived's fix-ups, one test each


def test_nopreempt_with_state_master_is_cleared() -> None:
    inst, diags = one_instance("state MASTER\npriority 100\nnopreempt")
    d = only(diags, "(VI_1) Warning - nopreempt will not work with initial state MASTER - clearing")
    assert d.severity is Severity.WARNING
    assert d.loc is not None
    assert d.source_line == "nopreempt"
    assert inst.nopreempt is False


def test_nopreempt_with_priority_255_is_cleared() -> None:
    inst, diags = one_instance("state MASTER\nnopreempt")
    only(diags, "(VI_1) nopreempt is incompatible with priority 255. resetting nopreempt")
    assert inst.nopreempt is False


def test_preempt_after_nopreempt_turns_preemption_back_on() -> None:
    inst, diags = one_instance("nopreempt\npreempt")
    assert inst.nopreempt is False
    assert diags == []


def test_preempt_delay_with_nopreempt_is_reset() -> None:
    inst, diags = one_instance("nopreempt\npreempt_delay 10")
    only(diags, "(VI_1) preempt_delay is incompatible with nopreempt mode - resetting")
    assert (inst.nopreempt, inst.preempt_delay_s) == (True, 0.0)


def test_preempt_delay_with_state_master_is_reset() -> None:
    inst, diags = one_instance("state MASTER\npriority 100\npreempt_delay 10")
    only(diags, "preempt_delay is incompatible with initial state MASTER - resetting")
    assert inst.preempt_delay_s == 0.0


def test_auth_pass_longer_than_8_is_truncated() -> None:
    inst, diags = one_instance("authentication {\nauth_type PASS\nauth_pass 123456789abc\n}")
    d = only(diags, "Truncating auth_pass to 8 characters")
    assert d.severity is Severity.WARNING
    assert inst.auth == Auth(type=AuthType.PASS, password=b"12345678")


def test_short_auth_pass_is_zero_padded_to_8_bytes() -> None:
    inst, diags = one_instance("authentication {\nauth_type PASS\nauth_pass abc\n}")
    assert inst.auth.password == b"abc\0\0\0\0\0"
    assert diags == []


def test_auth_with_v3_is_ignored() -> None:
    inst, diags = one_instance("version 3\nauthentication {\nauth_type PASS\nauth_pass x\n}")
    only(diags, "(VI_1) VRRP version 3 does not support authentication. Ignoring.")
    assert inst.auth == Auth()


def test_unknown_auth_type_is_an_error() -> None:
    inst, diags = one_instance("authentication {\nauth_type pass\nauth_pass x\n}")
    d = only(diags, "(VI_1) unknown authentication type 'pass'")
    assert d.is_error
    assert d.hint == "did you mean 'PASS'?"
    assert inst.auth == Auth()


def test_v2_fractional_advert_int_is_rounded() -> None:
    inst, diags = one_instance("advert_int 1.6")
    only(diags, "(VI_1) VRRPv2 advertisement interval 1.600000s must be an integer. rounding")
    assert inst.advert_int_cs == 200


def test_v2_sub_second_advert_int_rounds_up_to_one_second() -> None:
    inst, _ = one_instance("advert_int 0.2")
    assert inst.advert_int_cs == 100


def test_v3_advert_int_not_in_10ms_units_is_rounded() -> None:
    inst, diags = one_instance("version 3\nadvert_int 0.015")
    only(diags, "(VI_1) VRRPv3 advertisement interval 0.015000s must be in units of 10ms")
    assert inst.advert_int_cs == 2


def test_v3_sub_second_advert_int_is_kept() -> None:
    inst, diags = one_instance("version 3\nadvert_int 0.25")
    assert inst.advert_int_cs == 25
    assert diags == []


def test_v3_advert_int_of_41s_is_clamped_to_40_95() -> None:
    inst, diags = one_instance("version 3\nadvert_int 41")
    only(diags, "Must be less than 40.96s. Setting to 40.95s")
    assert inst.advert_int_cs == 4095


def test_ipv6_vips_force_version_3_silently() -> None:
    inst, diags = one_instance(vips="virtual_ipaddress {\nfe80::10\n2001:db8::10\n}\n")
    assert (inst.family, inst.version) == (6, 3)
    assert diags == []


def test_ipv6_first_vip_should_be_link_local() -> None:
    _, diags = one_instance(vips="virtual_ipaddress {\nfe80::10\n2001:db8::10\n}\n")
    assert diags == []
    _, diags = one_instance(vips="virtual_ipaddress {\n2001:db8::10\n}\n")
    d = only(diags, "(VI_1) the first IPv6 VIP 2001:db8::10 should be link-local")
    assert d.severity is Severity.WARNING
    config, diags = lower_text(
        inst_text("strict_mode", vips="virtual_ipaddress {\n2001:db8::1\n}\n")
    )
    assert config is None
    assert only(diags, "should be link-local").is_error


def test_ipv6_vips_with_explicit_version_2_is_an_error() -> None:
    inst, diags = one_instance("version 2", vips="virtual_ipaddress {\nfe80::10\n}\n")
    d = only(diags, "IPv6 requires VRRP version 3")
    assert d.is_error
    assert d.source_line == "version 2"
    assert inst.version == 3


def test_mixed_family_vips_are_dropped() -> None:
    inst, diags = one_instance(vips="virtual_ipaddress {\n192.0.2.10\n2001:db8::1\n}\n")
    d = only(diags, "(VI_1): address family must match VRRP instance [2001:db8::1] - ignoring")
    assert d.severity is Severity.WARNING
    assert [str(v.ip) for v in inst.virtual_addresses] == ["192.0.2.10"]


def test_excluded_addresses_may_mix_families() -> None:
    inst, diags = one_instance("virtual_ipaddress_excluded {\n2001:db8::1\n192.0.2.77\n}")
    assert [str(v.ip) for v in inst.excluded_addresses] == ["2001:db8::1", "192.0.2.77"]
    assert diags == []


def test_no_vip_under_v2_is_a_warning() -> None:
    inst, diags = one_instance(vips="")
    d = only(diags, "(VI_1) No VIP specified; at least one is sensible")
    assert d.severity is Severity.WARNING
    assert inst.virtual_addresses == ()


def test_no_vip_under_v3_is_an_error() -> None:
    config, diags = lower_text(inst_text("version 3", vips=""))
    assert config is None
    assert "(VI_1) No VIP specified; at least one is required" in messages(diags, Severity.ERROR)


def test_too_many_vips_for_one_advert_move_to_excluded() -> None:
    lines = "".join(f"10.{i // 250}.{i % 250}.1\n" for i in range(300))
    inst, diags = one_instance(vips=f"virtual_ipaddress {{\n{lines}}}\n")
    only(diags, "do not fit in an advert")
    assert len(inst.virtual_addresses) == 255
    assert len(inst.excluded_addresses) == 45


def test_unicast_peer_of_the_wrong_family_is_dropped_with_an_error() -> None:
    inst, diags = one_instance("unicast_peer {\n2001:db8::2\n192.0.2.2\n}")
    d = only(diags, "unicast peer address[2001:db8::2] MUST be of the same family")
    assert d.is_error
    assert [str(p.address) for p in inst.unicast_peers] == ["192.0.2.2"]


def test_unicast_src_ip_of_the_wrong_family_is_an_error() -> None:
    inst, diags = one_instance("unicast_src_ip 2001:db8::5\nunicast_peer {\n192.0.2.2\n}")
    # the VIP came first and made the instance IPv4
    d = only(diags, "src address[2001:db8::5] MUST be of the same family")
    assert d.is_error
    assert inst.unicast_src_ip is None


def test_unicast_ttl_without_peers_is_reset() -> None:
    inst, diags = one_instance("unicast_ttl 10")
    only(diags, "(VI_1) Cannot use unicast_ttl without unicast peers - resetting")
    assert inst.unicast_ttl is None


def test_peer_ttl_window_turns_on_source_checking() -> None:
    inst, diags = one_instance("unicast_peer {\n192.0.2.2 min_ttl 250 max_ttl 255\n}")
    assert inst.check_unicast_src is True
    (peer,) = inst.unicast_peers
    assert (peer.min_ttl, peer.max_ttl) == (250, 255)
    assert diags == []


def test_peer_min_ttl_above_max_ttl_warns() -> None:
    _, diags = one_instance("unicast_peer {\n192.0.2.2 min_ttl 200 max_ttl 100\n}")
    only(diags, "all packets will be discarded")


# --------------------------------------------------------------------------------------------
# Strict mode (§3.7)


def test_strict_state_master_must_be_address_owner() -> None:
    inst, diags = one_instance("strict_mode\nstate MASTER\npriority 100")
    only(diags, "(VI_1) State MASTER must match being address owner")
    assert inst.initial_state is InitialState.BACKUP


def test_strict_disables_authentication() -> None:
    inst, diags = one_instance("strict_mode\nauthentication {\nauth_type PASS\nauth_pass x\n}")
    only(diags, "(VI_1) Strict mode does not support authentication. Ignoring.")
    assert inst.auth == Auth()


def test_strict_resets_preempt_delay() -> None:
    inst, diags = one_instance("strict_mode\npreempt_delay 5")
    only(diags, "(VI_1) preempt_delay is incompatible with strict mode - resetting")
    assert inst.preempt_delay_s == 0.0


def test_strict_forces_no_lower_priority_garps() -> None:
    inst, diags = one_instance("strict_mode\ngarp_lower_prio_repeat 3")
    only(diags, "(VI_1) Strict mode requires no repeat garps. resetting")
    assert (inst.garp_lower_prio_repeat, inst.garp_lower_prio_delay_s) == (0, 0.0)


def test_strict_forces_down_timer_adverts_3() -> None:
    inst, diags = one_instance("strict_mode\ndown_timer_adverts 5")
    only(diags, "Strict mode requires down_timer_adverts 3")
    assert inst.down_timer_adverts == 3


def test_strict_forces_advert_answers_off() -> None:
    inst, diags = one_instance("strict_mode\nhigher_prio_send_advert")
    only(diags, "does not allow higher_prio_send_advert")
    assert (inst.lower_prio_no_advert, inst.higher_prio_send_advert) == (True, False)


def test_strict_accept_defaults_off_for_non_owner() -> None:
    inst, _ = one_instance("strict_mode")
    assert inst.accept is False
    owner, _ = one_instance("strict_mode\npriority 255")
    assert owner.accept is True


def test_strict_v2_explicit_accept_for_non_owner_is_reset() -> None:
    inst, diags = one_instance("strict_mode\naccept")
    only(diags, "resetting to no_accept")
    assert inst.accept is False


def test_strict_without_vips_is_an_error() -> None:
    config, diags = lower_text(inst_text("strict_mode", vips=""))
    assert config is None
    assert "(VI_1) No VIP specified; at least one is required" in messages(diags)


def test_global_vrrp_strict_applies_to_every_instance() -> None:
    config, _ = lower_text("global_defs {\nvrrp_strict\n}\n" + inst_text())
    assert config is not None
    assert config.vrrp_instances[0].strict is True


# --------------------------------------------------------------------------------------------
# Duplicate VRID (RFC 5798 5.2.3)


def test_duplicate_vrid_on_one_interface_and_family_is_an_error() -> None:
    config, diags = lower_text(inst_text(name="A", vrid="1") + inst_text(name="B", vrid="1"))
    assert config is None
    d = only(diags, "A and B both use VRID 1 with IPv4 on interface eth0")
    assert d.is_error
    assert d.loc is not None
    assert d.loc.line == 9  # the second instance


def test_same_vrid_in_other_family_is_allowed() -> None:
    v6 = "virtual_ipaddress {\n2001:db8::10\n}\n"
    config, diags = lower_text(
        inst_text(name="A", vrid="1") + inst_text(name="B", vrid="1", vips=v6)
    )
    assert config is not None, diags
    assert [i.family for i in config.vrrp_instances] == [4, 6]


# --------------------------------------------------------------------------------------------
# Addresses, routes, rules (§3.2)


def test_vip_options_are_parsed() -> None:
    inst, diags = one_instance(
        vips="virtual_ipaddress {\n192.0.2.10/24 dev eth1 brd + scope link label eth1:vip"
        " no_track\n}\n"
    )
    assert diags == []
    (vip,) = inst.virtual_addresses
    assert vip.address == ipaddress.ip_interface("192.0.2.10/24")
    assert vip.dev == "eth1"
    assert vip.broadcast == ipaddress.ip_address("192.0.2.255")
    assert (vip.scope, vip.label, vip.no_track) == ("link", "eth1:vip", True)


def test_vip_invalid_prefix_uses_host_prefix() -> None:
    inst, diags = one_instance(vips="virtual_ipaddress {\n192.0.2.10/40\n}\n")
    only(diags, "Invalid address prefix len 40 for address 192.0.2.10 - using 32")
    assert inst.virtual_addresses[0].address.network.prefixlen == 32


def test_vip_unknown_word_is_reported_and_rest_parsed() -> None:
    inst, diags = one_instance(vips="virtual_ipaddress {\n192.0.2.10 bogus dev eth1\n}\n")
    only(diags, "Unknown configuration entry 'bogus' for ip address - ignoring")
    assert inst.virtual_addresses[0].dev == "eth1"


def test_vip_keyword_without_value_drops_the_address() -> None:
    inst, diags = one_instance(vips="virtual_ipaddress {\n192.0.2.10\n192.0.2.11 dev\n}\n")
    only(diags, "No dev parameter specified for 192.0.2.11")
    assert len(inst.virtual_addresses) == 1


def test_invalid_vip_is_an_error() -> None:
    _, diags = one_instance(vips="virtual_ipaddress {\n192.0.2.300\n192.0.2.1\n}\n")
    assert only(diags, "invalid IP address '192.0.2.300'").is_error


def test_virtual_routes_and_rules() -> None:
    inst, diags = one_instance(
        "virtual_routes {\nsrc 192.0.2.10 to 198.51.100.0/24 via 192.0.2.254 dev eth0"
        " table main metric 5\nblackhole 203.0.113.0/24\ndefault via 192.0.2.1\n}\n"
        "virtual_rules {\nfrom 192.0.2.0/24 table 100 priority 10\n}"
    )
    # the default route has no interface to be tracked through; a blackhole needs none
    assert [d.message for d in diags] == [
        "Warning - cannot track route default with no interface specified, not tracking"
    ]
    r1, r2, r3 = inst.virtual_routes
    assert r1.dst == ipaddress.ip_network("198.51.100.0/24")
    assert (str(r1.src), str(r1.via), r1.dev, r1.table, r1.metric) == (
        "192.0.2.10",
        "192.0.2.254",
        "eth0",
        254,
        5,
    )
    assert (r2.type, r2.dst) == ("blackhole", ipaddress.ip_network("203.0.113.0/24"))
    assert (r3.dst, r3.no_track) == (None, True)
    (rule,) = inst.virtual_rules
    assert (rule.src, rule.table, rule.priority, rule.family) == (
        ipaddress.ip_network("192.0.2.0/24"),
        100,
        10,
        4,
    )


def test_route_options_pykad_does_not_act_on_are_reported() -> None:
    inst, diags = one_instance("virtual_routes {\n198.51.100.0/24 dev eth0 mtu 1400\n}")
    only(diags, "route options 'mtu 1400' are accepted but not acted on by pykad")
    assert inst.virtual_routes[0].extra == ("mtu", "1400")


# --------------------------------------------------------------------------------------------
# Unknown and not-acted-on keywords


def test_unknown_keyword_warns_with_a_hint() -> None:
    inst, diags = one_instance("virtual_router_idd 7")
    d = only(diags, "unknown keyword 'virtual_router_idd'")
    assert d.severity is Severity.WARNING
    assert d.hint == "did you mean 'virtual_router_id'?"
    assert inst.vrid == 51


def test_unknown_block_is_skipped_whole() -> None:
    # keepalived would parse 'priority 10' in the parent and let the '}' close the instance;
    # pykad skips the unknown block and keeps the instance intact
    inst, diags = one_instance("foo {\npriority 10\n}\nadvert_int 2")
    only(diags, "unknown keyword 'foo' - skipping its block")
    assert (inst.priority, inst.advert_int_cs) == (100, 200)


@pytest.mark.parametrize("line", ["use_vmac", "vmac_xmit_base", "debug 2", "garp_extra_if 10"])
def test_known_but_not_acted_on_keyword_warns(line: str) -> None:
    _, diags = one_instance(line)
    keyword = line.split(maxsplit=1)[0]
    d = only(diags, f"'{keyword}' is accepted but not acted on by pykad")
    assert d.severity is Severity.WARNING


def test_use_vmac_is_recorded_in_the_model() -> None:
    inst, _ = one_instance("use_vmac vrrp51")
    assert (inst.use_vmac, inst.vmac_name) == (True, "vrrp51")


def test_value_block_keyword_without_block_is_an_error() -> None:
    _, diags = one_instance("virtual_routes")
    assert only(diags, "'virtual_routes' must be followed by a '{ ... }' block").is_error


# --------------------------------------------------------------------------------------------
# Notify scripts (§1.3, §3.6)


def test_notify_script_is_split_with_keepalived_quoting() -> None:
    inst, diags = one_instance(
        "notify_master \"/usr/local/bin/notify.sh master 'two words' a\\ b\" nobody nogroup\n"
        'notify "/bin/logger -t vrrp"'
    )
    assert diags == []
    assert inst.notify.master == Script(
        # the command string is split twice (§1.3): "a\\ b" is unescaped by the first pass
        argv=("/usr/local/bin/notify.sh", "master", "two words", "a", "b"),
        user="nobody",
        group="nogroup",
    )
    assert inst.notify.generic is not None
    assert inst.notify.generic.argv == ("/bin/logger", "-t", "vrrp")
    assert inst.notify.generic.user is None


def test_unquoted_notify_argument_is_the_user() -> None:
    inst, _ = one_instance("notify_backup /bin/echo root")
    assert inst.notify.backup == Script(argv=("/bin/echo",), user="root")


def test_notify_script_with_unterminated_quote_is_an_error() -> None:
    inst, diags = one_instance('notify_fault "/bin/echo \'a b"')
    assert only(diags, "missing terminating '").is_error
    assert inst.notify.fault is None


def test_second_notify_of_a_kind_is_ignored() -> None:
    inst, diags = one_instance("notify_stop /bin/true\nnotify_stop /bin/false")
    only(diags, "(VI_1) notify_stop script already specified - ignoring")
    assert inst.notify.stop is not None
    assert inst.notify.stop.argv == ("/bin/true",)


def test_notify_deleted_without_script_enables_deleted_state() -> None:
    inst, _ = one_instance("notify_deleted")
    assert (inst.notify.deleted_enabled, inst.notify.deleted) == (True, None)


def test_smtp_alert_and_priority_changes_default_from_globals() -> None:
    config, _ = lower_text(
        "global_defs {\nsmtp_alert\nvrrp_notify_priority_changes\n}\n" + inst_text()
    )
    assert config is not None
    n = config.vrrp_instances[0].notify
    assert (n.smtp_alert, n.priority_changes) == (True, True)
    inst, _ = one_instance("smtp_alert off\nnotify_priority_changes")
    assert (inst.notify.smtp_alert, inst.notify.priority_changes) == (False, True)
