"""Small real servers for the health-checker tests, plus a way to run asyncio inside a netns.

``python -m pykad.testing.checkservers KIND [options]`` serves one protocol until SIGTERM and
prints ``READY`` on stdout once it listens (start it with ``Node.spawn`` in a lab namespace
and wait for that line). Every request it receives is printed as one JSON line, so a test can
check what the checker sent byte for byte.

Kinds: ``tcp`` (accept and close), ``http`` (``--status``, ``--body``, ``--delay`` before
answering, ``--tls CERT KEY`` for HTTPS), ``smtp`` (aiosmtpd, a dev dependency;
``--banner-delay``), ``dns`` (answers our question with one record, ``--rcode``,
``--no-answer``, ``--wrong-id``, ``--delay``), ``udp`` (``--reply HEX`` answers every datagram
with those bytes; without it stays silent).

:func:`run_in_netns` runs a coroutine on a fresh event loop in a thread that has joined a
network namespace (``setns`` is per thread), so the checkers' sockets and the scripts they
start live in the lab, not in the namespace of the test process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, AnyStr, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def _emit(kind: str, **fields: Any) -> None:
    print(json.dumps({"event": kind, **fields}), flush=True)


# --------------------------------------------------------------------------------------------
# servers


async def _tcp(args: argparse.Namespace) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _emit("connect", peer=writer.get_extra_info("peername")[0])
        writer.close()

    return await asyncio.start_server(handle, args.host, args.port)


async def _http(args: argparse.Namespace) -> asyncio.Server:
    import ssl

    ctx = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        ctx.sni_callback = lambda sock, name, _ctx: _emit("sni", name=name)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        _emit("request", raw=head.decode("latin-1"))
        await asyncio.sleep(args.delay)
        body = args.body.encode()
        writer.write(
            f"HTTP/1.0 {args.status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
        with contextlib.suppress(OSError):
            await writer.drain()
            writer.close()
            await writer.wait_closed()

    return await asyncio.start_server(handle, args.host, args.port, ssl=ctx)


async def _smtp(args: argparse.Namespace) -> Any:
    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
            _emit("helo", name=hostname)
            session.host_name = hostname
            return "250 pleased to meet you"

    class SlowSMTP(SMTP):
        async def push(self, status: AnyStr) -> None:
            if str(status).startswith("220") and args.banner_delay:
                await asyncio.sleep(args.banner_delay)
            await super().push(status)

    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SlowSMTP(Handler(), hostname="mx.test"), args.host, args.port
    )


def dns_answer(query: bytes, args: argparse.Namespace) -> bytes:
    """Answer ``query`` (one question) with one TXT-ish record, or as the options say."""
    qid, _flags = struct.unpack_from("!HH", query)
    end = query.index(b"\0", 12) + 5  # the question: name, type, class
    question = query[12:end]
    if args.wrong_id:
        qid ^= 0xFFFF
    flags = 0x8180 | args.rcode
    count = 0 if args.no_answer else 1
    header = struct.pack("!HHHHHH", qid, flags, 1, count, 0, 0)
    answer = b""
    if count:
        qtype = struct.unpack_from("!H", question, len(question) - 4)[0]
        answer = struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, 4) + b"\xc0\x00\x02\x0a"
    return header + question + answer


async def _udp_like(args: argparse.Namespace, reply: Callable[[bytes], bytes | None]) -> Any:
    loop = asyncio.get_running_loop()

    class Proto(asyncio.DatagramProtocol):
        transport: Any

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
            _emit("datagram", hex=data.hex(), peer=addr[0])
            answer = reply(data)
            if answer is not None:
                loop.call_later(args.delay, self.transport.sendto, answer, addr)

    # "::" without IPV6_V6ONLY (asyncio leaves it off for datagrams) takes IPv4 too
    transport, _ = await loop.create_datagram_endpoint(
        Proto, local_addr=(args.host or "::", args.port)
    )
    return transport


async def _serve(args: argparse.Namespace) -> None:
    if args.kind == "tcp":
        server: Any = await _tcp(args)
    elif args.kind == "http":
        server = await _http(args)
    elif args.kind == "smtp":
        server = await _smtp(args)
    elif args.kind == "dns":
        server = await _udp_like(args, lambda q: dns_answer(q, args))
    else:
        fixed = bytes.fromhex(args.reply) if args.reply is not None else None
        server = await _udp_like(args, lambda _q: fixed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY", flush=True)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="checkservers")
    p.add_argument("kind", choices=("tcp", "http", "smtp", "dns", "udp"))
    p.add_argument("--host", default=None, help="default: every address, IPv4 and IPv6")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--body", default="")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--banner-delay", type=float, default=0.0)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--rcode", type=int, default=0)
    p.add_argument("--no-answer", action="store_true")
    p.add_argument("--wrong-id", action="store_true")
    p.add_argument("--reply")
    asyncio.run(_serve(p.parse_args(argv)))


# --------------------------------------------------------------------------------------------
# test-side helpers


def self_signed_cert(directory: Path, cn: str = "www.example.test") -> tuple[Path, Path]:
    """A throwaway certificate and key made by Debian's ``openssl req``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def _setns(ns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def run_in_netns(ns: str, main: Callable[[], Awaitable[T]], *, timeout: float = 120.0) -> T:
    """Run ``main()`` on a new event loop in a thread that joined network namespace ``ns``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            _setns(ns)

            async def wrapped() -> T:
                return await main()

            box["result"] = asyncio.run(wrapped())
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns {ns}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the coroutine in {ns} did not finish within {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait for a server's ``READY`` line (its stdout must be a pipe)."""
    assert proc.stdout is not None
    result: dict[str, bytes] = {}

    def reader() -> None:
        assert proc.stdout is not None
        result["line"] = proc.stdout.readline()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    if result.get("line", b"").strip() != b"READY":
        raise RuntimeError(f"server did not start: {result.get('line')!r} rc={proc.poll()}")


def server_argv(kind: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pykad.testing.checkservers", kind, *args]


if __name__ == "__main__":
    main()
