"""Stage 8 of the pipeline, the report: each notebook's results file, the figures the notebooks
share and the book's summary pages.

- :mod:`.results`: :func:`write_results` (numbers, claims, parameters, provenance), headline
  numbers and claim records.
- :mod:`.plots`: the multi-panel figures.
"""

from __future__ import annotations
