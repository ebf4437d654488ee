"""Before/after: the CovLasso solver of a git ref against the working tree, interleaved.

Usage: python benchmarks/covlasso_before_after.py [--ref main] [--cov PATH.npy] [--repeats R]
                                                  [--threads 1,2] [--ksearch]

The ref's ``neudep_utils`` package is extracted with ``git archive`` into a temporary package
``neudep_ref`` and its ``covlasso`` imported next to the working tree's. Both are timed through
the public API exactly as a user calls it (``covlasso.solve`` at 0.3, 0.1, 0.03 lam_max for all n
targets, ``covlasso.path`` over 20 lams from lam_max to 0.05 lam_max and, with ``--ksearch``,
``covlasso.solve_k`` at notebook 01's support sizes; input checks included, or with
``--skip-psd-check`` everything but the PSD check), after one warm-up call each (JIT, and the
working tree's PSD-check memo). Every repeat runs old and new
back to back, alternating which goes first; the table reports medians and the 1-minute load
average. Prints a markdown table; writes nothing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_covlasso import PATH_RATIOS, RATIOS, random_decaying_psd  # noqa: E402

from neudep_utils import covlasso as new  # noqa: E402
from neudep_utils import moments  # noqa: E402

#: notebook 01's support sizes (``--ksearch``)
KS = (1, 2, 3, 5, 10, 20, 50, 100, 300)


def load_ref(ref: str, into: Path):
    """The ref's covlasso package, importable as ``neudep_ref.covlasso`` (the ref's whole
    ``neudep_utils`` tree under another name, so its relative imports resolve to the ref)."""
    pkg = into / "neudep_ref"
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "neudep_utils"], check=True,
                         capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    (into / "neudep_utils").rename(pkg)
    sys.path.insert(0, str(into))
    return importlib.import_module("neudep_ref.covlasso")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main")
    ap.add_argument("--cov", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--skip-psd-check", action="store_true",
                    help="pass psd_tol=None to both (the solver alone, without the PSD check)")
    ap.add_argument("--ksearch", action="store_true",
                    help="also time solve_k at notebook 01's support sizes (slow: ~30 s a call)")
    args = ap.parse_args()
    kw = {"warn": False, **({"psd_tol": None} if args.skip_psd_check else {})}
    threads = [int(x) for x in args.threads.split(",")]
    mats = [("synthetic", random_decaying_psd(1000))]
    if args.cov:
        mats.append((f"real `{args.cov.name}`", np.load(args.cov)))
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.ref],
                         capture_output=True, text=True, check=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "neudep_utils"],
                           capture_output=True, text=True, check=True).stdout.strip()
    nthreads0 = numba.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        old = load_ref(args.ref, Path(tmp))
        print(f"before: {args.ref} ({rev}); after: working tree at {head}"
              f"{' (modified)' if dirty else ''}; {os.cpu_count()} cores; PSD check "
              f"{'skipped (psd_tol=None)' if args.skip_psd_check else 'included'}")
        print("| matrix | setting | threads | before (s) | after (s) | before / after | "
              "after: max rel. gap | load |")
        print("|---|---|---|---|---|---|---|---|")
        for label, S0 in mats:
            S = moments.symmetrize(np.asarray(S0, float))
            lm = new.lam_max(S)
            settings = [(f"{r:g}", r) for r in RATIOS] + [("path (20 lams)", None)]
            if args.ksearch:
                settings.append((f"solve_k, k in {KS}", "k"))
            for mod in (old, new):
                mod.solve(S, 0.3 * lm, warn=False)  # JIT warm-up, PSD check
            for th in threads:
                numba.set_num_threads(th)
                for name, r in settings:
                    def run(mod, r=r, S=S, lm=lm):
                        if r == "k":
                            sols = mod.solve_k(S, KS)
                            return type("R", (), {"relative_gap": np.concatenate(
                                [s.gap / s.objective for s in sols.values()])})
                        if r is None:
                            return mod.path(S, lam_ratios=PATH_RATIOS, **kw)
                        return mod.solve(S, r * lm, **kw)
                    ts = {"old": [], "new": []}
                    res = None
                    for rep in range(args.repeats):
                        pair = [("old", old), ("new", new)]
                        for key, mod in (pair if rep % 2 == 0 else pair[::-1]):
                            t0 = time.perf_counter()
                            out = run(mod)
                            ts[key].append(time.perf_counter() - t0)
                            if key == "new":
                                res = out
                    b, a = np.median(ts["old"]), np.median(ts["new"])
                    print(f"| {label} | {name} | {th} | {b:.3f} | {a:.3f} | {b / a:.2f} | "
                          f"{float(np.max(res.relative_gap)):.1e} | {os.getloadavg()[0]:.1f} |",
                          flush=True)
    numba.set_num_threads(nthreads0)


if __name__ == "__main__":
    main()
