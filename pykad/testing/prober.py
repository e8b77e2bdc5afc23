"""The client's view of a VIP: a UDP prober in the client namespace, responders on the routers.

Every router runs ``python -m pykad.testing.prober responder --name r1`` (a UDP socket on
``[::]:PORT``, dual-stack, so it answers on every address it has, the VIP included, with its
router name). The client runs ``python -m pykad.testing.prober probe --target VIP`` which sends
a numbered probe every ``interval`` seconds (5 ms by default) and prints one line per probe::

    <seq> <t_send> <t_recv> <responder>      answered
    <seq> <t_send> - -                       no answer within --timeout

Times are ``time.monotonic()``: CLOCK_MONOTONIC is shared by every process on the host
(network namespaces do not change it), so the test can compare them with its own events
("the master was killed at t"). :class:`Prober` runs the probe process through the lab and
turns its lines into :class:`Sample` s, with the two questions failover tests ask: how long
was the longest time without an answer (``outage``), and who answered after ``t``
(``answers_after``) -- after a failover it must be exactly one router.
"""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Self

from pykad.testing.netns import Lab, LabError, Node

PORT: Final = 7777
MAX_DGRAM: Final = 512


# -- the processes (python -m pykad.testing.prober ...) -------------------------------------


def respond(name: str, port: int) -> None:
    """Answer every datagram with ``<name> <payload>`` until killed."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too, as mapped addresses
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::", port))
    print("ready", flush=True)
    prefix = name.encode() + b" "
    while True:
        data, peer = sock.recvfrom(MAX_DGRAM)
        sock.sendto(prefix + data, peer)


def probe(target: str, port: int, interval: float, timeout: float) -> None:
    """Send ``<seq>`` to target:port every ``interval`` s; print one line per probe."""
    family = socket.AF_INET6 if ipaddress.ip_address(target).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    out = sys.stdout
    pending: dict[int, float] = {}
    seq = 0
    next_send = time.monotonic()
    print("ready", flush=True)
    while True:
        now = time.monotonic()
        if now >= next_send:
            pending[seq] = now
            try:
                sock.sendto(str(seq).encode(), (target, port))
            except OSError:
                pass  # EHOSTUNREACH while neighbour resolution fails: counts as no answer
            seq += 1
            # Keep the cadence fixed even if a send ran late (no drift, no catch-up bursts).
            next_send = max(next_send + interval, now)
        ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
        if ready:
            try:
                data, _peer = sock.recvfrom(MAX_DGRAM)
            except OSError:
                data = b""  # an ICMP error reported on the socket: nothing to record
            parts = data.decode("ascii", "replace").split()
            if len(parts) == 2 and parts[1].isdigit():
                got = int(parts[1])
                sent = pending.pop(got, None)
                if sent is not None:
                    out.write(f"{got} {sent:.6f} {time.monotonic():.6f} {parts[0]}\n")
        expire = time.monotonic() - timeout
        for old in [s for s, t in pending.items() if t < expire]:
            out.write(f"{old} {pending.pop(old):.6f} - -\n")
        out.flush()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pykad.testing.prober")
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("responder")
    r.add_argument("--name", required=True)
    r.add_argument("--port", type=int, default=PORT)
    p = sub.add_parser("probe")
    p.add_argument("--target", required=True)
    p.add_argument("--port", type=int, default=PORT)
    p.add_argument("--interval", type=float, default=0.005)
    p.add_argument("--timeout", type=float, default=0.5)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "responder":
            respond(args.name, args.port)
        else:
            probe(args.target, args.port, args.interval, args.timeout)
    except (KeyboardInterrupt, BrokenPipeError):
        pass


# -- the test side ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    seq: int
    t: float  # when the probe was sent (monotonic seconds)
    responder: str | None  # router name, None: no answer within the timeout
    rtt: float | None = None


def _spawn_ready(node: Node, argv: list[str], timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """Start a prober process and wait for its ``ready`` line (its socket is set up)."""
    proc = node.spawn([sys.executable, "-m", "pykad.testing.prober", *argv], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready or proc.stdout.readline().strip() != b"ready":
        node.lab.stop(proc)
        proc.stdout.close()
        raise LabError(f"{node.ns}: prober {argv[0]} did not start")
    return proc


def start_responders(lab: Lab, port: int = PORT) -> list[subprocess.Popen[bytes]]:
    """A responder on every router of the lab (killed by the lab when it closes)."""
    procs = [
        _spawn_ready(r, ["responder", "--name", r.name, "--port", str(port)]) for r in lab.routers
    ]
    for p in procs:
        assert p.stdout is not None
        p.stdout.close()  # they print nothing more
    return procs


@dataclass(eq=False)
class Prober:
    """Probe ``target`` from ``node`` (the client) while the context is open."""

    node: Node
    target: str
    port: int = PORT
    interval: float = 0.005
    timeout: float = 0.5
    _samples: list[Sample] = field(default_factory=list, init=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _eof: bool = field(default=False, init=False)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        self._proc = _spawn_ready(
            self.node,
            [
                *("probe", "--target", self.target, "--port", str(self.port)),
                *("--interval", str(self.interval), "--timeout", str(self.timeout)),
            ],
        )
        threading.Thread(target=self._read, name="prober", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self.node.lab.stop(self._proc)
            with self._cond:
                self._cond.wait_for(lambda: self._eof, 5.0)

    def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        with self._proc.stdout as pipe:
            for raw in pipe:
                seq, sent, recv, who = raw.decode("ascii", "replace").split()
                t = float(sent)
                sample = (
                    Sample(int(seq), t, None)
                    if who == "-"
                    else Sample(int(seq), t, who, float(recv) - t)
                )
                with self._cond:
                    self._samples.append(sample)
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    # -- questions ---------------------------------------------------------------------------

    def samples(self) -> list[Sample]:
        """Every finished probe (answered or timed out), in sending order."""
        with self._cond:
            return sorted(self._samples, key=lambda s: s.seq)

    def answers_after(self, t: float, until: float | None = None) -> set[str]:
        """The routers that answered probes sent in [t, until]."""
        end = float("inf") if until is None else until
        return {s.responder for s in self.samples() if s.responder and t <= s.t <= end}

    def outage(self, since: float, until: float | None = None) -> float:
        """Longest time between two consecutive answered probes, over the gaps that end at or
        after ``since`` (and start before ``until``): the client's outage around an event."""
        end = float("inf") if until is None else until
        answered = [s.t for s in self.samples() if s.responder is not None]
        gaps = [b - a for a, b in itertools.pairwise(answered) if b >= since and a <= end]
        return max(gaps, default=0.0)

    def wait_for_answer(
        self, responder: str | None = None, *, after: float | None = None, timeout: float = 10.0
    ) -> Sample:
        """The first probe sent at or after ``after`` (default: now) answered by ``responder``
        (any router if None). Raises AssertionError with the recent history on timeout."""
        start = time.monotonic() if after is None else after

        def hit() -> Sample | None:
            hits = [
                s
                for s in self._samples
                if s.t >= start and s.responder and responder in (None, s.responder)
            ]
            return min(hits, key=lambda s: s.t, default=None)

        with self._cond:
            found = self._cond.wait_for(lambda: hit() or self._eof, timeout)
            sample = hit()
        if not found or sample is None:
            recent = [(s.seq, s.responder) for s in self.samples()[-10:]]
            raise AssertionError(f"no answer from {responder or 'any router'}; last: {recent}")
        return sample

    def wait_until(self, t: float, timeout: float = 10.0) -> None:
        """Wait until every probe sent before ``t`` is finished (answered or timed out).

        The prober expires unanswered probes in sending order on each turn of its loop, so
        once a probe sent at ``t + self.timeout`` is reported, all those before ``t`` are."""
        done = t + self.timeout
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._eof or any(s.t >= done for s in self._samples),
                timeout + self.timeout,
            ):
                raise AssertionError(f"the prober recorded nothing sent after {t}")


if __name__ == "__main__":
    main()
