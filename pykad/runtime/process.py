"""Process plumbing: pid files and logging setup (spec §7.3, §7.4).

Pid files. pykad uses keepalived's default names, ``/run/keepalived.pid`` (``-p``) and
``/run/vrrp.pid`` (``-r``), both holding pykad's single pid. Why keepalived's names: pykad
*replaces* keepalived on a node (same config path, same unit name, same signals), so tools
that read those files (``kill -HUP $(cat /run/keepalived.pid)``, monitoring checks, logrotate
hooks) keep working; and the collision is wanted: running keepalived and pykad on one node
with the same VRIDs would make the node fight itself, and the "already running" check below
refuses exactly that. A side-by-side test setup passes its own ``-p``/``-r``, as one must for
a second keepalived too.

Logging goes to stderr (the journal under systemd), one line per message in keepalived's
console format ``Wed Nov 25 03:02:05 2026: (VI_1) Entering MASTER STATE``. ``-D``
(``--log-detail``) shows pykad's DEBUG messages, which carry keepalived's detail-only lines
("Receive advertisement timeout", discarded packets). Other libraries stay at WARNING.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

DEFAULT_PID_FILE = "/run/keepalived.pid"
DEFAULT_VRRP_PID_FILE = "/run/vrrp.pid"
_DAEMON_NAMES = ("keepalived", "pykad")


class PidFileError(Exception):
    """The pid file names a live keepalived/pykad, or cannot be written."""


def _live_daemon(pid: int) -> bool:
    """True if ``pid`` is a running keepalived or pykad (not just any recycled pid)."""
    if pid == os.getpid():
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(name.encode() in cmdline for name in _DAEMON_NAMES)


def _read_pid(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def claim_pid_files(paths: list[str]) -> list[str]:
    """Write our pid (``<pid>\\n``, mode 0644) to each of ``paths``; refuse if one names a
    live daemon. Returns the paths written, for :func:`release_pid_files`."""
    for path in paths:
        pid = _read_pid(path)
        if pid is not None and _live_daemon(pid):
            raise PidFileError(f"daemon is already running (pid {pid} in {path})")
    written: list[str] = []
    try:
        for path in paths:
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(f"{os.getpid()}\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            written.append(path)
    except OSError as exc:
        release_pid_files(written)
        raise PidFileError(f"cannot write pid file: {exc}") from exc
    return written


def release_pid_files(paths: list[str]) -> None:
    """Remove the pid files that still hold our pid."""
    for path in paths:
        if _read_pid(path) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class KeepalivedFormatter(logging.Formatter):
    """``%a %b %e %H:%M:%S %Y: message`` (keepalived's console lines)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s: %(message)s", datefmt="%a %b %e %H:%M:%S %Y")


def setup_logging(*, detail: bool, stream: TextIO | None = None) -> logging.Handler:
    """Send pykad's log to stderr; returns the handler (tests remove it again)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeepalivedFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("pykad").setLevel(logging.DEBUG if detail else logging.INFO)
    return handler
