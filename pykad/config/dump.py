"""The model pykad understood, as JSON-ready data (``pykad --dump-conf``).

Dataclasses become dicts in field order, IP objects and paths strings, enums their value,
tuples/lists lists, sets sorted lists. Source locations are left out: they say where a value
came from, not what it is, and would make the dump differ between two copies of a file.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
from collections.abc import Mapping

from pykad.config.diagnostics import SourceLoc

__all__ = ["to_jsonable"]

_IP_TYPES = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
)


def _is_loc(value: object) -> bool:
    if isinstance(value, SourceLoc):
        return True
    return isinstance(value, tuple | list) and bool(value) and all(_is_loc(v) for v in value)


def to_jsonable(obj: object) -> object:
    """``obj`` as nested dict/list/str/int/float/bool/None, ready for ``json.dump``."""
    if isinstance(obj, enum.Enum):  # first: StrEnum/IntEnum members are also str/int
        return to_jsonable(obj.value)
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_jsonable(value)
            for f in dataclasses.fields(obj)
            if not _is_loc(value := getattr(obj, f.name))
        }
    if isinstance(obj, (*_IP_TYPES, os.PathLike)):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in obj.items() if not _is_loc(v)}
    if isinstance(obj, set | frozenset):
        return sorted((to_jsonable(v) for v in obj), key=repr)
    if isinstance(obj, tuple | list):
        return [to_jsonable(v) for v in obj if not isinstance(v, SourceLoc)]
    if isinstance(obj, bytes):
        return obj.hex()
    return str(obj)
