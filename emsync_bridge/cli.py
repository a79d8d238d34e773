"""`emsync-bridge` command line: a thin shell over the library.

Each subcommand is a function registered with `@command` (`emsync_bridge.commands.registry`) in
the module of its area under `emsync_bridge/commands/`. Library code raises `EmsyncError` for user
mistakes; `main` prints it as one line and exits 2 (`errors.run_main`). Outputs are checked before
any work (`emsync_bridge.paths`); an `OSError` that still reaches `main` is one line too, exit 1.
No library module imports this one (only `python -m emsync_bridge` and the `emsync-bridge` script
run it).
"""

from __future__ import annotations

import argparse

from emsync_bridge import commands  # noqa: F401  (importing the package registers every subcommand)
from emsync_bridge.commands.registry import COMMANDS
from emsync_bridge.errors import OneLineParser, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="emsync-bridge", description=__doc__.splitlines()[0])
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
    return run_main(lambda: args._run(args), verbose=args.verbose)


if __name__ == "__main__":
    import sys

    sys.exit(main())
