"""``extract``: a model's logits (and features) on an image folder, into the cache, optionally
exported as ``X.npy`` in image order with a JSON sidecar."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np

from .. import __version__
from .. import _dist as distributed
from .._io import atomic_write_bytes
from ..cache import extract
from ..images import resolve_folder
from ..models.onnxfile import load_onnx, onnx_preprocess
from ._common import add_source_options, int_at_least, out_path, report

HELP = """Extract (or read cached) logits of a model on an image folder.

The model is an embedded/timm model (--model) or any ImageNet-style classifier as an ONNX file
(--onnx; run by ONNX Runtime on the CPU, cached under its sha256 and preprocessing).

example:
  python -m neudep_utils extract --onnx resnet18.onnx --preset imagenet \\
      --data /work/shared/data/imagenet-val --out X.npy
  python -m neudep_utils fit --logits X.npy --labels X.json --k 3 --out deps.csv

A torchvision or timm checkpoint becomes an ONNX file with torch.onnx.export (see
neudep_utils.models.onnxfile).
"""

#: The ONNX preprocessing options (``None`` when not given), by their command-line names.
ONNX_OPTIONS = {"--input-size": "input_size", "--crop-pct": "crop_pct",
                "--interpolation": "interpolation", "--mean": "mean", "--std": "std",
                "--scale": "scale"}


def add_parser(sub) -> None:
    """The ``extract`` subcommand and its options."""
    pe = sub.add_parser("extract", help="extract (or read cached) logits and features",
                        description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_options(pe, onnx=True)
    pe.add_argument("--shard", default=None, help="k/N: extract the k-th of N contiguous blocks")
    pe.add_argument("--batch-size", type=int_at_least(1, "images per batch"), default=64)
    pe.add_argument("--workers", type=int_at_least(0, "0: decode in the main process"),
                    default=None, help="DataLoader workers, >= 0 (default: cores, at most 4)")
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


def run(args: argparse.Namespace) -> int:
    """Run ``extract``; returns the exit status."""
    t0 = time.perf_counter()
    model = _model(args)
    out = out_path(args.out) if args.out else None
    if out is not None and args.mode != "full":
        raise ValueError("--out needs per-image logits: drop --mode moments")
    ctx = distributed.init_from_env(args.device) if distributed.launched_by_torchrun() else None
    try:
        ls = extract(model, args.data, args.views, seed=args.seed, label_mode=args.label_mode,
                     shard=args.shard, mode=args.mode, features=not args.no_features,
                     cache_dir=args.cache_dir, batch_size=args.batch_size,
                     num_workers=args.workers, device=args.device, progress=not args.quiet,
                     dist=ctx)
    finally:
        if ctx is not None:
            distributed.shutdown()
    if ls is None:  # ranks other than 0 of a torchrun launch report nothing
        return 0
    report(ls, time.perf_counter() - t0)
    if out is not None:
        _export(ls, out, model, args)
    if ctx is not None and "rank_shares" not in ls.meta:
        print(f"world size: {ctx.world_size} ({ctx.backend}); the entry was already in the "
              "cache: no rank had images to process")
    return 0


def _model(args: argparse.Namespace):
    """The model of ``extract``: a registered/timm name, or a checked ONNX file."""
    given = {opt: getattr(args, name) for opt, name in ONNX_OPTIONS.items()}
    if args.onnx is None:
        named = [k for k, v in given.items() if v is not None]
        if named or args.preset != "imagenet":
            raise ValueError(f"{', '.join(named) or '--preset'} only apply to --onnx models (a "
                             f"registered model has its own preprocessing); drop them")
        return args.model
    if args.shard:
        raise ValueError("--shard is not available with --onnx (merge needs a registered "
                         "model); extract the whole folder, or use --mode moments")
    pre = onnx_preprocess(args.preset, **{name: given[opt] for opt, name in ONNX_OPTIONS.items()})
    # without --input-size a model with a fixed input size sets it
    return load_onnx(args.onnx, pre, adapt_size=args.input_size is None)


def _export(ls, out: Path, model, args: argparse.Namespace) -> None:
    """Write the centre-view logits in image order to ``out`` and the sidecar ``out.json``
    (naming the folder this command read and its label mode: a content-addressed entry may
    have been written from another folder holding the same images)."""
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
            "labels": [int(v) for v in ls.labels], "label_mode": args.label_mode,
            "folder": str(resolve_folder(args.data)), "model": ls.key.model,
            "weights_sha256": ls.key.weights_sha256, "preprocess": ls.key.preprocess,
            "engine": ls.key.engine, "cache_entry": str(ls.path), "top1": ls.meta.get("top1"),
            "skipped": [list(x) for x in ls.skipped], "neudep_utils": __version__}
    if args.label_mode == "folder":
        meta["top1"] = None
        meta["labels_are"] = ("indices of the sorted class-folder names (--label-mode folder), "
                              "not ImageNet classes: no top-1")
    if not isinstance(model, str):
        meta["onnx_file"] = str(model.file)
    atomic_write_bytes(out, data, hint="choose --out in")
    atomic_write_bytes(side, (json.dumps(meta, indent=1) + "\n").encode(), hint="choose --out in")
    print(f"wrote {out}: {X.shape[0]}x{X.shape[1]} centre-view logits in image order; "
          f"sidecar {side}")
