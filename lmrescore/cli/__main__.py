"""python3 -m lmrescore.cli: the same as the lmrescore command."""

import sys

from lmrescore.cli import main

sys.exit(main())
