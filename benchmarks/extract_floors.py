"""The extraction floor of each model: its forward pass alone, one thread, seconds per view.

Usage: python benchmarks/extract_floors.py [--profile default] [--batch 64] [--repeats 3]

For every model of the profile, the engine ``make logits`` uses (ONNX Runtime, or LiteRT for
the int8 models) is built with one thread and timed on a seeded batch of preprocessed images
(``engines.probe_input``: no decoding, no resizing, no cache writes), median of ``--repeats``,
in CPU seconds of the process (one compute thread: its CPU time is the forward pass's, and it
does not grow when other jobs share the machine, as wall time would).
``make logits`` runs one entry per core side by side, so a stage whose every view cost only this
would take ``views x seconds per view / cores``: the floor column of the build table
(``scripts/build_report.py --floors``). Writes ``benchmarks/results/floors.json``; the load
average at the start and end is recorded beside the numbers (other jobs may share the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "floors.json"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    os.environ["NEUDEP_LITERT_THREADS"] = "1"
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from neudep_utils.cache import default_cache_dir
    from neudep_utils.models import load_model_cached
    from neudep_utils.models.engines import make_runner, probe_input
    from neudep_utils.profiles import get_profile

    models = list(dict.fromkeys(e.model for e in get_profile(args.profile).extractions()))
    load0 = os.getloadavg()
    per_view = {}
    for m in models:
        loaded = load_model_cached(m)
        runner = make_runner(loaded, None, "cpu", default_cache_dir())
        x = probe_input(loaded, args.batch)
        runner(x[:2])  # warm-up
        ts = []
        for _ in range(args.repeats):
            t0 = time.process_time()
            runner(x)
            ts.append((time.process_time() - t0) / args.batch)
        per_view[m] = float(np.median(ts))
        print(f"{m}: {1000 * per_view[m]:.2f} ms CPU per view (forward pass, one thread)",
              flush=True)
    out = {"extraction": per_view, "batch": args.batch, "threads": 1,
           "load_start": load0[0], "load_end": os.getloadavg()[0],
           "note": "forward pass alone on one thread, CPU seconds per view (engines.probe_input)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
