"""sd_notify(3) without libsystemd: one datagram to ``$NOTIFY_SOCKET`` (spec §8).

The ``Type=notify`` contract: ``READY=1`` + ``MAINPID=`` once the sockets are bound and the
configuration is applied, ``RELOADING=1`` ... ``READY=1`` around a SIGHUP reload,
``STOPPING=1`` on shutdown, ``STATUS=`` free text. A path starting with ``@`` names a socket in
the abstract namespace (the ``@`` becomes a NUL byte), as sd_notify does.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def sd_notify(*fields: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one newline-joined datagram.

    Returns False (and does nothing) when not run under systemd or the socket is unusable:
    notification is advisory and must never stop the daemon.
    """
    path = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":
        return False
    address = "\0" + path[1:] if path[0] == "@" else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(fields).encode(), address)
    except OSError:
        return False
    return True
