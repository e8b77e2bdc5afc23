"""VRRP wire format: bytes <-> dataclasses. Pure; no sockets, no clock.

RFC 3768 (VRRPv2), RFC 5798 / RFC 9568 (VRRPv3), keepalived's checksum and validation rules
(spec §5.7, §5.9). Must never import asyncio, socket, time, random or subprocess.
"""
