"""The ``chaoskit`` command line: a thin layer over the packages below it.

Only this module configures logging and turns errors into exit codes; nothing else in
chaoskit imports it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler

from chaoskit import __version__
from chaoskit.errors import ChaoskitError
from chaoskit.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True)


class _State:
    debug: bool = False


_state = _State()


def _configure_logging(debug: bool, verbose: int) -> None:
    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err_console, show_path=debug, rich_tracebacks=debug)],
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="chaoskit")
@click.option(
    "--debug", is_flag=True, envvar="CHAOSKIT_DEBUG", help="Show tracebacks and debug logs."
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """Chaos and resilience testing for Kubernetes on kind.

    Every option can also be set as CHAOSKIT_<COMMAND>_<OPTION> in the environment.
    """
    _state.debug = debug
    _configure_logging(debug, verbose)
    ctx.obj = Settings.from_env()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: user errors become one line and an exit code."""
    try:
        cli.main(
            args=argv, prog_name="chaoskit", auto_envvar_prefix="CHAOSKIT", standalone_mode=False
        )
    except click.exceptions.Abort:
        err_console.print("chaoskit: interrupted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except ChaoskitError as e:
        if _state.debug:
            err_console.print_exception()
        err_console.print(f"chaoskit: error: {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("chaoskit: interrupted")
        sys.exit(130)
    sys.exit(0)
