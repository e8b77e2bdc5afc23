"""Benchmark: time from exec to READY (sd_notify) and from exec to MASTER, one router alone.

Each run starts the daemon in the lab's namespace, under bench/systemd_shim.py (a PID 1 named
systemd: keepalived notifies only such a parent), with ``NOTIFY_SOCKET`` pointing at a
datagram socket of ours (what systemd gives a ``Type=notify`` service, spec §8) and times,
from just before the exec, the ``READY=1`` datagram and the ``(VI_1) Entering MASTER STATE``
log line. Two configurations (VRRPv3, advert_int 1):

* owner: ``state MASTER``, priority 255: MASTER at once (spec §5.2 step 4). Bound: none.
* backup-first: priority 150: BACKUP, then MASTER when the master-down timer expires with
  nobody else on the link. Bound: 3 x advert_int + skew = 3 + (256 - 150) / 256 s.

pykad and keepalived alternate run by run, so slow phases of a shared machine hit both. pykad
runs with its bytecode cached, as installed (benchlib.with_bytecode_cache); one untimed start
of each daemon comes first, which fills that cache and the page cache for both.

Usage: .venv/bin/python bench/startup.py [--runs N] [--daemons pykad keepalived]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from benchlib import DAEMONS, NotifyListener, Recorder, median, with_bytecode_cache

from pykad.testing.keepalived import DaemonConfig, DaemonFixture, Instance, LogTimeout, entering
from pykad.testing.netns import Lab, LabError, sweep_orphans

CASES: Final[dict[str, tuple[Instance, float | None]]] = {
    "owner": (Instance(state="MASTER", priority=255, version=3, advert_int=1.0), None),
    "backup-first": (
        Instance(state="BACKUP", priority=150, version=3, advert_int=1.0),
        3 * 1.0 + (256 - 150) / 256,
    ),
}
SHIM: Final = Path(__file__).resolve().with_name("systemd_shim.py")


def under_systemd(base: type[DaemonFixture]) -> type[DaemonFixture]:
    """``base`` with its command run under the systemd shim (same flags otherwise)."""

    class UnderSystemd(base):  # type: ignore[valid-type,misc]
        def argv(self) -> list[str]:
            return [sys.executable, str(SHIM), *super().argv()]

    return UnderSystemd


def one_run(
    lab: Lab, kind: str, instance: Instance, tmp: Path, notify: NotifyListener
) -> tuple[float, float]:
    node = lab.routers[0]
    config = DaemonConfig(router_id="bench", instances=(instance,))
    fixture = under_systemd(DAEMONS[kind])(
        node, config, workdir=tmp / f"{kind}-{time.monotonic_ns()}"
    )
    # the fixture's process inherits our environment: NOTIFY_SOCKET only for this start
    os.environ["NOTIFY_SOCKET"] = notify.path
    try:
        t0 = time.monotonic()
        fixture.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        fixture.wait_for_log(entering("MASTER"), timeout=30)
        t_master = time.monotonic()
        t_ready = notify.wait_for("READY=1", after=t0, timeout=30)
        if t_ready is None:
            raise LabError(f"{kind}: no READY=1 on NOTIFY_SOCKET within 30 s")
    finally:
        fixture.close()
    return t_ready - t0, t_master - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--daemons", nargs="+", choices=list(DAEMONS), default=list(DAEMONS))
    args = ap.parse_args()
    sweep_orphans()
    rec = Recorder("startup")
    rec.data.update(runs=args.runs, cases={}, bytecode="cached, as installed")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.update(with_bytecode_cache(os.environ))
    notify = NotifyListener()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pykad-bench-start-") as tmp,
            Lab(1, client=False) as lab,
        ):
            warm_up = next(iter(CASES.values()))[0]
            for kind in args.daemons:
                one_run(lab, kind, warm_up, Path(tmp), notify)
            for case, (instance, bound) in CASES.items():
                entry: dict[str, Any] = {"bound_master": bound}
                for kind in args.daemons:
                    entry[kind] = {"ready": [], "master": [], "errors": []}
                for i in range(args.runs):
                    for kind in args.daemons:
                        try:
                            ready, master = one_run(lab, kind, instance, Path(tmp), notify)
                        except (LabError, LogTimeout, OSError) as exc:
                            entry[kind]["errors"].append(str(exc)[:2000])
                            continue
                        entry[kind]["ready"].append(round(ready, 6))
                        entry[kind]["master"].append(round(master, 6))
                        print(
                            f"startup {case} {kind} run {i + 1}: READY {ready:.3f} s, "
                            f"MASTER {master:.3f} s",
                            flush=True,
                        )
                for kind in args.daemons:
                    m = median(entry[kind]["master"])
                    print(f"startup {case} {kind}: median MASTER {m}", flush=True)
                rec.data["cases"][case] = entry
    finally:
        notify.close()
    rec.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
