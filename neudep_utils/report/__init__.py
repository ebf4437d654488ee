"""The report stage: reads the notebooks' results files (:mod:`neudep_utils.record`) back and
draws what the book shows; it comes after the findings and nothing but the notebooks and the
book's build imports it.

- :mod:`.plots`, :mod:`.figures`: the notebooks' multi-panel figures;
- :mod:`.readme`: the summary of a profile's results, the answer paragraph and the claims
  table (README and book); :mod:`.claims_figure`: the summary figure;
- :mod:`.pages`: every generated page of the book (``python -m neudep_utils.report.pages``);
  :mod:`.reproducibility`: the reproducibility page; :mod:`.atlas`: the dependency atlas;
- :mod:`.pdf`: the book as one PDF (``make pdf``).
"""

from __future__ import annotations
