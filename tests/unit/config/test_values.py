"""values.ip_address is ipaddress.ip_address for text, only faster on IPv6 text."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from pykad.config.values import ip_address

# Characters that make up addresses and the usual ways of getting them wrong.
_ALPHABET = "0123456789abcdefABCDEFxg:.%/ -"


def _outcome(text: str) -> object:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return ValueError


def _ours(text: str) -> object:
    try:
        return ip_address(text)
    except ValueError:
        return ValueError


@given(st.text(_ALPHABET, max_size=45))
def test_same_result_as_ipaddress_on_any_text(text: str) -> None:
    assert _ours(text) == _outcome(text)


@given(st.ip_addresses(), st.sampled_from(["compressed", "exploded"]))
def test_same_address_for_every_valid_address(addr: object, form: str) -> None:
    text = getattr(addr, form)
    assert ip_address(text) == ipaddress.ip_address(text) == addr


def test_scoped_and_mapped_forms() -> None:
    for text in ("fe80::1%eth0", "::ffff:192.0.2.1", "::", "0.0.0.0", "2001:db8::1"):
        assert ip_address(text) == ipaddress.ip_address(text)
    for text in ("192.0.2.256", "2001:db8::1::2", "", "192.0.2.1/24", "1.2.3"):
        assert _ours(text) is ValueError
