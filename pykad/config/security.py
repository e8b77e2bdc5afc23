"""Script security at configuration time (spec §6.3), reported as located diagnostics.

keepalived checks every configured script when it starts: the file must exist and be
executable by the user it will run as, and a script that runs as root (uid or gid 0, or a
setuid/setgid-root file) must not be replaceable by anyone else: every component of its
resolved path must be owned by root and not writable by group or others (a directory with the
sticky bit, such as /tmp, is allowed). With ``enable_script_security`` an insecure script is
disabled; without it the script still runs and keepalived reports "SECURITY VIOLATION"
(``-t`` exit 6). keepalived logs the details to syslog only; pykad names the file, the path
component and the exact permission bits.

This module reads the file system and the user database, nothing else; it is called by the
front end after :func:`pykad.config.lower.lower`, never by the lowering itself.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pykad.config.diagnostics import Diagnostic, Status, error, warning
from pykad.config.model import Config, Notify, NotifyFifo, Script

__all__ = ["check_scripts", "configured_scripts"]

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


def _walk(where: str, obj: object) -> Iterator[tuple[str, Script]]:
    if isinstance(obj, Script):
        yield where, obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _walk(where, getattr(obj, f.name))
    elif isinstance(obj, tuple):
        for item in obj:
            yield from _walk(where, item)


@dataclass(frozen=True, slots=True)
class _RunAs:
    uid: int
    gid: int
    name: str


def _resolve_user(
    script: Script, default_user: str | None, default_group: str | None, *, secure: bool
) -> _RunAs | str:
    """The uid/gid the script will run as, or a message saying why it cannot run."""
    user = script.user or default_user
    group = script.group if script.user else (script.group or default_group)
    if user is None:
        try:
            pw = pwd.getpwnam(DEFAULT_SCRIPT_USER)
        except KeyError:
            if secure:
                # keepalived: "Unable to set default user keepalived_script for script"
                return (
                    f"unable to set default user {DEFAULT_SCRIPT_USER} (it does not exist and"
                    " global_defs has no script_user)"
                )
            return _RunAs(os.geteuid(), os.getegid(), "the user pykad runs as")
    else:
        try:
            pw = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
        except KeyError:
            return f"user '{user}' does not exist"
    gid = pw.pw_gid
    if group:
        name = group.removeprefix(":")
        try:
            gid = grp.getgrnam(name).gr_gid if not name.isdigit() else int(name)
        except KeyError:
            return f"group '{name}' does not exist"
    return _RunAs(pw.pw_uid, gid, pw.pw_name)


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
    """Why a root-run script at ``path`` could be replaced by a non-root user, or None."""
    parts = [path, *path.parents]
    for p in parts:
        try:
            st = p.lstat()
        except OSError as exc:
            return f"{p} cannot be examined ({exc.strerror})"
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid != 0:
            owner = _user_name(st.st_uid)
            return f"{p} is owned by {owner} (uid {st.st_uid}), not root"
        if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
            continue  # sticky directory: others cannot replace root's entries (§6.3)
        writable = [
            w for w, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if mode & bit
        ]
        if writable:
            return f"{p} is writable by {' and '.join(writable)} (mode {mode:04o})"
    return None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_scripts(config: Config, *, env: Mapping[str, str] | None = None) -> list[Diagnostic]:
    """Check every configured script the way keepalived does at start-up (§6.3).

    Errors (``Status.SECURITY``): a root-run script whose path non-root users could change;
    with ``enable_script_security``, a missing default script user. Warnings: a script that
    does not exist, cannot be executed by its user or names an unknown user or group (keepalived
    disables it and runs on), a command found by PATH search, and existing scripts configured
    without ``enable_script_security`` (keepalived's "SECURITY VIOLATION").
    """
    env = os.environ if env is None else env
    g = config.global_defs
    secure = g.enable_script_security
    out: list[Diagnostic] = []
    seen: set[tuple[str, str | None, str | None]] = set()
    any_script = False
    for where, script in configured_scripts(config):
        argv0 = script.argv[0]
        if argv0.startswith("</"):
            continue  # "</path": a shell file-existence test, run via sh (§6.3)
        key = (argv0, script.user, script.group)
        if key in seen:
            continue
        seen.add(key)
        loc = script.loc
        if "/" in argv0:
            path = Path(argv0)
        else:
            found = _find(argv0, env)
            if found is None:
                out.append(warning(loc, f"script '{argv0}' ({where}) not found in PATH - disabled"))
                continue
            out.append(
                warning(
                    loc,
                    f"script `{argv0}` resolved by path search to `{found}`."
                    " Please specify full path.",
                )
            )
            path = found
        who = _resolve_user(script, g.script_user, g.script_group, secure=secure)
        if isinstance(who, str):
            if who.startswith("unable to set default user"):
                # the one user problem keepalived -t reports itself (§1.10)
                out.append(error(loc, f"script {argv0} ({where}) cannot run: {who}"))
            else:
                out.append(warning(loc, f"script {argv0} ({where}) cannot run: {who} - disabled"))
            continue
        problem = _unusable(path, who)
        if problem is not None:
            # keepalived disables such a script and runs on (logged to syslog only, §1.3/§6.3)
            out.append(warning(loc, f"script {path} ({where}) {problem} - disabled"))
            continue
        any_script = True
        st = path.stat()
        runs_as_root = (
            who.uid == 0
            or who.gid == 0
            or (st.st_mode & stat.S_ISUID and st.st_uid == 0)
            or (st.st_mode & stat.S_ISGID and st.st_gid == 0)
        )
        if runs_as_root:
            problem = _insecure_component(Path(os.path.realpath(path)))
            if problem is not None:
                action = "script disabled" if secure else "it would run anyway"
                out.append(
                    error(
                        loc,
                        f"script {path} ({where}) runs as root but {problem} - {action}",
                        status=Status.SECURITY,
                        hint="make every directory on the path root-owned and not writable by"
                        " group or others (chmod go-w), or run the script as another user",
                    )
                )
    if any_script and not secure:
        out.append(
            warning(
                None,
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled.",
                hint="add 'enable_script_security' to global_defs",
            )
        )
    return out
