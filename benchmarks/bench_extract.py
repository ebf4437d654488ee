"""Benchmark: neudep's cached extraction against a plain timm loop, and the engines behind it.

Everything runs in one process on the same images with the same batch size, and the script prints
(and writes to ``benchmarks/results/extract.md``) three tables:

1. **End to end** (per model): images/second of

   - a plain timm loop: PIL decode + timm's eval transform in the main process,
     ``torch.inference_mode()``, default memory layout, the model loaded outside the timing;
   - ``neudep_utils.cache.extract`` with the PyTorch engine (channels-last, DataLoader workers),
     the extraction path before ONNX Runtime;
   - ``neudep_utils.cache.extract`` with its default engine (ONNX Runtime on the CPU).

   The extract runs write into an empty temporary cache (reading, decoding, writing the entry and
   its checksums are timed); the ONNX export is done once before the timing (it is cached by the
   weights' checksum). Runs are interleaved, repeated, and the medians reported, with top-1
   agreement and the largest relative logit difference against the plain loop.
2. **Forward pass only** on the same preprocessed images (batch size as above): PyTorch eager,
   channels-last (oneDNN), ``torch.compile`` (optional: its first compile takes about a minute),
   ONNX Runtime; agreement against eager.
3. **Where the time goes**, per image on one thread (as in a DataLoader worker): JPEG decode (PIL
   and ``torchvision.io.decode_jpeg``, with pixel identity), resize + centre crop, tensor +
   normalisation; ``extract`` with 0, 1 and 2 DataLoader workers (and with ONNX Runtime's threads
   busy-waiting); and reduced-size JPEG draft decoding (``Image.draft``) on the original-size
   ``imagenet-sample`` images, with its effect on the logits.

With ``--profile-cost default`` it also extrapolates the extraction time of a study profile
(``make logits``) with either engine from a subset of each of its entries.

    python benchmarks/bench_extract.py [--models lite0,lite2,mobilenet] [--images 200]
        [--batch-size 64] [--repeats 3] [--compile-models lite0] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "extract.md"


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def max_rel(a: np.ndarray, ref: np.ndarray) -> float:
    """Largest per-image ``max|a - ref| / max|ref|``."""
    from neudep_utils.models.engines import max_rel_diff

    return max_rel_diff(a, ref)


def fresh_model(name: str):
    """A model loaded anew (not the extraction's cached one) in the default memory layout."""
    import torch

    from neudep_utils.models import load_model

    loaded = load_model(name)
    loaded.model.to(memory_format=torch.contiguous_format)
    return loaded


# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------


def plain_loop(loaded, paths: list, batch_size: int) -> tuple[float, np.ndarray]:
    """Images/second of a plain single-process timm loop, and its logits."""
    import timm
    import torch
    from PIL import Image

    model = loaded.model
    if getattr(model, "pretrained_cfg", None) is not None:
        tf = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    else:  # not a timm model (MobileNet v1): its own transform, which timm cannot know
        def tf(img):
            return loaded.preprocess.to_tensor(loaded.preprocess.eval_geometric(img))
    out = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(paths), batch_size):
            x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[s:s + batch_size]])
            out.append(model(x).numpy())
    dt = time.perf_counter() - t0
    return len(paths) / dt, np.concatenate(out)


def cached_path(model: str, folder, manifest, batch_size: int, workers: int | None, engine: str,
                cache_dir: Path) -> tuple[float, np.ndarray, str]:
    """Images/second of ``cache.extract`` into an empty cache entry, its logits, its engine."""
    from neudep_utils.cache import extract

    t0 = time.perf_counter()
    ls = extract(model, folder, manifest=manifest, cache_dir=cache_dir, batch_size=batch_size,
                 num_workers=workers, progress=False, engine=engine)
    dt = time.perf_counter() - t0
    shutil.rmtree(ls.path)  # the next run starts from an empty entry (the .onnx file stays)
    return len(manifest) / dt, ls.centre, ls.key.engine


def end_to_end(model: str, folder, manifest, args, cache_dir: Path) -> dict:
    """Interleaved repeats of the three paths; medians and agreement."""
    from neudep_utils.cache import extract

    paths = [manifest.path(i) for i in range(len(manifest))]
    plain_model = fresh_model(model)
    # warm-up (file cache, imports, ONNX export + session): not timed
    extract(model, folder, manifest=manifest.subset(range(2)), cache_dir=cache_dir,
            progress=False, num_workers=0)
    rates: dict[str, list[float]] = {"plain": [], "torch": [], "default": []}
    logits: dict[str, np.ndarray] = {}
    label = ""
    for _ in range(args.repeats):
        r, logits["plain"] = plain_loop(plain_model, paths, args.batch_size)
        rates["plain"].append(r)
        r, logits["torch"], _ = cached_path(model, folder, manifest, args.batch_size,
                                            args.workers, "torch", cache_dir)
        rates["torch"].append(r)
        r, logits["default"], label = cached_path(model, folder, manifest, args.batch_size,
                                                  args.workers, "auto", cache_dir)
        rates["default"].append(r)
    med = {k: statistics.median(v) for k, v in rates.items()}
    ref = logits["plain"]
    return {"model": model, "rates": rates, "median": med, "engine": label,
            "agree": {k: float((logits[k].argmax(1) == ref.argmax(1)).mean())
                      for k in ("torch", "default")},
            "rel": {k: max_rel(logits[k], ref) for k in ("torch", "default")}}


# --------------------------------------------------------------------------------------------
# Forward only
# --------------------------------------------------------------------------------------------


def preprocessed(loaded, paths: list):
    """The evaluation view of every image as one float tensor (not timed)."""
    import torch

    from neudep_utils.images import open_image

    pp = loaded.preprocess
    return torch.stack([pp.to_tensor(pp.eval_geometric(open_image(p))) for p in paths])


def forward_only(model: str, paths: list, args, cache_dir: Path) -> dict:
    """Images/second of each engine's forward pass (batch ``args.batch_size``), interleaved."""
    import torch

    from neudep_utils.models import engines

    loaded = fresh_model(model)
    x = preprocessed(loaded, paths)
    batches = [x[s:s + args.batch_size] for s in range(0, len(x), args.batch_size)]
    cl_model = fresh_model(model).model.to(memory_format=torch.channels_last)
    ort = engines.build_ort_runner(fresh_model(model), cache_dir)
    # each engine: a function of a list of batches, returning the logits
    fns = {
        "eager": lambda bs: [loaded.model(b) for b in bs],
        "channels_last": lambda bs: [cl_model(b.contiguous(memory_format=torch.channels_last))
                                     for b in bs],
        "onnxruntime": lambda bs: [ort(b)[0] for b in bs],
    }
    notes = {}
    if model in args.compile_models:
        compiled = torch.compile(fresh_model(model).model)
        t0 = time.perf_counter()
        with torch.inference_mode():  # the first call compiles; the last batch may be smaller
            compiled(batches[0])
            compiled(batches[-1])
        notes["compile_s"] = time.perf_counter() - t0
        fns["torch_compile"] = lambda bs: [compiled(b) for b in bs]

    def run(f, bs) -> np.ndarray:
        with torch.inference_mode():
            return np.concatenate([np.asarray(v) for v in f(bs)])

    for f in fns.values():  # warm-up: oneDNN primitives, ONNX Runtime arenas
        run(f, batches[:1])
    rates: dict[str, list[float]] = {k: [] for k in fns}
    out: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            out[k] = run(f, batches)
            rates[k].append(len(x) / (time.perf_counter() - t0))
    ref = out["eager"]
    return {"model": model, "median": {k: statistics.median(v) for k, v in rates.items()},
            "agree": {k: float((v.argmax(1) == ref.argmax(1)).mean()) for k, v in out.items()},
            "rel": {k: max_rel(v, ref) for k, v in out.items()}, **notes}


# --------------------------------------------------------------------------------------------
# Stages and JPEG paths
# --------------------------------------------------------------------------------------------


def stages(folder_name: str, manifest, loaded) -> dict:
    """Per-image milliseconds (median) of each preprocessing stage on one thread."""
    import torch
    from PIL import Image
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    pp = loaded.preprocess
    t: dict[str, list[float]] = {"pil_decode": [], "tv_decode": [], "resize_crop": [],
                                 "tensor_norm": []}
    identical = 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i in range(len(manifest)):
            p = manifest.path(i)
            p.read_bytes()
            t0 = time.perf_counter()
            with Image.open(p, formats=("JPEG", "PNG")) as im:
                img = im.convert("RGB")
            t1 = time.perf_counter()
            dec = decode_jpeg(read_file(str(p)), mode=ImageReadMode.RGB)
            t2 = time.perf_counter()
            g = pp.eval_geometric(img)
            t3 = time.perf_counter()
            pp.to_tensor(g)
            t4 = time.perf_counter()
            identical += bool(np.array_equal(dec.permute(1, 2, 0).numpy(), np.asarray(img)))
            for k, v in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                t[k].append(v * 1e3)
    finally:
        torch.set_num_threads(threads)
    return {"folder": folder_name, "n": len(manifest), "identical": identical,
            **{k: statistics.median(v) for k, v in t.items()},
            "mean_total": float(np.mean([t["pil_decode"][i] + t["resize_crop"][i]
                                         + t["tensor_norm"][i] for i in range(len(manifest))]))}


def worker_configs(model: str, folder, manifest, args, cache_dir: Path) -> list[dict]:
    """``extract`` with the default engine and 0, 1, 2 DataLoader workers, and with ONNX Runtime's
    threads busy-waiting (2 workers); interleaved, medians; whether the logits are identical."""
    from neudep_utils.models import engines

    configs = [("0 workers", 0, False), ("1 worker", 1, False), ("2 workers", 2, False),
               ("2 workers, ONNX Runtime threads spinning", 2, True)]
    rates: dict[str, list[float]] = {c[0]: [] for c in configs}
    logits: dict[str, np.ndarray] = {}
    try:
        for _ in range(args.repeats):
            for name, workers, spin in configs:
                engines.ORT_SPINNING = spin
                r, logits[name], _ = cached_path(model, folder, manifest, args.batch_size,
                                                 workers, "auto", cache_dir)
                rates[name].append(r)
    finally:
        engines.ORT_SPINNING = False
    ref = logits[configs[0][0]]
    return [{"config": name, "median": statistics.median(rates[name]),
             "identical": bool(np.array_equal(logits[name], ref))} for name, *_ in configs]


def draft_view(path, pp):
    """The evaluation view with reduced-size JPEG decoding: the decoder scales by 1/2, 1/4 or 1/8
    as long as the shorter side stays at least the resize size."""
    from PIL import Image

    with Image.open(path, formats=("JPEG", "PNG")) as im:
        w, h = im.size
        s = pp.resize_size
        if im.format == "JPEG":
            im.draft("RGB", (max(1, w * s // min(w, h)), max(1, h * s // min(w, h))))
        reduced = im.size != (w, h)
        img = im.convert("RGB")
    return pp.eval_geometric(img), reduced


def jpeg_draft(manifest, model: str, cache_dir: Path) -> dict:
    """Time and logit agreement of draft decoding against the full decode (ONNX Runtime)."""
    import torch

    from neudep_utils.images import open_image
    from neudep_utils.models import engines

    loaded = fresh_model(model)
    pp = loaded.preprocess
    ort = engines.build_ort_runner(loaded, cache_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    full_t, draft_t, xs_full, xs_draft, reduced = [], [], [], [], []
    try:
        for i in range(len(manifest)):
            p = manifest.path(i)
            t0 = time.perf_counter()
            a = pp.eval_geometric(open_image(p))
            t1 = time.perf_counter()
            b, red = draft_view(p, pp)
            t2 = time.perf_counter()
            full_t.append(t1 - t0)
            draft_t.append(t2 - t1)
            reduced.append(red)
            if red:
                xs_full.append(pp.to_tensor(a))
                xs_draft.append(pp.to_tensor(b))
    finally:
        torch.set_num_threads(threads)
    n_red = int(sum(reduced))
    res = {"n": len(manifest), "reduced": n_red, "full_ms": 1e3 * float(np.mean(full_t)),
           "draft_ms": 1e3 * float(np.mean(draft_t))}
    if n_red:
        lf = ort(torch.stack(xs_full))[0]
        ld = ort(torch.stack(xs_draft))[0]
        res.update(agree=float((lf.argmax(1) == ld.argmax(1)).mean()), rel=max_rel(ld, lf))
    return res


# --------------------------------------------------------------------------------------------
# A study profile's extraction cost, extrapolated from a subset
# --------------------------------------------------------------------------------------------


def _timed_extract(kw: dict, manifest, cache_dir: Path, engine: str) -> float:
    from neudep_utils.cache import extract

    t0 = time.perf_counter()
    ls = extract(**kw, manifest=manifest, cache_dir=cache_dir, engine=engine, progress=False)
    dt = time.perf_counter() - t0
    shutil.rmtree(ls.path)
    return dt


def profile_cost(profile: str, k: int, cache_dir: Path) -> dict:
    """Extraction time of every entry of ``profile``, extrapolated from ``k`` of its images
    (evenly spaced), with the PyTorch and the default engine (interleaved).

    Each entry's time is ``t1 + (tk - t1) / (k - 1) * (n - 1)``: ``t1`` an extraction of its first
    image (the per-call start-up: DataLoader workers, first batches), ``tk`` of the ``k`` images,
    ``n`` its images. The one-time ONNX export of each model is timed into an empty folder."""
    from neudep_utils.cache import extract
    from neudep_utils.images import resolve_folder, scan_folder
    from neudep_utils.images.corruptions import corruption_fn, subset_manifest
    from neudep_utils.models import engines, load_model_cached
    from neudep_utils.profiles import get_profile

    rows, exports = [], {}
    for ex in get_profile(profile).extractions():
        kw = ex.kwargs()
        subset, corruption = kw.pop("subset"), kw.pop("corruption")
        if corruption is not None:
            kw.update(corruption=corruption, pil_fn=corruption_fn(corruption))
        manifest = (scan_folder(resolve_folder(ex.folder), label_mode=ex.label_mode)
                    if subset is None else
                    subset_manifest(ex.folder, subset, label_mode=ex.label_mode)[0])
        sub = manifest.subset(np.linspace(0, len(manifest) - 1, min(k, len(manifest))).astype(int))
        nv = ex.views + 1
        if ex.model not in exports:  # one-time costs
            t0 = time.perf_counter()
            engines.build_ort_runner(load_model_cached(ex.model), cache_dir / "export-timing")
            exports[ex.model] = time.perf_counter() - t0
            for engine in ("torch", "auto"):  # model load, the default engine's export
                shutil.rmtree(extract(**{**kw, "manifest": sub.subset(range(1))},
                                      cache_dir=cache_dir, engine=engine, progress=False).path)
        seconds = {}
        for engine in ("torch", "auto"):
            t1 = _timed_extract(kw, sub.subset(range(1)), cache_dir, engine)
            tk = _timed_extract(kw, sub, cache_dir, engine)
            seconds[engine] = t1 + max(tk - t1, 0.0) / max(len(sub) - 1, 1) * (len(manifest) - 1)
        rows.append({"model": ex.model, "folder": ex.folder, "corruption": ex.corruption,
                     "views": len(manifest) * nv, "seconds": seconds})
        print(f"  {ex.model} {ex.folder} {ex.corruption or ''}: {len(manifest) * nv} views, "
              f"{seconds['torch']:.0f} s / {seconds['auto']:.0f} s (torch / default engine; "
              f"load {loadavg()})", flush=True)
    return {"profile": profile, "k": k, "rows": rows, "exports": exports}


def profile_table(pc: dict) -> list[str]:
    """Markdown lines: the profile's extraction cost by model and kind, before and after."""
    groups: dict[tuple[str, str], dict] = {}
    for r in pc["rows"]:
        kind = ("corrupted copies" if r["corruption"] else
                "cue-conflict" if "cue-conflict" in r["folder"] else r["folder"])
        g = groups.setdefault((r["model"], kind), {"entries": 0, "views": 0, "torch": 0.0,
                                                   "auto": 0.0})
        g["entries"] += 1
        g["views"] += r["views"]
        for e in ("torch", "auto"):
            g[e] += r["seconds"][e]
    lines = ["", f"**Extraction of the `{pc['profile']}` profile** (`make logits`), extrapolated "
             f"from {pc['k']} evenly spaced images of each of its {len(pc['rows'])} entries "
             "(`extract` into an empty entry, the two engines interleaved; each entry: its "
             "start-up, timed on one image, plus the per-image time of the others):",
             "", "| model | entries | views | torch engine (min) | default engine (min) | "
             "speed-up |", "|---|---|---|---|---|---|"]
    tot = {"views": 0, "torch": 0.0, "auto": 0.0}
    for (model, kind), g in groups.items():
        lines.append(f"| {model}, {kind} | {g['entries']} | {g['views']} | {g['torch'] / 60:.1f} | "
                     f"{g['auto'] / 60:.1f} | {g['torch'] / g['auto']:.2f}x |")
        for k in tot:
            tot[k] += g[k]
    export = sum(pc["exports"].values())
    lines.append(f"| **total** | {len(pc['rows'])} | {tot['views']} | **{tot['torch'] / 60:.1f}** | "
                 f"**{(tot['auto'] + export) / 60:.1f}** (incl. {export:.0f} s of one-time ONNX "
                 f"exports) | {tot['torch'] / (tot['auto'] + export):.2f}x |")
    return lines


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def fmt_rel(v: float) -> str:
    return f"{v:.1e}"


def report(args, header: dict, e2e: list[dict], fwd: list[dict], st: list[dict],
           draft: dict | None, pc: dict | None = None, wk: list[dict] | None = None) -> str:
    """The markdown the script prints and writes."""
    lines = [
        f"Measured by `{header['command']}` on {header['machine']}, {header['cores']} CPU "
        f"cores, torch {header['torch']} ({header['threads']} threads), onnxruntime "
        f"{header['ort']}; load average (1/5/15 min) {header['load_before']} at the start and "
        f"{header['load_end']} at the end ({header['load_words']}). "
        f"{args.images} `{args.data}` images, batch {args.batch_size}, "
        f"{args.repeats} interleaved runs per path, medians.",
        "",
        "**End to end** (images/s): a plain timm loop (PIL + timm's eval transform in the main "
        "process, `torch.inference_mode`, model loaded outside the timing) against "
        "`neudep_utils.cache.extract` into an empty cache entry (reading, decoding, writing the "
        "entry and checksums included), with the PyTorch engine (the path before this change: "
        "channels-last, DataLoader workers) and with the default engine (ONNX Runtime, exported "
        "once and cached). Agreement is against the plain loop's logits.",
        "",
        "| model | plain timm loop | neudep, torch engine | neudep, default engine | default / "
        "plain | torch engine / plain | top-1 identical (default, torch) | max rel. logit diff "
        "(default, torch) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in e2e:
        m = r["median"]
        lines.append(
            f"| {r['model']} | {m['plain']:.1f} | {m['torch']:.1f} | {m['default']:.1f} | "
            f"**{m['default'] / m['plain']:.2f}x** | {m['torch'] / m['plain']:.2f}x | "
            f"{r['agree']['default']:.3f}, {r['agree']['torch']:.3f} | "
            f"{fmt_rel(r['rel']['default'])}, {fmt_rel(r['rel']['torch'])} |")
    if e2e:
        lines += ["", f"Default engine's cache-key label: `{e2e[0]['engine']}`. Runs (images/s, "
                  "in order): " + "; ".join(
                      f"{r['model']}: plain {', '.join(f'{v:.1f}' for v in r['rates']['plain'])}"
                      f" / torch {', '.join(f'{v:.1f}' for v in r['rates']['torch'])}"
                      f" / default {', '.join(f'{v:.1f}' for v in r['rates']['default'])}"
                      for r in e2e) + "."]
    if fwd:
        names = [("eager", "eager"), ("channels_last", "channels-last (oneDNN)"),
                 ("torch_compile", "torch.compile"), ("onnxruntime", "ONNX Runtime")]
        lines += ["", "**Forward pass only** (images/s on the same preprocessed images, batch "
                  f"{args.batch_size}; in brackets: top-1 identical to eager, max rel. logit diff "
                  "to eager):", "",
                  "| model | " + " | ".join(n for _, n in names) + " | ONNX Runtime / eager |",
                  "|---|" + "---|" * (len(names) + 1)]
        for r in fwd:
            cells = []
            for k, _ in names:
                if k not in r["median"]:
                    cells.append("not run")
                    continue
                extra = f" (first compile {r['compile_s']:.0f} s)" if k == "torch_compile" else ""
                cells.append(f"{r['median'][k]:.1f} [{r['agree'][k]:.3f}, "
                             f"{fmt_rel(r['rel'][k])}]{extra}")
            lines.append(f"| {r['model']} | " + " | ".join(cells)
                         + f" | {r['median']['onnxruntime'] / r['median']['eager']:.2f}x |")
    if st:
        lines += ["", "**Where the time goes** (ms per image on one thread, as in a DataLoader "
                  "worker; medians):", "",
                  "| folder | PIL decode | torchvision `decode_jpeg` (pixels identical to PIL) | "
                  "resize + centre crop | tensor + normalise | mean total (PIL path) |",
                  "|---|---|---|---|---|---|"]
        for s in st:
            lines.append(f"| {s['folder']} ({s['n']} images) | {s['pil_decode']:.2f} | "
                         f"{s['tv_decode']:.2f} ({s['identical']}/{s['n']}) | "
                         f"{s['resize_crop']:.2f} | {s['tensor_norm']:.2f} | "
                         f"{s['mean_total']:.2f} |")
    if wk:
        lines += ["", f"**DataLoader workers** ({header['cores']} cores; `extract`, default engine, "
                  f"{wk[0]['model']}, images/s, medians; logits bitwise identical to 0 workers):",
                  "", "| configuration | images/s | identical |", "|---|---|---|"]
        for w in wk:
            lines.append(f"| {w['config']} | {w['median']:.1f} | {'yes' if w['identical'] else 'NO'} |")
    if draft:
        d = draft
        line = (f"**JPEG draft decoding** (`Image.draft`, decoder-side 1/2-1/8 scaling) on "
                f"{d['n']} original-size `imagenet-sample` images: {d['reduced']} can be decoded "
                f"reduced; decode + resize + crop takes {d['draft_ms']:.2f} ms per image on "
                f"average against {d['full_ms']:.2f} ms")
        if d["reduced"]:
            line += (f"; on those images it changes the pixels, so the logits move: top-1 "
                     f"identical on {d['agree']:.3f}, max rel. logit diff {fmt_rel(d['rel'])} "
                     "(Lite0, ONNX Runtime)")
        lines += ["", line + "."]
    if pc:
        lines += profile_table(pc)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run every measurement, print the tables and write them to ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lite0,lite2,mobilenet")
    ap.add_argument("--data", default="imagenet-val")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="extract's DataLoader workers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile-models", default="lite0",
                    help="models whose torch.compile forward is measured ('' for none)")
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage table")
    ap.add_argument("--profile-cost", default="",
                    help="also extrapolate a study profile's extraction time (e.g. default)")
    ap.add_argument("--profile-images", type=int, default=96,
                    help="images per entry for --profile-cost")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="markdown output ('' for none)")
    args = ap.parse_args(argv)

    import torch

    from neudep_utils.images import resolve_folder, scan_folder
    from neudep_utils.models import canonical_name
    from neudep_utils.models.engines import onnxruntime_version

    args.compile_models = {canonical_name(m) for m in args.compile_models.split(",") if m}
    models = [canonical_name(m) for m in args.models.split(",") if m]
    header = {"command": shlex.join(["python", "benchmarks/bench_extract.py",
                                      *(sys.argv[1:] if argv is None else argv)]),
              "machine": platform.machine(), "cores": os.cpu_count(),
              "torch": torch.__version__.split("+")[0], "threads": torch.get_num_threads(),
              "ort": onnxruntime_version(), "load_before": loadavg()}
    print(f"load average at start: {header['load_before']}", flush=True)
    folder = resolve_folder(args.data)
    full = scan_folder(folder)
    manifest = full.subset(np.linspace(0, len(full) - 1, min(args.images, len(full))).astype(int))
    paths = [manifest.path(i) for i in range(len(manifest))]
    e2e, fwd, st, draft, pc, wk = [], [], [], None, None, None
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp)
        for model in models:
            r = end_to_end(model, folder, manifest, args, cache_dir)
            e2e.append(r)
            print(f"{model}: plain {r['median']['plain']:.1f}, torch engine "
                  f"{r['median']['torch']:.1f}, default engine {r['median']['default']:.1f} "
                  f"images/s -> {r['median']['default'] / r['median']['plain']:.2f}x "
                  f"(load {loadavg()})", flush=True)
        for model in models:
            r = forward_only(model, paths, args, cache_dir)
            fwd.append(r)
            print(f"{model} forward: " + ", ".join(f"{k} {v:.1f}" for k, v in r["median"].items())
                  + f" images/s (load {loadavg()})", flush=True)
        if not args.no_stages:
            lite0 = fresh_model("efficientnet_lite0")
            for name in ("imagenet-val", "imagenet-sample"):
                full_s = scan_folder(resolve_folder(name))
                sub = full_s.subset(np.linspace(0, len(full_s) - 1, args.images).astype(int))
                st.append(stages(name, sub, lite0))
            sample = scan_folder(resolve_folder("imagenet-sample"))
            draft = jpeg_draft(sample, "efficientnet_lite0", cache_dir)
            if models:
                wk = worker_configs(models[0], folder, manifest, args, cache_dir)
                for w in wk:
                    w["model"] = models[0]
        if args.profile_cost:
            print(f"extraction cost of the {args.profile_cost} profile:", flush=True)
            pc = profile_cost(args.profile_cost, args.profile_images, cache_dir)
    header["load_end"] = loadavg()
    peak = max(float(h.split(" / ")[0]) for h in (header["load_before"], header["load_end"]))
    header["load_words"] = (
        "other jobs shared the machine: read the ratios, not the absolute rates"
        if peak > (os.cpu_count() or 1) + 0.5 else
        "at most about the core count, i.e. the benchmark's own work: no other heavy job ran")
    text = report(args, header, e2e, fwd, st, draft, pc, wk)
    print()
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("<!-- written by benchmarks/bench_extract.py; do not edit by hand -->\n\n"
                       + text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
