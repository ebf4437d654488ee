"""Where the data and model folders are: the one resolution every reader uses.

Two folders live outside the repository: the images (``data``: ``imagenet-val/``,
``imagenet-sample/``, ``cue-conflict/``) and the model weights (``models``:
``mobilenet_v1_0.75_224/``, ``darknet_tiny/``, ...). Each is found in this order:

1. the environment variable (``NEUDEP_DATA``, ``NEUDEP_MODELS_DIR``), used as given;
2. ``../shared/data`` or ``../shared/models`` beside the repository checkout, when it exists;
3. ``$NEUDEP_HOME/data`` or ``$NEUDEP_HOME/models`` (default: the platform's user cache folder,
   e.g. ``~/.cache/neudep``) once ``make data`` (``python -m neudep_utils data``) has downloaded
   and verified it there (:mod:`neudep_utils.origins`);
4. otherwise nothing: :func:`not_found` is the instruction to run ``make data``.

:func:`data_dir` and :func:`models_dir` always return a path (the would-be download folder when
nothing is found, so a loader's "not found" error names it); :func:`find` also says which rule
chose it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal, NamedTuple

import platformdirs

__all__ = ["ENV", "Location", "data_dir", "find", "home", "models_dir", "not_found",
           "shared_beside", "verified_kinds"]

Kind = Literal["data", "models"]
#: The environment variable of each folder.
ENV = {"data": "NEUDEP_DATA", "models": "NEUDEP_MODELS_DIR"}
#: What each folder holds, for messages.
HOLDS = {"data": "imagenet-val/, imagenet-sample/, cue-conflict/",
         "models": "mobilenet_v1_0.75_224/, darknet_tiny/, coral_tflite_int8/, ..."}
#: The file in ``$NEUDEP_HOME`` that records which folders ``make data`` has verified there.
MARKER = "verified.json"


class Location(NamedTuple):
    """A resolved folder: ``path`` and the rule that chose it, ``source`` (``"env"``,
    ``"shared"``, ``"home"`` or ``"missing"``)."""

    path: Path
    source: str


def shared_beside() -> Path:
    """``../shared`` beside the repository checkout (the folder holding ``neudep_utils/``)."""
    return Path(__file__).resolve().parents[2] / "shared"


def home() -> Path:
    """``$NEUDEP_HOME`` if set, else the platform's user cache folder for neudep
    (``platformdirs.user_cache_dir("neudep")``, e.g. ``~/.cache/neudep`` on Linux)."""
    env = os.environ.get("NEUDEP_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return Path(platformdirs.user_cache_dir("neudep", appauthor=False))


def verified_kinds(root: Path | None = None) -> dict:
    """The folders ``make data`` verified in ``root`` (default :func:`home`): its marker file,
    ``{}`` when missing or unreadable."""
    path = (root if root is not None else home()) / MARKER
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find(kind: Kind) -> Location:
    """The ``kind`` folder (``"data"`` or ``"models"``) by the resolution order of this module.

    Parameters
    ----------
    kind : {"data", "models"}
        Which folder.

    Returns
    -------
    Location
        ``(path, source)``; ``source == "missing"`` when no rule found one (``path`` is then
        where ``make data`` would put it).
    """
    if kind not in ENV:
        raise ValueError(f"unknown folder kind {kind!r}; expected 'data' or 'models'")
    env = os.environ.get(ENV[kind])
    if env:
        return Location(Path(env).expanduser(), "env")
    beside = shared_beside() / kind
    if beside.is_dir():
        return Location(beside, "shared")
    mine = home() / kind
    if mine.is_dir() and kind in verified_kinds():
        return Location(mine, "home")
    return Location(mine, "missing")


def data_dir() -> Path:
    """The data folder (``imagenet-val/``, ...): see :func:`find`."""
    return find("data").path


def models_dir() -> Path:
    """The model weights folder (``mobilenet_v1_0.75_224/``, ...): see :func:`find`."""
    return find("models").path


def not_found(kind: Kind) -> str:
    """The instruction given when no ``kind`` folder is found: every place looked at, then the
    command that fills one (``make data``) and the variable that points at another."""
    mine = home() / kind
    state = ("holds an unfinished download (rerun it)" if mine.is_dir()
             else "does not exist")
    return (f"no {kind} folder found: {ENV[kind]} is not set, {shared_beside() / kind} (../shared "
            f"beside the checkout) does not exist and {mine} (NEUDEP_HOME) {state}; run "
            f"`make data` (or `python -m neudep_utils data`) to download and verify it from its "
            f"public origin, or set {ENV[kind]} to a folder holding {HOLDS[kind]}")
