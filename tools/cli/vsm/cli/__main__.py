"""`python -m vsm.cli`: the same as the `vsm` console script."""

import sys

from vsm.cli.main import main

sys.exit(main())
