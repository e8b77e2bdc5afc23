"""The configuration front end: file -> Block tree -> typed model, plus the exit-code policy.

``load`` runs :func:`pykad.config.grammar.parse_file`, then the lowering
(:func:`pykad.config.lower.lower`), then the host checks keepalived makes at start-up
(interfaces that do not exist, script security, spec §1.10), and returns every diagnostic,
sorted by position. It never raises for a bad configuration and never exits: only
:mod:`pykad.cli` turns :func:`exit_code_for` into a process status.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import random
import socket
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from pykad.config.diagnostics import Diagnostic, Status
from pykad.config.grammar import parse_file, parse_text, sort_diagnostics
from pykad.config.model import Config
from pykad.config.tree import ParseResult
from pykad.errors import ExitCode

__all__ = [
    "LoadResult",
    "exit_code_for",
    "host_interfaces",
    "load",
    "load_text",
    "startup_errors",
]


@dataclass(frozen=True, slots=True)
class LoadResult:
    config: Config | None
    diagnostics: tuple[Diagnostic, ...]
    # file name -> its physical lines, for rendering carets
    lines: Mapping[str, Sequence[str]]

    @property
    def ok(self) -> bool:
        return self.config is not None and not any(d.is_error for d in self.diagnostics)


def host_interfaces() -> frozenset[str]:
    """Names of the interfaces of the current network namespace."""
    return frozenset(name for _, name in socket.if_nameindex())


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a configuration is loaded.

    A load allocates a few objects per configuration line (logical lines, Blocks, locations,
    model objects), all of them acyclic and most of them kept, so the collector ran dozens of
    times per large config and freed nothing: about a tenth of the load time of
    bench/config_check.py's config. Reference counting still frees everything as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _finish(
    parsed: ParseResult,
    *,
    interfaces: Collection[str] | None,
    check_security: bool,
) -> LoadResult:
    from pykad.config.lower import check_interfaces, lower

    diags = list(parsed.diagnostics)
    config, lower_diags = lower(parsed.blocks)
    diags.extend(lower_diags)
    if config is not None:
        config = dataclasses.replace(config, files=tuple(parsed.lines))
        if interfaces is not None:
            diags.extend(check_interfaces(config, interfaces))
        if check_security:
            from pykad.config.security import check_scripts

            diags.extend(check_scripts(config))
    return LoadResult(config, sort_diagnostics(diags, list(parsed.lines)), parsed.lines)


def load(
    path: str,
    *,
    config_id: str | None = None,
    all_config: bool = False,
    interfaces: Collection[str] | None = None,
    check_host: bool = True,
    rng: random.Random | None = None,
) -> LoadResult:
    """Load ``path`` the way ``keepalived -t -f path`` checks it.

    With ``check_host`` (the default) interfaces are checked against ``interfaces`` or, when
    that is None, the host's, and configured scripts get keepalived's security checks.
    """
    with _no_cyclic_gc():
        parsed = parse_file(path, config_id=config_id, all_config=all_config, rng=rng)
        if check_host and interfaces is None:
            interfaces = host_interfaces()
        return _finish(
            parsed, interfaces=interfaces if check_host else None, check_security=check_host
        )


def load_text(
    text: str,
    file: str = "<string>",
    *,
    base_dir: str | None = None,
    config_id: str | None = None,
    all_config: bool = False,
    interfaces: Collection[str] | None = None,
    rng: random.Random | None = None,
) -> LoadResult:
    """Load configuration text; pure apart from includes: interfaces are checked only when
    ``interfaces`` is given, scripts are not checked."""
    with _no_cyclic_gc():
        parsed = parse_text(
            text, file, base_dir=base_dir, config_id=config_id, all_config=all_config, rng=rng
        )
        return _finish(parsed, interfaces=interfaces, check_security=False)


# Most severe first. A missing mandatory parameter makes keepalived exit 2 at once, and an
# include_check failure or a security violation exits 6 whatever else was found (§1.10).
# keepalived lets a later general error (5) override a missing file or interface (4); pykad
# keeps 4, because a missing file means part of the configuration was never checked.
_PRECEDENCE: tuple[tuple[frozenset[Status], ExitCode], ...] = (
    (frozenset({Status.MISSING_PARAMETER}), ExitCode.MISSING_PARAMETER),
    (frozenset({Status.SECURITY, Status.INCLUDE_CHECK}), ExitCode.SECURITY),
    (frozenset({Status.FILE_NOT_FOUND, Status.BAD_IF}), ExitCode.CONFIG_FILE),
)


def exit_code_for(diagnostics: Iterable[Diagnostic], *, strict: bool) -> ExitCode:
    """The ``--check-config`` exit status for ``diagnostics`` (README table, spec §1.10).

    0 no error; 2 missing parameter; 4 file not found / bad interface; 5 any other error;
    6 security or include-check. Warnings alone give 0, or 5 with ``strict``.
    """
    diags = list(diagnostics)
    errors = {d.status for d in diags if d.is_error}
    if errors:
        for statuses, code in _PRECEDENCE:
            if errors & statuses:
                return code
        return ExitCode.CONFIG_TEST
    if strict and any(d.severity.value == "warning" for d in diags):
        return ExitCode.CONFIG_TEST
    return ExitCode.OK


def startup_errors(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """The errors that keep the daemon from starting (or a reload from applying).

    Script-security errors (``Status.SECURITY``, ``-t`` exit 6) are not among them:
    keepalived reports "SECURITY VIOLATION" and runs, and the runtime itself refuses the
    scripts keepalived would disable (:func:`pykad.config.security.refused_scripts`).
    """
    return [d for d in diagnostics if d.is_error and d.status is not Status.SECURITY]
