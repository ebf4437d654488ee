"""Tests of corruptions, 16-category decisions, shape bias and head fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from neudep_utils.findings import robustness as RB
from neudep_utils.images import corruptions
from neudep_utils.profiles import get_profile


def test_corruption_names_and_determinism() -> None:
    name = corruptions.corruption_name("gaussian_noise", 3)
    assert corruptions.parse_corruption(name) == ("gaussian_noise", 3)
    with pytest.raises(ValueError):
        corruptions.parse_corruption("gaussian_noise:3")
    with pytest.raises(ValueError):
        corruptions.corruption_fn("imagecorruptions:not_a_corruption:2")
    fn = corruptions.corruption_fn(name)
    img = Image.fromarray(np.full((224, 224, 3), 128, np.uint8))
    a, b, c = (np.asarray(fn(img, s)) for s in (7, 7, 8))
    assert a.shape == (224, 224, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    grid = get_profile("default").robustness.corruption_names()
    assert len(grid) >= 18
    assert len({corruptions.parse_corruption(n)[0] for n in grid}) >= 6


def test_subset_indices_and_profile_extractions(data_root) -> None:
    idx = corruptions.subset_indices(1000, 100)
    assert len(idx) == 100 and np.array_equal(idx, corruptions.subset_indices(1000, 100))
    man, pos = corruptions.subset_manifest("imagenet-val", 100)
    assert len(man) == 100 and np.array_equal(pos, corruptions.subset_indices(1000, 100))
    corr = [e for e in get_profile("smoke").extractions() if e.corruption]
    assert corr and all(e.subset == 100 and e.folder == "imagenet-val" for e in corr)
    assert corr[0].kwargs()["corruption"] == corr[0].corruption


def test_decisions_and_shape_bias() -> None:
    idx = [np.array([0, 1]), np.array([2])]
    logits = np.full((3, 5), -10.0)
    logits[0, 0] = 5  # category 0
    logits[1, 2] = 5  # category 1
    logits[2, 1] = 5
    np.testing.assert_array_equal(RB.decisions16(logits, idx), [0, 1, 0])
    names = ["cat", "dog"]
    shape, tex = RB.cue_conflict_labels(["cat/cat1-dog2.png", "dog/dog1-cat3.png",
                                         "cat/cat2-cat1.png"], names)
    np.testing.assert_array_equal(shape, [0, 1, 0])
    sb = RB.shape_bias(np.array([0, 0, 1]), shape, tex)  # shape hit, texture hit; 3rd excluded
    assert sb["n_images"] == 2 and sb["shape_bias"] == pytest.approx(0.5)


def test_categories16_map_to_imagenet(data_root) -> None:
    names, idx = RB.category_index_map(RB.load_categories16(data_root / "cue-conflict" /
                                                            "categories16.json"))
    assert len(names) == 16 and all(len(i) >= 1 for i in idx)


@pytest.mark.parametrize("kind", RB.REGULARIZERS)
def test_finetune_head_runs_and_is_deterministic(kind: str) -> None:
    rng = np.random.default_rng(0)
    n, d = 6, 8
    W0, b0 = rng.normal(size=(n, d)), rng.normal(size=n)
    H = rng.normal(size=(40, 2, d)).astype(np.float32)
    y = rng.integers(0, n, 40)
    F = H.reshape(-1, d) @ W0.T + b0
    theta = RB.dependency_matrix(F, 0.3)
    assert theta.shape == (n, n) and np.all(np.diag(theta) == 0)
    ctx = RB.RegContext(W0, b0, theta, F.var(0))
    a = RB.finetune_head(H, y, ctx, kind, 1.0, steps=5, lr=1e-2, batch=16, seed=1)
    b = RB.finetune_head(H, y, ctx, kind, 1.0, steps=5, lr=1e-2, batch=16, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], W0)
    assert RB.correct(H[:, 0], y, *a).shape == (40,)


def test_eval_subset_leaves_half_the_folder_to_fit() -> None:
    assert len(corruptions.subset_indices(50, 300)) == 25
    assert len(corruptions.subset_indices(3, 300)) == 1
    with pytest.raises(ValueError, match="at least 2 images"):
        corruptions.subset_indices(1, 1)
