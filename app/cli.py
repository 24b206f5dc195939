"""The command-line twin of the window: `llama-desk <command>` on the same engine, store and hub."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from app import APP_ID, APP_NAME, __version__
from app.errors import UserError

log = logging.getLogger(__name__)

# Each name is a module in app/commands/ with register(subparsers).
COMMANDS = ("chat", "serve", "history", "models", "download", "token", "bench", "worker",
            "engines")


class Parser(argparse.ArgumentParser):
    """argparse with one error line, like every other error (subcommands inherit it)."""

    def error(self, message: str) -> NoReturn:
        from app.terminal import clean

        self.exit(2, f"{APP_ID}: error: {clean(message, one_line=True)} "
                     f"(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=APP_ID,
        description=f"{APP_NAME}: private, local chat with Llama-2-chat GGUF models. "
        "With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="echo warnings to stderr")
    parser.add_argument(
        "--self-test", action="store_true",
        help="start offscreen, load the starter model, generate, use a temporary store, exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"app.commands.{name}").register(sub)
    return parser


def error_line(message: str) -> None:
    """Print one readable error line on stderr (control characters from data made visible)."""
    from app.terminal import clean

    print(f"{APP_ID}: error: {clean(message, one_line=True)}", file=sys.stderr)


def warning_line(message: str) -> None:
    """Print one readable warning line on stderr."""
    from app.terminal import clean

    print(f"{APP_ID}: warning: {clean(message, one_line=True)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for `llama-desk` and `python main.py`. Returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv:
        args = build_parser().parse_args(argv)
    else:  # the window: no need to import every command's module first (~0.1 s of start-up)
        args = argparse.Namespace(command=None, self_test=False, verbose=False)
    from app import logs, notices

    previous_sink = notices.sink
    if args.command is not None or args.self_test:  # the window shows notices as banners
        notices.sink = warning_line
    try:
        # The window routes llama.cpp's lines where it first uses llama.cpp, off its main thread.
        logs.setup(verbose=args.verbose,
                   route_llama=args.command is not None or bool(args.self_test))
        if args.self_test:
            from app.selftest import run_self_test

            return run_self_test()
        if args.command is None:
            return gui_main()
        return int(args.func(args) or 0)
    except UserError as err:
        error_line(str(err))
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug: keep the traceback in the log, show one line
        log.exception("unexpected error in %s", args.command)
        from app import paths

        try:
            where = f" (details in {paths.logs_dir()}/llama-desk.log)"
        except Exception:
            where = ""
        error_line(f"unexpected {type(err).__name__}: {err}{where}")
        return 1
    finally:
        notices.sink = previous_sink


def gui_main() -> int:
    """Open the window (also the `llama-desk-gui` entry point, hence the logging set-up)."""
    from app import logs
    from app.ui.application import run_app

    logs.setup()
    return run_app()


if __name__ == "__main__":
    sys.exit(main())
