"""Command line: ``pykad -f FILE`` runs the daemon; ``pykad --check-config`` checks a config.

This is the only module that turns exceptions into exit codes and stderr text. The option
names follow keepalived 2.2.7 (spec §7.4) so that existing unit files and habits keep working.
"""

from __future__ import annotations

import json
import sys

import click

from pykad import __version__
from pykad.errors import ExitCode

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"


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
@click.option("-v", "--version", "show_version", is_flag=True, help="Print the version.")
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


def main() -> None:
    try:
        cli.main(prog_name="pykad", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.OK))


if __name__ == "__main__":  # pragma: no cover
    main()
