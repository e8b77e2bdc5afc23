"""A throwaway network lab in Linux network namespaces, for pykad's netns/interop tests and demo.

Topology (the recipe in ``recipes/netns-keepalived.md``, built without ever touching the root
namespace: each veth pair is created directly inside its two namespaces)::

      <prefix>-r1          <prefix>-r2   ...     <prefix>-c (client)
       eth0 192.0.2.1       eth0 192.0.2.2        eth0 192.0.2.100
         |                    |                     |
        r1 ------------------ r2 ------ br0 ------- c       <prefix>-sw (the bridge)

Every router and the client get ``eth0`` with 192.0.2.<n>/24 and 2001:db8::<n>/64 (``nodad``;
DAD is also switched off in the namespace so the link-local address needed by VRRPv3 over IPv6,
RFC 5798 5.1.2.2, is usable at once), ``lo`` is up. Names carry a unique prefix
``pk-<pid>-<n>`` so that concurrent labs (several pytest workers, several helpers) never
collide and a lab left by a dead process can be recognised and swept.

A crashed router is modelled the way the recipe recommends: its bridge-side veth goes down
(``cut``) at the moment its process is killed, so that no stale VIP keeps answering.

``Lab.close()`` kills every process it started (SIGTERM, then SIGKILL, each by PID) and every
other process still living in one of its namespaces, then deletes the namespaces. It is
idempotent and also runs from ``atexit`` and from SIGTERM/SIGHUP handlers installed while the
lab is open, so an interrupted test or demo leaves nothing behind. Pure subprocess + iproute2:
``ip`` is the most robust tool for this and needs no event loop.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import itertools
import json
import os
import signal
import subprocess
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

IP: Final = "ip"
NET4: Final = ipaddress.IPv4Network("192.0.2.0/24")  # RFC 5737 TEST-NET-1
NET6: Final = ipaddress.IPv6Network("2001:db8::/64")  # RFC 3849 documentation prefix
CLIENT_HOST: Final = 100  # the client's host number: 192.0.2.100, 2001:db8::64
IFNAME: Final = "eth0"  # the interface name inside every router / client namespace
BRIDGE: Final = "br0"
NS_PREFIX: Final = "pk-"

_CLEANUP_SIGNALS: Final = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_counter = itertools.count(1)
_open_labs: set[Lab] = set()
_registry_lock = threading.Lock()

Handler = Callable[[int, types.FrameType | None], Any] | int | None


def is_root() -> bool:
    return os.geteuid() == 0


def unique_prefix() -> str:
    """``pk-<pid>-<n>``: unique per process and call, short enough for namespace names."""
    return f"{NS_PREFIX}{os.getpid()}-{next(_counter)}"


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 20.0) -> str:
    """Run a command to completion and return its stdout; raise with stderr on failure."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


class LabError(RuntimeError):
    """A lab command failed (the message carries the command and its stderr)."""


def list_namespaces() -> list[str]:
    out = run([IP, "-j", "netns", "list"], check=False).strip()
    if not out:
        return []
    return [str(entry["name"]) for entry in json.loads(out)]


def ns_pids(ns: str) -> list[int]:
    out = run([IP, "netns", "pids", ns], check=False)
    return [int(tok) for tok in out.split() if tok.isdigit()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans() -> list[str]:
    """Delete namespaces left by labs whose creating process is dead (``pk-<pid>-...``).

    Only names with our prefix and a dead owner PID are touched, so labs of concurrently
    running processes are safe. Returns the deleted namespace names."""
    deleted: list[str] = []
    for ns in list_namespaces():
        if not ns.startswith(NS_PREFIX):
            continue
        owner = ns[len(NS_PREFIX) :].split("-", 1)[0]
        if not owner.isdigit() or _pid_alive(int(owner)):
            continue
        _kill_pids(ns_pids(ns), grace_s=1.0)
        run([IP, "netns", "del", ns], check=False)
        deleted.append(ns)
    return deleted


def _kill_pids(pids: Sequence[int], *, grace_s: float) -> None:
    """SIGTERM each PID, wait up to ``grace_s`` for them to go, then SIGKILL the rest."""
    live = [p for p in pids if _signal(p, signal.SIGTERM)]
    deadline = time.monotonic() + grace_s
    while live and time.monotonic() < deadline:
        live = [p for p in live if _pid_alive(p) and not _reaped(p)]
        if live:
            # a bounded poll: a foreign process has no log line or pipe to wait on
            threading.Event().wait(0.02)
    for p in live:
        _signal(p, signal.SIGKILL)
        _reaped(p)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie waiting for its reaper)."""
    return not _pid_alive(pid) or _is_zombie(pid)


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _reaped(pid: int) -> bool:
    """Reap ``pid`` if it is our zombie child; True when it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _pid_alive(pid) or _is_zombie(pid)
    return done == pid


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


@dataclass(eq=False)
class Node:
    """One namespace with ``eth0`` on the bridge: a router or the client."""

    lab: Lab
    name: str  # short name: r1, r2, ..., c
    ns: str  # full namespace name
    host: int  # host number in 192.0.2.0/24 and 2001:db8::/64
    ifname: str = IFNAME

    @property
    def ip4(self) -> ipaddress.IPv4Address:
        return NET4[self.host]

    @property
    def ip6(self) -> ipaddress.IPv6Address:
        return NET6[self.host]

    @property
    def port(self) -> str:
        """The bridge-side veth of this node (in the bridge namespace)."""
        return self.name

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 20.0) -> str:
        return self.lab.run(self.ns, argv, check=check, timeout=timeout)

    def spawn(self, argv: Sequence[str], **popen_kw: Any) -> subprocess.Popen[bytes]:
        return self.lab.spawn(self.ns, argv, **popen_kw)

    def mac(self) -> str:
        link = json.loads(self.run([IP, "-j", "link", "show", "dev", self.ifname]))
        return str(link[0]["address"])

    def link_local(self) -> ipaddress.IPv6Address:
        for a in self.addresses():
            if isinstance(a, ipaddress.IPv6Interface) and a.ip.is_link_local:
                return a.ip
        raise LabError(f"{self.ns}: no IPv6 link-local address on {self.ifname}")

    def addresses(
        self, dev: str | None = None
    ) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """Every address on ``dev`` (default eth0), from ``ip -j addr``."""
        out = self.run([IP, "-j", "addr", "show", "dev", dev or self.ifname])
        found: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
        for link in json.loads(out):
            for info in link.get("addr_info", []):
                found.append(ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}"))
        return found

    def has_address(self, addr: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        want = ipaddress.ip_address(addr)
        return any(a.ip == want for a in self.addresses())

    def wait_address(
        self,
        addr: str | ipaddress.IPv4Address | ipaddress.IPv6Address,
        *,
        present: bool = True,
        timeout: float = 5.0,
    ) -> None:
        """Wait until ``addr`` is (or is no longer) on eth0. A bounded poll: an address
        change has no log line common to keepalived and pykad to wait for instead."""
        deadline = time.monotonic() + timeout
        while self.has_address(addr) != present:
            if time.monotonic() >= deadline:
                state = "never appeared" if present else "is still there"
                raise AssertionError(f"{self.ns}: {addr} {state} after {timeout} s")
            threading.Event().wait(0.02)

    def neighbours(self) -> dict[str, str]:
        """The neighbour table on eth0 as {ip: lladdr} (entries without a MAC are left out)."""
        out = self.run([IP, "-j", "neigh", "show", "dev", self.ifname])
        table: dict[str, str] = {}
        for entry in json.loads(out) if out.strip() else []:
            if "lladdr" in entry:
                table[str(entry["dst"])] = str(entry["lladdr"])
        return table


class Lab:
    """N router namespaces plus a client on one bridge. Use as a context manager.

    ``Lab(routers=2)`` builds nothing until ``open()`` / ``__enter__``.
    """

    def __init__(
        self,
        routers: int = 2,
        *,
        client: bool = True,
        prefix: str | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.prefix = prefix or unique_prefix()
        self.routers: list[Node] = []
        self.client_node: Node | None = None
        self._n_routers = routers
        self._with_client = client
        self._handle_signals = handle_signals
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._closed = False
        self._saved_handlers: dict[int, Handler] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def bridge_ns(self) -> str:
        return f"{self.prefix}-sw"

    @property
    def client(self) -> Node:
        if self.client_node is None:
            raise LabError("this lab has no client namespace")
        return self.client_node

    @property
    def nodes(self) -> list[Node]:
        return [*self.routers, *([self.client_node] if self.client_node else [])]

    def open(self) -> Self:
        if not is_root():
            raise LabError("a network lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")
        with _registry_lock:
            _open_labs.add(self)
        if self._handle_signals:
            self._install_signal_handlers()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        sw = self._add_ns(self.bridge_ns)
        self.run(sw, [IP, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0"])
        # No snooping: VRRP's groups (224.0.0.18, ff02::12) must reach every port whether or
        # not an MLD report was seen; a real L2 segment floods them too.
        self.run(sw, [IP, "link", "set", BRIDGE, "type", "bridge", "mcast_snooping", "0"])
        self.run(sw, [IP, "link", "set", BRIDGE, "up"])
        for i in range(1, self._n_routers + 1):
            self.routers.append(self._add_node(f"r{i}", i))
        if self._with_client:
            self.client_node = self._add_node("c", CLIENT_HOST)

    def _add_ns(self, ns: str) -> str:
        run([IP, "netns", "add", ns])
        self._namespaces.append(ns)
        self.run(ns, [IP, "link", "set", "lo", "up"])
        return ns

    def _add_node(self, name: str, host: int) -> Node:
        node = Node(self, name, self._add_ns(f"{self.prefix}-{name}"), host)
        # DAD off before eth0 exists, so the link-local address (VRRPv3/IPv6 source) and the
        # global one are usable at once instead of "tentative" for a second.
        for conf in ("all", "default"):
            self.run(node.ns, ["sysctl", "-q", "-w", f"net.ipv6.conf.{conf}.accept_dad=0"])
        # Created straight into both namespaces: nothing ever appears in the root namespace.
        self.run(
            self.bridge_ns,
            [
                IP,
                "link",
                "add",
                node.port,
                "type",
                "veth",
                *("peer", "name", IFNAME),
                "netns",
                node.ns,
            ],
        )
        self.run(self.bridge_ns, [IP, "link", "set", node.port, "master", BRIDGE, "up"])
        node.run([IP, "addr", "add", f"{node.ip4}/{NET4.prefixlen}", "dev", IFNAME])
        node.run([IP, "addr", "add", f"{node.ip6}/{NET6.prefixlen}", "dev", IFNAME, "nodad"])
        node.run([IP, "link", "set", IFNAME, "up"])
        return node

    def close(self) -> None:
        """Kill every process of the lab and delete its namespaces. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # A second Ctrl-C must not cut the cleanup short: hold SIGINT/SIGTERM/SIGHUP until the
        # namespaces are gone (they are delivered, and raise, right after).
        in_main = threading.current_thread() is threading.main_thread()
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _CLEANUP_SIGNALS) if in_main else None
        try:
            live = [p for p in self._procs if p.poll() is None]
            for p in live:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 3.0
            for p in live:
                try:
                    p.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5.0)
            # Anything else still inside our namespaces (a notify script, a grandchild).
            for ns in self._namespaces:
                _kill_pids(ns_pids(ns), grace_s=1.0)
            # The bridge namespace last: deleting it takes the veth pairs with it.
            for ns in reversed(self._namespaces):
                run([IP, "netns", "del", ns], check=False)
        finally:
            self._restore_signal_handlers()
            with _registry_lock:
                _open_labs.discard(self)
            if old_mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    # -- signals: Ctrl-C is KeyboardInterrupt already; make SIGTERM/SIGHUP unwind too --------

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            current = signal.getsignal(sig)
            if current in (signal.SIG_DFL, None):
                self._saved_handlers[sig] = current
                signal.signal(sig, _raise_system_exit)

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in self._saved_handlers.items():
            if signal.getsignal(sig) is _raise_system_exit:
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._saved_handlers.clear()

    # -- commands and processes --------------------------------------------------------------

    def run(
        self, ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 20.0
    ) -> str:
        return run([IP, "netns", "exec", ns, *argv], check=check, timeout=timeout)

    def spawn(
        self,
        ns: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        **popen_kw: Any,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``ns`` (``ip netns exec`` execs it, so the PID is the command's).

        The process gets its own session: a Ctrl-C in the terminal reaches only us, and we
        stop our children in order (``close``) instead of racing them."""
        if self._closed:
            raise LabError("the lab is closed")
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            [IP, "netns", "exec", ns, *argv],
            env=dict(env) if env is not None else None,
            start_new_session=True,
            **popen_kw,
        )
        self._procs.append(proc)
        return proc

    def stop(
        self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0
    ) -> int:
        """Send ``sig`` to one process by PID and wait for it; SIGKILL after ``timeout``."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
        return int(proc.returncode)

    def cut(self, node: Node) -> None:
        """Take the node's bridge port down: its frames no longer reach anyone (crash model)."""
        self.run(self.bridge_ns, [IP, "link", "set", node.port, "down"])

    def restore(self, node: Node, *, timeout: float = 5.0) -> None:
        """Bring the node's bridge port back, and return once it forwards frames again.

        ``ip link set up`` returns before the veth's carrier is up and the bridge port is in
        the forwarding state; a probe sent in between is lost (seen in a loaded CI run)."""
        self.run(self.bridge_ns, [IP, "link", "set", node.port, "up"])
        deadline = time.monotonic() + timeout
        while True:
            (link,) = json.loads(
                self.run(self.bridge_ns, [IP, "-j", "-d", "link", "show", "dev", node.port])
            )
            port_state = link.get("linkinfo", {}).get("info_slave_data", {}).get("state")
            if link.get("operstate") == "UP" and port_state == "forwarding":
                return
            if time.monotonic() >= deadline:
                raise LabError(
                    f"{self.bridge_ns}: port {node.port} not forwarding after {timeout} s"
                    f" (operstate {link.get('operstate')}, bridge state {port_state})"
                )
            threading.Event().wait(0.02)

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """Every process started through the lab (running or not)."""
        return list(self._procs)

    @property
    def namespaces(self) -> list[str]:
        return list(self._namespaces)


def _raise_system_exit(signum: int, frame: types.FrameType | None) -> None:
    raise SystemExit(128 + signum)


@atexit.register
def _close_all() -> None:
    with _registry_lock:
        labs = list(_open_labs)
    for lab in labs:
        lab.close()
