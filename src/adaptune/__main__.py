"""`python -m adaptune`: the `adaptune` command."""

import sys

from adaptune.cli import main

sys.exit(main())
