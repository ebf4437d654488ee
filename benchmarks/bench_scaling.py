"""CovLasso for massive categories: seconds and peak memory for n = 1,000 ... 21,841 targets.

Usage: python benchmarks/bench_scaling.py --cov S_lite0.npy [--sizes 1000 2000 ...]
                                          [--max-targets 2000] [--subset 1000]
                                          [--peer-max-n 2000] [--reuse] [--no-write]

The matrices: logit-like synthetic second moments grown from the real Lite0 one (``--cov``,
1000 x 1000). With ``S0 = Q diag(w) Q^T`` and ``tau = min(w)`` (its noise floor), the real classes
are embeddings ``e_i = rows of Q diag(w - tau)^(1/2)`` in a 1000-dim feature space, so that
``S0 = E E^T + tau I`` exactly. A new class ``j`` (n > 1000) gets a random real parent ``p`` and
``e_j = |e_p| (rho_j e_p / |e_p| + sqrt(1 - rho_j^2) u_j / |u_j|)`` with ``u_j = E^T z / sqrt(1000)``
(a random mix of the real classes, hence the same feature covariance) and ``rho_j ~ U(RHO)``
(fine-grained siblings, as in ImageNet-21k's hierarchy); ``S_n = E_n E_n^T + tau I``. So the
rows for the first 1000 classes are the real S, the diagonal has the real distribution, the
rank-1000 feature spectrum is the real one and each new class has a near sibling; the script
prints the spectrum and correlation statistics of every S_n beside the real one's (in the notes
of the results file) so the match can be checked.

S_n is built and stored in float32 (1.9 GB at n = 21,841; the float64 one would be 3.8 GB),
symmetrised in place; the solver reads it without a copy (``covlasso.blocked.solve_blocks``:
targets 256 at a time, sparse coefficients) and computes in float64, so the certified gap is the
exact gap of the float32 matrix. Every n runs in a fresh process: peak memory is that process's
peak resident set (``resource.getrusage``), S included. Ours runs on ONE thread; the time is
the process's CPU time (``time.process_time``: one core's seconds, what the solve costs however
many other jobs share the machine), with the wall-clock time beside it. Above ``--max-targets``
targets a seeded subset of ``--subset`` targets is solved and the time for all n targets
extrapolated linearly (marked in the table). Each n's result is kept in
``benchmarks/results/scaling.json`` as soon as it is measured (``--reuse`` keeps those already
there for the same settings and runs only the missing n). The peer (scikit-learn ``lasso_path`` on the precomputed Gram,
one thread, the tolerance calibrated as in ``bench_covlasso.py``) runs on a few seeded targets
up to ``--peer-max-n``: it needs a float64 Gram copy of S per target (an n x n temporary).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "scaling.md"
PNG = ROOT / "benchmarks" / "results" / "scaling.png"
SIZES = (1000, 2000, 5000, 10000, 21841)
RATIOS = (0.3, 0.03)
RHO = (0.3, 0.8)
SEED = 0


@njit(parallel=True, cache=False)  # no on-disk cache: tests load this file by path
def _symmetrize_inplace(S):  # pragma: no cover - numba
    """``S = (S + S^T) / 2`` in place (no n x n temporary)."""
    n = S.shape[0]
    for i in prange(n):
        for j in range(i + 1, n):
            v = np.float32(0.5) * (S[i, j] + S[j, i])
            S[i, j] = v
            S[j, i] = v


def embeddings(S0: np.ndarray, n: int, seed: int = SEED) -> tuple[np.ndarray, float]:
    """Class embeddings E_n (n, 1000) float32 and the noise floor tau (see the module doc)."""
    w, Q = np.linalg.eigh(np.asarray(S0, float))
    tau = float(max(w.min(), 0.0))
    E0 = Q * np.sqrt(np.maximum(w - tau, 0.0))
    n0 = E0.shape[0]
    if n <= n0:
        return np.ascontiguousarray(E0[:n], np.float32), tau
    rng = np.random.default_rng(seed)
    m = n - n0
    parent = rng.integers(0, n0, m)
    rho = rng.uniform(*RHO, m)
    out = np.empty((n, E0.shape[1]), np.float32)
    out[:n0] = E0
    for a in range(0, m, 4096):
        b = min(a + 4096, m)
        U = rng.standard_normal((b - a, n0)) @ E0 / np.sqrt(n0)
        P = E0[parent[a:b]]
        pn = np.linalg.norm(P, axis=1, keepdims=True)
        un = np.linalg.norm(U, axis=1, keepdims=True)
        r = rho[a:b, None]
        out[n0 + a:n0 + b] = pn * (r * P / pn + np.sqrt(1 - r * r) * U / un)
    return out, tau


def build(S0: np.ndarray, n: int) -> np.ndarray:
    """S_n (n, n) float32, exactly symmetric."""
    E, tau = embeddings(S0, n)
    S = E @ E.T
    S.flat[:: n + 1] += np.float32(tau)
    _symmetrize_inplace(S)
    return S


def stats(S: np.ndarray, rng_seed: int = 1, m: int = 1000) -> dict:
    """Spectrum and correlation statistics (on m seeded rows for the correlations)."""
    n = S.shape[0]
    d = np.sqrt(np.diag(S).astype(float))
    rows = np.sort(np.random.default_rng(rng_seed).choice(n, min(m, n), replace=False))
    R = np.asarray(S[rows], float) / d[rows, None] / d[None, :]
    R[np.arange(rows.size), rows] = np.nan
    mx = np.nanmax(R, axis=1)
    off = R[np.isfinite(R)]
    trace = float(d @ d)
    # top eigenvalues by subspace iteration (no n x n temporary)
    X = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    for _ in range(15):
        X, _ = np.linalg.qr(S @ X)
    top = np.sort(np.linalg.eigvalsh(X.T @ (S @ X)))[::-1]
    return dict(top1=float(top[0] / trace), top8=float(top.sum() / trace),
                corr_q=[float(v) for v in np.quantile(off, [0.01, 0.5, 0.99])],
                maxcorr_median=float(np.median(mx)))


def run_one(cov: Path, n: int, max_targets: int, subset_size: int, peer_max_n: int,
            peer_sample: int) -> dict:
    """One n, in this process: build S, solve all (or a seeded subset of) targets per ratio."""
    import numba

    from neudep_utils.covlasso.blocked import solve_blocks

    numba.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    S0 = np.load(cov)
    with threadpool_limits(2):
        t0 = time.perf_counter()
        S = build(S0, n)
        t_build = time.perf_counter() - t0
    st = stats(S)
    rng = np.random.default_rng(SEED + n)
    subset = n > max_targets
    targets = (np.sort(rng.choice(n, min(subset_size, n), replace=False)) if subset
               else np.arange(n))
    solve_blocks(S, targets=targets[:4], lam_ratio=0.3, psd_tol=None)  # JIT warm-up
    rows = []
    for ratio in RATIOS:
        with threadpool_limits(1):
            c0 = time.process_time()
            t0 = time.perf_counter()
            res = solve_blocks(S, targets=targets, lam_ratio=ratio, psd_tol=None, warn=False)
            dt = time.perf_counter() - t0
            dc = time.process_time() - c0
        row = dict(n=n, ratio=ratio, solved=int(targets.size), subset=subset,
                   wall_solved=dt, wall=dt * n / targets.size, cpu_solved=dc,
                   seconds=dc * n / targets.size,
                   max_rel_gap=float(np.max(res.relative_gap)),
                   converged=bool(np.all(res.converged)),
                   k_median=float(np.median(res.support_size)),
                   k_max=int(res.support_size.max()))
        if n <= peer_max_n:
            row["peer"] = peer_time(S, n, ratio, res, peer_sample, S0)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB -> MiB
    return dict(n=n, rows=rows, peak_mib=peak, s_mib=S.nbytes / 2**20, build_s=t_build,
                stats=st, dtype=str(S.dtype))


def peer_time(S, n, ratio, res, sample, S0):
    """scikit-learn lasso_path (Gram) on ``sample`` seeded targets, one thread, scaled to n."""
    import warnings

    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_covlasso import TARGET_GAP, TOLS, _relgap, make_problem, run_sklearn

    S64 = np.asarray(S, np.float64)
    E, tau = embeddings(S0, n)
    # the exact factor of S_n: X^T X = E E^T + tau I (up to S's float32 rounding, which the
    # certificate below, computed on S itself, accounts for)
    X = np.vstack([E.T.astype(np.float64), np.sqrt(tau) * np.eye(n)])
    rng = np.random.default_rng(SEED + 7)
    pick = np.sort(rng.choice(n, sample, replace=False))
    lm = 2.0 * np.max(np.abs(np.where(np.eye(n, dtype=bool)[pick], 0.0, S64[pick])), axis=1)
    total = 0.0
    worst = 0.0
    with threadpool_limits(1):
        for i, lmi in zip(pick, lm, strict=True):
            p = make_problem(S64, X, int(i), np.array([ratio * lmi]))
            for tol in TOLS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.process_time()
                    c = run_sklearn(p, tol)
                    dt = time.process_time() - t0
                full = np.zeros((1, n))
                full[:, p.a] = c.T
                g = float(np.max(_relgap(S64, full, p.i, np.array([ratio * lmi]))))
                if g <= TARGET_GAP:
                    break
            total += dt  # the run at the loosest tolerance reaching the gap
            worst = max(worst, g)
    return dict(seconds=total * n / sample, sample=sample, max_rel_gap=worst)


def fit_exponent(ns, secs) -> float:
    """Least-squares slope of log(seconds) on log(n)."""
    return float(np.polyfit(np.log(ns), np.log(secs), 1)[0])


def render(results: list[dict], cmd: str, load: list[float]) -> str:
    lines = ["| n | lam / lam_max | seconds (CPU, all n targets, 1 thread) | wall seconds | "
             "targets solved | peak MiB (S included) | S (MiB, float32) | max rel. gap | "
             "median k | peer: scikit-learn `lasso_path` (Gram), 1 thread (CPU s) | "
             "peer / ours |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for row in r["rows"]:
            solved = (f"{row['solved']} seeded (time x n / {row['solved']}, extrapolated)"
                      if row["subset"] else "all")
            peer = row.get("peer")
            pcol = (f"{peer['seconds']:.1f} ({peer['sample']} targets, scaled; gap "
                    f"{peer['max_rel_gap']:.0e}) | {peer['seconds'] / row['seconds']:.1f}x"
                    if peer else "not run (needs an n x n float64 Gram per target) | ")
            lines.append(f"| {row['n']} | {row['ratio']:g} | {row['seconds']:.2f} | "
                         f"{row['wall']:.2f} | {solved} | "
                         f"{r['peak_mib']:.0f} | {r['s_mib']:.0f} | {row['max_rel_gap']:.1e} | "
                         f"{row['k_median']:.0f} | {pcol} |")
    ex = []
    for ratio in RATIOS:
        ns = [row["n"] for r in results for row in r["rows"] if row["ratio"] == ratio]
        ss = [row["seconds"] for r in results for row in r["rows"] if row["ratio"] == ratio]
        if len(ns) >= 2:
            ex.append(f"{ratio:g} lam_max: time ~ n^{fit_exponent(ns, ss):.2f}")
    st = "; ".join(
        f"n = {r['n']}: top eigenvalue {r['stats']['top1']:.3f} and top 8 {r['stats']['top8']:.3f}"
        f" of the trace, correlations 1% / 50% / 99% quantiles "
        + " / ".join(f"{v:.2f}" for v in r["stats"]["corr_q"])
        + f", median of each class's largest correlation {r['stats']['maxcorr_median']:.2f}"
        for r in results)
    return ("\n".join(lines) + "\n\n"
            + "Fitted exponents (least squares of log seconds on log n over the rows): "
            + "; ".join(ex) + ".\n\n"
            + f"Measured by `{cmd}` on {platform.machine()} with {os.cpu_count()} CPU cores "
            f"(shared with other jobs: 1-minute load average between {min(load):.1f} and "
            f"{max(load):.1f}, sampled before and after each n; wall seconds are inflated "
            "accordingly, CPU seconds much less); each n in a fresh process, ours on one numba "
            "thread and BLAS on one thread. Matrices: see `benchmarks/bench_scaling.py` (the n = 1000 "
            "matrix is the real Lite0 second moment; larger ones add classes with a random "
            f"real parent at correlation rho ~ U{RHO}, same feature spectrum). Statistics: {st}. "
            "Peak MiB is the process's peak resident set (Python, numpy, numba and S; "
            "ru_maxrss), so the memory beyond S is the difference of the two columns.\n")


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    for ratio, mk in zip(RATIOS, "os", strict=True):
        ns = [row["n"] for r in results for row in r["rows"] if row["ratio"] == ratio]
        ss = [row["seconds"] for r in results for row in r["rows"] if row["ratio"] == ratio]
        ax[0].loglog(ns, ss, mk + "-", label=f"ours, {ratio:g} lam_max")
        pn = [row["n"] for r in results for row in r["rows"]
              if row["ratio"] == ratio and row.get("peer")]
        ps = [row["peer"]["seconds"] for r in results for row in r["rows"]
              if row["ratio"] == ratio and row.get("peer")]
        if pn:
            ax[0].loglog(pn, ps, mk + "--", alpha=0.6, label=f"scikit-learn, {ratio:g}")
    ax[0].set_xlabel("n (categories = targets)")
    ax[0].set_ylabel("CPU seconds, all targets, 1 thread")
    ax[0].legend(fontsize=7)
    ax[1].loglog([r["n"] for r in results], [r["peak_mib"] for r in results], "o-",
                 label="peak RSS")
    ax[1].loglog([r["n"] for r in results], [r["s_mib"] for r in results], "k:",
                 label="S itself (float32)")
    ax[1].set_xlabel("n")
    ax[1].set_ylabel("MiB")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cov", type=Path, required=True, help="the real Lite0 S (.npy, 1000 x 1000)")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--max-targets", type=int, default=2000,
                    help="above this many targets, solve a seeded subset and extrapolate")
    ap.add_argument("--subset", type=int, default=1000,
                    help="seeded targets solved when n > --max-targets")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the n already in scaling.json (same settings); run the others")
    ap.add_argument("--peer-max-n", type=int, default=2000)
    ap.add_argument("--peer-sample", type=int, default=10)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # worker
    args = ap.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(args.cov, args.one, args.max_targets, args.subset,
                                 args.peer_max_n, args.peer_sample)))
        return
    cmdline = sys.argv[1:] if argv is None else list(argv)
    settings = dict(max_targets=args.max_targets, subset=args.subset,
                    peer_max_n=args.peer_max_n, peer_sample=args.peer_sample)
    raw = OUT.parent / "scaling.json"
    kept = {}
    if args.reuse and raw.is_file():
        old = json.loads(raw.read_text())
        if old.get("settings") == settings:
            kept = {r["n"]: r for r in old["results"]}
            cmdline = old.get("cmdline", cmdline)
    loads = list(kept and json.loads(raw.read_text()).get("loads", [])) + [os.getloadavg()[0]]
    results = []
    for n in args.sizes:
        if n in kept:
            results.append(kept[n])
            print(f"n = {n}: kept from {raw}", flush=True)
            continue
        cmd = [sys.executable, __file__, "--cov", str(args.cov), "--one", str(n),
               "--max-targets", str(args.max_targets), "--subset", str(args.subset),
               "--peer-max-n", str(args.peer_max_n), "--peer-sample", str(args.peer_sample)]
        env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            raise SystemExit(f"n = {n} failed (exit {r.returncode})")
        results.append(json.loads(r.stdout.strip().splitlines()[-1]))
        loads.append(os.getloadavg()[0])
        if not args.no_write:
            raw.write_text(json.dumps(dict(settings=settings, cmdline=cmdline, loads=loads,
                                           results=results), indent=1))
        print(f"n = {n}: peak {results[-1]['peak_mib']:.0f} MiB, "
              + ", ".join(f"{row['ratio']:g}: {row['seconds']:.2f}s gap {row['max_rel_gap']:.1e}"
                          for row in results[-1]["rows"]), flush=True)
    results.sort(key=lambda r: r["n"])
    text = render(results, shlex.join(["python", "benchmarks/bench_scaling.py", *cmdline]),
                  loads)
    print(text)
    if not args.no_write:
        OUT.write_text(text)
        plot(results, PNG)
        print(f"wrote {OUT}, {PNG} and {raw}")


if __name__ == "__main__":
    main()
