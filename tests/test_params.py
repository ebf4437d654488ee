"""One declaration per notebook parameter (neudep_utils._params, neudep_utils.profiles): the
notebooks' parameter cells equal the declared fields, values are type-checked, the rules each
notebook states follow its parameters, and the runner validates ``-p`` against the declaration."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from neudep_utils import profiles
from neudep_utils._params import ParameterError, coerce
from neudep_utils.findings import cross, robust_study, single, sparsity

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"01_single_model": single, "02_cross_model": cross,
             "03_sparsity_redundancy": sparsity, "04_robustness": robust_study}


def _cell_names(stem: str) -> list[str]:
    nb = json.loads((REPO / "notebooks" / f"{stem}.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]


@pytest.mark.parametrize("stem", list(NOTEBOOKS))
def test_parameter_cell_equals_the_declared_fields(stem):
    cls = profiles.NOTEBOOK_SETTINGS[stem]
    names = _cell_names(stem)
    assert len(names) == len(set(names))
    assert set(names) == {*cls.names(), "output_dir"}
    assert NOTEBOOKS[stem].PARAMETERS == tuple(n for n in cls.names() if n != "profile")
    assert all(cls.docs()[n] for n in cls.names())  # every parameter says what it is


def test_every_profile_gives_every_parameter():
    for name in ("smoke", "default"):
        prof = profiles.get_profile(name)
        for stem in NOTEBOOKS:
            s = prof.notebook(stem)
            assert s.profile == name and s.NOTEBOOK == stem
            assert set(s.record()) == set(type(s).names())


def test_coerce_accepts_the_declared_types_and_refuses_others():
    assert coerce("k", int, 3) == 3 and coerce("k", int, 3.0) == 3
    assert coerce("x", float, 1) == 1.0 and isinstance(coerce("x", float, 1), float)
    assert coerce("ks", tuple[int, ...], [1, 2]) == (1, 2)
    assert coerce("p", tuple[tuple[str, str], ...] | None, [["a", "b"]]) == (("a", "b"),)
    assert coerce("n", int | None, None) is None
    for tp, bad in [(int, 2.5), (int, True), (bool, "false"), (bool, 1), (str, 3),
                    (tuple[int, ...], "123"), (tuple[int, ...], [1, "a"]),
                    (tuple[str, str], ["a"]), (float, "0.1")]:
        with pytest.raises(ParameterError, match="expects"):
            coerce("name", tp, bad)


def test_unknown_names_and_profile_changes_are_refused():
    with pytest.raises(ParameterError, match="unknown notebook 01 parameter"):
        single.settings("smoke", k_head=20)
    with pytest.raises(ParameterError, match="--profile"):
        profiles.get_profile("smoke").single.with_params(profile="default")
    s = single.settings("smoke", k_headline=None)  # None keeps the profile's value
    assert s == profiles.get_profile("smoke").single


@pytest.mark.parametrize("k", [10, 20])
def test_rules_follow_the_parameters(k):
    s1, s2 = single.settings("smoke", k_headline=k), cross.settings("smoke", k_headline=k)
    assert k in s1.ks and k in s2.ks and s2.ks_same[-1] == k
    assert s1.c1_rule.k_headline == k and f"k = {k}," in s1.c1_rule.text()
    assert s2.c2_rule.k_headline == k and f"k = {k}," in s2.c2_rule.text()
    s3 = sparsity.settings("smoke", sparse_k=k, fidelity_threshold=0.25)
    assert f"median support size <= {k};" in s3.c5_rule.text()
    assert "1 - R^2 <= 0.25" in s3.c4_rule.text() and s3.c4_rule.k_full == 1000
    s4 = robust_study.settings("smoke", clean_drop_tolerance=k / 1000)
    assert f"costs at most {k / 1000:g} clean top-1" in s4.c6c_rule.text()
    assert single.settings("smoke", near_distance=k).c6a_rule.near_distance == k


def test_record_is_the_values_used():
    s = single.settings("smoke", k_headline=20, ks=[3, 1])
    rec = s.record()
    assert rec["ks"] == [1, 3, 20] and rec["k_headline"] == 20
    assert json.loads(json.dumps(rec)) == rec
    table = {r["parameter"]: r for r in s.table(single.settings("smoke"))}
    assert table["k_headline"]["value"] == "20" and table["k_headline"]["changed"] == "yes"
    assert table["n_boot"]["changed"] == "" and table["n_boot"]["profile's value"] == "200"


def test_runner_checks_against_the_declaration(capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import run_notebooks as rn  # noqa: PLC0415 - after sys.path
    finally:
        sys.path.pop(0)
    nb = REPO / "notebooks" / "01_single_model.ipynb"
    rn.check_parameters(nb, {"k_headline": 20, "ks": [1, 2], "output_dir": "x"})
    for name, value in [("k_headline", 2.5), ("ks", "1,2"), ("k_head", 20),
                        ("pairs", [["a", "b"]])]:
        with pytest.raises(SystemExit, match=f"-p {name}"):
            rn.check_parameters(nb, {name: value})
    rn.check_parameters(REPO / "notebooks" / "02_cross_model.ipynb", {"pairs": [["a", "b"]]})


@pytest.mark.parametrize("nb", ["01_single_model", "02_cross_model"])
def test_the_readings_include_the_headline_k(nb: str) -> None:
    s = profiles.get_profile("smoke").notebook(nb).with_params(k_headline=20)
    assert 20 in s.reading_ks
    assert s.with_params(k_headline=10).reading_ks == tuple(
        k for k in (10, 50, 100, 300) if k in s.ks)
