"""One declaration per notebook parameter: a dataclass field with its type, its doc and the
profile's value as default.

Each notebook's settings are one frozen dataclass deriving from :class:`NotebookSettings`
(:mod:`neudep_utils.profiles`). Every field is a parameter of that notebook: its name is a name
of the notebook's ``parameters`` cell (``tests/test_notebooks.py`` checks the two are equal), its
type annotation is what ``scripts/run_notebooks.py -p`` accepts, its ``doc`` is the one-line
meaning shown in the notebook's settings table, and each profile builds the dataclass with its
own values (the per-profile defaults). A notebook resolves its settings with
:meth:`NotebookSettings.with_params`: a parameter left at ``None`` keeps the profile's value,
any other value is checked against the field's type (and converted: a list becomes a tuple,
an int a float where a float is declared), an unknown name is refused.

Example::

    from neudep_utils import profiles
    s = profiles.get_profile("smoke").single.with_params(k_headline=20)
    s.k_headline, s.c1_rule.k_headline      # 20, 20
    s.record()                              # the values used, for the results file
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["NotebookSettings", "ParameterError", "coerce", "param"]


class ParameterError(TypeError):
    """A notebook parameter with an unknown name or a value of the wrong type."""


def param(doc: str, default: Any = dataclasses.MISSING) -> Any:
    """A notebook parameter: a dataclass field carrying its one-line ``doc`` (and a study-wide
    ``default``; without one, every profile must give the value)."""
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def coerce(name: str, tp: Any, value: Any) -> Any:
    """``value`` checked against the declared type ``tp`` of parameter ``name`` and converted
    (lists to tuples, ints to floats where a float is declared, numpy scalars to Python).

    Raises
    ------
    ParameterError
        The value does not fit the type; the message names the parameter, the type and the
        value.
    """
    def fail() -> ParameterError:
        return ParameterError(f"parameter {name!r} expects {_type_name(tp)}, got {value!r} "
                              f"({type(value).__name__})")

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(name, a, value)
            except ParameterError:
                continue
        raise fail()
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        value = value.item()
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise fail()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise fail()
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail()
    if origin is tuple:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise fail()
        items = list(value)
        try:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(name, args[0], v) for v in items)
            if len(items) != len(args):
                raise fail()
            return tuple(coerce(name, a, v) for a, v in zip(args, items, strict=True))
        except ParameterError:
            raise fail() from None
    raise TypeError(f"parameter {name!r}: unsupported declared type {tp!r}")


class NotebookSettings:
    """Base of a notebook's settings dataclass (see the module docstring).

    Subclasses are frozen keyword-only dataclasses whose every field is a parameter declared
    with :func:`param`; ``NOTEBOOK`` names the notebook (``"01_single_model"``).
    :meth:`normalize` (optional) returns the derived corrections applied after every change
    (e.g. the headline k added to the k grid).
    """

    NOTEBOOK: ClassVar[str] = ""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The notebook's parameter names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def types(cls) -> dict[str, Any]:
        """Each parameter's declared type (annotations resolved)."""
        hints = typing.get_type_hints(cls)
        return {n: hints[n] for n in cls.names()}

    @classmethod
    def docs(cls) -> dict[str, str]:
        """Each parameter's one-line doc."""
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}

    @classmethod
    def check(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters given (``None`` dropped), type-checked and converted.

        Raises
        ------
        ParameterError
            An unknown name (the message lists the known ones) or a value of the wrong type.
        """
        unknown = sorted(set(params) - set(cls.names()))
        if unknown:
            num = cls.NOTEBOOK.split("_")[0]
            raise ParameterError(f"unknown notebook {num} parameter(s) {unknown} "
                                 f"({cls.NOTEBOOK}); known: {', '.join(cls.names())}")
        tps = cls.types()
        return {k: coerce(k, tps[k], v) for k, v in params.items() if v is not None}

    def normalize(self) -> dict[str, Any]:
        """Derived corrections after a change (none by default)."""
        return {}

    def with_params(self, **params: Any):
        """These settings with the notebook's ``params`` applied (``None``: keep this value).

        Raises
        ------
        ParameterError
            An unknown name or a value of the wrong type.
        """
        if params.get("profile") not in (None, getattr(self, "profile", None)):
            raise ParameterError(f"parameter 'profile' is {params['profile']!r} but these are "
                                 f"the {getattr(self, 'profile', '?')!r} profile's settings: "
                                 "choose the profile with --profile (or get_profile)")
        new = dataclasses.replace(self, **self.check(params))
        fix = new.normalize()
        return dataclasses.replace(new, **fix) if fix else new

    def record(self) -> dict[str, Any]:
        """The values used, JSON-ready (tuples as lists), for the results file."""
        def plain(v: Any) -> Any:
            if isinstance(v, (tuple, list)):
                return [plain(x) for x in v]
            return v

        return {n: plain(getattr(self, n)) for n in self.names()}

    def table(self, defaults: NotebookSettings | None = None) -> list[dict[str, Any]]:
        """One row per parameter: its name, the value used, the profile's value (``defaults``,
        e.g. the profile's settings before the run's parameters) and its doc."""
        docs = self.docs()
        rows = []
        for n in self.names():
            v = getattr(self, n)
            row = {"parameter": n, "value": _show(v)}
            if defaults is not None:
                d = getattr(defaults, n)
                row["profile's value"] = _show(d)
                row["changed"] = "yes" if d != v else ""
            row["meaning"] = docs[n]
            rows.append(row)
        return rows


def _show(v: Any) -> str:
    """A parameter value as a reader would type it."""
    if v is None:
        return "None"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        if len(v) > 8 and all(isinstance(x, (int, float)) for x in v):
            return f"({_show(v[0])}, {_show(v[1])}, ..., {_show(v[-1])}; {len(v)} values)"
        return "(" + ", ".join(_show(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v) if isinstance(v, str) else str(v)
