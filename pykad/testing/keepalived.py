"""Run a VRRP daemon (keepalived 2.2.7 or pykad) as a peer in a lab namespace.

Modelled on pyroute2's ``DnsmasqFixture``: a typed config renders a keepalived.conf (the same
text drives keepalived and pykad, which is the point of interop tests), the daemon runs in the
foreground with its log on a pipe, and tests synchronise on log lines
(``wait_for_log("(VI_1) Entering MASTER STATE")``) instead of sleeping. Processes are started
through :class:`pykad.testing.netns.Lab`, so they are recorded there and killed by PID when
the lab closes even if a test forgets to stop them.

keepalived forks a VRRP child even with ``--dont-fork`` (spec §7.1); ``kill()`` therefore
SIGKILLs the child named in the ``-r`` pid file as well as the parent, which is what a crash
looks like. A graceful ``stop()`` sends SIGTERM to the parent only; it propagates (spec §7.2).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Self

from pykad.testing.netns import IFNAME, Node

KEEPALIVED: Final = shutil.which("keepalived", path="/usr/sbin:/usr/bin:/sbin:/bin")


def pykad_argv0() -> list[str]:
    """The pykad entry point of the running interpreter's environment (``.venv/bin/pykad``)."""
    script = Path(sys.executable).with_name("pykad")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pykad"]


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """One ``vrrp_instance``; only the keywords the tests need, each rendered as keepalived
    spells it (spec §3)."""

    name: str = "VI_1"
    vrid: int = 51
    priority: int = 100
    state: str = "BACKUP"
    interface: str = IFNAME
    vips: tuple[str, ...] = ("192.0.2.254/24",)
    version: int = 3
    advert_int: float = 1.0  # seconds; v3 allows 0.01 steps (spec appendix B)
    auth_pass: str | None = None  # VRRPv2 simple password (spec §3.3)
    unicast_src: str | None = None
    unicast_peers: tuple[str, ...] = ()
    nopreempt: bool = False
    preempt_delay: float | None = None
    garp_master_delay: int | None = None
    extra: tuple[str, ...] = ()  # raw lines appended inside the block

    def render(self) -> str:
        lines = [
            f"vrrp_instance {self.name} {{",
            f"    state {self.state}",
            f"    interface {self.interface}",
            f"    virtual_router_id {self.vrid}",
            f"    priority {self.priority}",
            f"    version {self.version}",
            f"    advert_int {_num(self.advert_int)}",
        ]
        if self.nopreempt:
            lines.append("    nopreempt")
        if self.preempt_delay is not None:
            lines.append(f"    preempt_delay {_num(self.preempt_delay)}")
        if self.garp_master_delay is not None:
            lines.append(f"    garp_master_delay {self.garp_master_delay}")
        if self.auth_pass is not None:
            lines += [
                "    authentication {",
                "        auth_type PASS",
                f"        auth_pass {self.auth_pass}",
                "    }",
            ]
        if self.unicast_src is not None:
            lines.append(f"    unicast_src_ip {self.unicast_src}")
        if self.unicast_peers:
            lines += ["    unicast_peer {", *(f"        {p}" for p in self.unicast_peers), "    }"]
        lines += ["    virtual_ipaddress {", *(f"        {v}" for v in self.vips), "    }"]
        lines += [f"    {x}" for x in self.extra]
        lines.append("}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    """A whole keepalived.conf: ``global_defs`` plus instances."""

    router_id: str
    instances: tuple[Instance, ...] = (Instance(),)
    global_extra: tuple[str, ...] = ()
    # raw top-level blocks (vrrp_script, track_file, vrrp_track_process ...), as written
    blocks: tuple[str, ...] = ()

    def render(self) -> str:
        head = [
            "! rendered by pykad.testing.keepalived",
            "global_defs {",
            f"    router_id {self.router_id}",
            *(f"    {x}" for x in self.global_extra),
            "}",
            "",
            *self.blocks,
        ]
        return "\n".join(head) + "\n".join(i.render() for i in self.instances)

    def with_instance(self, index: int = 0, **changes: object) -> DaemonConfig:
        """A copy with ``instances[index]`` changed (``dataclasses.replace`` arguments)."""
        insts = list(self.instances)
        insts[index] = replace(insts[index], **changes)  # type: ignore[arg-type]
        return replace(self, instances=tuple(insts))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def pair_configs(
    r1: Node, r2: Node, template: Instance = Instance(), *, unicast: bool = False
) -> tuple[DaemonConfig, DaemonConfig]:
    """Two routers from one instance template: r1 at priority 150 (the intended master), r2 at
    100. ``unicast`` adds ``unicast_src_ip``/``unicast_peer`` in the VIPs' family."""
    one = replace(template, priority=150)
    two = replace(template, priority=100)
    if unicast:
        v6 = any(":" in v for v in one.vips)
        a1, a2 = (str(r1.ip6), str(r2.ip6)) if v6 else (str(r1.ip4), str(r2.ip4))
        one = replace(one, unicast_src=a1, unicast_peers=(a2,))
        two = replace(two, unicast_src=a2, unicast_peers=(a1,))
    return (
        DaemonConfig(router_id=r1.name, instances=(one,)),
        DaemonConfig(router_id=r2.name, instances=(two,)),
    )


# -- the running daemon ----------------------------------------------------------------------


class LogTimeout(AssertionError):
    """The awaited log line did not come; the message carries the log tail."""


@dataclass(eq=False)
class DaemonFixture:
    """A VRRP daemon in ``node``'s namespace, config in ``workdir``. Subclasses give argv."""

    node: Node
    config: DaemonConfig | str  # a typed config, or a keepalived.conf text as is
    workdir: Path | None = None
    label: str = ""
    lines: list[str] = field(default_factory=list, init=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    _eof: bool = field(default=False, init=False)
    _own_workdir: bool = field(default=False, init=False)
    kind: str = field(default="daemon", init=False)

    def __post_init__(self) -> None:
        self.label = self.label or f"{self.kind}@{self.node.name}"
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"pykad-{self.node.ns}-{self.kind}-"))
            self._own_workdir = True

    @property
    def dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir

    @property
    def conf_path(self) -> Path:
        return self.dir / f"{self.kind}.conf"

    def pidfile(self, which: str) -> Path:
        return self.dir / f"{self.kind}.{which}.pid"

    def argv(self) -> list[str]:
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_config(self, config: DaemonConfig | str) -> None:
        text = config if isinstance(config, str) else config.render()
        self.config = config
        tmp = self.conf_path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.conf_path)  # atomic: a reload never reads half a file

    def start(self) -> Self:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.write_config(self.config)
        self.proc = self.node.spawn(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, name=f"log-{self.label}", daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        with self.proc.stdout as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reload(self, config: DaemonConfig | str | None = None) -> int:
        """Write ``config`` (if given) and send SIGHUP. Returns the log mark before the
        signal, to pass as ``since`` to :meth:`wait_for_log`."""
        if config is not None:
            self.write_config(config)
        mark = self.mark()
        os.kill(self.pid, signal.SIGHUP)
        return mark

    def stop(self, timeout: float = 15.0) -> int:
        """Graceful stop: SIGTERM by PID, wait; SIGKILL if it does not exit in time."""
        proc = self.proc
        if proc is None:
            return 0
        return self.node.lab.stop(proc, signal.SIGTERM, timeout=timeout)

    def kill(self) -> None:
        """A crash: SIGKILL by PID, no priority-0 advert, VIPs left where they were."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10.0)

    def close(self) -> None:
        self.stop()
        self._wait_eof(5.0)
        if self._own_workdir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- the log -----------------------------------------------------------------------------

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def count(self, text: str, since: int = 0) -> int:
        with self._cond:
            return sum(text in line for line in self.lines[since:])

    def found(self, text: str, since: int = 0) -> list[str]:
        with self._cond:
            return [line for line in self.lines[since:] if text in line]

    def wait_for_log(self, text: str, timeout: float = 10.0, since: int = 0) -> str:
        """Block until a log line at index >= ``since`` contains ``text``; return it.

        Fails at once (with the log tail) if the daemon exits without writing it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = since
            while True:
                for line in self.lines[seen:]:
                    if text in line:
                        return line
                seen = max(seen, len(self.lines))
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    why = "exited" if self._eof else f"no such line within {timeout} s"
                    raise LogTimeout(f"{self.label}: {text!r}: {why}\n{self.tail()}")
                self._cond.wait(left)

    def tail(self, n: int = 40) -> str:
        with self._cond:
            return "\n".join(f"  | {line}" for line in self.lines[-n:])

    def _wait_eof(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._eof or self.proc is None, timeout)


@dataclass(eq=False)
class KeepalivedFixture(DaemonFixture):
    """Debian's keepalived 2.2.7, VRRP subsystem only, private pid files (recipe)."""

    binary: str | None = KEEPALIVED
    kind: str = field(default="keepalived", init=False)

    def argv(self) -> list[str]:
        if self.binary is None:
            raise FileNotFoundError("keepalived is not installed (apt-get install keepalived)")
        return [
            self.binary,
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--vrrp",
            "-f",
            str(self.conf_path),
            "-p",
            str(self.pidfile("main")),
            "-r",
            str(self.pidfile("vrrp")),
            "-c",
            str(self.pidfile("checkers")),
        ]

    def child_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.pidfile("vrrp").read_text().split()[0])
        return None

    def kill(self) -> None:
        # The VRRP child first: if the parent died first it could respawn or reap it.
        child = self.child_pid()
        if child is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        super().kill()


@dataclass(eq=False)
class PykadFixture(DaemonFixture):
    """pykad from this environment, with keepalived's flags (spec §7.4).

    Each daemon gets its own control socket, ``control_path`` or ``control.sock`` in its work
    directory (the socket is a file name, shared by all network namespaces, so the default
    path would be shared too); ``extra_args`` are appended (``("--metrics", "9650")``)."""

    argv0: Sequence[str] = field(default_factory=pykad_argv0)
    extra_args: Sequence[str] = ()
    control_path: Path | None = None
    kind: str = field(default="pykad", init=False)

    @property
    def control_socket(self) -> Path:
        return self.control_path or self.dir / "control.sock"

    def argv(self) -> list[str]:
        return [
            *self.argv0,
            "-n",
            "-l",
            "-D",
            "-f",
            str(self.conf_path),
            "-p",
            str(self.pidfile("main")),
            "-r",
            str(self.pidfile("vrrp")),
            "-c",
            str(self.pidfile("checkers")),
            "--control-socket",
            str(self.control_socket),
            *self.extra_args,
        ]


StartDaemon = Callable[[type[DaemonFixture], Node, DaemonConfig], DaemonFixture]
"""What the tests' ``start`` fixture is: start a daemon of a kind on a node with a config."""


@contextlib.contextmanager
def daemon_starter(
    workdir: Path,
) -> Iterator[Callable[[type[DaemonFixture], Node, DaemonConfig | str], DaemonFixture]]:
    """The body of the tests' ``start`` fixtures: starts daemons with their files under
    ``workdir``; at exit closes every one (SIGTERM by PID) and prints their logs, so that a
    failing test shows them."""
    started: list[DaemonFixture] = []

    def _start(kind: type[DaemonFixture], node: Node, config: DaemonConfig | str) -> DaemonFixture:
        daemon = kind(node, config, workdir=workdir / f"{node.name}-{len(started)}")
        started.append(daemon)
        return daemon.start()

    try:
        yield _start
    finally:
        for daemon in started:
            daemon.close()
        for daemon in started:
            print(f"==== log of {daemon.label} (pid {daemon.proc.pid if daemon.proc else '-'})")
            print("\n".join(daemon.lines))


def entering(state: str, instance: str = "VI_1") -> str:
    """The log line both daemons write on a transition (spec appendix A)."""
    return f"({instance}) Entering {state} STATE"


def elect(
    start: StartDaemon,
    master: tuple[type[DaemonFixture], Node, DaemonConfig],
    backup: tuple[type[DaemonFixture], Node, DaemonConfig],
    instance: str = "VI_1",
) -> tuple[DaemonFixture, DaemonFixture]:
    """Start the intended master, wait until it is MASTER, then the backup until BACKUP.

    Sequential on purpose: started together, a slower-starting daemon (python) could see the
    other win first and the test would depend on start-up speed, not on the protocol."""
    m = start(*master)
    m.wait_for_log(entering("MASTER", instance), timeout=30)
    b = start(*backup)
    b.wait_for_log(entering("BACKUP", instance), timeout=30)
    return m, b
