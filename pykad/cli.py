"""Command line: ``pykad -f FILE`` runs the daemon; ``pykad --check-config`` checks a config;
``pykad status|reload|stop`` talk to the running daemon over its control socket.

This is the only module that turns exceptions into exit codes and stderr text. The option
names follow keepalived 2.2.7 (spec §7.4) so that existing unit files and habits keep working.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import click

from pykad import __version__
from pykad.errors import ExitCode

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
EXIT_NOT_RUNNING = 3  # LSB "program is not running", as `systemctl status` uses it


def _check_config(
    conf: str, config_id: str | None, strict: bool, all_config: bool, dump: bool
) -> int:
    from pykad.config.diagnostics import render
    from pykad.config.load import exit_code_for, load

    result = load(conf, config_id=config_id, all_config=all_config)
    sys.stderr.write(render(result.diagnostics, result.lines))
    code = exit_code_for(result.diagnostics, strict=strict)
    if dump and result.config is not None:
        from pykad.config.dump import to_jsonable

        json.dump(to_jsonable(result.config), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    return int(code)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-f",
    "--use-file",
    "conf",
    default=DEFAULT_CONFIG,
    show_default=True,
    metavar="FILE",
    help="Configuration file.",
)
@click.option(
    "-t",
    "--check-config",
    "--config-test",
    "check",
    is_flag=True,
    help="Check the configuration, print located diagnostics and exit.",
)
@click.option(
    "--strict", is_flag=True, help="With --check-config: warnings make the exit status non-zero."
)
@click.option(
    "-d",
    "--dump-conf",
    "dump",
    is_flag=True,
    help="Print the configuration pykad understood as JSON (defaults filled in) and exit.",
)
@click.option("-i", "--config-id", default=None, metavar="ID", help="Id for @conditional lines.")
@click.option("-e", "--all-config", is_flag=True, help="A missing config or include is an error.")
@click.option("-n", "--dont-fork", is_flag=True, help="Accepted for compatibility; always true.")
@click.option("-l", "--log-console", is_flag=True, help="Log to the console (stderr).")
@click.option("-D", "--log-detail", is_flag=True, help="Detailed logging.")
@click.option("-G", "--no-syslog", is_flag=True, help="Do not log to syslog.")
@click.option("-S", "--log-facility", default=None, metavar="FACILITY", help="Syslog facility.")
@click.option("-P", "--vrrp", "vrrp_only", is_flag=True, help="Run only the VRRP subsystem.")
@click.option("-C", "--check", "check_only", is_flag=True, help="Run only the checker subsystem.")
@click.option("-p", "--pid", "pid_file", default=None, metavar="FILE", help="Main pid file.")
@click.option("-r", "--vrrp_pid", "vrrp_pid_file", default=None, metavar="FILE")
@click.option("-c", "--checkers_pid", "checkers_pid_file", default=None, metavar="FILE")
@click.option("-X", "--release-vips", is_flag=True, help="Accepted for compatibility.")
@click.option("-V", "--dont-release-vrrp", is_flag=True, help="Leave VIPs in place on exit.")
@click.option(
    "-I", "--dont-release-ipvs", is_flag=True, help="Leave the IPVS services in place on exit."
)
@click.option(
    "-R", "--dont-respawn", is_flag=True, help="Do not restart the checker child if it dies."
)
@click.option("-v", "--version", "show_version", is_flag=True, help="Print the version.")
@click.option(
    "--config-snapshot",
    default=None,
    hidden=True,  # the checker child's: the configuration its parent validated
    metavar="FILE",
)
@click.option(
    "--control-socket",
    default=None,
    metavar="PATH",
    help="The control socket (default $PYKAD_CONTROL_SOCKET or /run/pykad/control.sock;"
    " empty: none).",
)
@click.option(
    "--metrics",
    default=None,
    envvar="PYKAD_METRICS",
    metavar="[ADDR:]PORT",
    callback=lambda _ctx, _param, value: _listen(value),
    help="Serve Prometheus metrics over HTTP at /metrics (address default 127.0.0.1).",
)
@click.pass_context
def cli(ctx: click.Context, /, **opts: object) -> None:
    """pykad: keepalived-compatible VRRP daemon."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = opts
        return
    if opts["show_version"]:
        click.echo(f"pykad {__version__}", err=True)
        ctx.exit(0)
    conf = str(opts["conf"])
    if opts["check"] or opts["dump"]:
        ctx.exit(
            _check_config(
                conf,
                opts["config_id"],  # type: ignore[arg-type]
                bool(opts["strict"]),
                bool(opts["all_config"]),
                bool(opts["dump"]),
            )
        )
    from pykad.runtime.daemon import run_from_cli

    ctx.exit(int(run_from_cli(opts)))


def _listen(value: str | None) -> tuple[str, int] | None:
    if value is None or value == "":
        return None
    # Imported only when given: click runs this callback for every invocation, and the
    # metrics module pulls in the runtime (asyncio, the drivers), which `-t` never needs.
    from pykad.runtime.metrics import parse_listen

    try:
        return parse_listen(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


# ---------------------------------------------------------------------------------------------
# Talking to the running daemon (pykad.runtime.control)

_socket_option = click.option(
    "--control-socket",
    "socket_path",
    default=None,
    metavar="PATH",
    help="The daemon's control socket (default: as for the daemon).",
)
_timeout_option = click.option(
    "--timeout", default=30.0, show_default=True, metavar="SECONDS", help="How long to wait."
)


def _call(ctx: click.Context, socket_path: str | None, cmd: str, timeout: float) -> dict[str, Any]:
    """One command; exits 3 when no daemon runs, 1 on any other control socket error."""
    from pykad.runtime.control import ControlClient, ControlError, DaemonNotRunning, control_path

    if socket_path is None:
        socket_path = (ctx.obj or {}).get("control_socket")
    path = control_path(socket_path)
    if path is None:
        click.echo("pykad: the control socket is switched off (empty --control-socket)", err=True)
        ctx.exit(2)
    try:
        with ControlClient(path, timeout_s=timeout) as client:
            result = client.call(cmd)
            if cmd == "stop" and not client.wait_closed(timeout):
                click.echo(f"pykad: still stopping after {timeout:g} s", err=True)
                ctx.exit(1)
    except DaemonNotRunning as exc:
        click.echo(f"pykad: {exc}", err=True)
        ctx.exit(EXIT_NOT_RUNNING)
    except ControlError as exc:
        click.echo(f"pykad: {exc}", err=True)
        ctx.exit(1)
    return result


@cli.command()
@_socket_option
@_timeout_option
@click.option("--json", "as_json", is_flag=True, help="Print pykad/schema/status.schema.json.")
@click.pass_context
def status(ctx: click.Context, /, socket_path: str | None, timeout: float, as_json: bool) -> None:
    """Show the VRRP instances of the running daemon."""
    doc = _call(ctx, socket_path, "status", timeout)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        from pykad.runtime.status import render_status

        click.echo(render_status(doc), nl=False)


@cli.command()
@_socket_option
@_timeout_option
@click.pass_context
def reload(ctx: click.Context, /, socket_path: str | None, timeout: float) -> None:
    """Reload the configuration (as SIGHUP); exit 1 if it was refused."""
    outcome = _call(ctx, socket_path, "reload", timeout)
    if outcome.get("diagnostics"):
        click.echo(outcome["diagnostics"], err=True, nl=False)
    if outcome.get("applied"):
        click.echo(f"reload applied: {outcome.get('message')}")
    else:
        click.echo(f"reload refused: {outcome.get('message')}", err=True)
        ctx.exit(1)


@cli.command()
@_socket_option
@_timeout_option
@click.pass_context
def stop(ctx: click.Context, /, socket_path: str | None, timeout: float) -> None:
    """Stop the daemon (as SIGTERM) and wait until it has released its addresses."""
    result = _call(ctx, socket_path, "stop", timeout)
    pid = int(result.get("pid", 0))
    # The connection closes once the addresses are released; the process exits (and frees
    # its pid files) right after: wait for that too, so `pykad stop && pykad` works.
    deadline = time.monotonic() + timeout
    while pid > 0 and not _process_gone(pid):
        if time.monotonic() >= deadline:
            click.echo(f"pykad: pid {pid} still running after {timeout:g} s", err=True)
            ctx.exit(1)
        threading.Event().wait(0.05)
    click.echo(f"pykad (pid {pid}) stopped")


def _process_gone(pid: int) -> bool:
    """No such process, or a zombie (exited, waiting for its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def main() -> None:
    try:
        cli.main(prog_name="pykad", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.OK))


if __name__ == "__main__":  # pragma: no cover
    main()
