"""Notebook 02's second claim (C6b), unseen categories: A's head is blinded to seeded hidden
classes whose logits are rebuilt from A's seen logits through dependencies (cross-model, or
transferred from B); the runs of every pair and variant, their pooled summary, the table, the
verdict and the headline numbers. The cross-model dependencies (C2) are in :mod:`.cross`, which
re-exports these names for notebook 02.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .. import profiles
from ..metrics import bootstrap
from ..record import Numbers
from ..verdicts import deviations, rules
from . import crossmodel
from .crossmodel import FIT_KW

__all__ = ["VARIANTS", "c6b_record", "hidden_classes", "references_text", "unseen_numbers",
           "unseen_rows", "unseen_runs", "unseen_summary"]

CrossSettings = profiles.CrossModelSettings

#: The unseen-categories variants: (construction, method) -> label.
VARIANTS = {("cross", "covlasso"): "cross-model CovLasso",
            ("cross", "refit"): "cross, CovLasso support + LS",
            ("cross", "random"): "cross, random partners + LS",
            ("cross", "dense"): "cross, dense LS (900 partners)",
            ("transfer", "covlasso"): "transfer (within-B CovLasso)",
            ("transfer", "dense"): "transfer, dense LS"}


def hidden_classes(s: CrossSettings) -> np.ndarray:
    """The seeded classes hidden from A's head (the same for every pair)."""
    rng = np.random.default_rng(s.hidden_seed)
    return np.sort(rng.choice(1000, s.n_hidden, replace=False))


def unseen_runs(s: CrossSettings, stack: dict, stack_folds: dict, cache_dir,
                progress: bool = True) -> dict:
    """:func:`.crossmodel.unseen_categories` of every pair and variant at the headline k and
    the largest k: ``{(A, B, construction, method, k): outcome}``."""
    hidden = hidden_classes(s)
    k_unseen = tuple(sorted({s.k_headline, max(s.ks)}))
    out = {}
    for a, b in tqdm(s.pairs, desc="unseen categories", disable=not progress):
        for cons, meth in VARIANTS:
            r = crossmodel.unseen_categories(
                stack[(a, b)], stack_folds[(a, b)], a, b, hidden, k_unseen, construction=cons,
                method=meth, seed=s.baseline_seed, cache_dir=cache_dir, **FIT_KW)
            out.update({(a, b, cons, meth, k): o for k, o in r.items()})
    return out


def unseen_summary(s: CrossSettings, unseen: dict) -> dict:
    """Pooled over pairs: each variant's top-1 (among 1000, among the hidden) with 95%
    intervals over images, the references (A's own, B, chance), the C6b headline (the better of
    the cross CovLasso and its refit at the headline k) and the paired difference of its
    hidden-class top-1 with random partners at the same k."""
    def pooled(keys, fld):
        return np.concatenate([unseen[k][fld] for k in keys]).astype(float)

    def keys_of(cons, meth, k):
        return [(a, b, cons, meth, k) for a, b in s.pairs]

    k_unseen = sorted({key[4] for key in unseen if key[4] != "dense"})
    res = {(cons, meth, k): {f: bootstrap.mean_ci(pooled(keys_of(cons, meth, k), f), s.n_boot, 0)
                             for f in ("rebuilt_1000", "rebuilt_hidden")}
           for cons, meth in VARIANTS for k in (("dense",) if meth == "dense" else k_unseen)}
    cross_keys = [key for key in res if key[0] == "cross" and key[1] in ("covlasso", "refit")
                  and key[2] == s.k_headline]
    best_1000 = max(cross_keys, key=lambda key: res[key]["rebuilt_1000"][0])
    best_hidden = max(cross_keys, key=lambda key: res[key]["rebuilt_hidden"][0])
    keys0 = keys_of("cross", "covlasso", s.k_headline)
    diff = (pooled(keys_of(*best_hidden), "rebuilt_hidden")
            - pooled(keys_of("cross", "random", s.k_headline), "rebuilt_hidden"))
    return {"res": res, "best_1000": best_1000, "best_hidden": best_hidden,
            "random_hidden": res[("cross", "random", s.k_headline)]["rebuilt_hidden"],
            "vs_random_hidden": bootstrap.mean_ci(diff, s.n_boot, 0),
            "upper_1000": float(pooled(keys0, "A_1000").mean()),
            "upper_hidden": float(pooled(keys0, "A_hidden").mean()),
            "B_1000": float(pooled(keys0, "B_1000").mean()),
            "seen": {key: float(pooled(keys_of(*key), "seen_rebuilt").mean()) for key in res},
            "seen_A": float(pooled(keys0, "seen_A").mean()),
            "seen_A_removed": float(pooled(keys0, "seen_A_removed").mean()),
            "n_images": int(pooled(keys0, "rebuilt_1000").size)}


def unseen_rows(u: dict) -> list[dict]:
    """The unseen-categories table: per variant, top-1 among 1000 and among the hidden classes
    (with its interval) and the seen-class top-1."""
    return [{"rebuilt with": VARIANTS[key[:2]], "k": key[2],
             "top-1 of 1000 (%)": 100 * r["rebuilt_1000"][0],
             "top-1 among hidden (%)": 100 * r["rebuilt_hidden"][0],
             "hidden 95% CI": f"{100 * r['rebuilt_hidden'][1][0]:.1f}-"
                              f"{100 * r['rebuilt_hidden'][1][1]:.1f}",
             "seen-class top-1 (%)": 100 * u["seen"][key]} for key, r in u["res"].items()]


def references_text(s: CrossSettings, u: dict) -> str:
    """The references of the unseen-categories table in one line."""
    return (f"references: A's own logits {100 * u['upper_1000']:.1f}% (1000-way), "
            f"{100 * u['upper_hidden']:.1f}% (among hidden); model B {100 * u['B_1000']:.1f}%; "
            f"chance {100 / 1000:.1f}% / {100 / s.n_hidden:.0f}%; seen-class top-1 of A "
            f"{100 * u['seen_A']:.1f}% ({100 * u['seen_A_removed']:.1f}% with the hidden "
            "classes removed)")


def c6b_record(s: CrossSettings, u: dict) -> tuple:
    """C6b's verdict (with random partners in the rule), its summary and its deviation."""
    r1, ci1 = u["res"][u["best_1000"]]["rebuilt_1000"]
    rh, cih = u["res"][u["best_hidden"]]["rebuilt_hidden"]
    hid_lo = max(u["res"][k]["rebuilt_hidden"][1][0] for k in (u["best_1000"], u["best_hidden"]))
    vs = u["vs_random_hidden"]
    v = rules.c6b_unseen(r1, ci1, u["upper_1000"], hid_lo, vs[1][0], 1000, s.n_hidden)
    old = deviations.old_c6b_without_random(r1, ci1, u["upper_1000"], hid_lo, 1000, s.n_hidden)
    devs = [deviations.record("C6b", "random partners", old.level, v.level)]
    rr, rci = u["random_hidden"]

    def pc(x, ci):
        return f"{100 * x:.1f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"

    summary = (f"Rebuilding {s.n_hidden} hidden classes of A from A's seen logits through "
               f"cross-model dependencies (k = {s.k_headline}, best of CovLasso / refit): top-1 "
               f"among all 1000 classes {pc(r1, ci1)} vs A's own {100 * u['upper_1000']:.1f}% "
               f"and chance 0.1%; among the hidden classes only {pc(rh, cih)} vs "
               f"{pc(rr, rci)} for random partners at the same k (difference "
               f"{100 * vs[0]:+.1f} points [{100 * vs[1][0]:+.1f}, {100 * vs[1][1]:+.1f}]) and "
               f"chance {100 / s.n_hidden:.0f}%. Caveat: A's backbone saw those classes in "
               "training; only its head was blinded.")
    return v, summary, devs


def unseen_numbers(nums: Numbers, s: CrossSettings, u: dict, seeds_tab) -> None:
    """Add C6b's headline numbers (``unseen_*``) to ``nums``: the best variant's top-1 among
    1000 and among the hidden classes, random partners, A's own head, model B, dense least
    squares and chance; ``seeds_tab`` holds the split-seed reruns (its ``unseen_top1_1000``
    column, or empty)."""
    frac = {"unit": "fraction"}
    res = u["res"]
    r1, ci1 = res[u["best_1000"]]["rebuilt_1000"]
    rh, cih = res[u["best_hidden"]]["rebuilt_hidden"]
    nums.add("unseen_top1_1000", r1, "hidden-class eval images: top-1 among 1000 classes with "
             f"A's {s.n_hidden} hidden logits rebuilt from its seen logits "
             f"({VARIANTS[u['best_1000'][:2]]}), pooled over pairs", ci=ci1,
             seeds=seeds_tab["unseen_top1_1000"].tolist() if len(seeds_tab) else None, **frac,
             short="hidden classes rebuilt, top-1 of 1000")
    nums.add("unseen_top1_hidden", rh, f"same, top-1 among the {s.n_hidden} hidden classes "
             f"only ({VARIANTS[u['best_hidden'][:2]]})", ci=cih, **frac,
             short=f"top-1 among the {s.n_hidden} hidden classes")
    nums.add("unseen_top1_hidden_random", u["random_hidden"][0], "same with random seen "
             "partners at the same k, least squares", ci=u["random_hidden"][1], **frac,
             short="random partners")
    nums.add("unseen_hidden_vs_random", u["vs_random_hidden"][0], "paired difference of the "
             "hidden-class top-1 with random partners; 95% CI over images",
             ci=u["vs_random_hidden"][1], **frac)
    nums.add("unseen_upper_bound_A_1000", u["upper_1000"], "A's own logits on the same images "
             "(upper bound), top-1 among 1000", **frac, short="A's own head")
    nums.add("unseen_B_1000", u["B_1000"], "model B on the same images, top-1 among 1000",
             **frac)
    rd, cid = res[("cross", "dense", "dense")]["rebuilt_1000"]
    nums.add("unseen_dense_top1_1000", rd, "as unseen_top1_1000 with dense least squares on "
             "all seen logits", ci=cid, **frac)
    nums.add("unseen_chance_1000", 1 / 1000, "chance, 1000 classes", **frac)
    nums.add("unseen_chance_hidden", 1 / s.n_hidden, f"chance, {s.n_hidden} classes", **frac)
