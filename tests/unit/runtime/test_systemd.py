"""sd_notify against a real AF_UNIX datagram socket (filesystem and abstract namespace)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykad.runtime.systemd import sd_notify


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()


def test_ready_with_mainpid_is_one_datagram(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    assert sd_notify("READY=1", f"MAINPID={os.getpid()}", env={"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == f"READY=1\nMAINPID={os.getpid()}".encode()


def test_abstract_namespace_socket() -> None:
    name = f"pykad-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sd_notify("STOPPING=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1"


@pytest.mark.parametrize("value", ["", "relative/path"])
def test_no_socket_means_no_notification(value: str) -> None:
    assert not sd_notify("READY=1", env={"NOTIFY_SOCKET": value})
    assert not sd_notify("READY=1", env={})


def test_dead_socket_is_not_an_error(tmp_path: Path) -> None:
    assert not sd_notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "nobody")})
