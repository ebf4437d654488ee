"""``python -m neudep_utils fit``: CovLasso dependencies of a logits file, written as
``target,partner,coef`` rows plus a JSON sidecar; ``.npy``/``.npz``/``.pt`` inputs; one-line
errors (exit code 2) for bad files; ``--help`` and ``--version``."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from test_estimator import planted_logits

from neudep_utils import CovLasso
from neudep_utils.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    X, truth = planted_logits(seed=0)
    d = tmp_path_factory.mktemp("fit")
    np.save(d / "X.npy", X.astype(np.float32))
    return d, X.astype(np.float32), truth


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    assert "Traceback" not in err[0]
    return err[0]


def test_acceptance_subprocess_writes_planted_partners(data, tmp_path):
    d, X, truth = data
    out = tmp_path / "deps.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "neudep_utils", "fit", "--logits", str(d / "X.npy"),
                        "--k", "3", "--targets", "0", "1", "--out", str(out)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    got = rows(out)
    assert list(got[0]) == ["target", "partner", "coef"]
    for t in (0, 1):
        assert {int(x["partner"]) for x in got if int(x["target"]) == t} == truth[t]
    # the rows are the estimator's coefficients, to the last bit (repr round-trips floats)
    est = CovLasso(k=3, targets=[0, 1]).fit(X)
    for x in got:
        r_ = int(np.flatnonzero(est.targets_ == int(x["target"]))[0])
        assert float(x["coef"]) == est.coef_[r_, int(x["partner"])]
    meta = json.loads((tmp_path / "deps.json").read_text())
    assert meta["inputs"]["logits"]["sha256"] == hashlib.sha256(
        (d / "X.npy").read_bytes()).hexdigest()
    per = {p["target"]: p for p in meta["targets"]}
    assert set(per) == {0, 1}
    for i, t in enumerate((0, 1)):
        assert per[t]["k"] == 3
        assert per[t]["lam"] == est.lam_[i]
        assert per[t]["gap"] == est.duality_gap_[i] and per[t]["gap"] >= 0
        assert per[t]["r2"] == pytest.approx(est.r2_per_target(X)[i])
    assert meta["r2_on"].startswith("the fit images")


def test_npz_pt_and_labels_holdout(data, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    d, X, truth = data
    np.savez(tmp_path / "a.npz", logits=X, other=np.zeros(3))
    np.savez(tmp_path / "b.npz", X)  # the only array
    torch.save(torch.from_numpy(X), tmp_path / "c.pt")
    torch.save({"logits": torch.from_numpy(X)}, tmp_path / "d.pt")
    labels = X.argmax(1)
    np.save(tmp_path / "y.npy", labels)
    outs = []
    for name in ("a.npz", "b.npz", "c.pt", "d.pt"):
        out = tmp_path / f"{name}.csv"
        assert main(["fit", "--logits", str(tmp_path / name), "--k", "3", "--targets", "0",
                     "--out", str(out)]) == 0
        outs.append(out.read_text())
    assert len(set(outs)) == 1
    assert {int(r["partner"]) for r in rows(tmp_path / "a.npz.csv")} == truth[0]
    out = tmp_path / "h.csv"
    assert main(["fit", "--logits", str(d / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                 "--k", "3", "--targets", "0", "2", "--refit", "--holdout", "0.25",
                 "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["n_fit"] + meta["n_eval"] == len(X) and 900 <= meta["n_eval"] <= 1100
    assert meta["r2_on"] == "held-out images"
    assert meta["top1"] == 1.0  # labels were the argmax
    assert all(p["r2"] > 0.9 for p in meta["targets"])  # refit, held out
    assert "sha256" in meta["inputs"]["labels"]
    capsys.readouterr()


def test_lam_ratio_and_default_k(data, tmp_path):
    d, X, _ = data
    out = tmp_path / "l.csv"
    assert main(["fit", "--logits", str(d / "X.npy"), "--lam-ratio", "0.3", "--targets", "5",
                 "--out", str(out)]) == 0
    est = CovLasso(lam_ratio=0.3, targets=[5]).fit(X)
    assert {int(r["partner"]) for r in rows(out)} == set(np.flatnonzero(est.coef_[0]).tolist())
    assert json.loads(out.with_suffix(".json").read_text())["targets"][0]["lam_ratio"] == \
        pytest.approx(0.3)
    out = tmp_path / "k.csv"
    assert main(["fit", "--logits", str(d / "X.npy"), "--targets", "150", "--out",
                 str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["k"] == 10 and len(rows(out)) == meta["targets"][0]["k"]


def _bad(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 5))
    np.save(tmp_path / "ok.npy", X)
    (tmp_path / "text.npy").write_text("not an array")
    np.save(tmp_path / "trunc.npy", X)
    b = (tmp_path / "trunc.npy").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(b[: len(b) // 2])
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "1d.npy", X[:, 0])
    Xn = X.copy()
    Xn[4, 1] = np.inf
    np.save(tmp_path / "nan.npy", Xn)
    np.savez(tmp_path / "two.npz", a=X, b=X)
    torch.save({"w": 1}, tmp_path / "dict.pt")
    (tmp_path / "x.csv").write_text("1,2\n")
    np.save(tmp_path / "y_short.npy", np.zeros(3, dtype=int))
    np.save(tmp_path / "y_float.npy", np.full(20, 0.5))
    ok = str(tmp_path / "ok.npy")
    out = str(tmp_path / "o.csv")

    def f(*a):
        return ["fit", *a, "--out", out]

    return {
        "missing": (f("--logits", str(tmp_path / "nope.npy")), "no such file"),
        "folder": (f("--logits", str(tmp_path)), "is a folder"),
        "text": (f("--logits", str(tmp_path / "text.npy")), "cannot read it as .npy"),
        "truncated": (f("--logits", str(tmp_path / "trunc.npy")), "cannot read it as .npy"),
        "object": (f("--logits", str(tmp_path / "obj.npy")), "cannot read it as .npy"),
        "1d": (f("--logits", str(tmp_path / "1d.npy")), "2-D"),
        "nan": (f("--logits", str(tmp_path / "nan.npy")), "row 4"),
        "two arrays": (f("--logits", str(tmp_path / "two.npz")), "2 arrays (a, b)"),
        "not a tensor": (f("--logits", str(tmp_path / "dict.pt")), "not a tensor"),
        "suffix": (f("--logits", str(tmp_path / "x.csv")), "unknown file type .csv"),
        "labels length": (f("--logits", ok, "--labels", str(tmp_path / "y_short.npy")),
                          "one label per logit row"),
        "labels float": (f("--logits", ok, "--labels", str(tmp_path / "y_float.npy")),
                         "integers"),
        "target range": (f("--logits", ok, "--targets", "7"), "out of range"),
        "k too big": (f("--logits", ok, "--k", "9"), "exceeds"),
        "k and ratio": (f("--logits", ok, "--k", "2", "--lam-ratio", "0.1"), "not allowed"),
        "holdout": (f("--logits", ok, "--holdout", "1.5"), "--holdout"),
        "out folder": (["fit", "--logits", ok, "--out", str(tmp_path / "no" / "d.csv")],
                       "does not exist"),
        "out json": (["fit", "--logits", ok, "--out", str(tmp_path / "d.json")], "sidecar"),
    }


def test_bad_inputs_one_line_rc2(tmp_path, capsys):
    for name, (argv, needle) in _bad(tmp_path).items():
        rc = main(argv)
        line = one_error_line(capsys)
        assert rc == 2, (name, line)
        assert needle in line, (name, line)
    assert not (tmp_path / "o.csv").exists()  # nothing written on a failure


def test_help_and_version(capsys):
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "example:" in out and "fit --logits X.npy --k 3" in out
    assert main(["extract", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--onnx" in out and "--preset" in out and "example:" in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"neudep-utils {version('neudep-utils')}"


def test_stratified_holdout_with_one_image_per_class(tmp_path):
    """``extract --out`` of one image per class gives singleton classes: the stratified split
    still holds out FRAC of the images, spread over the classes."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((64, 12))
    X[:, 0] = X[:, 1] + X[:, 2] + 0.1 * rng.standard_normal(64)
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "X.json").write_text(json.dumps({"labels": list(range(64))}))
    out = tmp_path / "d.csv"
    assert main(["fit", "--logits", str(tmp_path / "X.npy"), "--labels",
                 str(tmp_path / "X.json"), "--k", "2", "--targets", "0", "--holdout", "0.25",
                 "--refit",
                 "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert (meta["n_fit"], meta["n_eval"]) == (48, 16)
    assert {int(r["partner"]) for r in rows(out)} == {1, 2}
    assert meta["targets"][0]["r2"] > 0.9


def test_cli_is_thin():
    """Issue 25: the command line is one module per command, each under 300 lines, no function
    over 60 lines (the work is in the package's stages)."""
    folder = REPO / "neudep_utils" / "cli"
    modules = sorted(folder.glob("*.py"))
    assert {m.stem for m in modules} >= {"__init__", "extract", "fit", "covariance", "merge",
                                         "logits"}
    for m in modules:
        text = m.read_text()
        assert len(text.splitlines()) <= 300, m
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                assert n <= 60, f"{m.name}: {node.name} has {n} lines"
    assert not (REPO / "neudep_utils" / "cli.py").exists()
