"""Does the architecture matter? The side-by-side quantities on hand-made cases and on planted
dependencies through notebook 01's own pipeline (fits, baselines, readings); pair kinds from each
model's declared architecture, family and recipe."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from neudep_utils import dependencies, profiles
from neudep_utils.cache import LogitData
from neudep_utils.dependencies import DepSet
from neudep_utils.findings import architecture as arch
from neudep_utils.findings import cross, crossmodel, single, sparsity
from neudep_utils.findings.why import reading_rows
from neudep_utils.metrics import evaluate
from neudep_utils.metrics.readings import Readings
from neudep_utils.models import registry
from neudep_utils.record import Numbers
from neudep_utils.verdicts import rules

VIT, LITE0, LITE1, MOBILE = ("vit_tiny_patch16_224", "efficientnet_lite0", "efficientnet_lite1",
                             "mobilenet_v1_075")


def test_pair_kinds_come_from_the_declared_architecture_family_and_recipe():
    assert crossmodel.pair_kind(VIT, LITE0) == crossmodel.pair_kind(LITE0, VIT) == \
        "CNN-transformer"
    assert crossmodel.pair_kind(LITE0, LITE1) == "CNN-CNN within a family"
    assert crossmodel.pair_kind(LITE0, MOBILE) == "CNN-CNN across families"
    assert crossmodel.pair_kind("mobilenet_v2_int8_qat", "mobilenet_v2_int8_ptq") == \
        "CNN-CNN two recipes"
    assert crossmodel.pair_kind("resnet50", "swin_tiny_patch4_window7_224") == "CNN-transformer"
    pairs = [(LITE0, LITE1), (VIT, LITE0), (LITE0, MOBILE), (LITE0, VIT), (LITE1, LITE0)]
    kinds = crossmodel.pair_kinds(pairs)
    assert list(kinds) == ["CNN-CNN within a family", "CNN-CNN across families",
                           "CNN-transformer"]
    assert kinds["CNN-transformer"] == [(VIT, LITE0), (LITE0, VIT)]


def test_pair_kind_does_not_read_the_name(monkeypatch):
    """A model declared a CNN counts as one whatever its name says."""
    spec = registry.get_spec(VIT)
    monkeypatch.setitem(registry._REGISTRY, VIT, replace(spec, architecture="cnn"))
    assert crossmodel.pair_kind(VIT, LITE0) == "CNN-CNN across families"


def test_cross_model_settings_test_a_cnn_transformer_pair(monkeypatch):
    """Notebook 02 under the default profile: CNN-transformer pairs in both directions, the C2
    rule's input true; without the ViT among the models it is false."""
    s = cross.settings("default")
    kinds = crossmodel.pair_kinds(s.pairs)
    assert {(VIT, LITE0), (LITE0, VIT), (VIT, MOBILE), (MOBILE, VIT)} <= \
        set(kinds["CNN-transformer"])
    assert set(kinds) == set(crossmodel.PAIR_KINDS)
    assert s.pairs[0] == (LITE0, LITE1)  # the C2 headline pair is unchanged
    tested, status, _ = cross.cnn_transformer(s)
    assert tested and "vit_ti16 (ImageNet-21k pretrained, 1k fine-tuned) from lite0" in status
    monkeypatch.setattr("neudep_utils.models.hub.hub_reachable", lambda *a, **k: False)
    s2 = cross.settings("default", models=[m for m in s.models if m != VIT])
    assert not cross.cnn_transformer(s2)[0]


def test_support_needed():
    k = np.array([[1, 1, 1], [5, 5, 4], [20, 20, 20]], float)
    rr = np.array([[0.9, 0.2, 0.9], [0.25, 0.1, 0.9], [0.1, 0.1, np.nan]])
    out = arch.support_needed(k, rr, 0.3)
    np.testing.assert_array_equal(out["k_needed"], [5, 1, np.nan])
    assert out["share_reaching"] == pytest.approx(2 / 3) and out["k_median"] == 3.0
    none = arch.support_needed(k, np.ones_like(rr), 0.3)
    assert none["share_reaching"] == 0 and np.isnan(none["k_median"])


def test_reading_contrast_is_paired_over_targets():
    dep = Readings(np.ones(3), np.ones(4), np.array([0.5, 0.6, 0.7, np.nan]),
                   np.array([1.0, 2.0, 3.0, 4.0]))
    rand = Readings(np.ones(3), np.ones(4), np.array([0.1, 0.2, 0.3, 0.4]), np.zeros(4))
    orig = Readings(np.ones(3), np.ones(4), np.ones(4), np.full(4, 9.0))
    c = arch.reading_contrast(dep, rand, orig, n_boot=200)
    assert c["ap_gain"] == pytest.approx(0.4)  # the NaN target is dropped from the pairs
    assert c["ap_gain_ci"][0] == pytest.approx(0.4) and c["ap_gain_ci"][1] == pytest.approx(0.4)
    assert c["ap"] == pytest.approx(0.6) and c["ap_random"] == pytest.approx(0.25)
    assert (c["separation"], c["separation_random"], c["separation_original"]) == \
        (2.5, 0.0, 9.0)


def _depset(cols: np.ndarray, n: int) -> DepSet:
    T, m = cols.shape
    return DepSet(np.arange(T), cols, np.ones((T, m)), np.zeros(T), n, "CovLasso")


def test_overlap_pairs_skip_pairs_without_a_cnn_and_read_chance():
    rng = np.random.default_rng(0)
    n, T, k = 200, 50, 5
    shared = np.stack([rng.choice(np.setdiff1d(np.arange(n), [t]), k, replace=False)
                       for t in range(T)])
    other = np.stack([rng.choice(np.setdiff1d(np.arange(n), [t]), k, replace=False)
                      for t in range(T)])
    deps = {VIT: _depset(shared, n), LITE0: _depset(shared, n), MOBILE: _depset(other, n),
            "swin_tiny_patch4_window7_224": _depset(other, n)}
    rows = arch.overlap_pairs(deps, n_boot=100)
    got = {(r["a"], r["b"]): r for r in rows}
    assert (VIT, "swin_tiny_patch4_window7_224") not in got  # two transformers: not compared
    assert len(rows) == 5
    assert got[(VIT, LITE0)]["jaccard"] == 1.0 and got[(VIT, LITE0)]["kind"] == "CNN-transformer"
    assert got[(VIT, MOBILE)]["jaccard"] < 0.1
    assert got[(VIT, MOBILE)]["chance"] == pytest.approx(5 / 195 / (2 - 5 / 195), rel=0.3)
    assert got[(VIT, LITE0)]["ratio"] > 10


def _planted(n: int, n_img: int, partners: np.ndarray, noise: float, seed: int) -> LogitData:
    """Logits whose second half are 2-partner combinations of the first half (plus noise);
    labels are each image's top class (so every class has images)."""
    rng = np.random.default_rng(seed)
    h = n // 2
    base = rng.standard_normal((n_img, h)) * 2
    dep = base[:, partners[:, 0]] - 0.8 * base[:, partners[:, 1]] \
        + noise * rng.standard_normal((n_img, n - h))
    L = np.concatenate([base, dep], axis=1)
    labels = L.argmax(1)
    return LogitData(L[:, None, :].astype(np.float32), labels,
                     tuple(f"im{i}" for i in range(n_img)), {"m": slice(0, n)}, n)


def test_compare_on_planted_dependencies():
    """Two models with the same planted 2-partner structure and one with much noisier
    dependencies: the noisy one needs more partners (or never reaches 0.3), the twins' partner
    sets overlap far above chance, and every quantity is there for each model."""
    n, n_img, h = 40, 1200, 20
    rng = np.random.default_rng(1)
    partners = np.stack([rng.choice(h, 2, replace=False) for _ in range(n - h)])
    data = {VIT: _planted(n, n_img, partners, 0.05, 2), LITE0: _planted(n, n_img, partners, 0.05, 3),
            MOBILE: _planted(n, n_img, partners, 3.0, 4)}
    ks, k = (1, 2, 3, 10), 2
    targets = np.arange(h, n)
    by, mets, objs, cov = {}, {}, {}, {}
    for m, d in data.items():
        folds = dependencies.crossfit(d, 2, 0)
        cov[m] = [dependencies.fit_covlasso_k(f, ks, targets) for f in folds]
        for q in ks:
            per = [fd[q] for fd in cov[m]]
            bl = [dependencies.baselines(f, dd, seed=i)
                  for i, (f, dd) in enumerate(zip(folds, per, strict=True))]
            by[(m, "CovLasso", q)] = per
            for meth in ("CovLasso support + LS", "random + LS"):
                by[(m, meth, q)] = [b[meth] for b in bl]
                mets[(m, meth, q)] = evaluate(d, folds, by[(m, meth, q)])
        dense = [dependencies.dense_least_squares(f, targets) for f in folds]
        by_k = {q: {meth: by[(m, meth, q)] for meth in ("CovLasso support + LS", "random + LS")}
                for q in (k,)}
        _, objs[m] = reading_rows(m, d, folds, by_k, dense, targets, n_boot=100)
    comp = arch.compare(list(data), ks, by, mets, objs, cov, k=k, n_boot=100)
    rows = {r["model"].split(" ")[0]: r for r in comp.rows}
    assert set(rows) == {"vit_ti16", "lite0", "mobilenet_v1_075"}
    assert rows["vit_ti16"]["architecture"] == "transformer" and rows["vit_ti16"]["d"] == 192
    assert "ImageNet-21k" in rows["vit_ti16"]["recipe"]
    assert rows["vit_ti16"]["median k needed"] <= 2 and rows["lite0"]["median k needed"] <= 2
    assert rows["vit_ti16"]["share reaching 1-R^2 <= 0.3"] == 1.0
    assert rows["mobilenet_v1_075"]["share reaching 1-R^2 <= 0.3"] < 0.5
    assert rows["vit_ti16"]["AP gain over random"] > 0
    twins = [o for o in comp.overlaps if {o["a"], o["b"]} == {VIT, LITE0}][0]
    assert twins["jaccard"] > 0.5 and twins["ratio"] > 5
    assert rows["vit_ti16"]["CNNs compared"] == 2 and rows["lite0"]["CNNs compared"] == 1
    text = comp.text()
    assert text.startswith("vit_ti16 (ImageNet-21k pretrained, 1k fine-tuned): 100% of the")
    nums = Numbers()
    arch.numbers(nums, list(data), comp.needed, comp.contrast, comp.overlaps, k)
    assert nums["vit_ti16_share_reaching_relres0.3"]["value"] == 1.0
    assert "overlap01_vit_ti16_lite0_k2" in nums
    json.dumps(comp.records())  # the results file can hold it


def test_summary_without_a_transformer_says_so():
    assert "needs both" in arch.summary_text([{"architecture": "cnn"}], [], 10)


def test_c2_kind_headlines_read_the_headline_number_of_every_kind(monkeypatch):
    """C2's record: every kind of pair tested with the number C2's headline reads (refit,
    k = 10, without B's own category) for the kind's first pair, and the range over its pairs."""
    s = cross.settings("default")

    class Fake:
        def __init__(self, v):
            self.v = v

        def summary(self):
            return {"acc_replaced": self.v}

    vals = {p: 0.01 * i for i, p in enumerate(s.pairs)}
    xm = {p + (cross.WITHOUT, meth, s.k_headline): Fake(vals[p] + (0 if meth ==
                                                                   cross.HEADLINE_METHOD else 1))
          for p in s.pairs for meth in ("CovLasso", cross.HEADLINE_METHOD)}
    monkeypatch.setattr(cross, "metric_ci", lambda m, key, n, seed: (m.v - 0.001, m.v + 0.001))
    rows = {r["kind"]: r for r in cross.kind_headlines(s, xm)}
    assert list(rows) == list(crossmodel.PAIR_KINDS)
    tf = rows["CNN-transformer"]
    assert tf["pairs"] == ["vit_ti16_from_lite0", "vit_ti16_from_mobilenet_v1_075",
                           "lite0_from_vit_ti16", "mobilenet_v1_075_from_vit_ti16"]
    first = s.pairs.index((VIT, LITE0))
    assert tf["value"] == pytest.approx(vals[(VIT, LITE0)]) and tf["first"] == \
        "vit_ti16 from lite0"
    assert tf["number"] == "vit_ti16_from_lite0_without_same_refit_acc_replaced_k10"
    assert tf["range"] == (pytest.approx(0.01 * first), pytest.approx(0.01 * (first + 3)))
    within = rows["CNN-CNN within a family"]
    assert within["number"] == "lite0_from_lite1_without_same_refit_acc_replaced_k10"
    assert rows["CNN-CNN two recipes"]["pairs"] == [
        "mobilenet_v2_int8_qat_from_mobilenet_v2_int8_ptq",
        "mobilenet_v2_int8_ptq_from_mobilenet_v2_int8_qat"]


def test_c2_record_lists_kinds_and_the_vit_recipe(monkeypatch):
    """The C2 summary names each kind with its headline number and the ViT's recipe; the C2
    rule's input is true with a CNN-transformer pair."""
    s = cross.settings("default", models=[LITE0, VIT], pairs=[(VIT, LITE0), (LITE0, VIT)])

    class Fake:
        def summary(self):
            return {"acc_replaced": 0.01, "acc_base": 0.8}

    class NoChecks:
        def any_holds(self, keys):
            return False

    xm = {p + (cfg, m, k): Fake() for p in s.pairs for cfg in cross.CONFIGS
          for m in ("CovLasso", cross.HEADLINE_METHOD) for k in s.ks}
    monkeypatch.setattr(cross, "metric_ci", lambda m, key, n, seed: (0.0, 0.02))
    seen, real = {}, rules.c2_cross_model

    def spy(head, sparse, cross_architecture_tested, **kw):
        seen["tested"] = cross_architecture_tested
        return real(head, sparse, cross_architecture_tested, **kw)

    monkeypatch.setattr(rules, "c2_cross_model", spy)
    tested, status, _ = cross.cnn_transformer(s)
    v, summary, scope, _ = cross.c2_record(s, NoChecks(), xm, [], tested, status, {})
    assert seen["tested"] is True
    assert "CNN-transformer (2 pairs): vit_ti16 from lite0 1.0% [0.0, 2.0]" in summary
    assert "recipe unlike the paper's: vit_ti16 (ImageNet-21k pretrained, 1k fine-tuned)" in \
        summary
    assert scope.startswith("CNN-transformer pairs were among the pairs tested")


def test_default_profile_has_the_transformer_in_every_notebook_that_takes_models():
    prof = profiles.get_profile("default")
    assert VIT in prof.models and VIT in prof.cross.models and VIT in prof.single.width_models
    assert {(VIT, LITE0), (LITE0, VIT), (VIT, MOBILE), (MOBILE, VIT)} <= set(prof.cross.pairs)
    assert VIT in single.settings("default").width_models
    assert VIT in sparsity.settings("default").models
    assert {(e.model, e.folder, e.views) for e in prof.extractions() if e.model == VIT} == {
        (VIT, "imagenet-val", 1), (VIT, "imagenet-sample", 1)}
