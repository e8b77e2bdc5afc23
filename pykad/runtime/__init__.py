"""asyncio glue: one driver per VRRP instance, the daemon lifecycle, signals, systemd."""
