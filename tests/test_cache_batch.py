"""cache.batch.extract_all: entries side by side in worker processes give the entries one process
writes (bitwise), with a timings record per entry; a failing entry names itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neudep_utils.cache import read_entry
from neudep_utils.cache.batch import extract_all, print_record
from neudep_utils.errors import CacheError

MODELS = ("mobilenet_v1_025_int8", "mobilenet_v1_050_int8")  # LiteRT: no export, fast


def test_jobs_give_the_same_entries_and_timings(tmp_path, tiny_folder, capsys):
    entries = [{"model": m, "folder": str(tiny_folder), "views": 1} for m in MODELS]
    one = extract_all(entries, jobs=1, cache_dir=tmp_path / "a", progress=False)
    two = extract_all(entries, jobs=2, cache_dir=tmp_path / "b", progress=False,
                      timings=tmp_path / "t.json", on_done=print_record)
    assert [r["model"] for r in two] == list(MODELS) and all(r["computed"] for r in two)
    assert len({r["pid"] for r in two}) == 2  # one worker process each
    for e in entries:
        a = read_entry(**e, cache_dir=tmp_path / "a", progress=False)
        b = read_entry(**e, cache_dir=tmp_path / "b", progress=False)
        np.testing.assert_array_equal(a.logits, b.logits)
        np.testing.assert_array_equal(a.features, b.features)
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["jobs"] == 2 and [r["views"] for r in t["entries"]] == [2, 2]
    assert all(r["seconds"] > 0 and r["n_images"] == 10 for r in t["entries"])
    assert "computed, 10 images" in capsys.readouterr().out
    again = extract_all(entries, jobs=1, cache_dir=tmp_path / "a", progress=False)
    assert not any(r["computed"] for r in again) and one[0]["entry"] == again[0]["entry"]


@pytest.mark.slow  # two more worker processes (each imports torch): CI's make test-slow
def test_a_failing_entry_is_named(tmp_path, tiny_folder):
    entries = [{"model": MODELS[0], "folder": str(tiny_folder)},
               {"model": MODELS[1], "folder": str(tmp_path / "nowhere")}]
    with pytest.raises(CacheError, match=f"{MODELS[1]} on .*nowhere"):
        extract_all(entries, jobs=2, cache_dir=tmp_path / "c", progress=False)
