"""neudep_utils: the tested core of the neudep reproducibility study.

The data path is ``images -> cache -> S -> dependencies -> metrics -> verdict -> book``; the
modules, one concept each, are listed in ``ARCHITECTURE.md`` at the repository root.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
