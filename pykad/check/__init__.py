"""Health checkers of the LVS side: TCP, HTTP/SSL, MISC, SMTP, DNS, UDP, PING, FILE (spec §9.4-9.5).

Theory of operation. :mod:`pykad.check.core` is pure: the retry scheduling of one checker
(:class:`~pykad.check.core.RetrySchedule`: ``retry_it``, ``delay_loop`` versus
``delay_before_retry``, warmup, alpha) and the health of one real server
(:class:`~pykad.check.core.RsHealth`: alive iff all checkers are up, weight = configured +
dynamic deltas). Time is an argument there and it is unit-tested on a fake clock.

The probes (:mod:`pykad.check.probes` and one module per protocol) are asyncio coroutines
that never block the loop; each is bounded by its ``connect_timeout`` (MISC_CHECK by
``misc_timeout``) and returns a :class:`~pykad.check.probes.ProbeResult`. The wire formats
that can be pure are pure functions next to them (HTTP request/response, DNS query/answer,
UDP reply patterns) and tested without sockets.

:class:`~pykad.check.checkerset.CheckerSet` runs every checker of every real server (one
task per checker, sleeping until its deadline) and reports real-server transitions and
weight changes through one callback, ``on_change(RsChange)``. It does not know IPVS: the
load-balancer manager (``pykad.runtime``) consumes the callback.

Layering: ``pykad.check`` sits between ``pykad.runtime`` (which owns the daemon and drives the
checkers) and ``pykad.adapters`` (whose script runner MISC_CHECK uses). It opens its own
sockets: the probes *are* I/O, like the adapters, but they are a protocol family of their own
and would swamp ``adapters/``; it never imports pyroute2, scapy or click.
"""
