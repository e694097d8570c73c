"""python -m elasticzo: the command line."""

import sys

from elasticzo.cli import main

sys.exit(main())
