""":class:`CovLasso`, the scikit-learn estimator of the package's CovLasso solver.

It is a thin layer over the functions of :mod:`neudep_utils.covlasso` (one home for the
numerics): the moments come from :func:`neudep_utils.moments.second_moment`, a support size k
from :func:`~neudep_utils.covlasso.solve_k` (the k-search the study's folds use), a relative
penalty from :func:`~neudep_utils.covlasso.solve` with ``lam_ratio``, the optional least-squares
refit from :func:`~neudep_utils.covlasso.refit`.

Example::

    import numpy as np
    from neudep_utils import CovLasso

    X = np.load("logits.npy")                       # (n_images, n_classes)
    est = CovLasso(k=3, targets=[0, 1]).fit(X)
    est.coef_[0].nonzero()                          # the partners of class 0
    est.score(X_heldout)                            # mean held-out R^2 over the targets
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import moments as _moments
from . import _validate as V
from .api import refit as _refit
from .api import solve
from .ksearch import solve_k

__all__ = ["DEFAULT_K", "CovLasso", "check_logits"]

#: Support size used when neither ``k`` nor ``lam_ratio`` is given.
DEFAULT_K = 10
#: A target whose variance (its diagonal entry of ``S``) is at most this fraction of the largest
#: is constant on the fit data: there is nothing to explain, it gets no partners.
CONSTANT_RTOL = 1e-12


class CovLasso(BaseEstimator):
    """Sparse linear dependencies among logits: each target logit as a Lasso of the others.

    For every target category ``i`` it solves, on the moment matrix ``S`` of the logits
    (centred covariance when ``center``, else the second moment ``E[f f^T]``),

        min_theta  E[(f_i - theta^T f)^2] + lam ||theta||_1,   theta_i = 0,

    with a duality-gap certificate per target, either at a penalty relative to each target's
    ``lam_max`` (``lam_ratio``) or at the penalty whose support size is closest to ``k``.

    Parameters
    ----------
    k : int, optional
        Target support size (number of partners) per target; lam is searched per target (a
        warm-started path plus bisection). Give at most one of ``k`` and ``lam_ratio``; with
        neither, ``k = 10`` (capped at ``n_classes - 1``).
    lam_ratio : float, optional
        Penalty as a fraction of each target's ``lam_max`` (``0 < lam_ratio``; at 1 and above
        every coefficient is 0; 0 is least squares).
    center : bool, default True
        Fit on the centred covariance, with intercepts ``mu_i - theta^T mu``; ``False`` fits on
        the uncentred second moment, without intercept (the paper's form).
    refit : bool, default False
        Replace the (shrunk) Lasso coefficients by least squares on their support.
    targets : sequence of int, optional
        Target categories to fit (default: all ``n_classes``).
    tol : float, default 1e-8
        Relative duality-gap tolerance of every solve.

    Attributes
    ----------
    coef_ : ndarray, shape (n_targets, n_classes)
        Row ``t`` is theta of target ``targets_[t]`` (zero at the target itself, so with all
        targets fitted it is (n_classes, n_classes) with a zero diagonal).
    intercept_ : ndarray, shape (n_targets,)
        ``mean_[targets_] - coef_ @ mean_`` when ``center``, else 0.
    support_ : ndarray of bool, shape (n_targets, n_classes)
        ``coef_ != 0``.
    lam_ : ndarray, shape (n_targets,)
        Absolute penalty of each target's solution.
    lam_max_ : ndarray, shape (n_targets,)
        Smallest penalty giving theta = 0, per target.
    duality_gap_ : ndarray, shape (n_targets,)
        Duality gap of the Lasso solution (objective units, before any refit).
    targets_ : ndarray of int, shape (n_targets,)
        The fitted targets.
    k_ : ndarray of int, shape (n_targets,)
        Support size reached per target (0 for a target that is constant on the fit data).
    k_requested_ : int or None
        The support size the fit aimed at (``k``, or :data:`DEFAULT_K` capped at
        ``n_classes - 1`` when neither ``k`` nor ``lam_ratio`` is given); ``None`` with
        ``lam_ratio``. A target whose ``k_`` differs is reported by a warning.
    mean_ : ndarray, shape (n_classes,)
        Mean logits of the fit data (zeros when unknown).
    covariance_ : ndarray, shape (n_classes, n_classes)
        The moment matrix ``S`` fitted.
    n_samples_ : int or None
        Number of logit vectors behind ``S`` (``None`` when not given to :meth:`fit_moments`).
    n_features_in_ : int
        Number of classes (logit columns).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 6))
    >>> X[:, 0] = X[:, 1] - 2 * X[:, 2] + 0.01 * rng.standard_normal(500)
    >>> est = CovLasso(k=2, targets=[0]).fit(X)
    >>> np.flatnonzero(est.coef_[0]).tolist()
    [1, 2]
    """

    def __init__(self, k: int | None = None, lam_ratio: float | None = None, center: bool = True,
                 refit: bool = False, targets: Sequence[int] | None = None, tol: float = 1e-8):
        self.k = k
        self.lam_ratio = lam_ratio
        self.center = center
        self.refit = refit
        self.targets = targets
        self.tol = tol

    # -----------------------------------------------------------------------------------------
    # fitting

    def fit(self, X, y=None) -> CovLasso:
        """Fit the dependencies of the targets on logits ``X``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_classes)
            Logit vectors, one row per image (any real dtype; computed in float64).
        y : None
            Ignored (scikit-learn API).

        Returns
        -------
        self : CovLasso
            The fitted estimator.

        Raises
        ------
        ValueError
            ``X`` not 2-D, with fewer than 2 rows or 2 columns, or with NaN/inf; bad parameters.
        """
        X = _check_logits(self, X, reset=True)
        S = _moments.second_moment(X, center=bool(self.center))
        return self._fit_S(S, X.mean(axis=0), X.shape[0], psd_checked=True)

    def fit_moments(self, S, mean=None, count=None) -> CovLasso:
        """Fit on a moment matrix instead of logits (e.g. streamed sums of a huge folder).

        Parameters
        ----------
        S : array_like, shape (n_classes, n_classes)
            Symmetric PSD moment matrix, of the kind ``center`` says: the centred covariance
            (``center=True``) or the second moment ``E[f f^T]`` (``center=False``).
        mean : array_like, shape (n_classes,), optional
            Mean logits behind ``S`` (gives the intercepts when ``center``; without it they are
            0 and :meth:`predict` expects centred logits).
        count : int, optional
            Number of logit vectors behind ``S`` (recorded as ``n_samples_``).

        Returns
        -------
        self : CovLasso
            The fitted estimator.
        """
        S = V.check_S(S)
        n = S.shape[0]
        if n < 2:
            raise ValueError(f"S is {n}x{n}; the CovLasso needs at least 2 classes")
        if hasattr(self, "feature_names_in_"):  # of an earlier fit(DataFrame): S has no names
            del self.feature_names_in_
        if mean is None:
            mu = np.zeros(n)
        else:
            mu = np.asarray(mean, dtype=np.float64).reshape(-1)
            if mu.shape != (n,) or not np.all(np.isfinite(mu)):
                raise ValueError(f"mean must be a finite vector of length n_classes = {n}; got "
                                 f"shape {np.shape(mean)}")
        if count is not None and not (isinstance(count, Real) and np.isfinite(count)
                                      and count > 0):
            raise ValueError(f"count must be a positive number of samples; got {count!r}")
        return self._fit_S(S, mu, None if count is None else int(count), psd_checked=False)

    def _params(self, n: int) -> tuple[int | None, float | None]:
        """Validated ``(k, lam_ratio)``: exactly one is not None."""
        k, r = self.k, self.lam_ratio
        if k is not None and r is not None:
            raise ValueError(f"give exactly one of k (support size) and lam_ratio (penalty "
                             f"relative to lam_max); got k={k!r} and lam_ratio={r!r}")
        if r is not None:
            if isinstance(r, bool) or not isinstance(r, Real) or not np.isfinite(r) or r < 0:
                raise ValueError(f"lam_ratio must be a finite number >= 0; got {r!r}")
            return None, float(r)
        if k is None:
            return min(DEFAULT_K, n - 1), None
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(f"k must be a positive integer support size; got {k!r}")
        if k > n - 1:
            raise ValueError(f"k={k} exceeds the n_classes - 1 = {n - 1} possible partners; "
                             "choose a smaller k")
        return int(k), None

    def _fit_S(self, S: np.ndarray, mu: np.ndarray, count: int | None,
               psd_checked: bool) -> CovLasso:
        n = S.shape[0]
        k, ratio = self._params(n)
        if not (isinstance(self.tol, Real) and np.isfinite(self.tol) and self.tol > 0):
            raise ValueError(f"tol must be a positive number; got {self.tol!r}")
        t = V.check_targets(self.targets, n)
        if t.size == 0:
            raise ValueError("targets is empty; give at least one target index (or None: all)")
        if not psd_checked:
            V.check_psd(S)
        diag = np.diag(S)
        live = diag[t] > CONSTANT_RTOL * max(float(diag.max()), 0.0)
        _warn_constant(t[~live])
        coef = np.zeros((t.size, n))
        lam, gap, lmax = np.zeros(t.size), np.zeros(t.size), np.zeros(t.size)
        kk = np.zeros(t.size, dtype=np.int64)
        if live.any():
            tl = t[live]
            if k is not None:
                sol = solve_k(S, [k], tl, tol=float(self.tol), psd_checked=True)[k]
                coef[live], lam[live], gap[live], lmax[live], kk[live] = (
                    sol.dense(n), sol.lam, sol.gap, sol.lam_max, sol.k)
                _warn_k(k, tl, np.asarray(sol.k))
            else:
                res = solve(S, lam_ratio=ratio, targets=tl, tol=float(self.tol), psd_tol=None)
                coef[live], lam[live], gap[live], lmax[live], kk[live] = (
                    res.coef, res.lam, res.gap, res.lam_max, res.support_size)
        if self.refit:
            coef = _refit(S, coef, t, psd_tol=None)
        self.coef_ = coef
        self.intercept_ = (mu[t] - coef @ mu) if self.center else np.zeros(t.size)
        self.support_ = coef != 0
        self.lam_ = np.asarray(lam, dtype=np.float64)
        self.lam_max_ = np.asarray(lmax, dtype=np.float64)
        self.duality_gap_ = np.asarray(gap, dtype=np.float64)
        self.targets_ = t
        self.k_ = np.asarray(kk, dtype=np.int64)
        self.k_requested_ = k
        self.mean_ = mu
        self.covariance_ = S
        self.n_samples_ = count
        self.n_features_in_ = n
        return self

    # -----------------------------------------------------------------------------------------
    # using the fit

    def _check_fitted_X(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return _check_logits(self, X, reset=False)

    def predict(self, X) -> np.ndarray:
        """Rebuild the target logits from their partners.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_classes)
            Logit vectors.

        Returns
        -------
        ndarray, shape (n_samples, n_targets)
            ``X @ coef_.T + intercept_``: column ``t`` rebuilds ``X[:, targets_[t]]``.
        """
        X = self._check_fitted_X(X)
        return X @ self.coef_.T + self.intercept_[None, :]

    def score(self, X, y=None, sample_weight=None) -> float:
        """Mean coefficient of determination R^2 of the rebuilt target logits.

        On held-out logits this is the held-out R^2 of the dependencies, averaged uniformly
        over the targets (scikit-learn's ``r2_score``: a constant target column counts 1 when
        rebuilt exactly, else 0).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_classes)
            Logit vectors (held out from the fit for an honest score).
        y : None
            Ignored (the targets are columns of ``X``).
        sample_weight : array_like, shape (n_samples,), optional
            Weights of the rows.

        Returns
        -------
        float
            Mean R^2 over the targets.
        """
        X = self._check_fitted_X(X)
        if X.shape[0] < 2:
            raise ValueError("score needs at least 2 rows of X (R^2 of one sample is undefined)")
        return float(r2_score(X[:, self.targets_], self.predict(X), sample_weight=sample_weight,
                              multioutput="uniform_average"))

    def r2_per_target(self, X) -> np.ndarray:
        """R^2 of each target's rebuilt logit on ``X``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_classes)
            Logit vectors.

        Returns
        -------
        ndarray, shape (n_targets,)
            R^2 per target (``r2_score`` with ``multioutput="raw_values"``).
        """
        X = self._check_fitted_X(X)
        if X.shape[0] < 2:
            raise ValueError("R^2 needs at least 2 rows of X")
        return np.asarray(r2_score(X[:, self.targets_], self.predict(X),
                                   multioutput="raw_values"))

    def partners(self, target: int) -> list[tuple[int, float]]:
        """The partners of one fitted target by decreasing |coefficient|.

        Parameters
        ----------
        target : int
            A category in ``targets_``.

        Returns
        -------
        list of (int, float)
            ``(partner category, coefficient)`` pairs.
        """
        check_is_fitted(self, "coef_")
        rows = np.flatnonzero(self.targets_ == int(target))
        if rows.size == 0:
            raise ValueError(f"target {target} was not fitted; fitted targets: "
                             f"{self.targets_[:10].tolist()}{' ...' if self.targets_.size > 10 else ''}")
        c = self.coef_[rows[0]]
        nz = np.flatnonzero(c)
        o = nz[np.argsort(-np.abs(c[nz]), kind="stable")]
        return [(int(j), float(c[j])) for j in o]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.allow_nan = False
        return tags


def _warn_constant(dead: np.ndarray) -> None:
    """Warn about targets that are constant on the fit data (they get no partners)."""
    if dead.size:
        warnings.warn(f"{dead.size} target(s) are constant on the fit data (zero variance: "
                      f"{dead[:8].tolist()}{' ...' if dead.size > 8 else ''}): nothing to "
                      "explain, so they get no partners (coefficients 0, k_ 0)", UserWarning,
                      stacklevel=4)


def _warn_k(k: int, targets: np.ndarray, reached: np.ndarray) -> None:
    """Warn about targets whose support differs from the requested ``k``."""
    off = np.flatnonzero(reached != k)
    if off.size:
        eg = ", ".join(f"target {int(targets[i])}: {int(reached[i])}" for i in off[:3])
        warnings.warn(f"k={k} was not reached for {off.size} of {targets.size} target(s) ({eg}"
                      f"{' ...' if off.size > 3 else ''} partners: the support closest to {k} "
                      "along the penalty path; fewer means the logits do not allow more, e.g. "
                      "their rank); k_ holds the support of each", UserWarning, stacklevel=4)


def _nonfinite_rows(X: np.ndarray) -> str | None:
    """'N row(s) hold NaN or inf (e.g. row i)' for a numeric 2-D array, else ``None``."""
    bad = ~np.isfinite(X).all(axis=1)
    if not bad.any():
        return None
    return (f"{int(bad.sum())} row(s) hold NaN or inf (e.g. row {int(np.flatnonzero(bad)[0])}); "
            "drop or fix them")


def check_logits(X, what: str = "X") -> np.ndarray:
    """``X`` as a finite float64 ``(n_samples, n_classes)`` array with at least 2 rows and 2
    columns, or a ``ValueError`` that starts with ``what`` (e.g. ``--logits X.npy``).

    Parameters
    ----------
    X : array_like
        Logits, one row per image (a NumPy array, a torch tensor, a DataFrame...).
    what : str, default "X"
        How the input is named in errors.

    Returns
    -------
    ndarray
        ``X`` in float64.
    """
    if hasattr(X, "detach"):  # a torch tensor
        X = X.detach().cpu().numpy()
    A = np.asarray(X)
    if A.dtype == object or not (np.issubdtype(A.dtype, np.floating)
                                 or np.issubdtype(A.dtype, np.integer)):
        raise ValueError(f"{what}: dtype {A.dtype} is not numeric; give real-valued logits")
    if A.ndim != 2:
        raise ValueError(f"{what}: shape {A.shape}; need a 2-D (n_images, n_classes) array")
    if A.shape[0] < 2 or A.shape[1] < 2:
        raise ValueError(f"{what}: shape {A.shape}; need at least 2 images and 2 classes")
    A = A.astype(np.float64)
    bad = _nonfinite_rows(A)
    if bad:
        raise ValueError(f"{what}: {bad}")
    return A


def _check_logits(est: CovLasso, X, reset: bool) -> np.ndarray:
    """``X`` as a finite float64 (n_samples, n_classes) array (scikit-learn's ``validate_data``:
    its messages for 1-D, sparse, complex, object, empty or non-finite input; a non-finite
    NumPy array is named by its first bad row), or a ``ValueError`` naming it. ``reset``: a fit
    (at least 2 rows and 2 columns; sets ``n_features_in_``), else a check against the fitted
    number of classes."""
    if hasattr(X, "detach"):  # a torch tensor
        X = X.detach().cpu().numpy()
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) != 2:  # one line, not the array dump
        raise ValueError(f"Expected 2D array, got {len(shape)}D array instead: X must be "
                         f"(n_samples, n_classes) logits, got shape {tuple(shape)}; Reshape your "
                         "data, e.g. X.reshape(1, -1) for one logit vector")
    if isinstance(X, np.ndarray) and X.dtype.kind in "fiu" and X.size:
        bad = _nonfinite_rows(X)
        if bad:
            raise ValueError(f"Input X contains NaN or inf: {bad}")
    return validate_data(est, X, reset=reset, dtype=np.float64,
                         ensure_min_samples=2 if reset else 1,
                         ensure_min_features=2 if reset else 1)
