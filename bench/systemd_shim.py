"""Run a command as the only child of a PID 1 named ``systemd``, in a new PID namespace.

keepalived 2.2.7 speaks sd_notify(3) only when its parent is PID 1 and ``/proc/1/stat`` reads
``1 (systemd) ...`` (its check_parent_systemd()); started by anything else it never sends
READY=1, whatever NOTIFY_SOCKET says. bench/startup.py runs both daemons under this shim so
that each sees the parent it would see under systemd, and the same wrapper costs both the same.

Usage: python bench/systemd_shim.py COMMAND [ARGS...]   (root; inside the lab's namespace)
SIGTERM, SIGINT and SIGHUP are passed on to COMMAND; the exit status is COMMAND's. When
COMMAND exits, PID 1 exits and the kernel ends whatever else is left in the namespace.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import types
from typing import Final

CLONE_NEWNS: Final = 0x00020000
CLONE_NEWPID: Final = 0x20000000
MS_REC: Final = 0x4000
MS_PRIVATE: Final = 1 << 18
PR_SET_NAME: Final = 15
FORWARDED: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _forward_to(pid: int) -> None:
    def handler(signum: int, _frame: types.FrameType | None) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, handler)


def _status(wait_status: int) -> int:
    return os.waitstatus_to_exitcode(wait_status) % 256


def _init(argv: list[str]) -> int:
    """PID 1 of the new namespace: its own /proc, comm ``systemd``, one child, reaper."""
    _check(libc.mount(b"proc", b"/proc", b"proc", 0, None), "mount /proc")
    _check(libc.prctl(PR_SET_NAME, b"systemd", 0, 0, 0), "prctl(PR_SET_NAME)")
    child = os.fork()
    if child == 0:
        os.execvp(argv[0], argv)
    _forward_to(child)
    while True:  # PID 1 reaps every orphan of the namespace; it ends with its child
        pid, wstatus = os.wait()
        if pid == child:
            return _status(wstatus)


def main() -> int:
    argv = sys.argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    # A private mount namespace, so mounting the new namespace's /proc changes nothing outside.
    _check(libc.unshare(CLONE_NEWPID | CLONE_NEWNS), "unshare")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    init = os.fork()  # the first child after unshare(CLONE_NEWPID) is PID 1 there
    if init == 0:
        os._exit(_init(argv))
    _forward_to(init)
    _, wstatus = os.waitpid(init, 0)
    return _status(wstatus)


if __name__ == "__main__":
    sys.exit(main())
