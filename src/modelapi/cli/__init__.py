"""The `modelapi` command: train, models, serve, predict, package.

Every expected failure is one line on stderr: exit code 1, or 2 for a usage error (an unknown
command or flag, a bad flag value, a missing argument), as click and most Unix tools do. Flags
also read MODELAPI_<FLAG>.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from modelapi._version import __version__
from modelapi.errors import ModelapiError

__all__ = ["cli", "main"]

logger = logging.getLogger("modelapi")

# Each command and the module that defines it, imported only when that command runs (or when
# --help lists them all): `serve` and `predict` start without the training, packaging and
# store-copy modules (about 30 ms of every launch).
_COMMAND_MODULES = {
    "train": "train",
    "import": "train",
    "models": "models",
    "serve": "serve",
    "predict": "predict",
    "package": "package",
}


class _Commands(click.Group):
    """The command group, loading each command's module on first use (click's lazy group)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = _COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"modelapi.cli.{module_name}")
        commands: list[click.Command] = module.commands
        return next(command for command in commands if command.name == cmd_name)


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="modelapi")
def cli() -> None:
    """Train a scikit-learn model from a CSV, store it as a safe versioned bundle, and serve it.

    \b
    Start:   modelapi serve                      (the built-in diabetes model on :8000)
    Train:   modelapi train data.csv --name mymodel
    Inspect: modelapi models list / modelapi models show mymodel
    Deploy:  modelapi package lambda mymodel -o dist/
    """


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code; an expected error prints one line, no traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # boto3 announces where it found credentials at INFO; keep stderr to modelapi's own lines.
    for noisy in ("boto3", "botocore", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        cli.main(
            args=argv, prog_name="modelapi", auto_envvar_prefix="MODELAPI", standalone_mode=False
        )
    except ModelapiError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.UsageError as exc:
        # One line like every other error, with the way to the full usage.
        where = exc.ctx.command_path if exc.ctx is not None else "modelapi"
        click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception:  # the CLI's edge: anything unexpected is logged in full, once.
        logger.exception("unexpected error; please report it with the command you ran")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
