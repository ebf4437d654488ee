"""Command line: ``python -m neudep_utils {extract,merge,covariance,logits,fit} ...``.

Examples::

    python -m neudep_utils extract --model efficientnet_lite0 --data ../shared/data/imagenet-val
    python -m neudep_utils extract --onnx resnet18.onnx --preset imagenet --data FOLDER --out X.npy
    python -m neudep_utils fit --logits X.npy --k 3 --targets 0 1 --out deps.csv
    python -m neudep_utils extract --model lite0 --data /imagenet/train --mode moments --shard 0/8
    python -m neudep_utils merge --model lite0 --data /imagenet/train --mode moments --shards 8
    torchrun --nproc-per-node 8 -m neudep_utils extract --model lite0 --data /imagenet/train \\
        --mode moments
    python -m neudep_utils logits --profile default

Every failure prints one ``error: ...`` line naming the input and the fix and exits non-zero
(2 for a bad input, 130 on Ctrl-C, 1 for an unexpected error; ``NEUDEP_DEBUG=1`` shows its
traceback). Warnings print as ``warning: ...`` lines.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
import warnings
from pathlib import Path

from . import __version__
from . import _dist as distributed
from ._io import atomic_write_bytes, remove_stale_temporaries
from .cache import extract, merge_shards, read_entry
from .cache.extract import cached_entry
from .errors import CacheError, DataError, HubUnavailableError, ModelError
from .origins import command as origins_command
from .profiles import get_profile

_EXTRACT_HELP = """Extract (or read cached) logits of a model on an image folder.

The model is an embedded/timm model (--model) or any ImageNet-style classifier as an ONNX file
(--onnx; run by ONNX Runtime on the CPU, cached under its sha256 and preprocessing).

example:
  python -m neudep_utils extract --onnx resnet18.onnx --preset imagenet \\
      --data /work/shared/data/imagenet-val --out X.npy
  python -m neudep_utils fit --logits X.npy --labels X.json --k 3 --out deps.csv

A torchvision or timm checkpoint becomes an ONNX file with torch.onnx.export (see
neudep_utils.models.onnxfile).
"""

_FIT_HELP = """Fit sparse linear dependencies among the logits (CovLasso) of any classifier.

Writes deps.csv (one target,partner,coef row per dependency) and deps.json (per target: lam,
lam_ratio, duality gap, support size, intercept and R^2; the inputs' sha256).

example:
  python -m neudep_utils fit --logits X.npy --k 3 --targets 0 1 --out deps.csv
  python -m neudep_utils fit --logits X.npz --lam-ratio 0.05 --refit --holdout 0.2 --out deps.csv
"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` (and the help hint) instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        _say(f"error: {message} (see `{self.prog} --help`)")
        raise SystemExit(2)


def _say(line: str) -> None:
    """Print one line to stderr, whatever bytes a file name holds."""
    text = " ".join(str(line).split())
    sys.stderr.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
    sys.stderr.flush()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"warning: {message}")


class _Once(argparse.Action):
    """An option that may be given once: a second ``--data`` is an error, not silently the one
    that wins."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice ({getattr(namespace, self.dest)!r} and "
                         f"{values!r}); this command takes one folder (`covariance` pools several: "
                         "--data A B)")
        setattr(namespace, self.dest, values)


def _workers(text: str) -> int:
    """``--workers``: an integer >= 0."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: decode in the main process), got {n}")
    return n


def _common(p: argparse.ArgumentParser, onnx: bool = False) -> None:
    if onnx:
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("--model", help="embedded model (efficientnet_lite0/1/2) or timm name")
        which.add_argument("--onnx", metavar="FILE",
                           help="any ImageNet-style classifier as an ONNX file (see --preset)")
    else:
        p.add_argument("--model", required=True,
                       help="embedded model (efficientnet_lite0/1/2) or timm name")
    p.add_argument("--data", required=True, action=_Once,
                   help="ImageNet-format folder <wnid>/<image>, or a subset name under $NEUDEP_DATA")
    p.add_argument("--views", type=int, default=0, help="augmented views per image beyond the centre view")
    p.add_argument("--seed", type=int, default=0, help="seed of the augmented views")
    p.add_argument("--label-mode", choices=("wnid", "folder"), default="wnid")
    p.add_argument("--mode", choices=("full", "moments"), default="full",
                   help="'moments' keeps only count, sum f, sum f f^T (for huge folders)")
    p.add_argument("--no-features", action="store_true", help="do not store penultimate features")
    p.add_argument("--cache-dir", default=None, help="cache folder (default $NEUDEP_CACHE or ./cache)")


def _report(ls, seconds: float) -> None:
    n = ls.meta.get("n_images", len(ls))
    print(f"cache: {ls.path}")
    print(f"images: {n}  views: {ls.key.views.get('n_aug', 0) + 1}  time: {seconds:.1f}s")
    shares = ls.meta.get("rank_shares")
    if shares:
        print(f"world size: {ls.meta.get('world_size')} ({ls.meta.get('backend')}, "
              f"{ls.meta.get('device')})")
        for s in shares:
            print(f"  rank {s['rank']}: {s['images']} images (manifest positions {s['first']}.."
                  f"{s['last']}, {s['readable']} readable, {s['seconds']:.1f}s)")
    if ls.skipped:
        print("skipped: " + ls.skipped_note(limit=5))
    if ls.top1 is not None:
        print(f"top-1: {ls.top1:.4f}" + (f" (over the {n} readable images)" if ls.skipped else ""))


def _out_path(out: str) -> Path:
    """The file ``np.save`` would write (it appends ``.npy``), checked before any work."""
    if not out.strip():
        raise ValueError(f"--out {out!r} is empty; give a file name such as S.npy")
    p = Path(out).expanduser()
    if out.endswith(("/", os.sep)) or p.is_dir() or p.name in ("", ".", ".."):
        raise ValueError(f"--out {out}: {p} is a folder, not a file name; give a file in it "
                         f"such as {p / 'S.npy'}")
    if p.suffix != ".npy":
        p = p.with_name(p.name + ".npy")
    if not p.parent.is_dir():
        raise ValueError(f"--out {out}: folder {p.parent} does not exist; create it or choose "
                         "another path")
    if p.is_dir():
        raise ValueError(f"--out {out}: {p} is a folder; give a file name")
    return p


def _os_error(exc: OSError, args: argparse.Namespace) -> str:
    where = exc.filename if exc.filename is not None else "?"
    if isinstance(where, bytes):
        where = where.decode("utf-8", "backslashreplace")
    what = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        fix = "remove or fix the symbolic link"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make it readable/writable or choose another folder (--cache-dir, --data)"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free space there or choose a folder on a disk with room (--cache-dir)"
    elif exc.errno == errno.ENOENT:
        fix = "check the path"
    else:
        fix = "check the file and the folder it is in"
    return f"{what}: {where}; {fix}"


def _distinct_folders(data: list[str]) -> list[str]:
    """The ``--data`` folders of ``covariance``, refusing one given twice (its images would be
    counted twice)."""
    from .images import resolve_folder

    seen: dict[Path, str] = {}
    for d in data:
        r = resolve_folder(d)
        if r in seen:
            raise ValueError(f"--data {d}: the same folder as --data {seen[r]} ({r}); give each "
                             "folder once (its images would be counted twice)")
        seen[r] = d
    return list(data)


def _entry_for_covariance(args: argparse.Namespace, folder: str):
    """A cached entry of ``folder`` holding the moments ``covariance`` needs (full with or
    without features, or moments-only), else one extracted in ``--mode``."""
    from .images import resolve_folder, scan_folder

    manifest = scan_folder(resolve_folder(folder))
    for mode, features in (("full", True), ("full", False), ("moments", False)):
        ls = cached_entry(args.model, folder, args.views, mode=mode, features=features,
                          cache_dir=args.cache_dir, manifest=manifest)
        if ls is not None:
            return ls
    return extract(args.model, folder, args.views, cache_dir=args.cache_dir, progress=True,
                   mode=args.mode, manifest=manifest)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m neudep_utils`` (and the ``neudep`` script).

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Process exit code: 0 success, 2 bad input (one ``error: ...`` line on stderr), 130
        interrupted, 1 unexpected error.
    """
    ap = _Parser(prog="python -m neudep_utils", description=__doc__,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"neudep-utils {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    pe = sub.add_parser("extract", help="extract (or read cached) logits and features",
                        description=_EXTRACT_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(pe, onnx=True)
    pe.add_argument("--shard", default=None, help="k/N: extract the k-th of N contiguous blocks")
    pe.add_argument("--batch-size", type=int, default=64)
    pe.add_argument("--workers", type=_workers, default=None,
                    help="DataLoader workers, >= 0 (default: cores, at most 4)")
    pe.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    pe.add_argument("--quiet", action="store_true", help="no progress bar")
    pe.add_argument("--out", default=None, metavar="X.npy",
                    help="also write the centre-view logits (n_images, n_classes) in image order, "
                         "with a sidecar X.json (image paths, labels, provenance)")
    po = pe.add_argument_group("ONNX preprocessing (with --onnx)")
    po.add_argument("--preset", default="imagenet", choices=("imagenet", "inception", "raw"),
                    help="imagenet: 224 px, crop 0.875, bilinear, ImageNet mean/std (default); "
                         "inception: 299 px, bicubic, mean=std=0.5; raw: pixels in [0, 1]")
    po.add_argument("--input-size", type=int, default=None,
                    help="crop side in pixels (default: the model's fixed size, else the preset's)")
    po.add_argument("--crop-pct", type=float, default=None,
                    help="centre-crop fraction of the resized image (default: the preset's)")
    po.add_argument("--interpolation", choices=("bilinear", "bicubic", "nearest"), default=None)
    po.add_argument("--mean", type=float, nargs="+", default=None, metavar="M",
                    help="per-channel mean in [0, 1] pixel units (1 or 3 numbers)")
    po.add_argument("--std", type=float, nargs="+", default=None, metavar="S",
                    help="per-channel std in [0, 1] pixel units (1 or 3 numbers)")
    po.add_argument("--scale", type=float, default=None,
                    help="instead of --mean/--std: feed scale * pixel (e.g. 255 for raw 0..255)")
    pm = sub.add_parser("merge", help="merge shards 0/N..N-1/N into one cache entry")
    _common(pm)
    pm.add_argument("--shards", type=int, required=True)
    pc = sub.add_parser("covariance", help="write a model's logit second moment S (.npy) from the cache")
    pc.add_argument("--model", required=True)
    pc.add_argument("--data", nargs="+", action="extend", required=True,
                    help="one or more folders (pooled; --data A B or --data A --data B)")
    pc.add_argument("--views", type=int, default=0)
    pc.add_argument("--center", action="store_true", help="centred covariance instead of E[f f^T]")
    pc.add_argument("--mode", choices=("full", "moments"), default="full",
                    help="what to extract for a folder with no cached entry (a cached full or "
                         "moments entry is used whichever this says)")
    pc.add_argument("--out", required=True, help="output .npy path ('.npy' is appended if missing)")
    pc.add_argument("--cache-dir", default=None)
    pl = sub.add_parser("logits", help="extract everything a study profile needs")
    pl.add_argument("--profile", default="default", help="smoke, default or full")
    pl.add_argument("--cache-dir", default=None)
    pl.add_argument("--quiet", action="store_true")
    pf = sub.add_parser("fit", help="fit CovLasso dependencies on a logits file",
                        description=_FIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    pf.add_argument("--logits", required=True, metavar="FILE",
                    help="(n_images, n_classes) logits: .npy, .npz (key 'logits' or its only "
                         "array) or .pt (a tensor)")
    pf.add_argument("--labels", default=None, metavar="FILE",
                    help="optional (n_images,) integer labels (.npy/.npz/.pt, or the .json "
                         "sidecar of `extract --out`): checked, top-1 recorded, stratified "
                         "--holdout")
    size = pf.add_mutually_exclusive_group()
    size.add_argument("--k", type=int, default=None,
                      help="partners per target (default 10 when --lam-ratio is not given)")
    size.add_argument("--lam-ratio", type=float, default=None,
                      help="penalty relative to each target's lam_max instead of --k")
    pf.add_argument("--targets", type=int, nargs="+", default=None, metavar="I",
                    help="target class indices (default: all)")
    pf.add_argument("--no-center", action="store_true",
                    help="fit on the uncentred second moment E[f f^T], no intercept")
    pf.add_argument("--refit", action="store_true",
                    help="least-squares coefficients on the support instead of the Lasso's")
    pf.add_argument("--holdout", type=float, default=0.0, metavar="FRAC",
                    help="fit on a seeded 1-FRAC of the images, R^2 on the rest (default 0: "
                         "R^2 in sample)")
    pf.add_argument("--seed", type=int, default=0, help="seed of the --holdout split")
    pf.add_argument("--tol", type=float, default=1e-8, help="relative duality-gap tolerance")
    pf.add_argument("--out", required=True, metavar="deps.csv",
                    help="CSV of target,partner,coef rows; the sidecar deps.json is written "
                         "beside it")
    origins_command.add_parser(sub)  # `data`: neudep_utils/origins/command.py
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    debug = os.environ.get("NEUDEP_DEBUG", "") not in ("", "0")
    old_show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        rc = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return rc
    except BrokenPipeError:  # e.g. `... | head`: the reader is gone; say nothing more
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, as a shell tool killed by the closed pipe
    except KeyboardInterrupt:
        _say("error: interrupted (Ctrl-C); finished chunks are kept in the cache: rerun the same "
             "command to resume")
        return 130
    except (DataError, ModelError, HubUnavailableError, CacheError, ValueError) as exc:
        if debug:
            raise
        _say(f"error: {exc}")
        return 2
    except OSError as exc:
        if debug:
            raise
        _say(f"error: {_os_error(exc, args)}")
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        if debug:
            raise
        _say(f"error: unexpected {type(exc).__name__}: {exc}; this is a bug: rerun with "
             "NEUDEP_DEBUG=1 for the traceback and report it")
        return 1
    finally:
        warnings.showwarning = old_show


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "data":
        return origins_command.cmd_data(args)
    if args.cmd == "fit":
        return _fit(args)
    if args.cmd == "extract":
        t0 = time.perf_counter()
        model = _extract_model(args)
        out = _out_path(args.out) if args.out else None
        if out is not None and args.mode != "full":
            raise ValueError("--out needs per-image logits: drop --mode moments")
        ctx = distributed.init_from_env(args.device) if distributed.launched_by_torchrun() else None
        try:
            ls = extract(model, args.data, args.views, seed=args.seed,
                         label_mode=args.label_mode, shard=args.shard, mode=args.mode,
                         features=not args.no_features, cache_dir=args.cache_dir,
                         batch_size=args.batch_size, num_workers=args.workers,
                         device=args.device, progress=not args.quiet, dist=ctx)
        finally:
            if ctx is not None:
                distributed.shutdown()
        if ls is not None:  # ranks other than 0 of a torchrun launch report nothing
            _report(ls, time.perf_counter() - t0)
            if out is not None:
                _export_logits(ls, out, model)
            if ctx is not None and "rank_shares" not in ls.meta:
                print(f"world size: {ctx.world_size} ({ctx.backend}); the entry was already in "
                      "the cache: no rank had images to process")
    elif args.cmd == "merge":
        t0 = time.perf_counter()
        ls = merge_shards(args.model, args.data, args.shards, args.views, seed=args.seed,
                          label_mode=args.label_mode, mode=args.mode,
                          features=not args.no_features, cache_dir=args.cache_dir)
        _report(ls, time.perf_counter() - t0)
    elif args.cmd == "covariance":
        import io

        import numpy as np

        out = _out_path(args.out)
        remove_stale_temporaries(out.parent)  # of an earlier `covariance` killed mid-write
        folders = _distinct_folders(args.data)
        mom = None
        for d in folders:
            ls = _entry_for_covariance(args, d)
            if ls.skipped:
                _say(f"warning: {d}: {ls.skipped_note()}")
            mom = ls.moments if mom is None else mom + ls.moments
        S = mom.second_moment(center=args.center)
        buf = io.BytesIO()
        np.save(buf, S)
        atomic_write_bytes(out, buf.getvalue(), hint="choose --out in")
        print(f"wrote {out}: {S.shape[0]}x{S.shape[1]} "
              f"{'centred covariance' if args.center else 'second moment'} from "
              f"{mom.count} logit vectors")
    elif args.cmd == "logits":
        for ex in get_profile(args.profile).extractions():
            t0 = time.perf_counter()
            print(f"== {ex.model} on {ex.folder} (views={ex.views + 1}, {ex.mode})", flush=True)
            ls = read_entry(**ex.kwargs(), cache_dir=args.cache_dir, progress=not args.quiet)
            _report(ls, time.perf_counter() - t0)
    return 0


def _extract_model(args: argparse.Namespace):
    """The model of ``extract``: a registered/timm name, or a checked ONNX file."""
    onnx_opts = {"--input-size": args.input_size, "--crop-pct": args.crop_pct,
                 "--interpolation": args.interpolation, "--mean": args.mean, "--std": args.std,
                 "--scale": args.scale}
    if args.onnx is None:
        given = [k for k, v in onnx_opts.items() if v is not None]
        if given or args.preset != "imagenet":
            raise ValueError(f"{', '.join(given) or '--preset'} only apply to --onnx models (a "
                             f"registered model has its own preprocessing); drop them")
        return args.model
    if args.shard:
        raise ValueError("--shard is not available with --onnx (merge needs a registered "
                         "model); extract the whole folder, or use --mode moments")
    from .models.onnxfile import load_onnx, onnx_preprocess

    pre = onnx_preprocess(args.preset, input_size=args.input_size, crop_pct=args.crop_pct,
                          interpolation=args.interpolation, mean=args.mean, std=args.std,
                          scale=args.scale)
    # without --input-size a model with a fixed input size sets it
    return load_onnx(args.onnx, pre, adapt_size=args.input_size is None)


def _export_logits(ls, out: Path, model) -> None:
    """Write the centre-view logits in image order to ``out`` and the sidecar ``out.json``."""
    import hashlib
    import io
    import json

    import numpy as np

    if ls.logits is None:
        raise ValueError("the entry holds no per-image logits (moments mode); drop --mode "
                         "moments to use --out")
    X = np.ascontiguousarray(ls.logits[:, 0], dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, X)
    data = buf.getvalue()
    side = out.with_suffix(".json")
    meta = {"logits": out.name, "logits_sha256": hashlib.sha256(data).hexdigest(),
            "shape": list(X.shape), "images": list(ls.image_ids),
            "labels": [int(v) for v in ls.labels], "label_mode": ls.meta.get("label_mode"),
            "folder": ls.meta.get("folder"), "model": ls.key.model,
            "weights_sha256": ls.key.weights_sha256, "preprocess": ls.key.preprocess,
            "engine": ls.key.engine, "cache_entry": str(ls.path), "top1": ls.meta.get("top1"),
            "skipped": [list(x) for x in ls.skipped], "neudep_utils": __version__}
    if not isinstance(model, str):
        meta["onnx_file"] = str(model.file)
    atomic_write_bytes(out, data, hint="choose --out in")
    atomic_write_bytes(side, (json.dumps(meta, indent=1) + "\n").encode(), hint="choose --out in")
    print(f"wrote {out}: {X.shape[0]}x{X.shape[1]} centre-view logits in image order; "
          f"sidecar {side}")


# --------------------------------------------------------------------------------------------
# fit


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_array(path: str | os.PathLike[str], what: str = "--logits"):
    """Read one array from a ``.npy``, ``.npz`` (key ``logits``/``labels`` or its only array),
    ``.pt`` (a tensor, or a dict holding one under that key) or, for labels, the ``.json``
    sidecar of ``extract --out``.

    Parameters
    ----------
    path : str or path
        The file.
    what : str, default "--logits"
        The option it came from (``--logits`` or ``--labels``), named in errors and deciding the
        ``.npz``/``.pt``/``.json`` key.

    Returns
    -------
    ndarray
        The array (not yet checked for shape or values).

    Raises
    ------
    ValueError
        Missing, unreadable or damaged file, an unknown suffix, or no single array to take.
    """
    import json
    import pickle
    import zipfile

    import numpy as np

    p = Path(path).expanduser()
    key = what.lstrip("-")
    if not p.exists():
        raise ValueError(f"{what} {path}: no such file; check the path")
    if p.is_dir():
        raise ValueError(f"{what} {path}: is a folder; give a .npy, .npz or .pt file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                names = list(z.files)
                if key in names:
                    return z[key]
                if len(names) == 1:
                    return z[names[0]]
            raise ValueError(f"{what} {path}: the .npz holds {len(names)} arrays "
                             f"({', '.join(names[:8]) or 'none'}); name the one to use "
                             f"'{key}' or save only that array")
        if suffix in (".pt", ".pth"):
            import torch

            obj = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(obj, dict) and key in obj:
                obj = obj[key]
            if not isinstance(obj, torch.Tensor):
                raise ValueError(f"{what} {path}: holds a {type(obj).__name__}, not a tensor; "
                                 f"torch.save a tensor (or a dict with key '{key}')")
            return obj.detach().cpu().numpy()
        if suffix == ".json" and what == "--labels":
            data = json.loads(p.read_text())
            if not isinstance(data, dict) or "labels" not in data:
                raise ValueError(f"{what} {path}: a JSON file needs a 'labels' list (the sidecar "
                                 "of `extract --out`)")
            return np.asarray(data["labels"])
    except ValueError as exc:
        if str(exc).startswith(what):
            raise
        raise ValueError(f"{what} {path}: cannot read it as {suffix} "
                         f"({' '.join(str(exc).split())[:160]}); is the file complete?") from None
    except (OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError,
            KeyError) as exc:
        raise ValueError(f"{what} {path}: cannot read it as {suffix} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:160]}); is the file complete?") from None
    raise ValueError(f"{what} {path}: unknown file type {suffix or '(none)'}; use .npy, .npz "
                     "or .pt" + (" or the .json sidecar" if what == "--labels" else ""))


def _fit(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from .covlasso.estimator import CovLasso

    out = Path(args.out).expanduser()
    if not out.parent.is_dir():
        raise ValueError(f"--out {args.out}: folder {out.parent} does not exist; create it or "
                         "choose another path")
    if out.is_dir():
        raise ValueError(f"--out {args.out}: is a folder; give a file name such as deps.csv")
    side = out.with_suffix(".json")
    if side == out:
        raise ValueError(f"--out {args.out}: the sidecar would overwrite it; use a .csv name")
    X = load_array(args.logits, "--logits")
    if X.dtype == object or not (np.issubdtype(X.dtype, np.floating)
                                 or np.issubdtype(X.dtype, np.integer)):
        raise ValueError(f"--logits {args.logits}: dtype {X.dtype} is not numeric")
    if X.ndim != 2:
        raise ValueError(f"--logits {args.logits}: shape {X.shape}; need a 2-D (n_images, "
                         "n_classes) array")
    if X.shape[0] < 2 or X.shape[1] < 2:
        raise ValueError(f"--logits {args.logits}: shape {X.shape}; need at least 2 images and "
                         "2 classes")
    X = X.astype(np.float64)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise ValueError(f"--logits {args.logits}: {int(bad.sum())} row(s) hold NaN or inf "
                         f"(e.g. row {int(np.flatnonzero(bad)[0])}); drop or fix them")
    y = None
    if args.labels is not None:
        y = load_array(args.labels, "--labels")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"--labels {args.labels}: shape {y.shape}; need one label per "
                             f"logit row ({X.shape[0]},)")
        if not np.issubdtype(y.dtype, np.integer):
            if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) \
                    and np.all(y == np.round(y)):
                y = y.astype(np.int64)
            else:
                raise ValueError(f"--labels {args.labels}: labels must be integers; got dtype "
                                 f"{y.dtype}")
    if not 0.0 <= args.holdout < 1.0:
        raise ValueError(f"--holdout {args.holdout}: must be in [0, 1)")
    fit_rows = np.arange(X.shape[0])
    eval_rows = fit_rows
    if args.holdout > 0:
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(X.shape[0])
        if y is not None:  # stratified: shuffled, grouped by class, every 1/FRAC-th held out
            order = order[np.argsort(y[order], kind="stable")]
        i = np.arange(X.shape[0])
        held = np.zeros(X.shape[0], dtype=bool)
        held[order] = np.floor((i + 1) * args.holdout) > np.floor(i * args.holdout)
        fit_rows, eval_rows = np.flatnonzero(~held), np.flatnonzero(held)
        if fit_rows.size < 2 or eval_rows.size < 2:
            raise ValueError(f"--holdout {args.holdout}: leaves {fit_rows.size} fit and "
                             f"{eval_rows.size} held-out images; need at least 2 of each")
    est = CovLasso(k=args.k, lam_ratio=args.lam_ratio, center=not args.no_center,
                   refit=args.refit, targets=args.targets, tol=args.tol)
    est.fit(X[fit_rows])
    r2 = est.r2_per_target(X[eval_rows])
    rows = ["target,partner,coef"]
    for t in est.targets_:
        rows += [f"{int(t)},{j},{c!r}" for j, c in est.partners(int(t))]
    atomic_write_bytes(out, ("\n".join(rows) + "\n").encode(), hint="choose --out in")
    inputs = {"logits": {"path": str(Path(args.logits).resolve()),
                         "sha256": _sha256(Path(args.logits).expanduser()),
                         "shape": list(X.shape)}}
    if args.labels is not None:
        inputs["labels"] = {"path": str(Path(args.labels).resolve()),
                            "sha256": _sha256(Path(args.labels).expanduser())}
    top1 = None
    if y is not None and y.min() >= 0 and y.max() < X.shape[1]:
        top1 = float(np.mean(X.argmax(axis=1) == y))

    def num(v):
        v = float(v)
        return v if np.isfinite(v) else None

    per = [{"target": int(t), "k": int(est.k_[i]), "lam": num(est.lam_[i]),
            "lam_ratio": num(est.lam_[i] / est.lam_max_[i]) if est.lam_max_[i] > 0 else None,
            "lam_max": num(est.lam_max_[i]), "gap": num(est.duality_gap_[i]),
            "intercept": num(est.intercept_[i]), "r2": num(r2[i])}
           for i, t in enumerate(est.targets_)]
    meta = {"neudep_utils": __version__, "inputs": inputs,
            "params": est.get_params(), "k": est._params(X.shape[1])[0], "n_images": int(X.shape[0]),
            "n_fit": int(fit_rows.size), "n_eval": int(eval_rows.size),
            "r2_on": "held-out images" if args.holdout > 0 else "the fit images (in sample)",
            "holdout": args.holdout, "seed": args.seed, "n_classes": int(X.shape[1]),
            "top1": top1, "mean_r2": num(np.mean(r2)), "targets": per}
    meta["params"]["targets"] = None if args.targets is None else [int(t) for t in args.targets]
    atomic_write_bytes(side, (json.dumps(meta, indent=1) + "\n").encode(), hint="choose --out in")
    n_dep = len(rows) - 1
    print(f"wrote {out}: {n_dep} dependencies of {est.targets_.size} target(s) "
          f"(mean R^2 {np.mean(r2):.4f} on {meta['r2_on']}); sidecar {side}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
