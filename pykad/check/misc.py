"""MISC_CHECK (spec §9.5; keepalived check_misc.c).

``misc_path`` is executed (execve, no shell; the model already split its argv) as its
``user [group]`` or the default script user, bounded by ``misc_timeout`` (the lowering made
0/unset mean ``delay_loop``). Exit 0 is success, 1 failure; with ``misc_dynamic`` an exit
status 2..255 is success with the real server's weight set to ``status - 2``. A timeout
(SIGTERM to the process group, SIGKILL 2 s later), a signal, or a failure to start is a
failed check.
"""

from __future__ import annotations

from pykad.adapters.scripts import run_as, run_script
from pykad.check.probes import ProbeResult
from pykad.config.model_lvs import MiscCheck

KILL_GRACE_S = 2.0  # check_misc.c: SIGKILL 2 s after the SIGTERM


def verdict(checker: MiscCheck, status: int | None, error: str) -> ProbeResult:
    """The probe result for a run that ended with exit ``status`` (-N: signal N)."""
    if status is None:
        return ProbeResult(False, error)
    if status < 0:
        return ProbeResult(False, f"due to signal {-status}")
    if status == 0 or (checker.dynamic and 2 <= status <= 255):
        return ProbeResult(True, f"exited with status {status}", exit_status=status)
    return ProbeResult(False, f"exited with status {status}", exit_status=status)


class MiscProbe:
    """One MISC_CHECK's probe."""

    __slots__ = ("_default_user", "checker")

    def __init__(
        self, checker: MiscCheck, default_user: tuple[str | None, str | None] = (None, None)
    ) -> None:
        self.checker = checker
        self._default_user = default_user

    async def __call__(self) -> ProbeResult:
        c = self.checker
        try:
            creds = run_as(c.user, c.group, self._default_user)
        except KeyError as exc:
            return ProbeResult(False, str(exc.args[0]))
        result = await run_script(
            c.script.argv, creds=creds, timeout_s=c.timeout_s, kill_grace_s=KILL_GRACE_S
        )
        return verdict(c, result.status, result.error)
