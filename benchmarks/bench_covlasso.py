"""Benchmark the batched CovLasso solver against per-target cvxpy and scikit-learn loops.

Usage: python benchmarks/bench_covlasso.py [--cov PATH.npy] [--quick] [--sample K]

Prints a markdown table and writes it to docs_fragments/performance_covlasso.md. Reference
loops (cvxpy, sklearn) run on a sample of targets and are scaled to all targets (said in the
table). Our solver is JIT-warmed on a few targets before timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np

from neudep_utils import covlasso as cl

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs_fragments" / "performance_covlasso.md"


def random_decaying_psd(n: int = 1000, seed: int = 0, decay: float = 60.0) -> np.ndarray:
    """Seeded random PSD matrix with eigenvalues 100 * exp(-k / decay) (nearly singular)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    w = 100.0 * np.exp(-np.arange(n) / decay)
    return cl._symmetrize((q * w) @ q.T)


def _ref_stats(S, coef, samp, lam, p_ours) -> tuple[float, float]:
    """(max relative objective excess over ours, max relative duality gap) of a reference."""
    p = cl.objective(S, coef, samp, lam)
    g = cl.duality_gap(S, coef, samp, lam)
    return float(np.max((p - p_ours) / p_ours)), float(np.max(g / p))


def bench_matrix(name: str, S: np.ndarray, ratios, sample: int, n_path: int, rows: list) -> None:
    n = S.shape[0]
    targets = np.arange(n)
    rng = np.random.default_rng(1)
    samp = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    lm = cl.lam_max(S)
    cl.solve(S, 0.3 * lm[:4], targets[:4])  # JIT warm-up (compiled kernels are disk-cached)
    X = cl.psd_factor(S)  # factor for the references, computed once, not timed
    for ratio in ratios:
        lam = ratio * lm
        t0 = time.perf_counter()
        res = cl.solve(S, lam)
        t_ours = time.perf_counter() - t0
        p_ours = res.objective[samp]

        t0 = time.perf_counter()
        c_cvx = cl.solve_cvxpy(S, lam[samp], samp, X=X)
        t_cvx = (time.perf_counter() - t0) * n / samp.size
        t0 = time.perf_counter()
        c_skl = cl.solve_sklearn(S, lam[samp], samp, method="cd", tol=1e-10, X=X)
        t_skl = (time.perf_counter() - t0) * n / samp.size

        ex_cvx, g_cvx = _ref_stats(S, c_cvx, samp, lam[samp], p_ours)
        ex_skl, g_skl = _ref_stats(S, c_skl, samp, lam[samp], p_ours)
        rows.append(
            f"| {name} | {ratio:g} | {t_ours:.2f} | {np.median(res.support_size):.0f} | "
            f"{res.relative_gap.max():.1e} | {t_cvx:.0f} | {t_cvx / t_ours:.0f}x | "
            f"{ex_cvx:.1e} / {g_cvx:.1e} | {t_skl:.1f} | {t_skl / t_ours:.0f}x | "
            f"{ex_skl:.1e} / {g_skl:.1e} |"
        )
        print(rows[-1], flush=True)
    ratios_path = np.geomspace(1.0, 0.05, n_path)
    t0 = time.perf_counter()
    p = cl.path(S, lam_ratios=ratios_path)
    t_path = time.perf_counter() - t0
    rows.append(
        f"| {name} | path: {n_path} lams, 1 to 0.05 | {t_path:.2f} | "
        f"{np.median(p.support_size[-1]):.0f} (at 0.05) | {p.relative_gap.max():.1e} | | | | | | |"
    )
    print(rows[-1], flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cov", type=Path, help="a real logit covariance / second moment (.npy)")
    ap.add_argument("--quick", action="store_true", help="3 sampled targets, 0.3 only")
    ap.add_argument("--sample", type=int, default=10, help="targets for the reference loops")
    ap.add_argument("--no-write", action="store_true", help="do not write the markdown fragment")
    args = ap.parse_args(argv)
    sample = 3 if args.quick else args.sample
    ratios = (0.3,) if args.quick else (0.3, 0.1)
    header = [
        "| matrix | lam / lam_max | ours: all targets (s) | median k | ours: max rel. gap | "
        "cvxpy loop (s, est.) | speed-up vs cvxpy | cvxpy: excess / rel. gap | "
        "sklearn loop (s, est.) | speed-up vs sklearn | sklearn: excess / rel. gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows: list[str] = []
    print("\n".join(header), flush=True)
    bench_matrix("random PSD 1000, decaying spectrum (seed 0)", random_decaying_psd(), ratios,
                 sample, 20, rows)
    if args.cov is None:
        note_cov = "Real Lite0 logit covariance: skipped: no --cov given."
        print(note_cov)
    else:
        S = np.load(args.cov)
        bench_matrix(f"{args.cov.name}", S, ratios, sample, 20, rows)
        note_cov = f"Real logit covariance from `{args.cov}`."
    notes = (
        f"\nMeasured in one run on {platform.processor() or platform.machine()} with "
        f"{os.cpu_count()} CPU cores (numba threads: {numba.get_num_threads()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end). "
        "Ours: one batched `covlasso.solve` call for all targets after a JIT warm-up. "
        f"cvxpy (CLARABEL, tolerances 1e-12) and scikit-learn (`Lasso(precompute=Gram)`, "
        f"tol 1e-10) loops are timed on {sample} sampled targets and scaled to all targets. "
        "'excess' is the reference's largest relative objective excess over ours on the "
        "sample; 'rel. gap' its duality gap / objective under our certificate. "
        f"{note_cov}\n"
    )
    text = "\n".join(header + rows) + "\n" + notes
    print(notes)
    if not args.no_write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text)
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
