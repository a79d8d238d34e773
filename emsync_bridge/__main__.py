"""`python -m emsync_bridge` runs the CLI."""

import sys

from emsync_bridge.cli import main

sys.exit(main())
