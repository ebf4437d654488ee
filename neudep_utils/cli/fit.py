"""``fit``: CovLasso dependencies among the logits of any classifier, from a logits file, written
as ``target,partner,coef`` rows plus a JSON sidecar."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from .._io import atomic_write_bytes, sha256_file
from ..cache.arrays import load_array, load_sidecar
from ..covlasso.estimator import CovLasso, check_logits
from ..dependencies.folds import holdout_split
from ._common import int_at_least, number

HELP = """Fit sparse linear dependencies among the logits (CovLasso) of any classifier.

Writes deps.csv (one target,partner,coef row per dependency) and deps.json (per target: lam,
lam_ratio, duality gap, support size, intercept and R^2; the inputs' sha256).

example:
  python -m neudep_utils fit --logits X.npy --k 3 --targets 0 1 --out deps.csv
  python -m neudep_utils fit --logits X.npz --lam-ratio 0.05 --refit --holdout 0.2 --out deps.csv
"""

#: Marks a sidecar written by ``fit`` (an existing JSON without it is never overwritten).
WRITTEN_BY = "neudep_utils fit"
#: The estimator's parameter names as the options of this command, for its error messages.
_OPTION_OF = {"k=": "--k ", "lam_ratio": "--lam-ratio", "targets": "--targets", "tol": "--tol"}


def add_parser(sub) -> None:
    """The ``fit`` subcommand and its options."""
    pf = sub.add_parser("fit", help="fit CovLasso dependencies on a logits file",
                        description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    pf.add_argument("--logits", required=True, metavar="FILE",
                    help="(n_images, n_classes) logits: .npy, .npz (key 'logits' or its only "
                         "array) or .pt (a tensor)")
    pf.add_argument("--labels", default=None, metavar="FILE",
                    help="optional (n_images,) integer labels (.npy/.npz/.pt, or the .json "
                         "sidecar of `extract --out`): checked, top-1 recorded, stratified "
                         "--holdout")
    size = pf.add_mutually_exclusive_group()
    size.add_argument("--k", type=int_at_least(1, "partners per target"), default=None,
                      help="partners per target (default 10 when --lam-ratio is not given)")
    size.add_argument("--lam-ratio", type=number(0.0), default=None,
                      help="penalty relative to each target's lam_max instead of --k")
    pf.add_argument("--targets", type=int, nargs="+", default=None, metavar="I",
                    help="target class indices (default: all)")
    pf.add_argument("--no-center", action="store_true",
                    help="fit on the uncentred second moment E[f f^T], no intercept")
    pf.add_argument("--refit", action="store_true",
                    help="least-squares coefficients on the support instead of the Lasso's")
    pf.add_argument("--holdout", type=number(0.0, 1.0), default=0.0, metavar="FRAC",
                    help="fit on a seeded 1-FRAC of the images, R^2 on the rest (default 0: "
                         "R^2 in sample)")
    pf.add_argument("--seed", type=int, default=0, help="seed of the --holdout split")
    pf.add_argument("--tol", type=number(0.0, closed=False), default=1e-8,
                    help="relative duality-gap tolerance")
    pf.add_argument("--out", required=True, metavar="deps.csv",
                    help="CSV of target,partner,coef rows; the sidecar deps.json is written "
                         "beside it")


def run(args: argparse.Namespace) -> int:
    """Run ``fit``; returns the exit status."""
    out, side = _outputs(args)
    X = check_logits(load_array(args.logits, "--logits"), f"--logits {args.logits}")
    y, label_mode = _labels(args, X.shape[0])
    fit_rows, eval_rows = _rows(args, X.shape[0], y)
    est = CovLasso(k=args.k, lam_ratio=args.lam_ratio, center=not args.no_center,
                   refit=args.refit, targets=args.targets, tol=args.tol)
    try:
        est.fit(X[fit_rows])
    except ValueError as exc:  # the estimator's check, in this command's option names
        msg = str(exc)
        for name, option in _OPTION_OF.items():
            msg = msg.replace(name, option, 1) if msg.startswith(name) else msg
        raise ValueError(f"--logits {args.logits}: {msg}") from None
    r2 = est.r2_per_target(X[eval_rows])
    rows = ["target,partner,coef"]
    for t in est.targets_:
        rows += [f"{int(t)},{j},{c!r}" for j, c in est.partners(int(t))]
    atomic_write_bytes(out, ("\n".join(rows) + "\n").encode(), hint="choose --out in")
    meta = _sidecar(args, X, y, label_mode, est, r2, fit_rows.size, eval_rows.size)
    atomic_write_bytes(side, (json.dumps(meta, indent=1) + "\n").encode(), hint="choose --out in")
    print(f"wrote {out}: {len(rows) - 1} dependencies of {est.targets_.size} target(s) "
          f"(mean R^2 {np.mean(r2):.4f} on {meta['r2_on']}); sidecar {side}")
    return 0


def _same_file(a: Path, b: str | None) -> bool:
    if b is None:
        return False
    b_path = Path(b).expanduser()
    try:
        return os.path.samefile(a, b_path)
    except OSError:
        return a.resolve() == b_path.resolve()


def _outputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """``--out`` and its sidecar, refused when either would overwrite an input (the logits, the
    labels) or a JSON file this command did not write (e.g. the sidecar of ``extract --out``)."""
    out = Path(args.out).expanduser()
    if not out.parent.is_dir():
        raise ValueError(f"--out {args.out}: folder {out.parent} does not exist; create it or "
                         "choose another path")
    if out.is_dir():
        raise ValueError(f"--out {args.out}: is a folder; give a file name such as deps.csv")
    side = out.with_suffix(".json")
    if side == out:
        raise ValueError(f"--out {args.out}: the sidecar would overwrite it; use a .csv name")
    for path, what in ((out, "--out"), (side, "its sidecar")):
        for opt in ("--logits", "--labels"):
            if _same_file(path, getattr(args, opt[2:])):
                raise ValueError(f"--out {args.out}: {what} {path} is the {opt} input; choose "
                                 f"another --out, e.g. {out.with_name(out.stem + '_deps.csv')}")
    if side.exists() and not _written_by_fit(side):
        raise ValueError(f"--out {args.out}: its sidecar {side} exists and was not written by "
                         f"`fit` (e.g. the sidecar of `extract --out`); choose another --out, "
                         f"e.g. {out.with_name(out.stem + '_deps.csv')}")
    return out, side


def _written_by_fit(side: Path) -> bool:
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and (meta.get("written_by") == WRITTEN_BY
                                       or {"inputs", "params", "targets"} <= set(meta))


def _labels(args: argparse.Namespace, n: int) -> tuple[np.ndarray | None, str | None]:
    """The checked integer labels of ``--labels`` and their label mode (from a sidecar)."""
    if args.labels is None:
        return None, None
    y = load_array(args.labels, "--labels")
    mode = None
    if Path(args.labels).suffix.lower() == ".json":
        mode = load_sidecar(Path(args.labels), "--labels").get("label_mode")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"--labels {args.labels}: shape {y.shape}; need one label per logit "
                         f"row ({n},)")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y))
                and np.all(y == np.round(y))):
            raise ValueError(f"--labels {args.labels}: labels must be integers; got dtype "
                             f"{y.dtype}")
        y = y.astype(np.int64)
    return y, mode


def _rows(args: argparse.Namespace, n: int, y: np.ndarray | None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Fit and evaluation rows: all of them (in sample), or the seeded stratified
    ``--holdout`` split of :func:`neudep_utils.dependencies.folds.holdout_split`."""
    if args.holdout == 0:
        return np.arange(n), np.arange(n)
    fit_rows, eval_rows = holdout_split(n, args.holdout, args.seed, labels=y)
    if fit_rows.size < 2 or eval_rows.size < 2:
        raise ValueError(f"--holdout {args.holdout}: leaves {fit_rows.size} fit and "
                         f"{eval_rows.size} held-out images; need at least 2 of each")
    return fit_rows, eval_rows


def _num(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def _sidecar(args: argparse.Namespace, X: np.ndarray, y: np.ndarray | None,
             label_mode: str | None, est: CovLasso, r2: np.ndarray, n_fit: int,
             n_eval: int) -> dict:
    """The fit's JSON record: inputs with their sha256, parameters and per-target numbers."""
    inputs = {"logits": {"path": str(Path(args.logits).resolve()),
                         "sha256": sha256_file(Path(args.logits).expanduser()),
                         "shape": list(X.shape)}}
    if args.labels is not None:
        inputs["labels"] = {"path": str(Path(args.labels).resolve()),
                            "sha256": sha256_file(Path(args.labels).expanduser()),
                            "label_mode": label_mode}
    top1 = None  # labels of class folders (--label-mode folder) are not logit columns
    if y is not None and label_mode != "folder" and y.min() >= 0 and y.max() < X.shape[1]:
        top1 = float(np.mean(X.argmax(axis=1) == y))
    per = [{"target": int(t), "k": int(est.k_[i]), "lam": _num(est.lam_[i]),
            "lam_ratio": _num(est.lam_[i] / est.lam_max_[i]) if est.lam_max_[i] > 0 else None,
            "lam_max": _num(est.lam_max_[i]), "gap": _num(est.duality_gap_[i]),
            "intercept": _num(est.intercept_[i]), "r2": _num(r2[i])}
           for i, t in enumerate(est.targets_)]
    params = est.get_params()
    params["targets"] = None if args.targets is None else [int(t) for t in args.targets]
    return {"written_by": WRITTEN_BY, "neudep_utils": __version__, "inputs": inputs,
            "params": params, "k": est.k_requested_, "n_images": int(X.shape[0]),
            "n_fit": int(n_fit), "n_eval": int(n_eval),
            "r2_on": "held-out images" if args.holdout > 0 else "the fit images (in sample)",
            "holdout": args.holdout, "seed": args.seed, "n_classes": int(X.shape[1]),
            "top1": top1, "mean_r2": _num(np.mean(r2)), "targets": per}
