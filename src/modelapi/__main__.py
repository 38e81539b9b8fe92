"""`python -m modelapi` runs the CLI."""

import sys

from modelapi.cli import main

sys.exit(main())
