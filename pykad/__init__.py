"""pykad: a pure-Python reimplementation of keepalived (VRRP + LVS health checking)."""

__version__ = "0.1.0"
