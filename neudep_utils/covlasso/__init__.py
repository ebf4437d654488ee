"""Covariance Lasso (CovLasso): batched, certified solver written in the logit moments alone.

For a target category ``i`` and a PSD moment matrix ``S`` (second moment ``E[f f^T]`` or centred
covariance), the CovLasso is

    min_theta  P(theta) = S_ii - 2 theta^T S[:, i] + theta^T S theta + lam * ||theta||_1

over ``theta`` with ``theta_i = 0`` and ``theta_j = 0`` outside an optional candidate mask. It is
``E[(f_i - theta^T f)^2] + lam ||theta||_1``. ``lam_max = max_j |2 S[j, i]|`` over the allowed ``j``
is the smallest ``lam`` with ``theta = 0``. Every solution carries a duality-gap certificate
(:mod:`.certificates`).

Layout
------
- :mod:`.api`: :func:`solve`, :func:`path`, :func:`lam_max`, :func:`relative_lams`, :func:`refit`,
  :func:`residual`, :func:`relative_residual` and the result classes (validation in
  :mod:`._validate`).
- :mod:`._kernels`: the numba working-set coordinate descent (the fast path), with
  :mod:`._anderson` (Anderson extrapolation) and :mod:`._linalg` (small SPD solves).
- :mod:`.ksearch`: :func:`solve_k`, the CovLasso at requested support sizes k (lam path plus
  bisection), and :func:`pack`.
- :mod:`.estimator`: :class:`CovLasso`, the scikit-learn estimator over these functions.
- :mod:`.certificates`: :func:`objective`, :func:`duality_gap` and the gap kernel.
- :mod:`.blocked`: :func:`.blocked.solve_blocks` for massive n (targets a block at a time, sparse
  results, float32 or memory-mapped S without a copy); :mod:`.sharded`: targets split over
  ``torchrun`` ranks or job-array tasks (``python -m neudep_utils.covlasso.sharded``).
- :mod:`.reference`: :func:`psd_factor`, :func:`solve_cvxpy`, :func:`solve_sklearn` (tests and
  benchmarks).
- The moment matrix itself (``S`` from logits or streamed sums) is built by
  :mod:`neudep_utils.moments`, its one home.
"""

from __future__ import annotations

from ._validate import PSD_RTOL, allowed_mask, check_psd
from .api import (
    CovLassoPath,
    CovLassoResult,
    lam_max,
    lstsq_on_support,
    path,
    refit,
    relative_lams,
    relative_residual,
    residual,
    solve,
)
from .certificates import duality_gap, objective
from .ksearch import KSolution, pack, solve_k
from .reference import psd_factor, solve_cvxpy, solve_sklearn

__all__ = [
    "PSD_RTOL",
    "CovLasso",
    "CovLassoPath",
    "CovLassoResult",
    "KSolution",
    "allowed_mask",
    "check_psd",
    "duality_gap",
    "lam_max",
    "lstsq_on_support",
    "objective",
    "pack",
    "path",
    "psd_factor",
    "refit",
    "relative_lams",
    "relative_residual",
    "residual",
    "solve",
    "solve_cvxpy",
    "solve_k",
    "solve_sklearn",
]


def __getattr__(name: str):
    # the estimator imports scikit-learn: loaded on first use, not with the solver
    if name == "CovLasso":
        from .estimator import CovLasso  # noqa: PLC0415 - scikit-learn on first use

        return CovLasso
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
