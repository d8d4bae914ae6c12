"""``python -m trainwreck``: the same command as ``trainwreck``."""

import sys

from trainwreck.cli import main

sys.exit(main())
