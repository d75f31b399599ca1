"""The command line: parses options, calls the library, prints, and chooses the exit code.

The CLI layer (this package) is the only code that prints or exits. Every failure reaches the
user as one line on stderr and an exit code, decided once, in `AnomalyGroup.main`.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from typer import _click

from anomaly_cli.cli.apps import PROG, app, say
from anomaly_cli.cli.coercion import without_pydantic
from anomaly_cli.cli.lazy import LazyGroup, build_command, build_group
from anomaly_cli.errors import AnomalyError, OutputClosed
from anomaly_cli.exit_codes import ExitCode, exit_code_for_error


class Terminated(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so temporary files go and alert claims are released."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, _frame: Any) -> None:
    raise Terminated(signum)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):
        pass


class AnomalyGroup(LazyGroup):
    """Turns every failure into one line on stderr and an exit code, at one place; builds only
    the command that runs (see LazyGroup)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        without_pydantic(self)  # its own options: --version, --debug, completion

    def names(self) -> list[str]:
        _registered(*MODULES)
        return [*_COMMANDS, *_GROUPS]

    def build(self, name: str) -> Any:
        # The module that defines `name`, then (a name missing from COMMAND_MODULES) all of them.
        for modules in ([COMMAND_MODULES[name]] if name in COMMAND_MODULES else [], list(MODULES)):
            _registered(*modules)
            if name in _COMMANDS:
                return build_command(_COMMANDS[name], app)
            if name in _GROUPS:
                return build_group(_GROUPS[name], app)
        return None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv or os.environ.get("ANOMALY_DEBUG") == "1"
        handlers = {}
        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:
                handlers[signum] = signal.signal(signum, _terminate)
            except ValueError:  # not the main thread (a test runner's worker): leave signals alone
                pass
        try:
            code = super().main(args=argv, prog_name=prog_name or PROG, complete_var=complete_var,
                                standalone_mode=False, **extra)
        except _click.exceptions.NoArgsIsHelpError as exc:
            print(exc.format_message(), file=sys.stderr)
            code = ExitCode.USAGE
        except _click.exceptions.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            say(f"error: {exc.format_message()}{hint}")
            code = ExitCode.USAGE
        except _click.exceptions.ClickException as exc:
            say(f"error: {exc.format_message()}")
            code = exc.exit_code
        except OutputClosed:
            # `anomaly ... | head`: the reader has what it wanted; like other Unix tools, stop quietly.
            _silence_stdout()
            code = 128 + signal.SIGPIPE
        except AnomalyError as exc:
            if debug:
                traceback.print_exc()
            say(f"error: {exc}")
            code = exit_code_for_error(exc)
        except (KeyboardInterrupt, typer.Abort):
            say("interrupted")
            code = 130
        except Terminated as exc:
            say(f"terminated ({signal.Signals(exc.signum).name})")
            code = 128 + exc.signum
        except Exception as exc:  # an unexpected failure still ends in one line
            if debug:
                traceback.print_exc()
            say(f"error: {type(exc).__name__}: {exc}" + ("" if debug else " (run with --debug for the traceback)"))
            code = exit_code_for_error(exc)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        if not standalone_mode:
            return code
        sys.exit(int(code or 0))


app.info.cls = AnomalyGroup

# Each module adds its commands to the apps it imports; `anomaly scan ...` imports the one that
# defines scan (a name missing here is still found, only slower). In this order, `anomaly --help`
# lists the commands as Typer would.
MODULES = {"admin": ("db", "load"), "alerts": ("alerts",), "configure": ("config",), "ml": ("evaluate", "train"),
           "report": ("report",), "scan": ("scan", "demo"), "watch": ("watch",)}
COMMAND_MODULES = {name: module for module, names in MODULES.items() for name in names}
_COMMANDS: dict[str, Any] = {}  # name -> typer.models.CommandInfo
_GROUPS: dict[str, Any] = {}  # name -> typer.models.TyperInfo


def _registered(*modules: str) -> None:
    """Import these command modules and take what they registered on `app` from it: Typer would
    build all of it (reading every signature) on each start; AnomalyGroup builds the one asked for."""
    for module in modules:
        importlib.import_module(f"{__name__}.{module}")
    for info in app.registered_commands:
        _COMMANDS[info.name or typer.main.get_command_name(info.callback.__name__)] = info  # type: ignore[union-attr]
    _GROUPS.update((info.name, info) for info in app.registered_groups)
    app.registered_commands.clear()
    app.registered_groups.clear()


_registered()  # the groups apps.py declares


def main() -> None:
    """Console-script entry point."""
    app()
