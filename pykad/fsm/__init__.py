"""One VRRP instance as a pure state machine (RFC 5798 §6.4, RFC 3768 §6.4, keepalived §5).

Theory of operation: :class:`~pykad.fsm.machine.VrrpMachine` takes an event and the current
time (``handle(event, now)``) and returns a list of effects; ``next_deadline()`` says when it
next wants ``TimersDue``. It never reads a clock, sleeps, draws random numbers or does I/O, and
it never sees bytes: adverts arrive decoded and validated. Must never import asyncio, socket,
time, random or subprocess (a test enforces this).
"""
