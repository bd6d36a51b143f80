"""`python -m rnnlab` = the `rnnlab` command."""

import sys

from .cli import main

sys.exit(main())
