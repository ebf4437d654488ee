"""neudep_utils: the tested core of the neudep reproducibility study.

The modules and subpackages are stages of one data flow. Each imports only stages to its left
(at module level and inside functions alike; imports only for type checkers do not count);
``a / b`` share a rank and import neither each other. ``tests/test_layout.py`` checks the
import graph against this order, which ARCHITECTURE.md states too::

    errors -> _io / _dist / _params / locations / timing -> images -> models -> moments -> cache
      -> covlasso -> dependencies -> metrics -> verdicts -> profiles -> origins / record
      -> findings -> report -> cli -> __main__

``errors`` (every exception), ``_io`` (atomic, checksummed files), ``_dist`` (torchrun),
``_params`` (the notebook-parameter declarations), ``locations`` (where the data and models
are) and ``timing`` (where a run's time goes) are shared; ``profiles`` holds the study's
settings (with the rules' defaults); ``origins`` fetches and verifies the data (``make data``);
``record`` is the results file each notebook writes (``findings`` fill it, ``report`` reads
it); ``cli`` is the command line. This root module only names :class:`CovLasso`
(``neudep_utils.CovLasso``, loaded on first use), the scikit-learn estimator for any logits,
and the version. The map with one line per module is ``ARCHITECTURE.md`` at the repository
root.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["CovLasso", "__version__"]


def _version() -> str:
    """The installed distribution's version (package metadata), else the source tree's."""
    try:
        return version("neudep-utils")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0.1.0+unknown"


__version__ = _version()


def __getattr__(name: str):
    # ``from neudep_utils import CovLasso`` without importing scikit-learn and numba at
    # ``import neudep_utils``
    if name == "CovLasso":
        from .covlasso.estimator import CovLasso  # noqa: PLC0415 - scikit-learn, numba

        return CovLasso
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
