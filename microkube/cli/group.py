"""The ``microkube`` click group and its run: every verb but the passthroughs.

Commands live in one module per verb group and stay thin: parse, call,
print. Heavy imports happen inside the commands so ``microkube status``
starts fast. Every error meant for the user is printed as one line.
"""

from __future__ import annotations

import sys

import click

from microkube import __version__
from microkube.cli import exit_for


class MicrokubeGroup(click.Group):
    """A group whose verbs are imported when used (microkube.cli.commands) and whose
    unknown-command error suggests the nearest verb."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from microkube.cli import commands

        return sorted({*commands.VERBS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from microkube.cli import commands

        return commands.load(self, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib  # here: only a mistyped verb needs it

            near = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else "; see 'microkube --help'"
            raise click.UsageError(f"unknown command '{name}'{hint}", ctx)
        return super().resolve_command(ctx, args)


@click.group(cls=MicrokubeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="microkube", message="%(prog)s %(version)s")
def cli() -> None:
    """microkube: a small Kubernetes for the edge, laptops and CI."""


def run(argv: list[str] | None = None) -> None:
    """Run the click group on ``argv`` (sys.argv's when None) and exit; user-facing errors
    become one line and their exit code, a bug one line naming MICROKUBE_DEBUG (exit 70)."""
    try:
        rv = cli.main(args=argv, prog_name="microkube", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as e:
        click.echo(f"Error: {e.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"Error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except (Exception, KeyboardInterrupt) as e:
        exit_for(e)
    sys.exit(rv if isinstance(rv, int) else 0)
