"""Trainwreck from a checkout: ``python main.py …`` is the installed ``trainwreck`` command.

The command itself lives in ``trainwreck/cli.py``; ``trainwreck --help`` lists what it does.
"""

import sys

from trainwreck.cli import main

if __name__ == "__main__":
    sys.exit(main())
