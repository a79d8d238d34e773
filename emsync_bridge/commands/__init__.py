"""Subcommand modules; importing this package registers every subcommand with the CLI.

One module per area so that parallel work does not collide: add a module and import it here.
Subcommands register with `@command` from `emsync_bridge.commands.registry` (never from the CLI).
"""

from emsync_bridge.commands import music  # noqa: F401
from emsync_bridge.commands import video  # noqa: F401
from emsync_bridge.commands import score  # noqa: F401
from emsync_bridge.commands import bridge  # noqa: F401
from emsync_bridge.commands import runtime  # noqa: F401
from emsync_bridge.commands import panel  # noqa: F401
