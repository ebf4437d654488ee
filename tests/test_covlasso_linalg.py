"""The incremental Cholesky kernels behind the CovLasso Newton step, against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from neudep_utils.covlasso._kernels import new_factor, reserve_factor
from neudep_utils.covlasso._linalg import (
    chol_append,
    chol_append_rows,
    chol_delete,
    chol_solve,
)


def spd(m: int, rank: int | None = None, ridge: float = 0.0, seed: int = 0) -> np.ndarray:
    """B B^T (+ ridge * max diag * I); rank < m gives a nearly singular matrix once ridged."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((m, m if rank is None else rank)) * np.logspace(0, -3, m)[:, None]
    M = B @ B.T
    return M + ridge * np.max(np.diag(M)) * np.eye(m)


def build(M: np.ndarray, cap: int | None = None) -> np.ndarray:
    """Factor M by appending its coordinates one at a time; returns the (cap, cap) buffer."""
    m = M.shape[0]
    L = np.full((cap or m, cap or m), np.nan)
    for j in range(m):
        L[j, :j] = M[j, :j]
        assert chol_append(L, j, M[j, j], 0.0)
    return L


CASES = {
    "well_conditioned": lambda: spd(40, seed=1),
    "nearly_singular": lambda: spd(40, rank=12, ridge=1e-12, seed=2),
    "tiny_scale": lambda: 1e-150 * spd(25, seed=3),
    "huge_scale": lambda: 1e150 * spd(25, seed=4),
}


@pytest.mark.parametrize("name", list(CASES))
def test_append_matches_numpy_cholesky(name):
    M = CASES[name]()
    m = M.shape[0]
    L = np.tril(build(M, cap=m + 5)[:m, :m])
    scale = np.max(np.abs(M))
    # the reconstruction is accurate to rounding even when the factor itself is ill-determined
    assert np.max(np.abs(L @ L.T - M)) <= 1e-12 * scale
    if name == "well_conditioned":
        np.testing.assert_allclose(L, np.linalg.cholesky(M), rtol=1e-10, atol=1e-13)


def test_append_rejects_dependent_column_and_keeps_factor():
    rng = np.random.default_rng(5)
    B = rng.standard_normal((6, 4))
    M = B @ B.T  # rank 4: coordinate 5 is in the span of 0..4
    L = build(M[:5, :5] + 1e-9 * np.eye(5), cap=6)
    before = L[:5, :5].copy()
    L[5, :5] = M[5, :5]
    assert not chol_append(L, 5, M[5, 5], 1e-6 * M.max())
    np.testing.assert_array_equal(L[:5, :5], before)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_delete_matches_refactor(name, where):
    M = CASES[name]()
    m = M.shape[0]
    p = {"first": 0, "middle": m // 2, "last": m - 1}[where]
    L = build(M)
    chol_delete(L, m, p, np.empty(m))
    keep = np.delete(np.arange(m), p)
    Lr = np.tril(L[: m - 1, : m - 1])
    Mr = M[np.ix_(keep, keep)]
    assert np.max(np.abs(Lr @ Lr.T - Mr)) <= 1e-12 * np.max(np.abs(M))
    assert np.all(np.diag(Lr) > 0)


def test_many_deletes_and_appends_stay_accurate():
    """A support that shrinks and grows in turns, as in the Newton step, against a refactor."""
    rng = np.random.default_rng(6)
    M = spd(60, rank=45, ridge=1e-12, seed=7)
    cap = 60
    L = np.zeros((cap, cap))
    coords: list[int] = []
    work = np.empty(cap)
    for step in range(200):
        out = [j for j in range(60) if j not in coords]
        if coords and (rng.random() < 0.45 or not out):
            p = int(rng.integers(len(coords)))
            chol_delete(L, len(coords), p, work)
            coords.pop(p)
        else:
            j = int(rng.choice(out))
            m = len(coords)
            L[m, :m] = M[j, coords]
            if chol_append(L, m, M[j, j], 1e-15 * np.max(np.diag(M))):
                coords.append(j)
        m = len(coords)
        if m and step % 20 == 0:
            Lm = np.tril(L[:m, :m])
            Mc = M[np.ix_(coords, coords)]
            assert np.max(np.abs(Lm @ Lm.T - Mc)) <= 1e-11 * np.max(np.abs(M)), step


@pytest.mark.parametrize("name", ["well_conditioned", "nearly_singular"])
def test_solve_matches_numpy(name):
    M = CASES[name]()
    m = M.shape[0]
    L = build(M)
    rhs = np.random.default_rng(8).standard_normal(m)
    z = rhs.copy()
    chol_solve(L, m, z)
    # backward stable: the residual is small relative to |M| |z|
    assert np.linalg.norm(M @ z - rhs) <= 1e-10 * np.linalg.norm(M, 2) * np.linalg.norm(z)
    if name == "well_conditioned":
        np.testing.assert_allclose(z, np.linalg.solve(M, rhs), rtol=1e-8)


def test_reserve_factor_grows_and_keeps_contents():
    M = spd(10, seed=9)
    fac = new_factor(50, 4, 1.0)
    L, F, infac, meta, work, tols = fac
    assert L.shape == (4, 4) and tols[0] == 1e-12 and tols[1] == 1e-15
    Lb = build(M[:3, :3], cap=4)
    L[:3, :3] = Lb[:3, :3]
    F[:3] = [7, 2, 9]
    meta[0] = 3
    same = reserve_factor(fac, 4)
    assert same[0] is L
    grown = reserve_factor(fac, 10)
    assert grown[0].shape == (10, 10) and grown[4].shape == (10,)
    np.testing.assert_array_equal(np.tril(grown[0][:3, :3]), np.tril(Lb[:3, :3]))
    np.testing.assert_array_equal(grown[1][:3], [7, 2, 9])
    assert grown[3] is meta and grown[2] is infac


def append_block(M: np.ndarray, m0: int, nb: int, piv_tol: float = 0.0):
    """Factor M[:m0, :m0] one row at a time, then append rows m0 .. m0 + nb - 1 as one block."""
    L = build(M[:m0, :m0], cap=m0 + nb) if m0 else np.full((nb, nb), np.nan)
    for r in range(m0, m0 + nb):
        L[r, :r] = M[r, :r]
    got = chol_append_rows(L, m0, nb, np.diag(M)[m0:m0 + nb].copy(), piv_tol)
    return got, L


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("m0, nb", [(0, 25), (7, 1), (7, 3), (7, 4), (10, 9), (3, 13)])
def test_append_rows_matches_numpy_cholesky(name, m0, nb):
    """Blocks of every size mod 4 (the four-row kernel and its remainder), onto empty and
    non-empty factors, on well-conditioned, nearly singular, tiny and huge matrices."""
    M = CASES[name]()[: m0 + nb, : m0 + nb]
    got, L = append_block(M, m0, nb)
    assert got == nb
    m = m0 + nb
    Lm = np.tril(L[:m, :m])
    assert np.max(np.abs(Lm @ Lm.T - M)) <= 1e-12 * np.max(np.abs(M))
    # the same factor as appending one coordinate at a time, up to rounding
    Ls = np.tril(build(M)[:m, :m])
    assert np.max(np.abs(Lm - Ls)) <= 1e-10 * np.max(np.abs(Ls))
    if name == "well_conditioned":
        np.testing.assert_allclose(Lm, np.linalg.cholesky(M), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("bad", [0, 2, 5])
def test_append_rows_stops_at_the_first_dependent_row(bad):
    """A new row in the span of the earlier ones stops the block there: the rows before it are
    appended (the factor of the leading block is valid), the rest is left to the caller."""
    rng = np.random.default_rng(11)
    B = rng.standard_normal((9, 9))
    M = B @ B.T
    m0, nb = 3, 6
    pos = m0 + bad
    M[pos] = M[:, pos] = 0.5 * M[0] + 0.25 * M[m0]  # row pos = combination of rows 0 and m0
    M[pos, pos] = 0.5 * M[0, pos] + 0.25 * M[m0, pos]
    if bad == 0:  # then it depends on row 0 only
        M[pos] = M[:, pos] = 0.5 * M[0]
        M[pos, pos] = 0.25 * M[0, 0]
    got, L = append_block(M, m0, nb, piv_tol=1e-10 * np.max(np.diag(M)))
    assert got == bad
    m = m0 + got
    Lm = np.tril(L[:m, :m])
    assert np.max(np.abs(Lm @ Lm.T - M[:m, :m])) <= 1e-12 * np.max(np.abs(M))
