"""`emsync-bridge` command line: a thin shell over the library.

Each subcommand is an `add_*` function that registers its arguments and a `run` callable.
Library code raises `EmsyncError` for user mistakes; `main` prints it as one line and exits 2.
Outputs are checked before any work (`emsync_bridge.paths`); an `OSError` that still reaches
`main` (a disk filling up mid-write, a file removed under us) is one line too, exit 1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from emsync_bridge.errors import EmsyncError, one_line

COMMANDS = []  # (name, help, add_arguments, run)


def command(name: str, help: str):
    """Register `fn(args) -> int|None` as a subcommand; `fn.add_arguments(parser)` is optional."""

    def register(fn):
        COMMANDS.append((name, help, fn))
        return fn

    return register


def _load_commands() -> None:
    # Each area keeps its subcommands next to its code; importing registers them.
    from emsync_bridge import commands  # noqa: F401


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other error here (the usage is in --help)."""

    def error(self, message: str):
        self.exit(2, one_line(f"{self.prog}: error: {message} (see {self.prog} --help)") + "\n")


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    parser = _Parser(prog="emsync-bridge", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, fn in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if hasattr(fn, "add_arguments"):
            fn.add_arguments(p)
        p.set_defaults(_run=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except EmsyncError as exc:
        print(one_line(f"error: {exc}"), file=sys.stderr)
        return 2
    except OSError as exc:
        from emsync_bridge.paths import os_error_text

        print(one_line(f"error: {os_error_text(exc)}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the imported module so subcommands register with the same registry.
    from emsync_bridge import cli as _cli

    sys.exit(_cli.main())
