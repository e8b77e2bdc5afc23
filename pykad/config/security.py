"""Script security at configuration time (spec §6.3), reported as located diagnostics.

keepalived checks every configured script when it starts: the file must exist and be
executable by the user it will run as, and a script that runs as root (uid or gid 0, or a
setuid/setgid-root file) must not be replaceable by anyone else: every component of its
resolved path must be owned by root and not writable by group or others (a directory with the
sticky bit, such as /tmp, is allowed). With ``enable_script_security`` an insecure script is
disabled; without it the script still runs and keepalived reports "SECURITY VIOLATION"
(``-t`` exit 6). keepalived logs the details to syslog only; pykad names the file, the path
component and the exact permission bits.

keepalived's rule (notify.c ``check_script_secure``), copied exactly: walking the resolved path
from ``/`` down to the file, a component is unsafe when it is not owned by root, or when it is
writable by others, or by its group unless that group is root (gid 0); the sticky bit makes a
*directory* safe. The first unsafe component is reported.

This module reads the file system and the user database, nothing else. The front end calls
:func:`check_scripts` after :func:`pykad.config.lower.lower` (diagnostics); the runtime calls
:func:`refused_scripts` to know which scripts it must not run (keepalived disables them).
"""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pykad.config.diagnostics import Diagnostic, Status, error, warning
from pykad.config.model import Config, Notify, NotifyFifo, Script

__all__ = [
    "ScriptVerdict",
    "check_scripts",
    "configured_scripts",
    "refused_scripts",
    "script_key",
    "script_verdicts",
    "user_ids",
]

# keepalived's default script user when it exists (§2 script_user)
DEFAULT_SCRIPT_USER = "keepalived_script"
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def configured_scripts(config: Config) -> Iterator[tuple[str, Script]]:
    """Every script in ``config`` with a short description of where it is used."""
    for inst in config.vrrp_instances:
        yield from _notify_scripts(f"vrrp_instance {inst.name}", inst.notify)
    for group in config.sync_groups:
        yield from _notify_scripts(f"vrrp_sync_group {group.name}", group.notify)
    for vs in config.vrrp_scripts:
        yield f"vrrp_script {vs.name}", vs.script
    g = config.global_defs
    for name in ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"):
        fifo: NotifyFifo | None = getattr(g, name)
        if fifo is not None and fifo.script is not None:
            yield f"{name}_script", fifo.script
    # The LVS model (checkers' misc_path, quorum_up, ...) is walked generically.
    yield from _walk("virtual_server", config.lvs)


def _notify_scripts(owner: str, notify: Notify) -> Iterator[tuple[str, Script]]:
    for f in dataclasses.fields(notify):
        value = getattr(notify, f.name)
        if isinstance(value, Script):
            keyword = "notify" if f.name == "generic" else f"notify_{f.name}"
            yield f"{owner} {keyword}", value


def _walk(where: str, root: object) -> Iterator[tuple[str, Script]]:
    """Every Script inside ``root`` (dataclasses and tuples), depth first in field order.

    An explicit stack, and per class only the fields that can hold a Script: the LVS model
    of a large config is tens of thousands of values, nearly all numbers, flags and
    addresses, and visiting each of them was a tenth of ``pykad -t``'s time on
    bench/config_check.py's config.
    """
    stack = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, Script):
            yield where, obj
        elif isinstance(obj, tuple):
            stack.extend(reversed(obj))
        else:
            names = _walked_fields(type(obj))
            if names:
                stack.extend([getattr(obj, name) for name in reversed(names)])


# Names in a field's annotation that cannot lead to a Script. A field is skipped only when its
# annotation names nothing else, so a new field of any other type (a Script, a dataclass, an
# enum, a name written another way) is walked: the pruning errs towards walking.
_LEAF_NAMES: Final = frozenset(
    {"None", "bool", "int", "float", "str", "bytes", "tuple", "frozenset", "SourceLoc"}
    | {"IPAddress", "IPNetwork", "IPInterface"}
    | {f"ipaddress.IPv{v}{kind}" for v in (4, 6) for kind in ("Address", "Network", "Interface")}
)
_ANNOTATION_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_WALKED: dict[type, tuple[str, ...]] = {}


def _walked_fields(cls: type) -> tuple[str, ...]:
    """The fields of dataclass ``cls`` that may hold a Script; () for any other class."""
    names = _WALKED.get(cls)
    if names is None:
        fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
        names = _WALKED[cls] = tuple(
            f.name
            for f in fields
            if not _LEAF_NAMES.issuperset(_ANNOTATION_NAME.findall(str(f.type)))
        )
    return names


@dataclass(frozen=True, slots=True)
class _RunAs:
    uid: int
    gid: int
    name: str


MAX_ID = 0xFFFFFFFF  # (uid_t)-1 / (gid_t)-1: "no change" for setresuid/setresgid, not an id


def user_ids(user: str, group: str | None = None) -> tuple[int, int, str]:
    """uid, gid and name of ``USER [[:]GROUP]`` (spec §2 script_user): names or numbers;
    without a group, the user's primary group. The one lookup of the configuration check
    and of the script runner (pykad.adapters.scripts), so that what ``--check-config``
    accepts is what runs. Raises KeyError with the unknown user or group in its message."""
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise KeyError(f"user '{user}' does not exist") from None
    if not group:
        return pw.pw_uid, pw.pw_gid, pw.pw_name
    name = group.removeprefix(":")
    if name.isdigit():
        # a number need not name a group in /etc/group (setgid accepts any valid gid), but
        # it must be one: (gid_t)-1 and beyond cannot be set
        gid = int(name)
        if gid >= MAX_ID:
            raise KeyError(f"group '{name}' is not a valid group id")
        return pw.pw_uid, gid, pw.pw_name
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        raise KeyError(f"group '{name}' does not exist") from None
    return pw.pw_uid, gid, pw.pw_name


def _resolve_user(
    script: Script, default_user: str | None, default_group: str | None, *, secure: bool
) -> _RunAs | str:
    """The uid/gid the script will run as, or a message saying why it cannot run."""
    user = script.user or default_user
    group = script.group if script.user else (script.group or default_group)
    if user is None:
        try:
            pwd.getpwnam(DEFAULT_SCRIPT_USER)
        except KeyError:
            if secure:
                # keepalived: "Unable to set default user keepalived_script for script"
                return (
                    f"unable to set default user {DEFAULT_SCRIPT_USER} (it does not exist and"
                    " global_defs has no script_user)"
                )
            return _RunAs(os.geteuid(), os.getegid(), "the user pykad runs as")
        user = DEFAULT_SCRIPT_USER
    try:
        return _RunAs(*user_ids(user, group))
    except KeyError as exc:
        return str(exc.args[0])


def _find(argv0: str, env: Mapping[str, str]) -> Path | None:
    for d in env.get("PATH", _DEFAULT_PATH).split(":"):
        candidate = Path(d or ".") / argv0
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _executable_by(st: os.stat_result, who: _RunAs) -> bool:
    if who.uid == 0:
        return bool(st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if st.st_uid == who.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == who.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _unusable(path: Path, who: _RunAs) -> str | None:
    """Why the script at ``path`` cannot be run by ``who``, or None."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if not _executable_by(st, who):
        mode = stat.S_IMODE(st.st_mode)
        return f"is not executable by {who.name} (uid {who.uid}, mode {mode:04o})"
    return None


def _insecure_component(path: Path) -> str | None:
    """Why a root-run script at ``path`` could be replaced by a non-root user, or None.

    keepalived's walk (notify.c ``check_script_secure``): from ``/`` down to the file, the
    first component that is not owned by root, or is writable by others, or by a group other
    than root; a sticky directory (``/tmp``) is safe because others cannot replace root's
    entries in it.
    """
    for p in [*reversed(path.parents), path]:
        try:
            st = p.lstat()
        except OSError as exc:
            return f"{p} cannot be examined ({exc.strerror})"
        kind = "directory" if stat.S_ISDIR(st.st_mode) else "file"
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid != 0:
            return f"{kind} {p} is owned by {_user_name(st.st_uid)} (uid {st.st_uid}), not root"
        if kind == "directory" and st.st_mode & stat.S_ISVTX:
            continue
        writable = []
        if st.st_gid != 0 and mode & stat.S_IWGRP:
            writable.append(f"group '{_group_name(st.st_gid)}'")
        if mode & stat.S_IWOTH:
            writable.append("others")
        if writable:
            return f"{kind} {p} is writable by {' and '.join(writable)} (mode {mode:04o})"
    return None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


ScriptKey = tuple[str, str | None, str | None]


def script_key(script: Script) -> ScriptKey:
    """Scripts with the same command and user are checked (and refused) together."""
    return (script.argv[0], script.user, script.group)


@dataclass(frozen=True, slots=True)
class ScriptVerdict:
    """What keepalived decides about one configured script at start-up (spec §6.3).

    ``problem`` names the file (or directory) and the exact permission problem, for example
    ``directory /etc/keepalived is writable by group 'staff' (mode 0775)``.
    """

    where: str  # "vrrp_instance VI_1 notify_master", "vrrp_script chk", ...
    script: Script
    path: Path | None = None  # the file that runs (after a PATH search); None: not found
    runnable: bool = True  # False: keepalived disables the script
    problem: str | None = None
    insecure: bool = False  # runs as root and some path component is unsafe
    searched: bool = False  # argv[0] was found by PATH search
    no_default_user: bool = False  # enable_script_security without a usable default user

    @property
    def message(self) -> str:
        """``/etc/keepalived/n.sh: directory /etc/keepalived is writable by ...``."""
        return f"{self.path or self.script.argv[0]}: {self.problem}"


def _verdict(where: str, script: Script, config: Config, env: Mapping[str, str]) -> ScriptVerdict:
    g = config.global_defs
    secure = g.enable_script_security
    argv0 = script.argv[0]
    if any("\0" in w for w in (argv0, script.user or "", script.group or "")):
        # os.stat() and getpwnam() raise ValueError on a NUL (keepalived's C strings stop
        # there); such a script cannot be run as configured
        return ScriptVerdict(where, script, runnable=False, problem="contains a NUL character")
    searched = "/" not in argv0
    if searched:
        found = _find(argv0, env)
        if found is None:
            return ScriptVerdict(where, script, runnable=False, problem="not found in PATH")
        path = found
    else:
        path = Path(argv0)
    who = _resolve_user(script, g.script_user, g.script_group, secure=secure)
    if isinstance(who, str):
        return ScriptVerdict(
            where,
            script,
            path,
            runnable=False,
            problem=f"cannot run: {who}",
            searched=searched,
            no_default_user=who.startswith("unable to set default user"),
        )
    problem = _unusable(path, who)
    if problem is not None:
        return ScriptVerdict(where, script, path, False, problem, searched=searched)
    st = path.stat()
    runs_as_root = (
        who.uid == 0
        or who.gid == 0
        or (st.st_mode & stat.S_ISUID and st.st_uid == 0)
        or (st.st_mode & stat.S_ISGID and st.st_gid == 0)
    )
    problem = _insecure_component(Path(os.path.realpath(path))) if runs_as_root else None
    if problem is None:
        return ScriptVerdict(where, script, path, searched=searched)
    # with enable_script_security keepalived disables the script, without it the script runs
    return ScriptVerdict(where, script, path, not secure, problem, True, searched)


def script_verdicts(config: Config, *, env: Mapping[str, str] | None = None) -> list[ScriptVerdict]:
    """keepalived's start-up decision for every configured script (spec §6.3), one per
    (command, user, group); ``</path`` file-existence tests (run via sh) are not checked."""
    env = os.environ if env is None else env
    out: list[ScriptVerdict] = []
    seen: set[ScriptKey] = set()
    for where, script in configured_scripts(config):
        key = script_key(script)
        if script.argv[0].startswith("</") or key in seen:
            continue
        seen.add(key)
        out.append(_verdict(where, script, config, env))
    return out


def refused_scripts(
    config: Config, *, env: Mapping[str, str] | None = None
) -> dict[ScriptKey, ScriptVerdict]:
    """The scripts the runtime must not run, by :func:`script_key` (keepalived disables
    them at start-up: missing, not executable by their user, unknown user, or insecure under
    ``enable_script_security``)."""
    return {script_key(v.script): v for v in script_verdicts(config, env=env) if not v.runnable}


def check_scripts(config: Config, *, env: Mapping[str, str] | None = None) -> list[Diagnostic]:
    """Check every configured script the way keepalived does at start-up (§6.3).

    keepalived ``-t`` exits 6 whenever an existing script is configured without
    ``enable_script_security`` ("SECURITY VIOLATION"). pykad makes that an error
    (``Status.SECURITY``) only with " There are insecure scripts." (a root-run script that
    could be replaced), a warning otherwise; and it reports 5 when
    ``enable_script_security`` has no default user to run scripts as. The rest are warnings:
    a disabled script (missing, not executable by its user, unknown user or group, or insecure
    under ``enable_script_security``), a command found by PATH search, and each insecure
    script that runs anyway. The daemon starts in spite of ``Status.SECURITY`` errors, as
    keepalived does (:func:`pykad.config.load.startup_errors`).
    """
    secure = config.global_defs.enable_script_security
    out: list[Diagnostic] = []
    any_script = any_insecure = False
    for v in script_verdicts(config, env=env):
        loc = v.script.loc
        argv0 = v.script.argv[0]
        if v.path is None:
            shown = argv0.replace("\0", "\\0")
            out.append(warning(loc, f"script '{shown}' ({v.where}) {v.problem} - disabled"))
            continue
        if v.searched:
            out.append(
                warning(
                    loc,
                    f"script `{argv0}` resolved by path search to `{v.path}`."
                    " Please specify full path.",
                )
            )
        if v.no_default_user:
            # the one user problem keepalived -t reports itself (§1.10)
            out.append(error(loc, f"script {argv0} ({v.where}) {v.problem}"))
            continue
        if not v.runnable and not v.insecure:
            # keepalived disables such a script and runs on (logged to syslog only, §6.3)
            out.append(warning(loc, f"script {v.path} ({v.where}) {v.problem} - disabled"))
            continue
        any_script = True
        if v.insecure:
            any_insecure = True
            action = "script disabled" if secure else "it runs anyway"
            out.append(
                warning(
                    loc,
                    f"script {v.path} ({v.where}) runs as root but {v.problem} - {action}",
                    hint="make every directory on the path root-owned and not writable by"
                    " group or others (chmod go-w), or run the script as another user",
                )
            )
    if any_script and not secure:
        # keepalived -t exits 6 here even when every script is safe. pykad reports the
        # violation as an error (exit 6) only when a root-run script can be replaced by
        # someone else: a safe configuration with scripts must pass --check-config, or
        # `pykad --check-config && systemctl reload` would fail for nearly every real
        # cluster (all of them run notify or check scripts).
        text = "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
        hint = "add 'enable_script_security' to global_defs"
        if any_insecure:
            out.append(
                error(
                    None,
                    text + " There are insecure scripts.",
                    status=Status.SECURITY,
                    hint=hint,
                )
            )
        else:
            out.append(warning(None, text, hint=hint))
    return out
