"""HTTP_GET and SSL_GET (spec §9.5; keepalived check_http.c, check_ssl.c).

The request is exactly keepalived's::

    GET <path> HTTP/1.<0|1>\\r\\n
    User-Agent: KeepAliveClient\\r\\n
    [Connection: close\\r\\n]             (http_protocol 1.0C and 1.1)
    Host: <vhost> | <ip>:<port>\\r\\n      (IPv6 literal in brackets)
    \\r\\n

Every ``url`` block is fetched on a connection of its own, in order, and all must pass: the
status code is in one of the ``status_code`` ranges (default 200-299), the MD5 of the body
equals ``digest`` when one is given, and ``regex`` matches (or, with ``regex_no_match``, does
not) within ``regex_min_offset``..``regex_max_offset`` of the body. keepalived uses PCRE2;
pykad uses Python's :mod:`re`, which accepts the common subset, with the ``regex_options``
``caseless``, ``multiline``, ``dotall`` and ``extended`` mapped to its flags.

SSL_GET does not verify the server's certificate, like keepalived; the global ``SSL`` block
gives the client certificate/key/CA. ``enable_sni`` sends ``sni_name`` (else the virtual
host) as SNI.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import ssl
from dataclasses import dataclass

from pykad.check.probes import ProbeResult, connect, describe_error
from pykad.config.model_lvs import HttpCheck, HttpProtocol, HttpUrl, IPAddress, SslConfig

MAX_RESPONSE = 16 * 1024 * 1024  # a checker is not a download manager
_READ_CHUNK = 64 * 1024
_REGEX_FLAGS = {
    "caseless": re.IGNORECASE,
    "multiline": re.MULTILINE,
    "dotall": re.DOTALL,
    "extended": re.VERBOSE,
}


def host_header(vhost: str | None, address: IPAddress, port: int) -> str:
    """The Host value: the virtual host as written, else ``ip:port`` ([v6]:port)."""
    if vhost is not None:
        return vhost
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def build_request(path: str, protocol: HttpProtocol, host: str) -> bytes:
    """keepalived's ``REQUEST_TEMPLATE`` (check_http.h), byte for byte."""
    minor = 1 if protocol is HttpProtocol.V1_1 else 0
    close = "" if protocol is HttpProtocol.V1_0 else "Connection: close\r\n"
    return (
        f"GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n"
    ).encode("latin-1")


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class BadResponse(ValueError):
    pass


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers (names lower-cased) of ``HTTP/1.x NNN reason\\r\\n...``."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise BadResponse(f"bad status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


def split_response(raw: bytes) -> Response:
    """A complete response (read to EOF) split into status, headers and body."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise BadResponse("no data received from remote webserver" if not raw else "no header")
    status, headers = parse_head(head)
    return Response(status, headers, body)


def compile_regex(url: HttpUrl) -> re.Pattern[bytes] | None:
    if url.regex is None:
        return None
    flags = 0
    for option in url.regex_options:
        flags |= _REGEX_FLAGS.get(option, 0)
    return re.compile(url.regex.encode(), flags)


def check_response(url: HttpUrl, response: Response, regex: re.Pattern[bytes] | None) -> str:
    """Why ``response`` fails ``url``; empty when it passes (spec §9.5)."""
    if not any(response.status in r for r in url.status_codes):
        return f"HTTP status code error ({response.status})"
    if url.digest is not None:
        digest = hashlib.md5(response.body, usedforsecurity=False).hexdigest()
        if digest != url.digest.lower():
            return f"MD5 digest error (got {digest})"
    if regex is not None:
        end = None if url.regex_max_offset is None else url.regex_max_offset + 1
        found = regex.search(response.body[url.regex_min_offset : end]) is not None
        if found == url.regex_no_match:
            return "Regex match failed"
    return ""


def client_context(config: SslConfig | None) -> ssl.SSLContext:
    """A TLS client context that, like keepalived, does not verify the server."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if config is not None:
        if config.certificate is not None:
            ctx.load_cert_chain(config.certificate, config.key, config.password)
        if config.ca is not None:
            ctx.load_verify_locations(config.ca)
    return ctx


class HttpProbe:
    """One HTTP_GET/SSL_GET checker's probe: fetch every url, all must pass."""

    __slots__ = ("_ctx", "_regexes", "checker")

    def __init__(self, checker: HttpCheck, ssl_config: SslConfig | None = None) -> None:
        self.checker = checker
        self._ctx = client_context(ssl_config) if checker.ssl else None
        self._regexes = [compile_regex(url) for url in checker.urls]

    def _sni(self, url: HttpUrl) -> str:
        c = self.checker
        if not c.enable_sni:
            return ""  # asyncio: an empty server_hostname sends no SNI
        return c.sni_name or url.virtualhost or c.virtualhost or ""

    async def __call__(self) -> ProbeResult:
        for url, regex in zip(self.checker.urls, self._regexes, strict=True):
            why = await self._fetch(url, regex)
            if why:
                return ProbeResult(False, f"{why} url({url.path})")
        return ProbeResult(True)

    async def _fetch(self, url: HttpUrl, regex: re.Pattern[bytes] | None) -> str:
        c = self.checker
        timeout = c.connect_timeout_s
        try:
            sock = await connect(c)
        except TimeoutError:
            return "Timeout connecting"
        except OSError as exc:
            return f"connection error {describe_error(exc)}"
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    sock=sock,
                    ssl=self._ctx,
                    server_hostname=None if self._ctx is None else self._sni(url),
                    limit=_READ_CHUNK,
                )
            host = host_header(url.virtualhost, c.connect_ip, c.connect_port)
            writer.write(build_request(url.path, c.http_protocol, host))
            async with asyncio.timeout(timeout):
                await writer.drain()
            raw = await self._read_all(reader, timeout)
            return check_response(url, split_response(raw), regex)
        except TimeoutError:
            return "Timeout WEB read"
        except BadResponse as exc:
            return str(exc)
        except (OSError, ssl.SSLError, EOFError) as exc:
            return f"read error {describe_error(exc)}"
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(timeout):
                        await writer.wait_closed()
            else:
                sock.close()

    @staticmethod
    async def _read_all(reader: asyncio.StreamReader, step_s: float) -> bytes:
        """Read until EOF, or until Content-Length bytes of body; each read bounded."""
        buf = bytearray()
        expected: int | None = None
        while len(buf) < MAX_RESPONSE:
            async with asyncio.timeout(step_s):
                chunk = await reader.read(_READ_CHUNK)
            if not chunk:
                break
            buf += chunk
            if expected is None and (end := buf.find(b"\r\n\r\n")) >= 0:
                _, headers = parse_head(bytes(buf[:end]))
                length = headers.get("content-length", "")
                expected = end + 4 + int(length) if length.isdigit() else -1
            if expected is not None and expected >= 0 and len(buf) >= expected:
                break
        return bytes(buf)
