"""Reading a user's array file: logits or labels saved by NumPy or PyTorch, or the JSON sidecar
of ``extract --out``.

:func:`load_array` is the one reader behind ``python -m neudep_utils fit --logits/--labels``:
``.npy``, ``.npz`` (key ``logits``/``labels`` or its only array), ``.pt``/``.pth`` (a tensor, or
a dict holding one under that key; bfloat16/float16 and sparse tensors are converted exactly to
dense float32) and, for labels, the sidecar's ``labels`` list. Every failure is a ``ValueError``
naming the option, the file and the fix.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["load_array", "load_sidecar"]


def load_array(path: str | os.PathLike[str], what: str = "--logits") -> np.ndarray:
    """Read one array from a ``.npy``, ``.npz`` (key ``logits``/``labels`` or its only array),
    ``.pt`` (a tensor, or a dict holding one under that key) or, for labels, the ``.json``
    sidecar of ``extract --out``.

    Parameters
    ----------
    path : str or path
        The file.
    what : str, default "--logits"
        The option it came from (``--logits`` or ``--labels``), named in errors and deciding the
        ``.npz``/``.pt``/``.json`` key.

    Returns
    -------
    ndarray
        The array (not yet checked for shape or values).

    Raises
    ------
    ValueError
        Missing, unreadable or damaged file, an unknown suffix, pickled objects, or no single
        array to take.
    """
    p = Path(path).expanduser()
    key = what.lstrip("-")
    if not p.exists():
        raise ValueError(f"{what} {path}: no such file; check the path")
    if p.is_dir():
        raise ValueError(f"{what} {path}: is a folder; give a .npy, .npz or .pt file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return _npy(p, what, path)
        if suffix == ".npz":
            return _npz(p, what, path, key)
        if suffix in (".pt", ".pth"):
            return _torch(p, what, path, key)
        if suffix == ".json" and what == "--labels":
            return np.asarray(load_sidecar(p, what)["labels"])
    except ValueError as exc:
        if str(exc).startswith(what):
            raise
        raise ValueError(f"{what} {path}: cannot read it as {suffix} "
                         f"({' '.join(str(exc).split())[:160]}); is the file complete?") from None
    except (OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError,
            KeyError) as exc:
        raise ValueError(f"{what} {path}: cannot read it as {suffix} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:160]}); is the file complete?") from None
    raise ValueError(f"{what} {path}: unknown file type {suffix or '(none)'}; use .npy, .npz "
                     "or .pt" + (" or the .json sidecar" if what == "--labels" else ""))


def load_sidecar(path: str | os.PathLike[str], what: str = "--labels") -> dict:
    """The JSON sidecar of ``extract --out`` (a dict with a ``labels`` list).

    Parameters
    ----------
    path : str or path
        The ``.json`` file.
    what : str, default "--labels"
        The option it came from, named in errors.

    Returns
    -------
    dict
        The sidecar.
    """
    data = json.loads(Path(path).expanduser().read_text())
    if not isinstance(data, dict) or not isinstance(data.get("labels"), list):
        raise ValueError(f"{what} {path}: a JSON file needs a 'labels' list (the sidecar of "
                         "`extract --out`)")
    return data


def _pickled(what: str, path, kind: str) -> ValueError:
    return ValueError(f"{what} {path}: cannot read it as {kind}: it holds pickled Python objects "
                      "(an object-dtype array), which are never unpickled (unsafe); save a "
                      "numeric array, e.g. np.save(FILE, np.asarray(X, dtype=np.float32))")


def _npy(p: Path, what: str, path) -> np.ndarray:
    try:
        return np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # NumPy refuses object arrays without unpickling them
            raise _pickled(what, path, ".npy") from None
        raise


def _npz(p: Path, what: str, path, key: str) -> np.ndarray:
    with np.load(p, allow_pickle=False) as z:
        names = list(z.files)
        name = key if key in names else (names[0] if len(names) == 1 else None)
        if name is None:
            raise ValueError(f"{what} {path}: the .npz holds {len(names)} arrays "
                             f"({', '.join(names[:8]) or 'none'}); name the one to use "
                             f"'{key}' or save only that array")
        try:
            return z[name]
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise _pickled(what, path, ".npz") from None
            raise


def _torch(p: Path, what: str, path, key: str) -> np.ndarray:
    obj = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and key in obj:
        obj = obj[key]
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"{what} {path}: holds a {type(obj).__name__}, not a tensor; "
                         f"torch.save a tensor (or a dict with key '{key}')")
    t = obj.detach().cpu()
    if t.layout != torch.strided:  # sparse COO/CSR/...: the same numbers, dense
        t = t.to_dense()
    if t.is_complex():
        raise ValueError(f"{what} {path}: a complex tensor ({t.dtype}); logits are real numbers")
    if t.dtype in (torch.bfloat16, torch.float16):  # exact in float32; NumPy has no bfloat16
        t = t.to(torch.float32)
    return t.numpy()
