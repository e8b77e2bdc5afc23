"""Helpers shipped with pykad for its own tests and for operators' tests: FakeLan, netns labs,
a keepalived peer fixture."""
