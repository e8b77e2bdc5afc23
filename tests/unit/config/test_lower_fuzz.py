"""``lower`` never raises: random Block trees built from real keywords and nasty values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pykad.config import lower as lower_mod
from pykad.config.diagnostics import SourceLoc
from pykad.config.lower import check_interfaces, lower
from pykad.config.tree import Block

LOC = SourceLoc("f.conf", 1, 1)
KEYWORDS = sorted(
    {
        *lower_mod._TOP,
        *lower_mod._INSTANCE,
        *lower_mod._GLOBAL,
        *lower_mod._SCRIPT,
        *lower_mod._SYNC_GROUP,
        *lower_mod._TRACK_FILE,
        *lower_mod._TRACK_PROCESS,
        "auth_type",
        "auth_pass",
    }
)
WORDS = st.one_of(
    st.sampled_from(KEYWORDS),
    st.sampled_from(
        [
            "0",
            "1",
            "255",
            "256",
            "-254",
            "1.5",
            "0.015",
            "41",
            "99999999999999999999",
            "x",
            "MASTER",
            "BACKUP",
            "PASS",
            "AH",
            "on",
            "off",
            "weight",
            "reverse",
            "dev",
            "eth0",
            "192.0.2.1",
            "192.0.2.1/24",
            "2001:db8::1",
            "ff02::12",
            "224.0.0.18",
            "default",
            "brd",
            "+",
            "via",
            "table",
            "'",
            '"',
            "\\",
            "{",
            "}",
        ]
    ),
    st.text(max_size=8),
)


def blocks(depth: int) -> st.SearchStrategy[Block]:
    def build(kw: str, args: list[str], children: tuple[Block, ...] | None) -> Block:
        return Block(
            keyword=kw,
            args=tuple(args),
            loc=LOC,
            arg_locs=tuple(LOC for _ in args),
            raw=" ".join([kw, *args]),
            children=children,
        )

    kids: st.SearchStrategy[tuple[Block, ...] | None] = st.none()
    if depth > 0:
        kids = st.one_of(st.none(), st.lists(blocks(depth - 1), max_size=6).map(tuple))
    return st.builds(build, WORDS, st.lists(WORDS, max_size=5), kids)


@given(st.lists(blocks(3), max_size=6))
def test_lower_never_raises(tree: list[Block]) -> None:
    config, diags = lower(tree)
    assert all(d.message for d in diags)
    if config is not None:
        check_interfaces(config, {"eth0"})
