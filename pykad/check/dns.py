"""DNS_CHECK (spec §9.5; keepalived check_dns.c, RFC 1035 §4.1).

One UDP query (``type`` default SOA, ``name`` default the root ``.``, recursion desired) on a
connected socket; success is a reply with the same ID, the QR bit, RCODE 0, our question
echoed, and at least one answer. Replies with another ID are ignored (a late answer to an
earlier query) until ``connect_timeout``; an ICMP port unreachable arrives as ECONNREFUSED on
the connected socket and fails the check at once.

RFC 1035 §4.1.1 header::

                                    1  1  1  1  1  1
      0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
    |                      ID                       |
    |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
    |                    QDCOUNT                    |
    |                    ANCOUNT                    |
    |                    NSCOUNT                    |
    |                    ARCOUNT                    |
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from typing import Final

from pykad.check.probes import ProbeResult, connect, describe_error
from pykad.config.model_lvs import DnsCheck

TYPES: Final = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "RRSIG": 46,
    "DNSKEY": 48,
}
CLASS_IN: Final = 1
FLAG_QR: Final = 0x8000
FLAG_RD: Final = 0x0100
_HEADER = struct.Struct("!HHHHHH")
MAX_REPLY: Final = 4096


def encode_name(name: str) -> bytes:
    """RFC 1035 §3.1 labels; ``.`` (or empty) is the root. Raises ValueError on bad labels."""
    out = bytearray()
    for label in name.rstrip(".").split(".") if name.strip(".") else ():
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label {label!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out) + b"\0"


def build_query(qid: int, name: str, qtype: str) -> bytes:
    question = encode_name(name) + struct.pack("!HH", TYPES[qtype], CLASS_IN)
    return _HEADER.pack(qid, FLAG_RD, 1, 0, 0, 0) + question


def check_reply(query: bytes, reply: bytes) -> str | None:
    """None when ``reply`` answers ``query`` positively; else why not.

    Returns ``"id"`` for a reply to another query (the caller keeps waiting).
    """
    if len(reply) < _HEADER.size:
        return "reply too short"
    qid, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(reply)
    if qid != _HEADER.unpack_from(query)[0]:
        return "id"
    if not flags & FLAG_QR:
        return "not a response"
    if flags & 0xF:
        return f"read error occurred. (rcode = {flags & 0xF})"
    question = query[_HEADER.size :]
    if qdcount != 1 or reply[_HEADER.size : _HEADER.size + len(question)].lower() != (
        question.lower()
    ):
        return "question does not match"
    if ancount == 0:
        return "no answer"
    return None


async def dns_probe(checker: DnsCheck) -> ProbeResult:
    loop = asyncio.get_running_loop()
    qid = secrets.randbelow(0x10000)
    try:
        query = build_query(qid, checker.name, checker.type)
    except ValueError as exc:
        return ProbeResult(False, str(exc))
    try:
        sock = await connect(checker, socket.SOCK_DGRAM)
    except (OSError, TimeoutError) as exc:
        return ProbeResult(False, f"connection error. ({describe_error(exc)})")
    try:
        async with asyncio.timeout(checker.connect_timeout_s):
            await loop.sock_sendall(sock, query)
            while True:
                reply = await loop.sock_recv(sock, MAX_REPLY)
                why = check_reply(query, reply)
                if why != "id":
                    break
    except TimeoutError:
        return ProbeResult(False, "read timeout from socket")
    except OSError as exc:
        return ProbeResult(False, f"failed to read socket; {describe_error(exc)}")
    finally:
        sock.close()
    return ProbeResult(why is None, why or "")
