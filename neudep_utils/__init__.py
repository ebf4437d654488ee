"""neudep_utils: the tested core of the neudep reproducibility study.

The subpackages follow the data flow, each importing only from the stages before it::

    images -> models -> cache -> moments -> covlasso / dependencies -> metrics -> findings
           -> verdicts -> report

``errors`` (every exception), ``_io`` (atomic, checksummed files), ``_dist`` (torchrun) and
``profiles`` (the study's settings) sit beside them; ``cli`` is the command line. The map with
one line per module is ``ARCHITECTURE.md`` at the repository root.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
