"""The control socket: protocol, permissions, stale sockets (pykad.runtime.control).

A real Unix socket in ``tmp_path``, a real asyncio server and the blocking client used by the
command line (run in a thread so the server's loop keeps turning). No root needed: the uid
check is exercised by allowing only a uid that is not ours."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pykad.runtime.control import (
    CONTROL_SOCKET_ENV,
    DEFAULT_CONTROL_SOCKET,
    CommandError,
    ControlClient,
    ControlError,
    ControlServer,
    DaemonNotRunning,
    control_path,
    peer_credentials,
)

pytestmark = pytest.mark.timeout(30)


class Recorder:
    """A handler that answers like the daemon would and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, cmd: str, request: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((cmd, dict(request)))
        if cmd == "reload":
            raise CommandError("no configuration file to reload")
        if cmd == "metrics":
            raise RuntimeError("a bug")
        return {"cmd": cmd}


def raw(path: Path, *lines: bytes) -> list[dict[str, Any]]:
    """Send raw request lines on one connection and read as many replies."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(b"".join(lines))
        buf = b""
        while buf.count(b"\n") < len(lines):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return [json.loads(line) for line in buf.splitlines()]


@pytest.mark.asyncio
async def test_requests_and_replies(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    handler = Recorder()
    server = ControlServer(str(path), handler)
    await server.start()
    try:
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert os.listdir(tmp_path) == ["control.sock"]  # bound as a temporary name, renamed

        def client() -> tuple[dict[str, Any], dict[str, Any], str]:
            with ControlClient(str(path), timeout_s=10) as c:
                first, second = c.call("status"), c.call("stop")  # one connection, two calls
                with pytest.raises(ControlError) as refused:
                    c.call("reload")
                return first, second, str(refused.value)

        first, second, refused = await asyncio.to_thread(client)
        assert (first, second) == ({"cmd": "status"}, {"cmd": "stop"})
        assert refused == "pykad refused 'reload': no configuration file to reload"
        assert [c for c, _ in handler.calls] == ["status", "stop", "reload"]
        assert handler.calls[0][1] == {"version": 1, "cmd": "status"}

        replies = await asyncio.to_thread(
            raw,
            path,
            b'{"cmd": "status"}\n',  # no version: read as version 1
            b'{"version": 2, "cmd": "status"}\n',
            b'{"version": 1, "cmd": "frobnicate"}\n',
            b"not json\n",
            b"[1, 2]\n",
            b'{"cmd": "metrics"}\n',  # the handler raises: answered, the server survives
        )
        assert replies[0] == {"version": 1, "ok": True, "result": {"cmd": "status"}}
        errors = [r["error"] for r in replies[1:]]
        assert all(r["ok"] is False and r["version"] == 1 for r in replies[1:])
        assert errors[0] == "unsupported protocol version 2 (this daemon speaks 1)"
        assert errors[1] == "unknown command 'frobnicate' (known: status, reload, stop, metrics)"
        assert errors[2].startswith("not JSON: ")
        assert errors[3] == "a request is a JSON object"
        assert errors[4] == "internal error: RuntimeError('a bug')"
    finally:
        await server.close()
    assert not path.exists()


@pytest.mark.asyncio
async def test_a_peer_that_is_not_allowed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    handler = Recorder()
    not_us = os.geteuid() + 1
    server = ControlServer(str(path), handler, allowed_uids=frozenset({not_us}))
    await server.start()
    try:

        def client() -> str:
            # the refusal may arrive before the request is even sent (EPIPE on send):
            # the client still reads and reports it
            with pytest.raises(ControlError) as refused, ControlClient(str(path)) as c:
                c.call("stop")
            return str(refused.value)

        refused = await asyncio.to_thread(client)
        assert refused == f"pykad refused 'stop': permission denied: uid {os.geteuid()} is not root"
        assert handler.calls == []  # the command never ran
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_stale_socket_is_replaced_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    # a socket file nobody listens on: what a killed daemon leaves behind
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    first = ControlServer(str(path), Recorder())
    await first.start()
    try:
        second = ControlServer(str(path), Recorder())
        with pytest.raises(ControlError, match="in use by a running daemon"):
            await second.start()
        assert await asyncio.to_thread(raw, path, b'{"cmd": "status"}\n')  # still the first
    finally:
        await first.close()
    assert not path.exists()


@pytest.mark.asyncio
async def test_close_leaves_a_socket_that_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    server = ControlServer(str(path), Recorder())
    await server.start()
    path.unlink()  # someone else's daemon took the name meanwhile
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        other.bind(str(path))
        await server.close()
        assert path.exists()
    finally:
        other.close()


@pytest.mark.asyncio
async def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    path.write_text("precious")
    with pytest.raises(ControlError, match="exists and is not a socket"):
        await ControlServer(str(path), Recorder()).start()
    assert path.read_text() == "precious"


@pytest.mark.asyncio
async def test_close_ends_open_connections(tmp_path: Path) -> None:
    """`pykad stop` waits for end-of-file: the daemon closes every connection on exit."""
    path = tmp_path / "control.sock"
    asked = asyncio.Event()

    async def handler(cmd: str, request: Mapping[str, Any]) -> dict[str, Any]:
        asked.set()
        return {"stopping": True}

    server = ControlServer(str(path), handler)
    await server.start()

    def stop_and_wait() -> bool:
        with ControlClient(str(path), timeout_s=10) as c:
            c.call("stop")
            return c.wait_closed(10)

    waiter = asyncio.create_task(asyncio.to_thread(stop_and_wait))
    await asked.wait()  # the reply is on its way; the client then waits for the close
    await server.close()
    assert await waiter


def test_no_daemon_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nothing.sock"
    with pytest.raises(DaemonNotRunning) as exc, ControlClient(str(path)):
        pass
    assert str(exc.value) == (
        f"no pykad daemon is running (control socket {path}: No such file or directory)"
    )
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    with pytest.raises(DaemonNotRunning, match="Connection refused"), ControlClient(str(path)):
        pass


def test_control_path_option_environment_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONTROL_SOCKET_ENV, raising=False)
    assert control_path(None) == DEFAULT_CONTROL_SOCKET == "/run/pykad/control.sock"
    assert control_path("/x.sock") == "/x.sock"
    monkeypatch.setenv(CONTROL_SOCKET_ENV, "/env.sock")
    assert control_path(None) == "/env.sock"
    assert control_path("") is None  # switched off
    monkeypatch.setenv(CONTROL_SOCKET_ENV, "")
    assert control_path(None) is None


def test_peer_credentials_are_ours_on_a_socketpair() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        assert peer_credentials(a) == (os.getpid(), os.geteuid(), os.getegid())
