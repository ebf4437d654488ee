"""CovLasso dependencies at requested support sizes k, fitted once and cached on disk.

:func:`fit_covlasso_k` runs the CovLasso (:mod:`neudep_utils.covlasso`) for all targets in
batched, warm-started calls along a decreasing lam grid (relative to each target's ``lam_max``),
then refines lam by bisection so that each target's support size is as close as possible to each
requested k. :func:`fit_covlasso_k_cached` memoises it on disk, keyed by the fold's moments, the
request and the solver's source.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import covlasso as cl
from .._io import atomic_save_npz, load_npz_checked
from . import depset as _depset_module
from .depset import DepSet, make_depset
from .folds import Fold

__all__ = ["fit_covlasso_k", "fit_covlasso_k_cached", "load_depsets", "save_depsets"]


def fit_covlasso_k(fold: Fold, ks: Sequence[int],
                   targets: np.ndarray | Sequence[int] | None = None,
                   candidates: np.ndarray | None = None, *,
                   ratios: np.ndarray | None = None, refine: int = 4, tol: float = 1e-6,
                   max_iter: int = 20_000, psd_checked: bool = False,
                   progress: bool = False) -> dict[int, DepSet]:
    """CovLasso dependencies of every target with support size closest to each ``k`` in ``ks``.

    The k-search is :func:`neudep_utils.covlasso.solve_k` on ``fold.S`` (batched, warm-started
    lam path, then bisection); this wraps its solutions as :class:`DepSet` objects with the
    fold's intercepts. The coefficients are the CovLasso solution itself (shrunk); use
    :func:`least_squares_on_support` for a refit.

    Parameters
    ----------
    fold : Fold
        The moments to fit (``fold.S``) and their means (intercepts).
    ks : sequence of int
        Requested support sizes.
    targets : sequence of int, optional
        Target columns (default: all).
    candidates : ndarray of bool, shape (n,) or (T, n), optional
        Allowed partner columns.
    ratios, refine, tol, max_iter, psd_checked, progress
        As in :func:`neudep_utils.covlasso.solve_k` (``psd_checked``: the caller knows
        ``fold.S`` is a moment matrix).

    Returns
    -------
    dict of int to DepSet
        One dependency set per distinct k.
    """
    sols = cl.solve_k(fold.S, ks, targets, candidates, ratios=ratios, refine=refine, tol=tol,
                      max_iter=max_iter, psd_checked=psd_checked, progress=progress)
    return {k: make_depset(fold, s.targets, s.cols, s.coef, "CovLasso", k_requested=k,
                           lam=s.lam, lam_ratio=s.lam_ratio, gap=s.gap, objective=s.objective)
            for k, s in sols.items()}


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if p is None:
            h.update(b"none")
        elif isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(str((a.dtype, a.shape)).encode())
            h.update(a.tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()


_DEPSET_ARRAYS = ("targets", "cols", "coef", "intercept", "lam", "lam_ratio", "gap", "objective")


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """sha256 of the source of the CovLasso package and of the modules that build a DepSet."""
    h = hashlib.sha256()
    files = sorted(Path(cl.__file__).parent.glob("*.py")) + [Path(__file__),
                                                            Path(_depset_module.__file__)]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def save_depsets(path: str | os.PathLike[str], deps: dict[int, DepSet]) -> None:
    """Write ``{k: DepSet}`` to one ``.npz`` (atomic)."""

    arrays = {}
    for k, d in deps.items():
        for name in _DEPSET_ARRAYS:
            v = getattr(d, name)
            if v is not None:
                arrays[f"{k}__{name}"] = v
        arrays[f"{k}__meta"] = np.array([d.n_total, -1 if d.k_requested is None else d.k_requested])
        arrays[f"{k}__method"] = np.array(d.method)
    atomic_save_npz(Path(path), **arrays)


def load_depsets(path: str | os.PathLike[str]) -> dict[int, DepSet] | None:
    """Read what :func:`save_depsets` wrote; ``None`` when missing or unreadable."""

    z = load_npz_checked(Path(path))
    if z is None:
        return None
    out = {}
    for k in sorted({int(key.split("__")[0]) for key in z}):
        g = {name: z.get(f"{k}__{name}") for name in _DEPSET_ARRAYS}
        n_total, kr = (int(v) for v in z[f"{k}__meta"])
        out[k] = DepSet(n_total=n_total, method=str(z[f"{k}__method"]),
                        k_requested=None if kr < 0 else kr, **g)
    return out


def fit_covlasso_k_cached(fold: Fold, ks: Sequence[int],
                          targets: np.ndarray | Sequence[int] | None = None,
                          candidates: np.ndarray | None = None, *,
                          cache_dir: str | os.PathLike[str] | None = None,
                          **kw) -> dict[int, DepSet]:
    """:func:`fit_covlasso_k`, memoised on disk under ``cache_dir`` (None: no cache).

    The key is a sha256 of the fold's moments (S, mu, centring), ks, targets, candidates and the
    keyword arguments, so notebooks sharing an ``output_dir`` reuse each other's fits.
    """
    if cache_dir is None:
        return fit_covlasso_k(fold, ks, targets, candidates, **kw)

    t = None if targets is None else cl._validate.check_targets(targets, fold.S.shape[0])
    c = None if candidates is None else np.asarray(candidates, bool)
    # the code that produces the fits is part of the key: a changed solver never serves old fits
    key = _digest("covlasso_k-v2", _code_digest(), fold.S, fold.mu, fold.center,
                  tuple(sorted(set(ks))), t, c,
                  sorted((a, v) for a, v in kw.items() if a not in ("progress", "psd_checked")))
    path = Path(cache_dir) / f"deps-{key[:24]}.npz"
    got = load_depsets(path)
    if got is not None:
        return got
    out = fit_covlasso_k(fold, ks, targets, candidates, **kw)
    save_depsets(path, out)
    return out


# --------------------------------------------------------------------------------------------
# baselines at equal k
