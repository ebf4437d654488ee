"""``python -m neudep_utils``: the command line (:mod:`neudep_utils.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
