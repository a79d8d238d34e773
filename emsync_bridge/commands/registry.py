"""The subcommand registry: each module in `emsync_bridge.commands` registers its subcommands here
with `@command`, and `emsync_bridge.cli` builds the parser from `COMMANDS`. Nothing here imports
the CLI, so the CLI stays a leaf that nothing imports."""

from __future__ import annotations

COMMANDS = []  # (name, help, run); run.add_arguments(parser) is optional


def command(name: str, help: str):
    """Register `fn(args) -> int|None` as a subcommand; `fn.add_arguments(parser)` is optional."""

    def register(fn):
        COMMANDS.append((name, help, fn))
        return fn

    return register
