"""Exception hierarchy and process exit codes.

Library code raises; only :mod:`pykad.cli` turns exceptions into exit codes and stderr text.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pykad.config.diagnostics import Diagnostic


class ExitCode(IntEnum):
    """Exit statuses, named and numbered after keepalived 2.2.7 (spec §1.10, §7.4).

    ``--check-config`` (keepalived ``-t``):
      0 no error (warnings alone exit 0 unless ``--strict``), 2 a keyword is missing its
      mandatory parameter, 4 a file or interface is missing / unreadable, 5 any other config
      error, 6 a security error or an include that must exist does not.
    Running daemon: 0 clean stop, 1 fatal runtime error, 2 configuration unusable, 4 missing
    permission (raw sockets need CAP_NET_RAW), 6 no configuration file, 70 program error.
    """

    OK = 0
    FATAL = 1
    MISSING_PARAMETER = 2
    CONFIG = 2  # alias: runtime "configuration unusable" uses the same number as keepalived
    CONFIG_FILE = 4
    NO_PERMISSION = 4  # alias: runtime "missing permission"
    CONFIG_TEST = 5
    SECURITY = 6
    NO_CONFIG = 6  # alias: runtime "no/invalid config file"
    PROGRAM_ERROR = 70


class PykadError(Exception):
    """Root of every error pykad raises on purpose."""


class ConfigError(PykadError):
    """The configuration cannot be used; carries every diagnostic that was collected."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__(f"{len(self.diagnostics)} configuration diagnostic(s)")


class AdapterError(PykadError):
    """An operating-system operation failed (netlink, socket, subprocess)."""

    def __init__(self, op: str, errno: int | None = None, detail: str = "") -> None:
        self.op = op
        self.errno = errno
        self.detail = detail
        msg = op if errno is None else f"{op}: errno {errno}"
        super().__init__(f"{msg} {detail}".strip())


class InvalidTransition(PykadError):
    """A state change the VRRP state machine does not allow: always a bug in pykad."""

    def __init__(self, old: str, new: str, reason: str) -> None:
        self.old, self.new, self.reason = old, new, reason
        super().__init__(f"invalid VRRP transition {old} -> {new} ({reason})")
