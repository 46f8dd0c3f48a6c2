"""`python -m vmaptune ...`: the `vmaptune` command (vmaptune/cli.py)."""

import sys

from vmaptune.cli import main

sys.exit(main())
