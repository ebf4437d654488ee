"""neudep_utils: the tested core of the neudep reproducibility study.

The subpackages follow the data flow, each importing only from the stages before it::

    images -> models -> cache -> moments -> covlasso / dependencies -> metrics -> findings
           -> verdicts -> report

``errors`` (every exception), ``_io`` (atomic, checksummed files), ``_dist`` (torchrun) and
``profiles`` (the study's settings) sit beside them; ``cli`` is the command line.
:class:`CovLasso` (``neudep_utils.CovLasso``) is the scikit-learn estimator for any logits. The map with
one line per module is ``ARCHITECTURE.md`` at the repository root.
"""

from __future__ import annotations

__all__ = ["CovLasso", "__version__"]


def _version() -> str:
    """The installed distribution's version (package metadata), else the source tree's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neudep-utils")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0.1.0+unknown"


__version__ = _version()


def __getattr__(name: str):
    # ``from neudep_utils import CovLasso`` without importing scikit-learn and numba at
    # ``import neudep_utils``
    if name == "CovLasso":
        from .covlasso.estimator import CovLasso

        return CovLasso
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
