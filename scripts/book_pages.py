"""Write the book's summary pages from the notebooks' results files (``make book`` runs this
after the notebooks; the pages live in :mod:`neudep_utils.report.pages`)::

    python scripts/book_pages.py --profile smoke --output-dir outputs/smoke

is the same as ``python -m neudep_utils.report.pages ...`` (``--help`` lists the options).
"""

from __future__ import annotations

import sys

from neudep_utils.report.pages import main

if __name__ == "__main__":
    sys.exit(main())
