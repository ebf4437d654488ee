"""Benchmark: the cached extraction path against a plain single-process timm loop.

Both run the same model over the same images with the same batch size, in one process run, and
the script prints images/second of each and their ratio. The cached path (``neudep_utils.cache
.extract`` into an empty temporary cache) includes reading, decoding, writing the cache entry and
its checksum; the plain loop is what a user would write first: PIL decode + timm's eval transform
in the main process, ``torch.no_grad()``, default memory layout.

    python benchmarks/bench_extract.py [--model efficientnet_lite0] [--images 200] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def plain_loop(model_name: str, paths: list, batch_size: int) -> tuple[float, np.ndarray]:
    """Images/second of a plain single-process loop, and its logits."""
    import timm
    import torch
    from PIL import Image

    from neudep_utils.models import load_model

    loaded = load_model(model_name)
    model = loaded.model.to(memory_format=torch.contiguous_format)
    if getattr(model, "pretrained_cfg", None) is not None:
        cfg = timm.data.resolve_data_config({}, model=model)
        tf = timm.data.create_transform(**cfg)
    else:  # not a timm model (MobileNet v1): its own transform, which timm cannot know
        def tf(img):
            return loaded.preprocess.to_tensor(loaded.preprocess.eval_geometric(img))
    out = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(paths), batch_size):
            x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[s:s + batch_size]])
            out.append(model(x).numpy())
    dt = time.perf_counter() - t0
    return len(paths) / dt, np.concatenate(out)


def cached_path(model_name: str, folder, manifest, batch_size: int, workers: int | None
                ) -> tuple[float, np.ndarray]:
    """Images/second of ``neudep_utils.cache.extract`` into an empty cache, and its logits."""
    from neudep_utils.cache import extract

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ls = extract(model_name, folder, manifest=manifest, cache_dir=tmp, batch_size=batch_size,
                     num_workers=workers, progress=False)
        dt = time.perf_counter() - t0
    return len(manifest) / dt, ls.centre


def main() -> None:
    """Run both paths twice, interleaved, and print images/second and the ratio of the best runs."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--data", default="imagenet-val")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()

    import torch

    from neudep_utils.data import resolve_folder, scan_folder
    from neudep_utils.models import load_model

    folder = resolve_folder(args.data)
    full = scan_folder(folder)
    idx = np.linspace(0, len(full) - 1, min(args.images, len(full))).astype(int)
    manifest = full.subset(idx)
    paths = [manifest.path(i) for i in range(len(manifest))]
    load_model(args.model)  # warm the file cache / imports for both
    print(f"model {args.model}, {len(paths)} images from {folder}, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    # interleaved, two runs each, best of each: warm-up and background load hit both alike
    p1, lp = plain_loop(args.model, paths, args.batch_size)
    c1, lc = cached_path(args.model, folder, manifest, args.batch_size, args.workers)
    p2, _ = plain_loop(args.model, paths, args.batch_size)
    c2, _ = cached_path(args.model, folder, manifest, args.batch_size, args.workers)
    cached, p = max(c1, c2), max(p1, p2)
    agree = float((lc.argmax(1) == lp.argmax(1)).mean())
    print(f"{'path':<34}{'images/s':>10}")
    print(f"{'plain timm loop (run 1)':<34}{p1:>10.1f}")
    print(f"{'plain timm loop (run 2)':<34}{p2:>10.1f}")
    print(f"{'neudep cached extraction (run 1)':<34}{c1:>10.1f}")
    print(f"{'neudep cached extraction (run 2)':<34}{c2:>10.1f}")
    print(f"ratio cached/plain (best of two each): {cached / p:.2f}x (goal >= 1.3x); top-1 predictions agree on "
          f"{agree:.3f} of images; max |logit diff| {np.abs(lc - lp).max():.2e}")


if __name__ == "__main__":
    main()
