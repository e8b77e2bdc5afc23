"""The control socket: ``pykad status``, ``pykad reload``, ``pykad stop`` talk to the daemon here.

keepalived has no way to ask the daemon what it is doing except signals that make it write
files (``/tmp/keepalived.data`` on SIGUSR1, racing with the reader). pykad answers on a Unix
stream socket instead.

Where. ``/run/pykad/control.sock`` by default (:data:`DEFAULT_CONTROL_SOCKET`: ``/run`` is
where the unit may write, ``ReadWritePaths=/run``); ``--control-socket PATH`` or the
``PYKAD_CONTROL_SOCKET`` environment variable change it for the daemon and the client alike,
and an empty value switches the socket off. The path is a file-system name, so it is shared
by every network namespace: two daemons on one host (tests, a lab) need two paths.

Who. Root only, twice over: the socket is created with mode 0600 (bound under a temporary
name, chmod-ed, then renamed into place, so it is never reachable with looser permissions),
and every connection's ``SO_PEERCRED`` uid must be 0 or the daemon's own uid (the daemon may
run as a dedicated user with capabilities); anyone else gets a JSON error naming their uid and
is disconnected.

Lifetime. The daemon opens the socket once startup is complete, just before telling systemd
``READY=1``, so that ``systemctl start pykad && pykad status`` never races; it closes it and
removes the file when it has stopped (after the masters have resigned, which is what
``pykad stop`` waits for), also when it stops because of an error. A socket file left by a
daemon that was killed is replaced: a connect to it is refused, so nobody is listening. If a
live pykad answers on the path, this daemon runs without a control socket and logs why:
VRRP service matters more than the operator interface, and stealing a running daemon's socket
would make ``pykad stop`` stop the wrong one. Only a socket this daemon created is removed.

Protocol (version :data:`PROTOCOL_VERSION`). Newline-delimited JSON, one request and one
reply per line, several requests per connection allowed::

    -> {"version": 1, "cmd": "status"}
    <- {"version": 1, "ok": true, "result": {...}}
    <- {"version": 1, "ok": false, "error": "unknown command 'x' (known: ...)"}

Commands: ``status`` (the document of ``pykad/schema/status.schema.json``), ``reload``
(SIGHUP's work; the result says whether the new configuration was applied and carries its
rendered diagnostics), ``stop`` (SIGTERM's work; the reply comes at once and the daemon
closes the connection when it has stopped, so a client that waits for end-of-file knows the
addresses are released), ``metrics`` (the Prometheus text, for scrapers that prefer the
socket to the HTTP listener). A request without ``version`` is read as version 1; any other
version is refused, so a future client talking to an old daemon gets a clear answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from pykad.errors import PykadError

log = logging.getLogger(__name__)

DEFAULT_CONTROL_SOCKET: Final = "/run/pykad/control.sock"
CONTROL_SOCKET_ENV: Final = "PYKAD_CONTROL_SOCKET"
PROTOCOL_VERSION: Final = 1
COMMANDS: Final = ("status", "reload", "stop", "metrics")
MAX_LINE: Final = 64 * 1024  # a request is a few dozen bytes; replies are not limited
_UCRED: Final = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}

Reply = dict[str, Any]
Handler = Callable[[str, Mapping[str, Any]], Awaitable[Reply]]


class ControlError(PykadError):
    """The control socket cannot be used (client side: no daemon, no permission, bad reply;
    server side: the path is taken)."""


class DaemonNotRunning(ControlError):
    """Nothing listens on the control socket."""


class CommandError(ControlError):
    """A request the daemon refuses; the message goes back to the client as ``error``."""


def control_path(configured: str | None) -> str | None:
    """The socket path from an option value (None: the environment, then the default);
    an empty value means no control socket."""
    if configured is None:
        configured = os.environ.get(CONTROL_SOCKET_ENV, DEFAULT_CONTROL_SOCKET)
    return configured or None


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket (SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


def _encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


# ---------------------------------------------------------------------------------------------
# The daemon's side


class ControlServer:
    """Serves :data:`COMMANDS` on ``path`` by calling ``handler(cmd, request)``.

    ``handler`` returns the result object or raises :class:`CommandError`; any other
    exception is a pykad bug: it is logged and answered with an error, never fatal."""

    def __init__(
        self, path: str, handler: Handler, *, allowed_uids: frozenset[int] = frozenset()
    ) -> None:
        self.path = path
        self.handler = handler
        self.allowed_uids = allowed_uids or frozenset({0, os.geteuid()})
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._inode: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket we made

    async def start(self) -> None:
        """Bind and listen; raise ControlError if the path is in use or cannot be made."""
        directory = os.path.dirname(self.path) or "."
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            self._clear_stale()
            sock = self._bind()
        except OSError as exc:
            raise ControlError(f"control socket {self.path}: {exc.strerror or exc}") from exc
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_LINE)
        log.info("Control socket %s", self.path)

    def _clear_stale(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlError(f"control socket {self.path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(self.path)
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("Removing stale control socket %s", self.path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        except OSError:
            pass  # listening but not answering in time: in use all the same
        finally:
            probe.close()
        raise ControlError(f"control socket {self.path}: in use by a running daemon")

    def _bind(self) -> socket.socket:
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(tmp)
            os.chmod(tmp, 0o600)
            os.rename(tmp, self.path)  # atomic: never reachable with the umask's mode
            st = os.lstat(self.path)
            self._inode = (st.st_dev, st.st_ino)
            sock.listen(16)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return sock

    async def close(self) -> None:
        """Stop listening, close every connection, remove the socket file if it is ours."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()
        for writer in list(self._writers):
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (st.st_dev, st.st_ino) == self._inode:
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            sock = writer.get_extra_info("socket")
            pid, uid, _gid = peer_credentials(sock)
            if uid not in self.allowed_uids:
                log.warning("Control socket: refused uid %d (pid %d): not root", uid, pid)
                writer.write(_error(f"permission denied: uid {uid} is not root"))
                await writer.drain()
                return
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_LINE
                    writer.write(_error(f"request longer than {MAX_LINE} bytes"))
                    await writer.drain()
                    return
                if not line:
                    return
                writer.write(await self._answer(line))
                await writer.drain()
        except (ConnectionError, OSError):
            return  # the client went away; nothing to tell anyone
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, line: bytes) -> bytes:
        try:
            request = json.loads(line)
        except ValueError as exc:
            return _error(f"not JSON: {exc}")
        if not isinstance(request, dict):
            return _error("a request is a JSON object")
        version = request.get("version", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            return _error(
                f"unsupported protocol version {version!r} (this daemon speaks {PROTOCOL_VERSION})"
            )
        cmd = request.get("cmd")
        if cmd not in COMMANDS:
            return _error(f"unknown command {cmd!r} (known: {', '.join(COMMANDS)})")
        try:
            result = await self.handler(str(cmd), request)
        except CommandError as exc:
            return _error(str(exc))
        except Exception as exc:  # a bug must not take the daemon down with the client
            log.exception("Control command %s failed", cmd)
            return _error(f"internal error: {exc!r}")
        return _encode({"version": PROTOCOL_VERSION, "ok": True, "result": result})


def _error(message: str) -> bytes:
    return _encode({"version": PROTOCOL_VERSION, "ok": False, "error": message})


# ---------------------------------------------------------------------------------------------
# The client's side (blocking: the command line has nothing else to do)


class ControlClient:
    """One connection to the daemon: ``with ControlClient(path) as c: c.call("status")``."""

    def __init__(self, path: str, *, timeout_s: float = 30.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buf = b""

    def __enter__(self) -> ControlClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise DaemonNotRunning(
                f"no pykad daemon is running (control socket {self.path}: {exc.strerror})"
            ) from exc
        except OSError as exc:
            sock.close()
            hint = " (the control socket is for root only)" if exc.errno == errno.EACCES else ""
            raise ControlError(f"control socket {self.path}: {exc.strerror}{hint}") from exc
        self._sock = sock
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(self, cmd: str, **args: Any) -> Reply:
        """Send one request; return its ``result`` or raise ControlError with the daemon's
        ``error``."""
        assert self._sock is not None, "use ControlClient as a context manager"
        try:
            try:
                self._sock.sendall(_encode({"version": PROTOCOL_VERSION, "cmd": cmd, **args}))
            except (BrokenPipeError, ConnectionResetError):
                pass  # a refused peer is told why and disconnected at once: read the reason
            line = self._readline()
        except TimeoutError as exc:
            raise ControlError(
                f"control socket {self.path}: no answer in {self.timeout_s:g} s"
            ) from exc
        except OSError as exc:
            raise ControlError(f"control socket {self.path}: {exc.strerror or exc}") from exc
        if line is None:
            raise ControlError(f"control socket {self.path}: the daemon closed the connection")
        try:
            reply = json.loads(line)
        except ValueError as exc:
            raise ControlError(f"control socket {self.path}: not a JSON reply: {exc}") from exc
        if not isinstance(reply, dict) or not reply.get("ok"):
            error = reply.get("error") if isinstance(reply, dict) else reply
            raise ControlError(f"pykad refused {cmd!r}: {error}")
        result = reply.get("result")
        return result if isinstance(result, dict) else {"value": result}

    def wait_closed(self, timeout_s: float) -> bool:
        """Wait until the daemon closes the connection (it has stopped); False on timeout."""
        assert self._sock is not None, "use ControlClient as a context manager"
        self._sock.settimeout(timeout_s)
        try:
            while self._readline() is not None:
                pass
        except TimeoutError:
            return False
        except OSError:
            return True  # reset by the exiting daemon: closed as well
        return True

    def _readline(self) -> bytes | None:
        assert self._sock is not None
        while b"\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line
