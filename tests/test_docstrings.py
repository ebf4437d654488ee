"""Docstrings of the public API: every numpydoc ``Parameters`` section names exactly the
signature's parameters, in order (the parameters-vs-signature check of scikit-learn's and
skglm's test suites, written without numpydoc).

Covered: :class:`neudep_utils.CovLasso` and its public methods, every name in
``neudep_utils.covlasso.__all__`` (functions, and classes with their public methods; result
dataclasses document their fields under ``Attributes``), the public functions of
``neudep_utils.cli``, ``neudep_utils.cache.arrays`` and ``neudep_utils.models.onnxfile``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

import neudep_utils
from neudep_utils import cli, covlasso
from neudep_utils.cache import arrays
from neudep_utils.models import onnxfile

_SECTION = re.compile(r"^(\s*)(\w[\w ]*)\n\1-{3,}\s*$", re.M)


def doc_section(doc: str | None, title: str) -> list[str] | None:
    """Names listed in a numpydoc section (``name : type`` or ``a, b`` lines at the section's
    indentation), or ``None`` when the docstring has no such section."""
    if not doc:
        return None
    doc = inspect.cleandoc(doc)
    lines = doc.splitlines()
    start = None
    for i in range(len(lines) - 1):
        if lines[i].strip() == title and re.fullmatch(r"-{3,}", lines[i + 1].strip() or "x"):
            start = i + 2
            break
    if start is None:
        return None
    names: list[str] = []
    base = None
    for j in range(start, len(lines)):
        line = lines[j]
        if not line.strip():
            continue
        # the next section header ends this one
        if j + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[j + 1].strip() or "x"):
            break
        indent = len(line) - len(line.lstrip())
        if base is None:
            base = indent
        if indent != base:
            continue  # a description line
        head = line.split(" : ")[0].strip().rstrip(":")
        names += [n.strip() for n in head.split(",") if n.strip()]
    return names


def signature_names(obj) -> list[str]:
    sig = inspect.signature(obj)
    out = []
    for p in sig.parameters.values():
        if p.name in ("self", "cls"):
            continue
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        out.append(prefix + p.name)
    return out


def public_api() -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = [("neudep_utils.CovLasso", neudep_utils.CovLasso)]
    for name in covlasso.__all__:
        obj = getattr(covlasso, name)
        if callable(obj):
            items.append((f"neudep_utils.covlasso.{name}", obj))
    for mod in (cli, arrays, onnxfile):
        for name, obj in vars(mod).items():
            if (not name.startswith("_") and inspect.isfunction(obj)
                    and obj.__module__ == mod.__name__):
                items.append((f"{mod.__name__}.{name}", obj))
    for name in onnxfile.__all__:
        obj = getattr(onnxfile, name)
        if inspect.isclass(obj):
            items.append((f"{onnxfile.__name__}.{name}", obj))
    # the public methods the package defines on those classes
    out = []
    seen = set()
    for qual, obj in items:
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        out.append((qual, obj))
        if inspect.isclass(obj):
            for m, f in vars(obj).items():
                if not m.startswith("_") and inspect.isfunction(f):
                    out.append((f"{qual}.{m}", f))
    return out


API = public_api()


def check(qual: str, obj) -> str | None:
    """A message when the docstring and the signature disagree, else None."""
    if inspect.isclass(obj):
        doc_params = doc_section(obj.__doc__, "Parameters")
        if doc_params is None and dataclasses.is_dataclass(obj):
            fields = [f.name for f in dataclasses.fields(obj)]
            attrs = doc_section(obj.__doc__, "Attributes")
            if attrs is None:
                return f"{qual}: dataclass without an Attributes section"
            if attrs[:len(fields)] != fields:
                return f"{qual}: Attributes {attrs} != fields {fields}"
            return None
        sig = signature_names(obj.__init__) if "__init__" in vars(obj) else []
        if doc_params is None:
            return f"{qual}: no Parameters section for {sig}" if sig else None
        return None if doc_params == sig else f"{qual}: Parameters {doc_params} != {sig}"
    sig = signature_names(obj)
    doc_params = doc_section(obj.__doc__, "Parameters")
    if doc_params is None:
        return f"{qual}: no Parameters section for {sig}" if sig else None
    return None if doc_params == sig else f"{qual}: Parameters {doc_params} != signature {sig}"


def test_covers_the_api():
    names = {q for q, _ in API}
    for must in ("neudep_utils.CovLasso", "neudep_utils.CovLasso.fit",
                 "neudep_utils.CovLasso.fit_moments", "neudep_utils.CovLasso.predict",
                 "neudep_utils.CovLasso.score", "neudep_utils.covlasso.solve",
                 "neudep_utils.covlasso.solve_k", "neudep_utils.covlasso.refit",
                 "neudep_utils.cli.main", "neudep_utils.cache.arrays.load_array",
                 "neudep_utils.models.onnxfile.load_onnx"):
        assert must in names
    assert len(API) > 30


@pytest.mark.parametrize("qual, obj", API, ids=[q for q, _ in API])
def test_parameters_match_signature(qual, obj):
    msg = check(qual, obj)
    assert msg is None, msg


def test_the_check_can_fail():
    def f(a, b, *, c=1):
        """Do.

        Parameters
        ----------
        a : int
            A.
        c, b
            Swapped.
        """

    def g(x):
        """No section."""

    def h(x, **kw):
        """Fine.

        Parameters
        ----------
        x : float
            Described over
            two lines : with a colon.
        **kw
            Passed on.

        Returns
        -------
        y : float
        """

    assert "['a', 'c', 'b'] != signature ['a', 'b', 'c']" in check("f", f)
    assert "no Parameters section" in check("g", g)
    assert check("h", h) is None
